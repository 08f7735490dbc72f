"""The database goes away for 10 seconds while Telegram updates keep coming:
SQLite locked by another connection, PostgreSQL stopped and started again.

The bot must wait and recover without losing an inbound event: while the
database is away the Telegram channel does not confirm any update (the
double still holds every one of them), and afterwards every message is
relayed exactly once, in order.  One message's send is slowed down so that
it completes during the outage: recording it as sent must wait for the
database too, and must not make it go out twice.

SQLite is locked a little longer (12 s) than the 10 s of the issue: every
attempt of the store already waits up to 10 s for a lock (its busy timeout),
so a shorter lock would never make an attempt fail.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path

import pytest

import bot.channels.telegram.channel as telegram_module
from bot.channels.ratelimit import RateLimiter
from handlers.i18n import Translator
from store.crypto import load_master_key
from store.store import Store
from tests.support.app_runner import BotSetup, make_setup, running_app
from tests.support.faults import Pair, RestartableCluster, open_pair, sqlite_locked, wait_for
from tests.support.telegram_double import TelegramDouble

TR = Translator("nl", ("nl", "fr", "en"), "Europe/Brussels", "Acme Logistics")
OUTAGE_SECONDS = 10.0
SQLITE_LOCK_SECONDS = 12.0


def t(key: str, **values: object) -> str:
    return TR.t("en", key, **values)


@pytest.fixture
def quick_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """10 messages/s per chat instead of Telegram's 1/s (the limiter has its own tests)."""
    monkeypatch.setattr(telegram_module, "RateLimiter",
                        functools.partial(RateLimiter, per_chat_rate=10.0))


def make_pair(d: TelegramDouble, n: int) -> Pair:
    return Pair(d.user(6_400_000_001 + n, f"Dbfirst{n}", None, None, "en"),
                d.user(7_500_000_001 + n, f"Dbconf{n}", None, None, "en", started=True),
                f"Dbconf{n}")


async def register(url: str, setup: BotSetup, pair: Pair) -> None:
    """The confidant, on duty around the clock, in whichever database the bot uses."""
    store = Store.open(url, load_master_key(setup.key_path))
    try:
        async with store.tx() as tx:
            c = await tx.confidants.add(pair.name, bio="", languages=["en"],
                                        attested_by="test", now=datetime.now(UTC))
            await tx.confidants.set_address(c, "telegram", str(pair.conf.id))
            for day in range(7):
                await tx.rota.add_shift(c, day, dtime(0, 0), dtime(23, 59), "duty")
    finally:
        await store.close()


async def outage_scenario(d: TelegramDouble, setup: BotSetup, pair: Pair,
                          outage: Callable[[], AbstractAsyncContextManager[None]],
                          seconds: float = OUTAGE_SECONDS) -> None:
    """Open the case, then write both ways before, during and after the outage."""
    async with running_app(setup):
        await open_pair(d, pair)
        to_conf: list[str] = []
        to_emp: list[str] = []
        during: list[str] = []

        async def say(i: int, phase: str) -> str:
            text = f"{phase}{i:02d} {secrets.token_hex(3)}"
            if i % 3 == 2:
                await pair.conf.send_text(text)
                to_emp.append(t("relay.to_employee", name=pair.name, text=text))
            else:
                await pair.emp.send_text(text)
                to_conf.append(t("relay.to_confidant", code=pair.code, text=text))
            return text

        for i in range(3):
            await say(i, "before")
        await d.wait_for(pair.conf.id, lambda r: r.get("text") == to_conf[-1], 20)
        await d.wait_for(pair.emp.id, lambda r: r.get("text") == to_emp[-1], 20)

        # This one's send is still under way when the database goes away.
        requests_before = len(d.requests)
        d.inject("sendMessage", delay=1.5)
        edge = await say(0, "edge")
        await d.wait_for_call("sendMessage", lambda r: edge in str(r.params.get("text")), 10,
                              start=requests_before)

        async with outage():
            started = time.monotonic()
            i = 0
            while time.monotonic() - started < seconds - 1.5:
                during.append(await say(i, "during"))
                i += 1
                await asyncio.sleep(0.4)
            # Not one of them was confirmed to Telegram while nothing could be recorded.
            pending = {(u.get("message") or {}).get("text") for u in d.pending_updates()}
            assert set(during) <= pending, "an update was confirmed before it was recorded"
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))

        for i in range(3):
            await say(i, "after")

        def arrived() -> bool:
            return (set(to_conf) <= {r.get("text") for r in d.sent_to(pair.conf.id)}
                    and set(to_emp) <= {r.get("text") for r in d.sent_to(pair.emp.id)})

        await wait_for(arrived, 90, "every message after the outage")
        await asyncio.sleep(0.5)
        assert not d.pending_updates(), "updates left unconfirmed after recovery"
    assert len(during) >= 15
    got_conf = [r.get("text") for r in d.sent_to(pair.conf.id) if r.get("text") in set(to_conf)]
    got_emp = [r.get("text") for r in d.sent_to(pair.emp.id) if r.get("text") in set(to_emp)]
    assert got_conf == to_conf, "lost, repeated or reordered at the confidant"
    assert got_emp == to_emp, "lost, repeated or reordered at the employee"


async def test_sqlite_locked_for_ten_seconds(tmp_path: Path, telegram_double: TelegramDouble,
                                             quick_pacing: None) -> None:
    d = telegram_double
    pair = make_pair(d, 0)
    setup = await make_setup(tmp_path, telegram_base_url=d.base_url, telegram_token=d.token,
                             default_language="en")
    await register(setup.db_url, setup, pair)

    @asynccontextmanager
    async def locked() -> AsyncIterator[None]:
        async with sqlite_locked(setup.db_path):
            yield

    await outage_scenario(d, setup, pair, locked, SQLITE_LOCK_SECONDS)


@pytest.fixture
def own_cluster() -> Iterator[RestartableCluster]:
    """A PostgreSQL cluster for this test alone: the session's server must stay up."""
    cluster = RestartableCluster()
    cluster.start_new()
    try:
        yield cluster
    finally:
        cluster.remove()


async def test_postgresql_restarted_with_ten_seconds_down(
        tmp_path: Path, telegram_double: TelegramDouble, quick_pacing: None,
        own_cluster: RestartableCluster) -> None:
    d = telegram_double
    pair = make_pair(d, 1)
    url = await own_cluster.create_database("outage")
    setup = await make_setup(tmp_path, telegram_base_url=d.base_url, telegram_token=d.token,
                             default_language="en", extra={"store": {"url": url}})
    from store.migrate import upgrade

    await upgrade(url)
    await register(url, setup, pair)

    @asynccontextmanager
    async def stopped() -> AsyncIterator[None]:
        await asyncio.to_thread(own_cluster.stop)
        try:
            yield
        finally:
            await asyncio.to_thread(own_cluster.start)

    await outage_scenario(d, setup, pair, stopped)

