"""Platform message id → case, for reply routing on the confidant's side."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import MessageLink, utcnow
from store.vault import Vault

_LINKS = cast(Table, MessageLink.__table__)
"""The table itself, for plain Core statements on the hot path."""


class LinkRepo:
    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self._s = session
        self._v = vault

    async def record(self, channel: str, chat: str, platform_message_id: str, case_id: str) -> None:
        """One insert-or-ignore: a re-sent message keeps its first link."""
        values = {"channel": channel, "chat_hash": self._v.address_hash(channel, chat),
                  "platform_message_id": platform_message_id, "case_id": case_id,
                  "created_at": utcnow()}
        insert = pg_insert if self._s.get_bind().dialect.name == "postgresql" else sqlite_insert
        # On the table: a plain Core insert, no ORM bulk-insert bookkeeping per message.
        await self._s.execute(insert(_LINKS).values(**values)
                              .on_conflict_do_nothing())

    async def case_for(self, channel: str, chat: str, platform_message_id: str) -> str | None:
        row = await self._s.get(
            MessageLink, (channel, self._v.address_hash(channel, chat), platform_message_id))
        return row.case_id if row else None
