"""Platform message id → case, for reply routing on the confidant's side."""

from __future__ import annotations

from typing import cast

from sqlalchemy import LargeBinary, String, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.driver import inline, sqlite_time
from store.models import Case, MessageLink, UTCDateTime, utcnow
from store.vault import Vault

_LINKS = cast(Table, MessageLink.__table__)
"""The table itself, for plain Core statements on the hot path."""
_FROM_CASE = (select(bindparam("channel", type_=String), bindparam("chat_hash", type_=LargeBinary),
                     bindparam("platform_message_id", type_=String), Case.id,
                     bindparam("created_at", type_=UTCDateTime))
              .where(Case.id == bindparam("case_id")))
_COLUMNS = ["channel", "chat_hash", "platform_message_id", "case_id", "created_at"]
_RECORD = {
    "postgresql": pg_insert(_LINKS).from_select(_COLUMNS, _FROM_CASE).on_conflict_do_nothing(),
    "sqlite": sqlite_insert(_LINKS).from_select(_COLUMNS, _FROM_CASE).on_conflict_do_nothing(),
}
"""Built once per dialect: the values come as parameters.  The row is taken
from the case itself, so a link to a case erased meanwhile is simply not
written (a sent mark may be recorded a moment after the send)."""
_RECORD_SQLITE = ("INSERT INTO message_links (channel, chat_hash, platform_message_id, case_id, "
                  "created_at) SELECT ?, ?, ?, id, ? FROM cases WHERE id = ? "
                  "ON CONFLICT DO NOTHING")


class LinkRepo:
    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self._s = session
        self._v = vault

    async def record(self, channel: str, chat: str, platform_message_id: str, case_id: str) -> None:
        """One insert-or-ignore: a re-sent message keeps its first link; no
        link for a case that no longer exists."""
        chat_hash = self._v.address_hash(channel, chat)
        now = utcnow()
        db = await inline(self._s)
        if db is not None:  # once per relayed message: plain SQL (see store.driver)
            await db.run(_RECORD_SQLITE, (channel, chat_hash, platform_message_id,
                                          sqlite_time(now), case_id))
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
