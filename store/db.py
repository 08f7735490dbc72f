"""Database engine and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg).

One place decides connection settings, so every part of the bot (and every
test) talks to the database the same way, and one helper decides which
errors are worth retrying.
"""

from __future__ import annotations

import sqlite3
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from store.checkpoint import Checkpointer
from store.sqlite_inline import InlineConnection

SQLITE_BUSY_TIMEOUT_MS = 10_000

# SQLSTATE codes after which the same transaction, tried again, can succeed.
_TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "53300",  # too_many_connections
        "53400",  # configuration_limit_exceeded
    }
)
_TRANSIENT_SQLITE_WORDS = ("database is locked", "database table is locked", "database is busy")


def _busy_patience() -> float:
    """How long a statement of the bot waits for SQLite's write lock, in seconds."""
    return SQLITE_BUSY_TIMEOUT_MS / 1000


class UnsupportedDatabaseError(ValueError):
    """The store URL names a database the bot does not support."""


def _sqlite_file(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any, *,
                       busy_timeout_ms: int | None = None, autocheckpoint: bool = True) -> None:
    """Apply the per-connection pragmas that make SQLite safe for a busy bot:
    WAL so readers never block the writer, a busy timeout so short lock
    contention waits instead of failing, enforced foreign keys, and
    secure_delete so that erased data does not linger in free pages.

    The bot's own connections wait for locks in asyncio instead of inside
    SQLite (`store.sqlite_inline`): theirs is ``busy_timeout_ms=0``."""
    busy = SQLITE_BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {busy}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # Erased rows and shredded keys are overwritten in the file, not just unlinked.
        cursor.execute("PRAGMA secure_delete = ON")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint = 0")
    finally:
        cursor.close()


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Build the async engine for ``url`` with the settings the bot relies on.

    ``sqlite+aiosqlite:///path`` creates the file's folder; plain ``sqlite:``
    and ``postgresql:`` URLs are given their async driver, so a config file can
    be written either way."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername != "sqlite+aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
        file = _sqlite_file(parsed)
        if file is not None:
            file.expanduser().parent.mkdir(parents=True, exist_ok=True)
        pool: dict[str, Any] = {} if file is None else dict(
            # SQLite writes one transaction at a time anyway: queueing for the
            # one connection in asyncio beats several connections spinning in
            # SQLite's busy handler (measured in bench/).  Nothing in the bot
            # holds two transactions at once; the timeout makes a slip loud.
            pool_size=1,
            max_overflow=0,
            pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000 * 3,
        )
        if file is None:
            engine = _create_async_engine(
                parsed,
                echo=echo,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
            event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
            return engine
        path = file.expanduser()

        async def connect() -> InlineConnection:
            return InlineConnection.open(path, _busy_patience)

        engine = _create_async_engine(parsed, echo=echo, async_creator=connect, **pool)
        checkpointer = Checkpointer(path)

        def connected(dbapi_connection: Any, record: Any) -> None:
            # No checkpoint inside a commit on the loop's thread: see `store.checkpoint`.
            _on_sqlite_connect(dbapi_connection, record, busy_timeout_ms=0, autocheckpoint=False)
            checkpointer.opened()

        def closing(dbapi_connection: Any, record: Any) -> None:
            checkpointer.closed()

        event.listen(engine.sync_engine, "connect", connected)
        event.listen(engine.sync_engine, "close", closing)
        _IN_PLACE.add(engine.sync_engine)
        return engine
    if backend == "postgresql":
        if parsed.drivername != "postgresql+asyncpg":
            parsed = parsed.set(drivername="postgresql+asyncpg")
        return _create_async_engine(
            parsed,
            echo=echo,
            pool_size=5,
            max_overflow=10,
            pool_timeout=30,
            pool_recycle=1800,
            pool_pre_ping=True,
        )
    raise UnsupportedDatabaseError(
        f"unsupported database {backend!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
    )


_IN_PLACE: weakref.WeakSet[Engine] = weakref.WeakSet()


def closes_in_place(engine: AsyncEngine) -> bool:
    """Whether a session of ``engine`` closes without ever waiting.

    On `store.sqlite_inline` closing returns the connection to the pool and
    rolls back a transaction that is already over: calls that run straight
    through on the loop's thread, so no cancellation can land halfway.
    SQLAlchemy's ``async with session`` closes in a task of its own, shielded
    against exactly that, which costs two extra turns of the event loop per
    transaction (measured: about a quarter of an empty transaction's CPU);
    `store.store.Store.tx` skips it where it protects nothing."""
    return engine.sync_engine in _IN_PLACE


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (no lazy reloads
    in async code, where an implicit reload would fail)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def is_sqlite(engine_or_url: AsyncEngine | str) -> bool:
    """Whether the store is SQLite, for the few places that must differ."""
    if isinstance(engine_or_url, AsyncEngine):
        return engine_or_url.dialect.name == "sqlite"
    return make_url(engine_or_url).get_backend_name() == "sqlite"


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same work later can succeed: the database was
    locked, busy, restarting or unreachable, or the transaction lost a
    serialization race.  Constraint violations and bugs are not transient."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_transient_one(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_transient_one(exc: BaseException) -> bool:
    """Classify one exception in a chain (see `is_transient`)."""
    if isinstance(exc, DisconnectionError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        if orig is not None and _is_transient_one(orig):
            return True
        return False
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith("08")
    if isinstance(exc, sqlite3.OperationalError) or type(exc).__name__ == "OperationalError":
        text = str(exc).lower()
        return any(word in text for word in _TRANSIENT_SQLITE_WORDS)
    return isinstance(exc, ConnectionError | TimeoutError)


def is_conflict(exc: BaseException) -> bool:
    """A unique key already taken: e.g. the same platform event handled by two
    racing deliveries, where the loser must simply look again."""
    from sqlalchemy.exc import IntegrityError

    return isinstance(exc, IntegrityError)
