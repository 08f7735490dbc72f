"""A unit of work on the real store, on SQLite and PostgreSQL: cancelled at
any point it rolls back or commits whole, and never keeps its connection.

`store.store.Store.tx` closes SQLite sessions in place instead of in a
shielded task (`store.db.closes_in_place`); these are the behaviours that
shortcut must keep: with SQLite's single pooled connection, a unit of work
that kept its connection would leave every later event waiting for one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from store.crypto import generate_master_key
from store.migrate import upgrade
from store.models import ChannelStateEntry, utcnow
from store.store import Store


async def _store(url: str) -> Store:
    await upgrade(url)
    return Store.open(url, generate_master_key())


async def test_a_unit_of_work_cancelled_midway_leaves_nothing_and_frees_its_connection(
        store_url: str) -> None:
    store = await _store(store_url)
    state = store.channel_state("web")
    inside = asyncio.Event()

    async def write_then_wait() -> None:
        async with store.tx() as tx:
            key_id = await tx.system_key()
            sealed = await tx.vault.seal(key_id, b"never", "channel_state.value_enc", "web/k")
            tx.session.add(ChannelStateEntry(channel="web", key="k", value_enc=sealed,
                                             data_key_id=key_id, updated_at=utcnow()))
            await tx.session.flush()
            inside.set()
            await asyncio.sleep(30)

    try:
        await state.set("before", b"kept")
        task = asyncio.create_task(write_then_wait())
        await asyncio.wait_for(inside.wait(), 10)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=10)
        assert done and task.cancelled()
        # The next unit of work gets a connection at once; the cancelled one left nothing.
        assert await asyncio.wait_for(state.get("k"), 5) is None
        assert await state.get("before") == b"kept"
        await asyncio.wait_for(state.set("k", b"after"), 5)
        assert await state.get("k") == b"after"
    finally:
        await store.close()


async def test_cancellations_at_every_step_keep_the_store_whole(store_url: str) -> None:
    """Tasks cancelled after 0, 1, 2, ... turns of the loop, i.e. before,
    during and after their commit and while closing: whatever a task
    finished is stored, and the store keeps serving."""
    store = await _store(store_url)
    state = store.channel_state("web")

    async def write(i: int) -> None:
        await state.set(f"k{i}", f"v{i}".encode())

    try:
        tasks = []
        for i in range(40):
            task = asyncio.create_task(write(i))
            tasks.append(task)
            for _ in range(i % 8):
                await asyncio.sleep(0)
            task.cancel()
        await asyncio.wait(tasks, timeout=30)
        assert all(t.done() for t in tasks)
        for i, task in enumerate(tasks):
            if not task.cancelled():
                assert await asyncio.wait_for(state.get(f"k{i}"), 5) == f"v{i}".encode()
        await asyncio.wait_for(write(99), 5)
        assert await state.get("k99") == b"v99"
    finally:
        await store.close()


async def test_sqlite_files_close_in_place_and_other_stores_in_a_task(tmp_path: Path) -> None:
    """The shortcut is taken only where closing cannot wait (see
    `store.db.closes_in_place`): a SQLite file on the inline driver, not an
    in-memory database (aiosqlite, a worker thread)."""
    from store.db import closes_in_place, create_engine

    on_file = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    in_memory = create_engine("sqlite+aiosqlite://")
    try:
        assert closes_in_place(on_file)
        assert not closes_in_place(in_memory)
    finally:
        await on_file.dispose()
        await in_memory.dispose()
