"""SQLite's log is folded into the database file off the event loop
(`store.checkpoint`): the bot's commits never checkpoint, the file still
receives every commit within about a second, the log stays small, and
nothing is left running or lying around after the store closes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from store.checkpoint import CHECKPOINT_EVERY
from store.crypto import generate_master_key
from store.migrate import upgrade
from store.store import Store


def _checkpointers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"]


def _in_main_file(path: Path, key: str) -> bool:
    """Whether the row is in the database file itself (``immutable`` reads
    the file alone, ignoring the log)."""
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return db.execute("SELECT count(*) FROM channel_state WHERE key = ?",
                          (key,)).fetchone()[0] == 1
    finally:
        db.close()


async def test_commits_reach_the_file_off_the_loop_and_the_log_stays_small(
        tmp_path: Path) -> None:
    path = tmp_path / "confidant.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    before = len(_checkpointers())
    store = Store.open(url, generate_master_key())
    state = store.channel_state("web")
    try:
        async with store.tx() as tx:
            assert (await tx.session.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
        assert len(_checkpointers()) == before + 1
        wal = path.with_name(path.name + "-wal")
        sizes = []
        for burst in range(4):
            for i in range(300):
                await state.set(f"k{burst}-{i}", b"x" * 200)
            await asyncio.sleep(CHECKPOINT_EVERY * 1.5)
            assert _in_main_file(path, f"k{burst}-299"), "the last commit never reached the file"
            sizes.append(wal.stat().st_size)
        # The log starts over after each complete checkpoint: it does not grow burst by burst.
        assert max(sizes) < 4 * 1024 * 1024 and sizes[-1] <= sizes[0] * 2, sizes
    finally:
        await store.close()
    assert len(_checkpointers()) == before, "the checkpoint thread outlived the store"
    assert not path.with_name(path.name + "-wal").exists() or \
        path.with_name(path.name + "-wal").stat().st_size == 0
    assert _in_main_file(path, "k3-299")
