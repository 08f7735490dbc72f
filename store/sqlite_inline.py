"""SQLite for SQLAlchemy's asyncio extension, run on the event loop's own thread.

Why: aiosqlite runs every call on a worker thread, and SQLAlchemy's adapter
makes three or four such calls per statement (open a cursor, execute, fetch,
close).  Each is a thread hop: a queue put, a wake-up of the worker, a
``call_soon_threadsafe`` back and a turn of the loop.  Measured on the bot's
hot path (``bench/hotpath.py``) the hops cost several times what SQLite does:
a relay's five statements and two commits took milliseconds of CPU, most of
it handing work between threads.  SQLite itself answers these statements in
microseconds (WAL, ``synchronous = NORMAL``: a commit writes the WAL without
syncing it), so running them where they are asked for is cheaper than any
hand-over.

What must not happen on the loop's thread is *waiting*: SQLite's own busy
handler would sleep inside the call when another process holds the write
lock (an admin command, a backup), freezing every channel.  So the
connection's busy timeout is zero and this module waits instead, with
``asyncio.sleep``, for as long as `store.db.SQLITE_BUSY_TIMEOUT_MS` allows.
Transactions begin with ``BEGIN IMMEDIATE``: the write lock is taken by the
statement that opens the transaction, before it has read anything, so that
statement can simply be tried again after a wait (a deferred transaction
that read first could only be rolled back).  Python's ``sqlite3`` issues
that ``BEGIN`` right before a transaction's first write, exactly where it
issued the deferred one, so nothing else changes: reads before the first
write, as before, run on their own.

The objects below follow the asyncio DBAPI protocols SQLAlchemy declares
(``sqlalchemy.connectors.asyncio.AsyncIODBAPIConnection`` and ``…Cursor``)
and are handed to its aiosqlite dialect through the public
``async_creator`` argument of ``create_async_engine``.  That dialect also
looks at its driver connection's ``_connection`` attribute (truthy while
open) before commit and rollback, and calls ``stop()`` to terminate; both
are provided.  Changing the isolation level through SQLAlchemy (e.g. the
``AUTOCOMMIT`` execution option) would reach into aiosqlite's internals and
is not supported here; nothing in the bot uses it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_BUSY_FIRST_WAIT = 0.002
_BUSY_LONGEST_WAIT = 0.1


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class InlineConnection:
    """One ``sqlite3`` connection, used from the event loop's thread."""

    def __init__(self, db: sqlite3.Connection, patience: Callable[[], float]) -> None:
        self._db: sqlite3.Connection | None = db
        self._patience = patience

    @classmethod
    def open(cls, path: str | Path, patience: Callable[[], float]) -> InlineConnection:
        """``patience()`` is how long, in seconds, a statement may wait for a lock."""
        db = sqlite3.connect(path, timeout=0, isolation_level="IMMEDIATE",
                             check_same_thread=False)
        return cls(db, patience)

    @property
    def _connection(self) -> sqlite3.Connection | None:
        """The open ``sqlite3`` connection (None once closed), as SQLAlchemy's
        aiosqlite dialect expects of its driver connection."""
        return self._db

    @property
    def raw(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection itself, for the plain statements of
        `store.driver` (same connection, same transaction)."""
        if self._db is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._db

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)``; if the database is locked before the call opened
        a transaction, wait without blocking the loop and try again."""
        deadline: float | None = None
        wait = _BUSY_FIRST_WAIT
        while True:
            try:
                return fn(*args)
            except sqlite3.OperationalError as exc:
                db = self._db
                if not _is_busy(exc) or db is None or db.in_transaction:
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._patience()
                if now >= deadline:
                    raise
                await asyncio.sleep(min(wait, max(0.0, deadline - now)))
                wait = min(wait * 2, _BUSY_LONGEST_WAIT)

    def cursor(self) -> InlineCursor:
        return InlineCursor(self, self.raw.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        cur = self.cursor()
        await cur.execute(sql, parameters)
        return cur

    async def commit(self) -> None:
        await self.call(self.raw.commit)

    async def rollback(self) -> None:
        self.raw.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.raw.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self.raw.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._db is not None and self._db.in_transaction

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate; also the garbage collector's way)."""
        db, self._db = self._db, None
        if db is not None:
            db.close()


class InlineCursor:
    """A ``sqlite3`` cursor with the awaitable methods SQLAlchemy calls."""

    arraysize = 1

    def __init__(self, conn: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._conn = conn
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    async def execute(self, operation: str, parameters: Any = None) -> InlineCursor:
        if parameters is None:
            await self._conn.call(self._cursor.execute, operation)
        else:
            await self._conn.call(self._cursor.execute, operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Any) -> InlineCursor:
        await self._conn.call(self._cursor.executemany, operation, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        return None
