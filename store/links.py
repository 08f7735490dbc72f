"""Platform message id → case, for reply routing on the confidant's side."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.driver import inline, sqlite_time
from store.models import MessageLink, utcnow
from store.vault import Vault

_LINKS = cast(Table, MessageLink.__table__)
"""The table itself, for plain Core statements on the hot path."""
_RECORD = {"postgresql": pg_insert(_LINKS).on_conflict_do_nothing(),
           "sqlite": sqlite_insert(_LINKS).on_conflict_do_nothing()}
"""Built once per dialect: the values come as parameters."""
_RECORD_SQLITE = ("INSERT INTO message_links (channel, chat_hash, platform_message_id, case_id, "
                  "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")


class LinkRepo:
    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self._s = session
        self._v = vault

    async def record(self, channel: str, chat: str, platform_message_id: str, case_id: str) -> None:
        """One insert-or-ignore: a re-sent message keeps its first link."""
        chat_hash = self._v.address_hash(channel, chat)
        now = utcnow()
        db = await inline(self._s)
        if db is not None:  # once per relayed message: plain SQL (see store.driver)
            await db.run(_RECORD_SQLITE, (channel, chat_hash, platform_message_id, case_id,
                                          sqlite_time(now)))
            return
        # On the table: a plain Core insert, no ORM bulk-insert bookkeeping per message.
        conn = await self._s.connection()
        await conn.execute(_RECORD[conn.dialect.name], {
            "channel": channel, "chat_hash": chat_hash,
            "platform_message_id": platform_message_id, "case_id": case_id, "created_at": now})

    async def case_for(self, channel: str, chat: str, platform_message_id: str) -> str | None:
        row = await self._s.get(
            MessageLink, (channel, self._v.address_hash(channel, chat), platform_message_id))
        return row.case_id if row else None
