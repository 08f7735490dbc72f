"""The audit trail: who did what, when; never any content."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditEvent


class AuditRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def record(self, actor: str, kind: str, subject: str = "", detail: str = "") -> None:
        self._s.add(AuditEvent(actor=actor[:120], kind=kind[:48], subject=subject[:120],
                               detail=detail[:255]))

    async def recent(self, since: datetime | None = None, limit: int = 200) -> list[AuditEvent]:
        q = select(AuditEvent).order_by(AuditEvent.at.desc()).limit(limit)
        if since is not None:
            q = q.where(AuditEvent.at >= since)
        return list((await self._s.scalars(q)).all())
