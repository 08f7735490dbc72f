"""Which platform events have been handled: the core's exactly-once guard."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import HandledEvent

_HANDLED = cast(Table, HandledEvent.__table__)
"""The table itself, for plain Core statements on the hot path."""


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
        values = {"channel": channel, "event_key": _event_key(event_id), "handled_at": now}
        # On the table, not the mapped class: every event passes here, and a
        # plain Core insert skips the ORM's bulk-insert bookkeeping.
        if self._s.get_bind().dialect.name == "postgresql":
            pg = pg_insert(_HANDLED).values(**values).on_conflict_do_nothing()
            result = await self._s.execute(pg.returning(_HANDLED.c.channel))
        else:
            lite = sqlite_insert(_HANDLED).values(**values).on_conflict_do_nothing()
            result = await self._s.execute(lite.returning(_HANDLED.c.channel))
        return result.first() is not None

    async def forget_before(self, cutoff: datetime) -> int:
        result = await self._s.execute(
            delete(HandledEvent).where(HandledEvent.handled_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def count(self) -> int:
        return int(await self._s.scalar(select(func.count()).select_from(HandledEvent)) or 0)
