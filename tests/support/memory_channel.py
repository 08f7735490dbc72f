"""An in-memory channel and a whole-core harness for scenario tests.

`MemoryChannel` records everything each address received, like maubot's
test bot; `Harness` wires a real store (SQLite file or PostgreSQL), the real
core, the delivery worker and a settable clock, and lets a test speak as
employees and confidants.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path

import pytest_asyncio

from bot.delivery import DeliveryWorker
from bot.intake import Intake
from domain.ids import ChannelName
from domain.messages import Inbound, Media, Outbound, SendResult, Unreachable
from handlers.context import CoreSettings
from handlers.info import InfoLibrary
from store.crypto import Crypto, create_key_file, load_master_key
from store.migrate import upgrade
from store.store import Store

MEMORY = ChannelName("memory")
CHANNEL_NAMES = (MEMORY, ChannelName("telegram"), ChannelName("web"), ChannelName("matrix"))
"""Channel names the harness's one `MemoryChannel` answers to."""


class MemoryChannel:
    name = MEMORY
    numbered_menus = False
    end_to_end = False
    idempotent_sends = True

    def __init__(self) -> None:
        self.received: dict[str, list[Outbound]] = defaultdict(list)
        self.sent_keys: set[str] = set()
        self.unreachable: set[str] = set()
        self.failures: list[Exception] = []
        self.message_ids: dict[int, str] = {}
        """Platform message id given for each recorded `Outbound` (by ``id()``)."""
        self._ids = itertools.count(1)

    async def start(self, on_inbound: object) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        if out.to.address in self.unreachable:
            raise Unreachable("blocked")
        if self.failures:
            raise self.failures.pop(0)
        if idempotency_key in self.sent_keys:
            return SendResult(str(next(self._ids)))
        self.sent_keys.add(idempotency_key)
        self.received[out.to.address].append(out)
        message_id = str(next(self._ids))
        self.message_ids[id(out)] = message_id
        return SendResult(message_id)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


@dataclass
class Person:
    """Someone in a test: their platform id doubles as their chat id."""

    h: Harness
    id: str
    language: str | None = None
    events: itertools.count[int] = field(default_factory=itertools.count)
    channel: ChannelName = MEMORY
    """Which channel name the person writes on (all are recorded by one `MemoryChannel`)."""

    async def say(self, text: str | None = None, *, media: Media | None = None,
                  reply_to: str | None = None, unsupported: str | None = None,
                  event_id: str | None = None) -> None:
        inbound = Inbound(self.channel, self.id, self.id,
                          event_id or f"{self.id}:{next(self.events)}",
                          text=text, media=media, reply_to=reply_to,
                          language_hint=self.language, unsupported=unsupported)
        await self.h.core.handle(inbound)
        await self.h.worker.drain()

    async def press(self, label_part: str) -> None:
        """Press the first button whose label contains ``label_part`` in the
        latest message that has a menu."""
        for out in reversed(self.inbox):
            if out.menu is None:
                continue
            for b in out.menu.buttons():
                if label_part.lower() in b.label.lower():
                    await self.press_token(b.token)
                    return
        raise AssertionError(f"no button {label_part!r} for {self.id}: {self.texts[-3:]}")

    async def press_token(self, token: str) -> None:
        await self.h.core.handle(Inbound(self.channel, self.id, self.id,
                                         f"{self.id}:{next(self.events)}", button=token))
        await self.h.worker.drain()

    @property
    def inbox(self) -> list[Outbound]:
        return self.h.channel.received[self.id]

    @property
    def texts(self) -> list[str]:
        return [o.text for o in self.inbox]

    @property
    def last(self) -> str:
        return self.texts[-1] if self.texts else ""

    def message_id(self, out: Outbound) -> str:
        """The platform message id of something this person received (to reply to it)."""
        return self.h.channel.message_ids[id(out)]

    def clear(self) -> None:
        self.h.channel.received[self.id].clear()


def code_of(person: Person) -> str:
    """The case code the person was last given."""
    codes = [o.case for o in person.inbox if o.case]
    assert codes, f"no case code among {person.texts}"
    return str(codes[-1])


async def open_case(emp: Person, confidant: Person | None = None) -> str:
    """The employee opens a case with "first available"; the confidant, if
    given, claims it.  Returns the case code."""
    await emp.say("/talk")
    await emp.press_token(emp.inbox[-1].menu.rows[0][0].token)  # type: ignore[union-attr]
    code = code_of(emp)
    if confidant is not None:
        await confidant.say(f"/claim {code}")
    return code


class Harness:
    def __init__(self, store: Store, clock: FakeClock, settings: CoreSettings) -> None:
        self.store = store
        self.clock = clock
        self.channel = MemoryChannel()
        self.core = Intake(store, settings, InfoLibrary.load(), clock)
        self.worker = DeliveryWorker(store, {name: self.channel for name in CHANNEL_NAMES},
                                     clock=clock, wake=self.core.outbox_changed,
                                     unreachable=self.core.unreachable)

    def person(self, pid: str, language: str | None = "en",
               channel: str = MEMORY) -> Person:
        """An employee; ``channel`` may be any of `CHANNEL_NAMES` (e.g. "telegram"
        to see what the core says on that platform)."""
        return Person(self, pid, language, channel=ChannelName(channel))

    async def add_confidant(self, name: str, pid: str, languages: str = "en",
                            always_on_duty: bool = True, bio: str = "",
                            channels: tuple[str, ...] = (MEMORY,)) -> Person:
        """A confidant reached on ``channels`` (the same id on each); the returned
        person speaks on the first."""
        async with self.store.tx() as tx:
            c = await tx.confidants.add(name, bio=bio, languages=languages.split(","),
                                        attested_by="test", now=self.clock.now())
            for channel in channels:
                await tx.confidants.set_address(c, channel, pid)
            if always_on_duty:
                for day in range(7):
                    await tx.rota.add_shift(c, day, time(0, 0), time(23, 59))
        return Person(self, pid, languages.split(",")[0], channel=ChannelName(channels[0]))

    async def tick(self) -> None:
        await self.core.tick()
        await self.worker.drain()


async def make_harness(url: str, tmp: Path, now: datetime | None = None,
                       **settings: object) -> Harness:
    key_path = tmp / "master.key"
    create_key_file(key_path)
    await upgrade(url)
    store = Store.open(url, load_master_key(key_path))
    assert isinstance(store.crypto, Crypto)
    clock = FakeClock(now or datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    cfg = CoreSettings(org_name="Acme", numbered_channels=frozenset(),
                       **settings)  # type: ignore[arg-type]
    return Harness(store, clock, cfg)


@pytest_asyncio.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await make_harness(f"sqlite+aiosqlite:///{tmp_path / 'core.db'}", tmp_path)
    yield h
    await h.store.close()
