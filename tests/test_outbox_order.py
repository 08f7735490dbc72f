"""Send order across concurrent transactions on the real PostgreSQL server.

Two transactions write a message for the same person: the older one draws
its ``seq`` first but is still busy when the younger one is ready to commit,
and a delivery pass runs in between.  Without the per-recipient lock the
pass finds the younger row alone at the head of the queue and sends it
first; with it, the younger writer waits for the older commit.  (SQLite runs
one transaction at a time: see `OutboxRepo._hold_send_order`.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest_asyncio
from sqlalchemy import text

from domain.messages import ChannelAddress, Outbound
from tests.support.memory_channel import MEMORY, Harness, make_harness
from tests.support.postgres import PostgresServer

ANN = ChannelAddress(MEMORY, "ann")
BEN = ChannelAddress(MEMORY, "ben")


@pytest_asyncio.fixture
async def pg_harness(postgres_server: PostgresServer, tmp_path: Path) -> AsyncIterator[Harness]:
    """The whole core and delivery worker on a fresh PostgreSQL database."""
    name = await postgres_server.create_database()
    h = await make_harness(postgres_server.url(name), tmp_path)
    try:
        async with h.store.tx() as tx:
            await tx.system_key()  # made once here, not by two racing writers
        yield h
    finally:
        await h.store.close()
        await postgres_server.drop_database(name)


async def _write(h: Harness, now: datetime, *outs: Outbound) -> None:
    """What `Core._flush` does with an event's messages."""
    async with h.store.tx() as tx:
        key = await tx.system_key()
        await tx.outbox.hold_send_order(out.to for out in outs)
        for out in outs:
            await tx.outbox.enqueue(out, key, None, now)


async def _waits_for_a_lock(h: Harness) -> bool:
    async with h.store.engine.connect() as conn:
        waiting = await conn.scalar(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))
    return bool(waiting)


async def _until_done_or_waiting(h: Harness, task: asyncio.Task[None]) -> None:
    """Until the younger writer has committed or is waiting for the older one."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    while not task.done() and not await _waits_for_a_lock(h):
        assert loop.time() < end, "the younger writer neither committed nor waited"
        await asyncio.sleep(0.02)


async def test_a_younger_row_never_goes_out_before_an_older_one(pg_harness: Harness) -> None:
    h = pg_harness
    now = h.clock.now()
    older_written = asyncio.Event()
    older_may_commit = asyncio.Event()

    async def older() -> None:
        async with h.store.tx() as tx:
            key = await tx.system_key()
            await tx.outbox.hold_send_order([ANN])
            await tx.outbox.enqueue(Outbound(ANN, "first"), key, None, now)
            older_written.set()
            await older_may_commit.wait()  # still handling its event

    async def younger() -> None:
        await older_written.wait()
        await _write(h, now, Outbound(BEN, "for Ben"), Outbound(ANN, "second"))

    first = asyncio.create_task(older())
    second = asyncio.create_task(younger())
    await older_written.wait()
    await _until_done_or_waiting(h, second)
    await h.worker.deliver_due()  # a delivery pass while the older row is not yet visible
    older_may_commit.set()
    await asyncio.gather(first, second)
    await h.worker.drain()
    assert [o.text for o in h.channel.received["ann"]] == ["first", "second"]
    assert [o.text for o in h.channel.received["ben"]] == ["for Ben"]


async def test_writers_locking_the_same_people_in_any_order_all_commit(
        pg_harness: Harness) -> None:
    """Events naming the same recipients in opposite orders take their locks
    in one order: none waits on another in a circle (which PostgreSQL would
    break by failing one of them)."""
    h = pg_harness
    now = h.clock.now()
    people = [ChannelAddress(MEMORY, f"p{i}") for i in range(6)]
    writes = [
        _write(h, now, *[Outbound(to, f"{n}") for to in (people if n % 2 else people[::-1])])
        for n in range(12)
    ]
    await asyncio.gather(*writes)
    await h.worker.drain()
    for to in people:
        assert sorted(o.text for o in h.channel.received[to.address]) \
            == sorted(str(n) for n in range(12))
