"""The outbox's queries stay indexed with only the indexes 0006 leaves.

The full (recipient, seq) index is gone; each question about one person's
queue must still be answered from an index (the partial pending one, or
status and time), never by reading the whole outbox, which holds a day of
delivered history.  SQLite's plan is read with ``EXPLAIN QUERY PLAN``, with
the statements and parameters the store really sends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from domain.ids import ChannelName
from domain.messages import ChannelAddress, Outbound
from store.crypto import generate_master_key
from store.migrate import upgrade
from store.outbox import OutboxRepo
from store.store import Store

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ANN = ChannelAddress(ChannelName("memory"), "ann")
BEN = ChannelAddress(ChannelName("memory"), "ben")


async def _plans(tmp_path: Path, query: Callable[[OutboxRepo, bytes], Awaitable[Any]]
                 ) -> list[str]:
    """The plan steps of every statement ``query`` sends, on a store where
    two people have delivered and pending messages."""
    tmp_path.mkdir()
    url = f"sqlite+aiosqlite:///{tmp_path / 'plans.db'}"
    await upgrade(url)
    store = Store.open(url, generate_master_key())
    captured: list[tuple[str, Any]] = []
    try:
        async with store.tx() as tx:
            key = await tx.system_key()
            for i in range(20):
                await tx.outbox.enqueue(Outbound(to=ANN if i % 2 else BEN, text=f"m{i}"),
                                        key, None, NOW)
            for due in (await tx.outbox.due(NOW))[:1]:
                await tx.outbox.mark_sent(due.seq, NOW)
            ann = tx.vault.address_hash(ANN.channel, ANN.address)

        def capture(conn: Any, cursor: Any, sql: str, params: Any, *rest: Any) -> None:
            captured.append((sql, params))

        event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
        try:
            async with store.tx() as tx:
                await query(tx.outbox, ann)
                await tx.session.rollback()
        finally:
            event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
        steps: list[str] = []
        async with store.engine.connect() as conn:
            for sql, params in captured:
                if sql.lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE"):
                    rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                    steps += [str(r[-1]) for r in rows.all()]
    finally:
        await store.close()
    assert steps, "the query sent no statement"
    return steps


def _outbox_steps(steps: list[str]) -> list[str]:
    return [s for s in steps if s.split()[1:2] in (["outbox"], ["outbox_1"])]


async def test_queue_checks_read_each_person_from_the_pending_index(tmp_path: Path) -> None:
    """The delivery pass's head-of-queue check and what waits behind the
    heads: one person's pending rows, not everyone's."""
    checks: dict[str, Callable[[OutboxRepo, bytes], Awaitable[Any]]] = {
        "waiting_behind": lambda o, r: o.waiting_behind([(r, 1), (b"x" * 32, 2)]),
        "due": lambda o, r: o.due(NOW),
    }
    for name, query in checks.items():
        steps = await _plans(tmp_path / name, query)
        assert any("ix_outbox_pending_recipient_seq" in s for s in steps), (name, steps)
        assert all(s.startswith("SEARCH") for s in _outbox_steps(steps)), (name, steps)


async def test_every_other_outbox_query_stays_indexed(tmp_path: Path) -> None:
    """Giving up on a person, held messages released or counted, the next
    wake-up, the purge: each reads an index range (of pending rows, or of
    delivered ones for the purge), never the whole table."""
    checks: dict[str, Callable[[OutboxRepo, bytes], Awaitable[Any]]] = {
        "fail_pending_for": lambda o, r: o.fail_pending_for(r, NOW),
        "release": lambda o, r: o.release(r, NOW),
        "held_for": lambda o, r: o.held_for(r, NOW),
        "next_due_at": lambda o, r: o.next_due_at(),
        "pending_count": lambda o, r: o.pending_count(),
        "purge_delivered": lambda o, r: o.purge_delivered(NOW - timedelta(days=1)),
    }
    for name, query in checks.items():
        steps = await _plans(tmp_path / name, query)
        assert _outbox_steps(steps), (name, steps)
        assert all(s.startswith("SEARCH") for s in _outbox_steps(steps)), (name, steps)
