"""MatrixChannel catches up on a room whose sync timeline was cut off
(``limited``): against the session's real Synapse, an employee writes more
messages than a sync carries while the bot is down, and every one of them must
reach the core exactly once, in order, after the restart."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.channels.base import MemoryChannelState
from bot.channels.matrix import MatrixChannel
from bot.channels.matrix import backfill as matrix_backfill
from bot.notices import in_every_language
from domain.vocabulary import SUPPORTED_LANGUAGES
from tests.support.matrix_app import MatrixPeer, Recorder, eventually, state_changes
from tests.support.synapse import SynapseServer

TIMELINE_LIMIT = 5
MISSED = 12

NOTICES = in_every_language(SUPPORTED_LANGUAGES)
"""What the app gives the channel: its own notices in nl, fr and en."""


@pytest.fixture
async def employee(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[MatrixPeer]:
    peer = await MatrixPeer.create(synapse, tmp_path / "peers", "emp")
    yield peer
    await peer.close()


async def test_cut_off_timeline_is_paged_back_in_order_exactly_once(
    synapse: SynapseServer,
    tmp_path: Path,
    employee: MatrixPeer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Small pages, so the catch-up of 7 missed events needs several of them.
    monkeypatch.setattr(matrix_backfill, "_BACKFILL_PAGE", 3)
    name = "bot-" + secrets.token_hex(3)
    password = "pw-" + name
    bot_id, _, _ = await synapse.register(name, password)
    state = MemoryChannelState()
    core = Recorder()
    channels: list[MatrixChannel] = []

    async def start() -> MatrixChannel:
        ch = MatrixChannel(
            synapse.url,
            bot_id,
            password=password,
            store_dir=tmp_path / "bot-store",
            pickle_key="test-pickle-key",
            state=state,
            notices=NOTICES,
            sync_timeout_ms=1000,
            timeline_limit=TIMELINE_LIMIT,
        )
        await ch.start(core)
        channels.append(ch)
        return ch

    try:
        ch = await start()
        dm = await employee.dm(bot_id)
        before = await state.get("since")
        first = "before the outage " + secrets.token_hex(3)
        await employee.say(dm, first)
        await eventually(lambda: first in core.texts(), what="first message handled")
        await state_changes(state, "since", before)  # the position after it is saved
        await ch.stop()

        missed = [f"missed {i:02d} {secrets.token_hex(3)}" for i in range(1, MISSED + 1)]
        for text in missed:
            await employee.say(dm, text)

        caplog.set_level(logging.DEBUG, logger="bot.channels.matrix")
        await start()
        expected = [first, *missed]
        await eventually(
            lambda: len(core.inbound) >= len(expected), what="all missed messages handled"
        )
        # Give a duplicate (from the sync or a later one) the time to show up.
        await asyncio.sleep(1.5)
        assert core.texts() == expected
        assert len({i.event_id for i in core.inbound}) == len(expected)
        assert all(i.chat == dm and i.sender == employee.user_id for i in core.inbound)

        logged = [r.getMessage() for r in caplog.records
                      if r.name.startswith("bot.channels.matrix")]
        assert any(m.startswith("matrix: backfilled 7 event(s)") for m in logged), logged
        assert not any("incomplete" in m for m in logged), logged
        for message in logged:  # kinds and counts only: no text, room or user ids
            assert dm not in message and employee.user_id not in message
            assert not any(text in message for text in expected)
    finally:
        for channel in channels:
            await channel.stop()
