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

from sqlalchemy import Select, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from store.model_base import Base
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


class Rows:
    """Plain ``SELECT``s whose rows become the session's loaded objects.

    What SQLAlchemy's ORM does with a row (type conversion, identity map,
    instance state) costs several times the query itself when it is the one
    lookup every event makes (`store.contacts.ContactRepo.find`).  Here the
    columns of each model, in table order, are selected by plain SQL; each
    value goes through its column type's own result processor, so it is the
    value the ORM would have loaded; and each object enters the session
    through the public `make_transient_to_detached` and ``Session.add``, as
    an object loaded in this session would be: unchanged, tracked from now
    on, written by the next flush if a handler changes it.
    """

    def __init__(self, *models: type[Base]) -> None:
        for model in models:
            # `adopt` finds a row's identity in its first column.
            key = [col for col in model.__table__.columns if col.primary_key]
            if len(key) != 1 or key[0] is not next(iter(model.__table__.columns)):
                raise TypeError(f"{model.__name__}: Rows needs a one-column key, first")
        self.models = models
        self._columns = [
            [(model.__mapper__.get_property_by_column(col).key,
              col.type.dialect_impl(_SQLITE).result_processor(_SQLITE, None))
             for col in model.__table__.columns]
            for model in models]

    def sql(self, query: Callable[[Select[Any]], Select[Any]]) -> str:
        """SQLite's text of ``query`` applied to a ``SELECT`` of every
        model's columns in order (joins and conditions are the caller's)."""
        columns = [col for model in self.models for col in model.__table__.columns]
        return str(query(select(*columns)).compile(dialect=_SQLITE))

    def adopt(self, session: AsyncSession, row: Sequence[Any]) -> list[Base | None]:
        """One object per model from ``row`` (None where an outer join found
        nothing); an object the session already holds is kept as it is, as
        the ORM keeps it (its changes in this transaction are not lost)."""
        sync = session.sync_session
        out: list[Base | None] = []
        at = 0
        for model, columns in zip(self.models, self._columns, strict=True):
            values = row[at:at + len(columns)]
            at += len(columns)
            out.append(None if values[0] is None else _adopt(sync, model, columns, values))
        return out


def _adopt(session: Session, model: type[Base],
           columns: Sequence[tuple[str, Callable[[Any], Any] | None]],
           values: Sequence[Any]) -> Base:
    key = identity_key(model, (values[0],))  # a one-column key, first (see `Rows`)
    held = session.identity_map.get(key)
    if held is not None:
        return held
    obj = model()
    obj.__dict__.update({name: value if convert is None or value is None else convert(value)
                         for (name, convert), value in zip(columns, values, strict=True)})
    make_transient_to_detached(obj)
    session.add(obj)
    return obj
