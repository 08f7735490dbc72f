"""The delivery fast lane: fresh messages go out straight after the commit,
still recorded as sent, never twice, never ahead of an older pending one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
from sqlalchemy import select

from domain.ids import ChannelName
from domain.messages import ChannelAddress, Inbound, Outbound, RetryLater, SendResult
from store.models import OutboxMessage
from store.outbox import DueMessage
from tests.support.memory_channel import Harness, MemoryChannel, Person, make_harness, open_case


@pytest_asyncio.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await make_harness(f"sqlite+aiosqlite:///{tmp_path / 'lane.db'}", tmp_path)
    yield h
    await h.store.close()


async def rows(h: Harness) -> list[OutboxMessage]:
    async with h.store.tx() as tx:
        return list((await tx.session.scalars(select(OutboxMessage)
                                              .order_by(OutboxMessage.seq))).all())


async def settle(h: Harness) -> None:
    """Let the lane's tasks finish (sending and recording; sent marks that
    would wait for the next event's transaction are recorded now)."""
    for _ in range(200):
        if not h.worker._fast_tasks:
            await h.worker.flush_marks()
            return
        await asyncio.sleep(0.01)
    raise AssertionError("fast lane did not finish")


async def claimed_case(h: Harness) -> tuple[Person, Person, str]:
    """Sara has claimed emp-1's case and everything so far is delivered."""
    sara = await h.add_confidant("Sara", "conf-sara")
    emp = h.person("emp-1")
    code = await open_case(emp, sara)
    await h.worker.drain()
    return sara, emp, code


async def test_relay_goes_out_without_a_delivery_pass(harness: Harness) -> None:
    sara, emp, code = await claimed_case(harness)
    sara.clear()
    harness.core.lane = harness.worker
    harness.core.outbox_changed.clear()
    await emp.say("straight through")
    await settle(harness)
    assert sara.texts == [f"[{code}] straight through"]
    assert not harness.core.outbox_changed.is_set()  # no pass was needed
    last = (await rows(harness))[-1]
    assert last.status == "sent" and last.payload_enc is None and last.recipient_enc is None
    assert await harness.worker.deliver_due() == 0


async def test_a_retried_head_is_not_overtaken(harness: Harness) -> None:
    sara, emp, code = await claimed_case(harness)
    sara.clear()
    harness.core.lane = harness.worker
    harness.channel.failures.append(RetryLater("flood", after=30))
    await emp.say("first")
    await settle(harness)
    await emp.say("second")
    await emp.say("third")
    await settle(harness)
    assert sara.texts == []
    harness.clock.current += timedelta(seconds=31)
    await harness.worker.drain()
    assert sara.texts == [f"[{code}] first", f"[{code}] second", f"[{code}] third"]


class GatedChannel(MemoryChannel):
    """Holds every send until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        await self.gate.wait()
        return await super().send(out, idempotency_key)


def gate_sends(h: Harness) -> GatedChannel:
    """Every send from now on waits at a closed gate the test opens."""
    gated = GatedChannel()
    h.worker.channels = {name: gated for name in h.worker.channels}
    return gated


async def test_a_pass_never_sends_what_the_lane_holds(harness: Harness) -> None:
    _sara, emp, code = await claimed_case(harness)
    gated = gate_sends(harness)
    harness.core.lane = harness.worker
    await emp.say("only once")
    assert harness.worker._inflight  # claimed, held at the gate
    assert await harness.worker.deliver_due() == 0  # the pass leaves it alone
    gated.gate.set()
    await settle(harness)
    assert gated.received["conf-sara"][-1].text == f"[{code}] only once"
    assert [o.text for o in gated.received["conf-sara"]].count(f"[{code}] only once") == 1
    assert not harness.worker._inflight
    assert await harness.worker.deliver_due() == 0


async def test_messages_queued_behind_a_held_one_follow_it_in_order(harness: Harness) -> None:
    """While the lane holds Sara's first message, two more for her are
    written; the running worker sends them right after it, in order, with
    nobody calling for a pass."""
    _sara, emp, code = await claimed_case(harness)
    gated = gate_sends(harness)
    harness.core.lane = harness.worker  # as the app attaches it while delivery runs
    worker = asyncio.create_task(harness.worker.run())
    try:
        await asyncio.sleep(0.05)
        for i, text in enumerate(("one", "two", "three")):
            await harness.core.handle(Inbound(emp.channel, emp.id, emp.id, f"q{i}", text=text))
            await asyncio.sleep(0.05)  # the worker's pass runs while "one" is held
        assert gated.received["conf-sara"] == []
        gated.gate.set()
        for _ in range(200):
            if len(gated.received["conf-sara"]) == 3:
                break
            await asyncio.sleep(0.01)
        assert [o.text for o in gated.received["conf-sara"]] == \
            [f"[{code}] one", f"[{code}] two", f"[{code}] three"]
    finally:
        harness.worker.stop()
        await asyncio.wait_for(worker, 5)


async def test_a_failed_head_keeps_what_was_queued_behind_it_waiting(harness: Harness) -> None:
    """Sara's first message fails while her second waits behind it in the
    lane: the second must not overtake the retry."""
    _sara, emp, code = await claimed_case(harness)
    gated = gate_sends(harness)
    gated.failures.append(RetryLater("flood", after=30))
    harness.core.lane = harness.worker
    await harness.core.handle(Inbound(emp.channel, emp.id, emp.id, "f1", text="one"))
    await harness.core.handle(Inbound(emp.channel, emp.id, emp.id, "f2", text="two"))
    assert sum(map(len, harness.worker._behind.values())) == 1  # "two" waits behind "one"
    gated.gate.set()
    await settle(harness)
    assert gated.received["conf-sara"] == []
    assert await harness.worker.deliver_due() == 0  # "one" is being retried: "two" waits
    harness.clock.current += timedelta(seconds=31)
    await harness.worker.drain()
    assert [o.text for o in gated.received["conf-sara"]] == [f"[{code}] one", f"[{code}] two"]
    assert not harness.worker._inflight


async def test_a_queued_row_whose_transaction_failed_is_never_sent(harness: Harness) -> None:
    _sara, emp, _ = await claimed_case(harness)
    gated = gate_sends(harness)
    harness.core.lane = harness.worker
    await harness.core.handle(Inbound(emp.channel, emp.id, emp.id, "g1", text="kept"))
    head = next(iter(harness.worker._inflight))
    ghost = DueMessage(head + 1000, "ghost-ref", "memory", None, 0,
                       next(iter(harness.worker._fast_recipients)))
    to = ChannelAddress(ChannelName("memory"), "conf-sara")
    claimed = harness.worker.claim([(ghost, Outbound(to=to, text="rolled back"), 1)])
    assert claimed == [(ghost, claimed[0][1])] and ghost.seq in harness.worker._queued
    harness.worker.unclaim(claimed)  # its transaction failed
    gated.gate.set()
    await settle(harness)
    assert [o.text for o in gated.received["conf-sara"]][-1].endswith("kept")
    assert "rolled back" not in [o.text for o in gated.received["conf-sara"]]
    assert not harness.worker._inflight and not harness.worker._queued
