"""Ways of keeping DESIGN's outbox promise, side by side: the update recorded
as handled and the sealed reply written to an outbox row, committed before
the send; the row marked sent afterwards.  Each variant is one named way of
reaching the database on the mandated stack (SQLAlchemy 2 async on SQLite or
asyncpg), so the benchmark can show what each change buys.

On SQLite the first five run on aiosqlite, as the store did before
`store.sqlite_inline` (every call a hop to aiosqlite's worker thread); the
rest on the store's own engine (`store.db.create_engine`: SQLite on the
event loop's thread).

* ``engine``: the original durable echo — ``engine.begin()`` per
  transaction (pool checkout, Core statements built per call, commit, pool
  reset), two transactions per message (record, then mark sent).
* ``session``: an ORM ``AsyncSession`` per transaction, the shape of
  Confidant's ``store.tx()``; still two transactions.
* ``conn``: one long-lived ``AsyncConnection``, Core statements built once
  (values passed as parameters), two commits.
* ``conn-1commit``: as ``conn``, but marking sent is folded into the next
  message's transaction (or an idle flush): one commit per message.
* ``driver-1commit``: the driver connection under SQLAlchemy's pool
  (aiosqlite / asyncpg, through ``get_raw_connection()``) with plain SQL:
  one await per statement, one commit.
* ``inline-session``: ``session`` on the store's engine: no thread hop left,
  SQLAlchemy's ORM and Core per statement remain.
* ``inline-conn``: ``conn-1commit`` on the store's engine.
* ``thread-onecall`` (SQLite only): the whole transaction as plain SQL in one
  hop to a thread of our own that owns a ``sqlite3`` connection — the
  "one hop per transaction" design, for comparison with no hop at all.
* ``onecall``: the whole transaction as plain SQL in one call on the store's
  own ``sqlite3`` connection (`store.sqlite_inline`, reached through the
  public ``get_raw_connection()``); on PostgreSQL one statement
  (data-modifying CTEs, implicit transaction).  One commit per message.
* ``batch``: ``onecall`` for every update of a ``getUpdates`` answer at once
  (on PostgreSQL one statement over ``unnest`` arrays).

Deferred marks (``*-1commit``, ``onecall``, ``batch``) keep the promise: a
row is committed before its send; only the *sent* mark waits, so a crash
between the send and the mark re-sends (as DESIGN allows on Telegram), and
nothing is lost.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from store.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    _on_sqlite_connect,
    create_engine,
    is_sqlite,
    session_factory,
)
from store.sqlite_inline import InlineConnection

META = MetaData()
HANDLED = Table("handled", META, Column("update_id", BigInteger, primary_key=True))
OUTBOX = Table("outbox", META,
               Column("seq", Integer, primary_key=True, autoincrement=True),
               Column("update_id", BigInteger, nullable=False),
               Column("chat", BigInteger, nullable=False),
               Column("payload", LargeBinary),
               Column("status", String(8), nullable=False))

FLUSH_SECONDS = 0.2
"""How long a sent mark may wait for the next transaction before it gets its own."""

Item = tuple[int, int, bytes]
"""(update id, chat, sealed payload) of one message to record."""


def db_url(target: str) -> str:
    """A SQLAlchemy URL: a bare path means a SQLite file."""
    return target if "://" in target else f"sqlite+aiosqlite:///{target}"


def aiosqlite_engine(url: str) -> AsyncEngine:
    """The store's SQLite engine as it was before `store.sqlite_inline`:
    aiosqlite (a worker thread per connection, a hop per call), the same
    pragmas, SQLite's own busy timeout, one pooled connection."""
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                                 pool_size=1, max_overflow=0)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    return engine


class Outbox:
    """Base: owns the engine; subclasses choose how statements reach it."""

    name = "?"
    deferred_marks = False
    on_aiosqlite = False
    """On SQLite, run on `aiosqlite_engine` instead of the store's engine."""
    backends = frozenset({"sqlite", "postgresql"})

    def __init__(self, url: str) -> None:
        sqlite = is_sqlite(url)
        self.engine: AsyncEngine = (aiosqlite_engine(url) if sqlite and self.on_aiosqlite
                                    else create_engine(url))
        self.sqlite = sqlite
        self._marks: list[int] = []
        self._flush: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self.recovered: list[tuple[int, int, int, bytes]] = []
        """Rows a previous process committed but did not mark sent (see `open`)."""

    async def open(self) -> None:
        """Create the two tables (idempotent) and read what a crash left pending
        (before a variant takes the pool's one SQLite connection for itself)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(META.create_all)
        self.recovered = await self.pending()

    async def record(self, update_id: int, chat: int, payload: bytes) -> int | None:
        """Commit the update as handled with its outbox row; the row's seq, or
        None if this update was handled before (nothing to send)."""
        return (await self.record_many([(update_id, chat, payload)]))[0]

    async def record_many(self, items: Sequence[Item]) -> list[int | None]:
        """`record` for several updates in one transaction."""
        raise NotImplementedError

    async def pending(self) -> list[tuple[int, int, int, bytes]]:
        """(seq, update id, chat, payload) of every row not yet marked sent, in
        order: what a restart must deliver (a crash between commit and send)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(OUTBOX.c.seq, OUTBOX.c.update_id, OUTBOX.c.chat, OUTBOX.c.payload)
                .where(OUTBOX.c.status == "pending").order_by(OUTBOX.c.seq))
            return [(int(r[0]), int(r[1]), int(r[2]), bytes(r[3])) for r in rows.all()]

    async def sent(self, seq: int) -> None:
        """The message of ``seq`` went out: mark it and drop its body."""
        if not self.deferred_marks:
            await self._mark_now([seq])
            return
        self._marks.append(seq)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._idle_flush)

    def _take_marks(self) -> list[int]:
        """The marks waiting for a transaction (they ride along with this one)."""
        marks, self._marks = self._marks, []
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        return marks

    def _idle_flush(self) -> None:
        self._flush = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        """Commit the waiting sent marks on their own."""
        marks = self._take_marks()
        if marks:
            await self._mark_now(marks)

    async def _mark_now(self, seqs: list[int]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Flush the marks, release connections."""
        await self.flush()
        await asyncio.gather(*self._flushing)
        await self.engine.dispose()

    # Core statements shared by the SQLAlchemy variants.
    def _insert_handled(self) -> Any:
        ins = sqlite_insert(HANDLED) if self.sqlite else pg_insert(HANDLED)
        return ins.on_conflict_do_nothing()

    @staticmethod
    def _mark_stmt() -> Any:
        return (update(OUTBOX).where(OUTBOX.c.seq.in_(bindparam("seqs", expanding=True)))
                .values(status="sent", payload=None))

    async def _core_tx(self, conn: AsyncConnection, items: Sequence[Item],
                       marks: list[int]) -> list[int | None]:
        """The statements of one recording transaction on a SQLAlchemy connection,
        each built for the call (as the original durable echo and Confidant do)."""
        if marks:
            await conn.execute(self._mark_stmt(), {"seqs": marks})
        out: list[int | None] = []
        for update_id, chat, payload in items:
            seen = await conn.execute(self._insert_handled().values(update_id=update_id))
            if seen.rowcount == 0:
                out.append(None)
                continue
            queued = await conn.execute(OUTBOX.insert().values(
                update_id=update_id, chat=chat, payload=payload, status="pending"))
            key = queued.inserted_primary_key
            assert key is not None
            out.append(int(key[0]))
        return out

class EngineOutbox(Outbox):
    """``engine.begin()`` per transaction: the original durable echo."""

    name = "engine"
    on_aiosqlite = True

    async def record_many(self, items: Sequence[Item]) -> list[int | None]:
        async with self.engine.begin() as conn:
            return await self._core_tx(conn, items, [])

    async def _mark_now(self, seqs: list[int]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(self._mark_stmt(), {"seqs": seqs})


class SessionOutbox(Outbox):
    """An ORM session per transaction, as Confidant's ``store.tx()``."""

    name = "session"
    on_aiosqlite = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._sessions = session_factory(self.engine)

    async def record_many(self, items: Sequence[Item]) -> list[int | None]:
        async with self._sessions() as session, session.begin():
            conn = await session.connection()
            return await self._core_tx(conn, items, [])

    async def _mark_now(self, seqs: list[int]) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(self._mark_stmt(), {"seqs": seqs})


class ConnOutbox(Outbox):
    """One long-lived connection; Core statements; a commit per transaction."""

    name = "conn"
    on_aiosqlite = True

    async def open(self) -> None:
        await super().open()
        self._conn = await self.engine.connect()
        self._lock = asyncio.Lock()
        self._handled, self._queue, self._mark = (
            self._insert_handled(), OUTBOX.insert(), self._mark_stmt())

    async def record_many(self, items: Sequence[Item]) -> list[int | None]:
        async with self._lock:
            marks = self._take_marks()
            async with self._conn.begin():
                return await self._prebuilt_tx(self._conn, items, marks)

    async def _prebuilt_tx(self, conn: AsyncConnection, items: Sequence[Item],
                           marks: list[int]) -> list[int | None]:
        """The same transaction with statements built once, values as parameters."""
        if marks:
            await conn.execute(self._mark, {"seqs": marks})
        out: list[int | None] = []
        for update_id, chat, payload in items:
            seen = await conn.execute(self._handled, {"update_id": update_id})
            if seen.rowcount == 0:
                out.append(None)
                continue
            queued = await conn.execute(self._queue, {
                "update_id": update_id, "chat": chat, "payload": payload, "status": "pending"})
            key = queued.inserted_primary_key
            assert key is not None
            out.append(int(key[0]))
        return out

    async def _mark_now(self, seqs: list[int]) -> None:
        async with self._lock, self._conn.begin():
            await self._conn.execute(self._mark, {"seqs": seqs})

    async def close(self) -> None:
        await self.flush()
        await asyncio.gather(*self._flushing)
        await self._conn.close()
        await self.engine.dispose()


class ConnOneCommit(ConnOutbox):
    """`ConnOutbox` with the sent mark folded into the next transaction."""

    name = "conn-1commit"
    deferred_marks = True


_SQL_MARK = "UPDATE outbox SET status = 'sent', payload = NULL WHERE seq IN ({})"
_SQLITE_HANDLED = "INSERT INTO handled (update_id) VALUES (?) ON CONFLICT DO NOTHING"
_SQLITE_QUEUE = ("INSERT INTO outbox (update_id, chat, payload, status) "
                 "VALUES (?, ?, ?, 'pending')")
_PG_HANDLED = "INSERT INTO handled (update_id) VALUES ($1) ON CONFLICT DO NOTHING"
_PG_QUEUE = ("INSERT INTO outbox (update_id, chat, payload, status) "
             "VALUES ($1, $2, $3, 'pending') RETURNING seq")
_PG_MARK = "UPDATE outbox SET status = 'sent', payload = NULL WHERE seq = ANY($1::int[])"
_PG_ONE = (
    "WITH m AS (UPDATE outbox SET status = 'sent', payload = NULL WHERE seq = ANY($1::int[])), "
    "h AS (INSERT INTO handled (update_id) VALUES ($2) ON CONFLICT DO NOTHING "
    "RETURNING update_id) "
    "INSERT INTO outbox (update_id, chat, payload, status) "
    "SELECT update_id, $3, $4, 'pending' FROM h RETURNING seq")

_PG_MANY = (
    "WITH m AS (UPDATE outbox SET status = 'sent', payload = NULL WHERE seq = ANY($1::int[])), "
    "i AS (SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::bytea[]) "
    "WITH ORDINALITY AS i(update_id, chat, payload, n)), "
    "h AS (INSERT INTO handled (update_id) SELECT update_id FROM i ON CONFLICT DO NOTHING "
    "RETURNING update_id) "
    "INSERT INTO outbox (update_id, chat, payload, status) "
    "SELECT i.update_id, i.chat, i.payload, 'pending' FROM i JOIN h USING (update_id) "
    "ORDER BY i.n RETURNING seq, update_id")


def _sqlite_tx(db: sqlite3.Connection, items: Sequence[Item], marks: list[int]
               ) -> list[int | None]:
    """One recording transaction with the stdlib driver (runs on aiosqlite's thread)."""
    try:
        if marks:
            db.execute(_SQL_MARK.format(",".join("?" * len(marks))), marks)
        out: list[int | None] = []
        for update_id, chat, payload in items:
            if db.execute(_SQLITE_HANDLED, (update_id,)).rowcount == 0:
                out.append(None)
                continue
            out.append(db.execute(_SQLITE_QUEUE, (update_id, chat, payload)).lastrowid)
        db.commit()
        return out
    except BaseException:
        db.rollback()
        raise


class DriverOneCommit(Outbox):
    """The driver connection under SQLAlchemy's pool, one await per statement."""

    name = "driver-1commit"
    deferred_marks = True
    on_aiosqlite = True

    async def open(self) -> None:
        await super().open()
        self._sa = await self.engine.connect()
        raw = await self._sa.get_raw_connection()
        self.driver: Any = raw.driver_connection
        self._lock = asyncio.Lock()

    async def record_many(self, items: Sequence[Item]) -> list[int | None]:
        async with self._lock:
            marks = self._take_marks()
            return await (self._sqlite(items, marks) if self.sqlite else self._pg(items, marks))

    async def _sqlite(self, items: Sequence[Item], marks: list[int]) -> list[int | None]:
        db = self.driver
        try:
            if marks:
                await db.execute(_SQL_MARK.format(",".join("?" * len(marks))), marks)
            out: list[int | None] = []
            for update_id, chat, payload in items:
                seen = await db.execute(_SQLITE_HANDLED, (update_id,))
                if seen.rowcount == 0:
                    out.append(None)
                    continue
                queued = await db.execute(_SQLITE_QUEUE, (update_id, chat, payload))
                out.append(queued.lastrowid)
            await db.commit()
            return out
        except BaseException:
            await db.rollback()
            raise

    async def _pg(self, items: Sequence[Item], marks: list[int]) -> list[int | None]:
        db = self.driver
        async with db.transaction():
            if marks:
                await db.execute(_PG_MARK, marks)
            out: list[int | None] = []
            for update_id, chat, payload in items:
                status = await db.execute(_PG_HANDLED, update_id)
                if status.endswith(" 0"):
                    out.append(None)
                    continue
                out.append(await db.fetchval(_PG_QUEUE, update_id, chat, payload))
            return out

    async def _mark_now(self, seqs: list[int]) -> None:
        async with self._lock:
            if self.sqlite:
                await self.driver.execute(_SQL_MARK.format(",".join("?" * len(seqs))), seqs)
                await self.driver.commit()
            else:
                await self.driver.execute(_PG_MARK, seqs)

    async def close(self) -> None:
        await self.flush()
        await asyncio.gather(*self._flushing)
        await self._sa.close()
        await self.engine.dispose()


class InlineSession(SessionOutbox):
    """`SessionOutbox` on the store's engine (no thread hop)."""

    name = "inline-session"
    on_aiosqlite = False


class InlineConn(ConnOneCommit):
    """`ConnOneCommit` on the store's engine (no thread hop)."""

    name = "inline-conn"
    on_aiosqlite = False


class ThreadOneCall(Outbox):
    """The transaction in one hop to a thread of our own with its ``sqlite3``
    connection (`ThreadPoolExecutor` of one, so the connection never changes
    threads)."""

    name = "thread-onecall"
    deferred_marks = True
    backends = frozenset({"sqlite"})

    async def open(self) -> None:
        await super().open()
        path = make_url(str(self.engine.url)).database
        assert path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        self._lock = asyncio.Lock()
        self._db = await asyncio.get_running_loop().run_in_executor(
            self._thread, self._connect, Path(path))

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                             check_same_thread=False)
        _on_sqlite_connect(db, None)
        return db

    async def record_many(self, items: Sequence[Item]) -> list[int | None]:
        async with self._lock:
            marks = self._take_marks()
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, _sqlite_tx, self._db, items, marks)

    async def _mark_now(self, seqs: list[int]) -> None:
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(
                self._thread, _sqlite_tx, self._db, [], seqs)

    async def close(self) -> None:
        await self.flush()
        await asyncio.gather(*self._flushing)
        await asyncio.get_running_loop().run_in_executor(self._thread, self._db.close)
        self._thread.shutdown()
        await self.engine.dispose()


class OneCall(DriverOneCommit):
    """The whole transaction in one call to the driver: on SQLite plain SQL
    on the store's own ``sqlite3`` connection, on the event loop's thread."""

    name = "onecall"
    on_aiosqlite = False

    async def _sqlite(self, items: Sequence[Item], marks: list[int]) -> list[int | None]:
        db = self.driver
        assert isinstance(db, InlineConnection)
        return await db.call(_sqlite_tx, db.raw, items, marks)

    async def _pg(self, items: Sequence[Item], marks: list[int]) -> list[int | None]:
        db = self.driver
        if len(items) != 1:
            return await super()._pg(items, marks)
        update_id, chat, payload = items[0]
        seq = await db.fetchval(_PG_ONE, marks, update_id, chat, payload)
        return [seq]


class Batch(OneCall):
    """`OneCall` used for a whole ``getUpdates`` answer (see `bench.durable_echo`)."""

    name = "batch"

    async def _pg(self, items: Sequence[Item], marks: list[int]) -> list[int | None]:
        rows = await self.driver.fetch(_PG_MANY, marks, [i[0] for i in items],
                                       [i[1] for i in items], [i[2] for i in items])
        seqs = {int(r["update_id"]): int(r["seq"]) for r in rows}
        return [seqs.get(update_id) for update_id, _, _ in items]


VARIANTS: dict[str, type[Outbox]] = {
    cls.name: cls for cls in (EngineOutbox, SessionOutbox, ConnOutbox, ConnOneCommit,
                              DriverOneCommit, InlineSession, InlineConn, ThreadOneCall,
                              OneCall, Batch)}
"""Every variant by name, in the order the report lists them."""

CHOSEN = "onecall"
"""The variant the goals are measured with (and the crash test kills): one
transaction per update, handled by python-telegram-bot one at a time exactly
as the bare echo and Confidant handle them.  ``batch`` is cheaper still, but
mostly by skipping python-telegram-bot's dispatch for all but the first
update of an answer, which is not what durability costs."""
