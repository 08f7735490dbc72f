"""Sent marks ride along with the next event: one commit per relayed message.

A message the fast lane delivered is recorded as sent by the next event's
transaction (or on its own a moment later when nothing comes), never
before its send and never so late that a person could receive two
unrecorded messages (a crash re-sends at most one per person).  These tests
check what people and the store would show if that went wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import event, select

from bot.delivery import MARK_WAIT
from domain.messages import Inbound
from store.models import MessageLink, OutboxMessage
from tests.support.memory_channel import Harness, Person, make_harness, open_case


@pytest_asyncio.fixture
async def harness(store_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    h = await make_harness(store_url, tmp_path)
    yield h
    await h.store.close()


async def statuses(h: Harness) -> dict[str, str]:
    """Each relayed text (by its last word) → its outbox row's status."""
    async with h.store.tx() as tx:
        found = (await tx.session.scalars(select(OutboxMessage)
                                          .order_by(OutboxMessage.seq))).all()
        return {m.ref: m.status for m in found}


async def relay(h: Harness, emp: Person, n: int, text: str) -> None:
    """The employee writes; wait until the lane has sent it (not recorded it)."""
    before = len(h.channel.received["conf-sara"])
    await h.core.handle(Inbound(emp.channel, emp.id, emp.id, f"{emp.id}:m{n}", text=text))
    for _ in range(500):
        if len(h.channel.received["conf-sara"]) > before and not h.worker._fast_tasks:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not relayed")


async def running(h: Harness) -> tuple[Person, Person, str]:
    sara = await h.add_confidant("Sara", "conf-sara")
    emp = h.person("emp-1")
    code = await open_case(emp, sara)
    await h.worker.drain()
    h.core.lane = h.worker  # as the app attaches it while delivery runs
    return sara, emp, code


async def test_the_next_event_records_the_previous_send(harness: Harness) -> None:
    sara, emp, code = await running(harness)
    commits = 0

    def counted(_conn: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(harness.store.engine.sync_engine, "commit", counted)
    try:
        for i in range(10):
            await relay(harness, emp, i, f"message {i}")
        # Ten relays, ten commits: each message's row with the previous one's mark.
        assert commits == 10
    finally:
        event.remove(harness.store.engine.sync_engine, "commit", counted)
    pending = [s for s in (await statuses(harness)).values() if s == "pending"]
    assert pending == ["pending"]  # only the last send waits for its mark
    assert [t for t in sara.texts if "] message " in t] == [f"[{code}] message {i}"
                                                           for i in range(10)]
    await asyncio.sleep(MARK_WAIT * 3)  # nothing else comes: it is written on its own
    assert "pending" not in (await statuses(harness)).values()
    assert not harness.worker._inflight


async def test_a_waiting_mark_holds_up_nobody(harness: Harness) -> None:
    """Another event for the same person right after a send goes out at
    once through the lane (no pass), in order; nobody got anything twice."""
    sara, emp, code = await running(harness)
    harness.core.outbox_changed.clear()
    await relay(harness, emp, 1, "first")
    await relay(harness, emp, 2, "second")
    assert not harness.core.outbox_changed.is_set(), "a delivery pass was needed"
    texts = [t for t in sara.texts if t.endswith(("first", "second"))]
    assert texts == [f"[{code}] first", f"[{code}] second"]


async def test_a_failed_event_leaves_the_marks_for_the_next(harness: Harness,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    sara, emp, code = await running(harness)
    await relay(harness, emp, 1, "first")
    unmarked = len(harness.worker._unmarked)
    assert unmarked == 1

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the step failed")

    monkeypatch.setattr("handlers.router.dispatch", broken)
    with pytest.raises(RuntimeError):
        await harness.core.handle(Inbound(emp.channel, emp.id, emp.id, "x", text="lost"))
    monkeypatch.undo()
    assert len(harness.worker._unmarked) == 1  # back, waiting
    await relay(harness, emp, 2, "second")
    await harness.worker.drain()
    assert "pending" not in (await statuses(harness)).values()
    texts = [t for t in sara.texts if t.endswith(("first", "second", "lost"))]
    assert texts == [f"[{code}] first", f"[{code}] second"]


async def test_a_reply_link_to_an_erased_case_is_dropped_not_fatal(harness: Harness) -> None:
    """The employee's message reached Sara; before its mark (and the link
    Sara's reply would follow) is written, the case is erased.  The next
    event still goes through, and no link points at the erased case."""
    _sara, emp, code = await running(harness)
    await relay(harness, emp, 1, "just before the erasure")
    assert harness.worker._unmarked
    async with harness.store.tx() as tx:
        case = await tx.cases.by_code(code)
        assert case is not None
        await tx.cases.erase(case, harness.clock.now())
    other = harness.person("emp-2")
    await harness.core.handle(Inbound(other.channel, other.id, other.id, "other:1",
                                      text="/start"))
    assert not harness.worker._unmarked  # carried by that event, which committed
    await harness.worker.drain()
    assert other.texts, "the next event was not handled"
    async with harness.store.tx() as tx:
        links = (await tx.session.scalars(select(MessageLink))).all()
    assert all(link.case_id != case.id for link in links)
