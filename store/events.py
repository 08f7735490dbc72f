"""Which platform events have been handled: the core's exactly-once guard."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.driver import inline, sqlite_time
from store.models import HandledEvent

_HANDLED = cast(Table, HandledEvent.__table__)
"""The table itself, for plain Core statements on the hot path."""
_CLAIM = {
    "postgresql": pg_insert(_HANDLED).on_conflict_do_nothing().returning(_HANDLED.c.channel),
    "sqlite": sqlite_insert(_HANDLED).on_conflict_do_nothing().returning(_HANDLED.c.channel),
}
"""Built once per dialect: the values come as parameters."""
_CLAIM_SQLITE = ("INSERT INTO handled_events (channel, event_key, handled_at) "
                 "VALUES (?, ?, ?) ON CONFLICT DO NOTHING")


def _event_key(event_id: str) -> bytes:
    # Hashed to a fixed width; platform event ids are not identity but may be long.
    return hashlib.sha256(event_id.encode()).digest()


class EventRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def claim(self, channel: str, event_id: str, now: datetime) -> bool:
        """Record the event as handled unless it already was; True if it is new.

        One insert-or-ignore instead of a look-up and an insert.  On
        PostgreSQL a concurrent duplicate waits for the first to commit and
        then finds the key taken; if that one rolls back, this one goes on.
        """
        key = _event_key(event_id)
        db = await inline(self._s)
        if db is not None:  # every event passes here: plain SQL (see store.driver)
            cursor = await db.run(_CLAIM_SQLITE, (channel, key, sqlite_time(now)))
            return cursor.rowcount == 1
        conn = await self._s.connection()
        result = await conn.execute(_CLAIM[conn.dialect.name], {
            "channel": channel, "event_key": key, "handled_at": now})
        return result.first() is not None

    async def forget_before(self, cutoff: datetime) -> int:
        result = await self._s.execute(
            delete(HandledEvent).where(HandledEvent.handled_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def count(self) -> int:
        return int(await self._s.scalar(select(func.count()).select_from(HandledEvent)) or 0)
