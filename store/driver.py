"""The few statements every relayed message runs, given straight to SQLite.

A relay runs the same handful of writes each time: the event recorded as
handled, its outbox row inserted, later the row marked sent and the reply
link kept.  Through SQLAlchemy each costs far more than SQLite needs to run
it (building the statement, its cache key, compiling from the cache,
results): measured on the hot path (``bench/hotpath.py``) SQLAlchemy took
most of a relay's CPU while SQLite itself took a few percent.  So on SQLite
those statements are plain SQL on the session's own ``sqlite3`` connection
(`store.sqlite_inline`), reached through SQLAlchemy's public
``AsyncConnection.get_raw_connection()``: same connection, same transaction,
committed or rolled back with everything else the session did.

Anything the session still holds unwritten is flushed first, so a row the
ORM added in this transaction (a new case, a new key) exists before a plain
statement refers to it.  On PostgreSQL the statements stay SQLAlchemy Core:
asyncpg has no thread to hop to, and SQLAlchemy's adapter opens its
transaction on the first statement it runs itself, which a plain statement
on the driver would bypass (it would commit on its own).

Values are stored as SQLAlchemy stores them (`sqlite_time` is the same
text the ``UTCDateTime`` column writes), so the ORM reads these rows back
unchanged; ``tests/test_store_driver.py`` checks it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import UTCDateTime
from store.sqlite_inline import InlineConnection

_INLINE_KEY = "store.driver.inline"
_SQLITE = sqlite_dialect.dialect()
_SQLITE_TIME: Callable[[datetime], str] = UTCDateTime().dialect_impl(_SQLITE).bind_processor(
    _SQLITE)  # type: ignore[assignment]


def sqlite_time(moment: datetime) -> str:
    """A UTC time as the ``UTCDateTime`` column stores it on SQLite."""
    return _SQLITE_TIME(moment)


class Inline:
    """The session's ``sqlite3`` connection, for plain statements in its transaction."""

    def __init__(self, session: AsyncSession, conn: InlineConnection) -> None:
        self._s = session
        self._conn = conn

    async def run(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Execute one statement after writing out what the session holds."""
        s = self._s
        if s.new or s.dirty or s.deleted:
            await s.flush()
        db = self._conn.raw
        cursor: sqlite3.Cursor = await self._conn.call(db.execute, sql, parameters)
        return cursor


async def inline(session: AsyncSession) -> Inline | None:
    """The plain-SQL way into this session's transaction, or None when the
    store is not SQLite on `store.sqlite_inline` (PostgreSQL, memory)."""
    transaction = session.sync_session.get_transaction()
    mark, found = session.info.get(_INLINE_KEY, (None, None))
    if mark is None or mark is not transaction:  # a session may run one after another
        conn = await session.connection()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        found = Inline(session, driver) if isinstance(driver, InlineConnection) else None
        session.info[_INLINE_KEY] = (session.sync_session.get_transaction(), found)
    return found
