"""Property test of the first guarantee: nothing a confidant receives ever
contains the employee's identity.

Hypothesis generates employees with random platform ids, chat addresses and
names (the name travels in the language hint, in file names and in a named
declaration) and random conversations with two confidants answering; none
of those identity strings may appear anywhere in what a confidant got:
text, menu labels, case, control, extra, file name or caption.
"""

from __future__ import annotations

import asyncio
import itertools
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.messages import Inbound, Media, Outbound
from tests.support.memory_channel import MEMORY, Harness, make_harness

WORDS = ("hello", "my manager", "shouts", "at me", "every day", "I am tired", "thanks",
         "ok", "can we meet", "it is hard", "the team", "yes", "no")

EMPLOYEE_ACTIONS = ("talk_any", "talk_sara", "say", "say", "say", "crisis", "media", "stop",
                    "forget", "declare_named", "declare_anonymous", "language", "confirmation",
                    "emergency", "unsupported", "start", "consent_yes", "consent_no")
CONFIDANT_ACTIONS = ("claim", "reply", "reply", "consent", "close", "handover", "heard", "cases",
                     "note", "press_claim")

identities = st.fixed_dictionaries({
    # Telegram-like numeric ids, Matrix-like ids and free-form display names
    "sender": st.one_of(st.from_regex(r"[1-9][0-9]{8,14}", fullmatch=True),
                        st.from_regex(r"@[a-z0-9._=-]{3,20}:[a-z]{3,10}\.example",
                                      fullmatch=True)),
    "chat": st.from_regex(r"![A-Za-z]{6,18}:room\.example", fullmatch=True),
    "name": st.text(alphabet=string.ascii_letters + "éèçëïöüßÅØ -'", min_size=2, max_size=24)
    .map(lambda s: "ʘ" + s.strip() + "ʘ"),
    "lang": st.sampled_from(("nl", "fr", "en", "de", "")),
})
OPENINGS: tuple[tuple[tuple[str, str], ...], ...] = (
    (),
    (("employee", "talk_any"),),
    (("employee", "talk_sara"),),
    (("employee", "talk_any"), ("confidant", "claim")),
    (("employee", "talk_sara"), ("confidant", "claim")),
    (("employee", "talk_any"), ("confidant", "press_claim")),
)
"""Most conversations start the way real ones do, so that the later random
steps meet open and claimed cases often."""
conversations = st.tuples(
    st.sampled_from(OPENINGS),
    st.lists(st.one_of(st.tuples(st.just("employee"), st.sampled_from(EMPLOYEE_ACTIONS)),
                       st.tuples(st.just("confidant"), st.sampled_from(CONFIDANT_ACTIONS))),
             min_size=1, max_size=4),
).map(lambda parts: list(parts[0]) + parts[1])
phrases = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)


@dataclass
class World:
    runner: asyncio.Runner
    h: Harness
    events: Iterator[int]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One store and core for every example (fast), driven from a private loop."""
    tmp: Path = tmp_path_factory.mktemp("privacy")
    with asyncio.Runner() as runner:
        h = runner.run(make_harness(f"sqlite+aiosqlite:///{tmp / 'p.db'}", tmp))
        runner.run(h.add_confidant("Sara", "conf-sara", languages="nl,fr,en"))
        runner.run(h.add_confidant("Tom", "conf-tom", languages="fr"))
        yield World(runner, h, itertools.count())
        runner.run(h.store.close())


class Driver:
    """Speaks as one generated employee and as the two confidants."""

    def __init__(self, w: World, who: dict[str, str]) -> None:
        self.w = w
        self.h = w.h
        self.who = who

    async def employee(self, *, text: str | None = None, button: str | None = None,
                       media: Media | None = None, unsupported: str | None = None) -> None:
        await self.h.core.handle(Inbound(
            MEMORY, self.who["sender"], self.who["chat"], f"e{next(self.w.events)}",
            text=text, button=button, media=media, unsupported=unsupported,
            language_hint=f"{self.who['lang']}-{self.who['name']}"))
        await self.h.worker.drain()

    async def confidant(self, pid: str, *, text: str | None = None,
                        button: str | None = None) -> None:
        await self.h.core.handle(Inbound(MEMORY, pid, pid, f"c{next(self.w.events)}",
                                         text=text, button=button))
        await self.h.worker.drain()

    def inbox(self, address: str) -> list[Outbound]:
        return self.h.channel.received[address]

    def button(self, address: str, row: int = 0, col: int = 0, label: str = "") -> str | None:
        """A button of the latest menu, by position (labels depend on the language)."""
        for out in reversed(self.inbox(address)):
            if out.menu is None:
                continue
            if label:
                hits = [b.token for b in out.menu.buttons() if label in b.label]
                return hits[0] if hits else None
            if row < len(out.menu.rows) and col < len(out.menu.rows[row]):
                return out.menu.rows[row][col].token
            return None
        return None

    def code(self) -> str | None:
        codes = [o.case for o in self.inbox(self.who["chat"]) if o.case]
        return str(codes[-1]) if codes else None

    async def press(self, row: int = 0, col: int = 0, label: str = "") -> None:
        token = self.button(self.who["chat"], row, col, label)
        if token is not None:
            await self.employee(button=token)

    async def act_employee(self, action: str, words: str) -> None:
        name = self.who["name"]
        if action == "talk_any":
            await self.employee(text="/talk")
            await self.press(0, 0)
        elif action == "talk_sara":
            await self.employee(text="/talk")
            await self.press(label="Sara")
        elif action == "say":
            await self.employee(text=words)
        elif action == "crisis":
            await self.employee(text=f"{words}, I want to end my life")
        elif action == "media":
            await self.employee(text=words, media=Media(
                "document", b"%PDF-1.4", filename=f"{name}.pdf", mime_type="application/pdf"))
        elif action == "forget":
            await self.employee(text="/forget")
            await self.press(0, 0)
        elif action in ("declare_named", "declare_anonymous"):
            await self.employee(text="/declare")
            for answer in (words, "yesterday", "at the desk"):
                await self.employee(text=answer)
            if action == "declare_named":
                await self.press(1, 0)
                await self.employee(text=name)
            else:
                await self.press(0, 0)
        elif action == "language":
            await self.employee(text="/language fr")
        elif action == "unsupported":
            await self.employee(unsupported="contact")
        elif action in ("consent_yes", "consent_no"):
            await self.press(0, 0 if action == "consent_yes" else 1)
        else:
            await self.employee(text=f"/{action}")

    async def act_confidant(self, action: str, words: str) -> None:
        code = self.code() or "AAA-AAA"
        if action == "claim":
            await self.confidant("conf-sara", text=f"/claim {code}")
        elif action == "press_claim":
            token = self.button("conf-tom", label=self.code() or "?")
            if token is not None:
                await self.confidant("conf-tom", button=token)
        elif action == "reply":
            await self.confidant("conf-sara", text=f"/case {code}")
            await self.confidant("conf-sara", text=words)
        elif action == "consent":
            await self.confidant("conf-sara", text=f"/consent {code} advisor")
        elif action == "close":
            await self.confidant("conf-sara", text=f"/close {code} other")
        elif action == "handover":
            await self.confidant("conf-sara", text=f"/handover {code} Tom")
        elif action == "heard":
            await self.confidant("conf-tom", text=f"/heard {code}")
        elif action == "note":
            await self.confidant("conf-sara", text=f"/note {code} {words}")
        else:
            await self.confidant("conf-tom", text="/cases")


def visible(out: Outbound) -> list[str]:
    """Every string of a message a confidant's client could show or keep."""
    parts = [out.text, str(out.case or ""), out.control or "", str(out.role or ""),
             out.to.address]
    if out.menu is not None:
        parts += [b.label for b in out.menu.buttons()] + [b.token for b in out.menu.buttons()]
    if out.media is not None:
        parts += [out.media.filename, out.media.caption or "", out.media.kind]
    return parts


@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(who=identities, conversation=conversations, words=phrases)
def test_no_employee_identity_reaches_a_confidant(world: World, who: dict[str, str],
                                                  conversation: list[tuple[str, str]],
                                                  words: str) -> None:
    h = world.h
    for address in ("conf-sara", "conf-tom"):
        h.channel.received[address].clear()
    driver = Driver(world, who)

    async def play() -> None:
        for side, action in conversation:
            if side == "employee":
                await driver.act_employee(action, words)
            else:
                await driver.act_confidant(action, words)
        # keep the shared outbox small so every example stays fast
        async with h.store.tx() as tx:
            await tx.outbox.purge_delivered(h.clock.now() + timedelta(days=1))

    world.runner.run(play())
    secrets = (who["sender"], who["chat"], who["name"])
    for address in ("conf-sara", "conf-tom"):
        for out in h.channel.received[address]:
            for part in visible(out):
                for secret in secrets:
                    assert secret not in part, (address, out.kind, part)
