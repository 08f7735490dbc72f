"""Which platform events have been handled: the core's exactly-once guard."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, select
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
