"""Exactly-once where it can be, at-least-once where it must be.

Crash tests kill a real bot process (SIGKILL, no cleanup) between "recorded"
and "sent" and between "sent" and "marked delivered", restart it and check
that no message is lost and that a duplicate appears only in the second
window and only on a channel without idempotent sends.  Delivery tests check
retry-after, per-recipient order, unreachable recipients and that delivered
bodies are deleted.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.messages import Inbound, RetryLater
from store.models import HandledEvent, OutboxMessage
from tests.support.core_process import run_process
from tests.support.memory_channel import MEMORY, Harness, make_harness, open_case


async def outbox_rows(h: Harness) -> list[OutboxMessage]:
    async with h.store.tx() as tx:
        return list((await tx.session.scalars(select(OutboxMessage)
                                              .order_by(OutboxMessage.seq))).all())


# ------------------------------------------------------------------ crashes


async def _prepare(tmp: Path) -> tuple[str, str]:
    """A database with Sara holding the employee's case; returns (url, code)."""
    url = f"sqlite+aiosqlite:///{tmp / 'crash.db'}"
    h = await make_harness(url, tmp)
    try:
        sara = await h.add_confidant("Sara", "conf-sara")
        code = await open_case(h.person("emp-1"), sara)
    finally:
        await h.store.close()
    return url, code


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _state(url: str, tmp: Path) -> tuple[int, int, int]:
    """(handled events, pending outbox rows, rows still holding a body)."""
    from store.crypto import load_master_key
    from store.store import Store

    store = Store.open(url, load_master_key(tmp / "master.key"))
    try:
        async with store.tx() as tx:
            s = tx.session
            handled = await s.scalar(select(func.count()).select_from(HandledEvent))
            pending = await s.scalar(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.status == "pending"))
            bodies = await s.scalar(select(func.count()).select_from(OutboxMessage)
                                    .where(OutboxMessage.payload_enc.is_not(None)))
        return int(handled or 0), int(pending or 0), int(bodies or 0)
    finally:
        await store.close()


@pytest.mark.parametrize(("crash", "idempotent", "copies_of_first"), [
    ("before-commit", False, 1),
    ("after-record", False, 1),
    ("after-record", True, 1),
    ("after-send", False, 2),
    ("after-send", True, 1),
])
async def test_process_killed_and_restarted(tmp_path: Path, crash: str, idempotent: bool,
                                            copies_of_first: int) -> None:
    url, code = await _prepare(tmp_path)
    handled_before, _, _ = await _state(url, tmp_path)
    record = tmp_path / "sent.jsonl"
    events = [["emp-1", "ev-1", "msg-1"], ["emp-1", "ev-2", "msg-2"]]
    spec = {"db": url, "key": str(tmp_path / "master.key"), "record": str(record),
            "idempotent": idempotent, "crash": crash, "events": events}
    assert run_process(spec) == -9
    handled, pending, _ = await _state(url, tmp_path)
    sent = [r["text"] for r in _records(record)]
    if crash == "before-commit":
        assert (handled - handled_before, pending) == (0, 0)  # nothing half-done
        assert sent == []
    elif crash == "after-record":
        assert (handled - handled_before, pending) == (2, 2)
        assert sent == []
    else:
        assert (handled - handled_before, pending) == (2, 2)
        assert sent == [f"[{code}] msg-1"]
    # restart; the platform re-delivers what it was never told was handled
    # (here: everything, which also proves duplicates have their effect once)
    assert run_process({**spec, "crash": "none"}) == 0
    records = _records(record)
    texts = [r["text"] for r in records]
    assert texts.count(f"[{code}] msg-1") == copies_of_first
    assert texts.count(f"[{code}] msg-2") == 1
    assert [t for i, t in enumerate(texts) if t not in texts[:i]] == [
        f"[{code}] msg-1", f"[{code}] msg-2"]  # order kept
    assert all(r["to"] == "conf-sara" and r["case"] == code for r in records)
    if copies_of_first == 2:
        assert records[0]["key"] == records[1]["key"]  # same stable ref both times
    handled, pending, bodies = await _state(url, tmp_path)
    assert (handled - handled_before, pending, bodies) == (2, 0, 0)


# ------------------------------------------------------ duplicate inbound


async def test_duplicate_event_has_its_effect_once(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    sara.clear()
    await emp.say("only once", event_id="dup-1")
    await emp.say("only once", event_id="dup-1")
    assert sara.texts == [f"[{code}] only once"]


async def test_concurrent_duplicate_events_have_their_effect_once(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    sara.clear()
    inbound = Inbound(MEMORY, emp.id, emp.id, "race-1", text="raced")
    results = await asyncio.gather(*(harness.core.handle(inbound) for _ in range(4)),
                                   return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    await harness.worker.drain()
    assert sara.texts == [f"[{code}] raced"]


# ------------------------------------------------------------------ delivery


async def test_retry_after_is_honoured_and_order_kept(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    sara.clear()
    harness.channel.failures.append(RetryLater("flood", after=30))
    await emp.say("first")
    await emp.say("second")
    await emp.say("third")
    assert sara.texts == []  # the head is waiting: nothing overtakes it
    harness.clock.current += timedelta(seconds=29)
    await harness.worker.drain()
    assert sara.texts == []
    harness.clock.current += timedelta(seconds=2)
    await harness.worker.drain()
    assert sara.texts == [f"[{code}] first", f"[{code}] second", f"[{code}] third"]
    rows = await outbox_rows(harness)
    assert all(r.status == "sent" and r.payload_enc is None and r.recipient_enc is None
               for r in rows)


async def test_other_recipients_are_not_held_up(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    e1 = harness.person("emp-1")
    await open_case(e1, sara)
    e1.clear()
    harness.channel.failures.append(RetryLater("flood", after=60))
    await sara.say("to one")  # fails, waits a minute
    e2 = harness.person("emp-2")
    await e2.say("/start")
    assert e2.texts and not e1.texts
    harness.clock.current += timedelta(seconds=61)
    await harness.worker.drain()
    assert e1.texts == ["Sara: to one"]


async def test_transient_failures_back_off_exponentially(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    await open_case(emp, sara)
    harness.channel.failures.extend([ConnectionError("down")] * 3)
    await emp.say("patience")
    waits = []
    for _ in range(3):
        [row] = [r for r in await outbox_rows(harness) if r.status == "pending"]
        waits.append((row.next_attempt_at - harness.clock.now()).total_seconds())
        harness.clock.current = row.next_attempt_at
        await harness.worker.drain()
    assert waits[0] < waits[1] < waits[2]
    assert "patience" in sara.last


async def test_unreachable_employee_marks_case_and_tells_confidant(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    harness.channel.unreachable.add(emp.id)
    await sara.say("are you there?")
    await sara.say("second try")
    assert f"Case {code}: the employee can no longer be reached" in sara.last
    async with harness.store.tx() as tx:
        case = await tx.cases.by_code(code)
    assert case is not None and case.unreachable
    rows = [r for r in await outbox_rows(harness) if r.status == "failed"]
    assert len(rows) == 2 and all(r.payload_enc is None for r in rows)
    assert all(r.status != "pending" for r in await outbox_rows(harness))


async def test_unreachable_confidant_tells_employee(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    await open_case(emp, sara)
    harness.channel.unreachable.add(sara.id)
    await emp.say("hello?")
    assert "Your confidant can't be reached right now" in emp.last


async def test_delivered_bodies_are_deleted_and_purged_later(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    await open_case(emp, sara)
    await emp.say("private words")
    rows = await outbox_rows(harness)
    assert rows and all(r.status == "sent" for r in rows)
    assert all(r.payload_enc is None and r.recipient_enc is None for r in rows)
    harness.clock.current += timedelta(days=2)
    await harness.tick()
    assert [r for r in await outbox_rows(harness) if r.status == "sent"] == []
