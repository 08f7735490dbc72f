"""Which platform events have been handled: the core's exactly-once guard."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import HandledEvent


def _event_key(event_id: str) -> bytes:
    # Hashed to a fixed width; platform event ids are not identity but may be long.
    return hashlib.sha256(event_id.encode()).digest()


class EventRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def seen(self, channel: str, event_id: str) -> bool:
        row = await self._s.get(HandledEvent, (channel, _event_key(event_id)))
        return row is not None

    async def claim(self, channel: str, event_id: str, now: datetime) -> bool:
        """Record the event as handled unless it already was; True if it is new.

        One insert-or-ignore instead of a look-up and an insert.  On
        PostgreSQL a concurrent duplicate waits for the first to commit and
        then finds the key taken; if that one rolls back, this one goes on.
        """
        values = {"channel": channel, "event_key": _event_key(event_id), "handled_at": now}
        if self._s.get_bind().dialect.name == "postgresql":
            pg = pg_insert(HandledEvent).values(**values).on_conflict_do_nothing()
            result = await self._s.execute(pg.returning(HandledEvent.channel))
        else:
            lite = sqlite_insert(HandledEvent).values(**values).on_conflict_do_nothing()
            result = await self._s.execute(lite.returning(HandledEvent.channel))
        return result.first() is not None

    async def mark(self, channel: str, event_id: str) -> None:
        """Recorded in the same transaction as the event's effects; a concurrent
        duplicate fails on the primary key at commit and is retried as seen."""
        self._s.add(HandledEvent(channel=channel, event_key=_event_key(event_id)))

    async def forget_before(self, cutoff: datetime) -> int:
        result = await self._s.execute(
            delete(HandledEvent).where(HandledEvent.handled_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def count(self) -> int:
        return len((await self._s.execute(select(HandledEvent.event_key))).all())
