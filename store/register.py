"""The register of acts by third parties: sealed entries kept five years."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Declaration, new_id
from store.vault import Vault

KEEP_FOR = timedelta(days=5 * 365 + 2)
"""Five years from the day of entry, leap days included."""


class RegisterRepo:
    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self._s = session
        self._v = vault

    async def add(self, facts: dict[str, Any], identity_agreed: bool, now: datetime) -> str:
        did = new_id()
        key_id = await self._v.new_key("register")
        self._s.add(Declaration(
            id=did, data_key_id=key_id, identity_agreed=identity_agreed, created_at=now,
            expires_at=now + KEEP_FOR,
            facts_enc=await self._v.seal(key_id, json.dumps(facts, ensure_ascii=False),
                                         "declarations.facts_enc", did)))
        return did

    async def entries(self, since: datetime | None = None,
                      until: datetime | None = None) -> list[dict[str, Any]]:
        """Opened entries for the inspection or the annual report."""
        q = select(Declaration).order_by(Declaration.created_at)
        if since is not None:
            q = q.where(Declaration.created_at >= since)
        if until is not None:
            q = q.where(Declaration.created_at < until)
        out = []
        for row in (await self._s.scalars(q)).all():
            facts = json.loads(await self._v.open_text(row.data_key_id, row.facts_enc,
                                                       "declarations.facts_enc", row.id))
            out.append({"id": row.id[:8], "entered": row.created_at.isoformat(),
                        "identity_agreed": row.identity_agreed, **facts})
        return out

    async def expire(self, now: datetime) -> int:
        rows = (await self._s.scalars(select(Declaration).where(
            Declaration.expires_at < now))).all()
        for row in rows:
            await self._v.shred(row.data_key_id)
            await self._s.delete(row)
        return len(rows)
