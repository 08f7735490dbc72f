"""Platform message id → case, for reply routing on the confidant's side."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from store.models import MessageLink
from store.vault import Vault


class LinkRepo:
    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self._s = session
        self._v = vault

    async def record(self, channel: str, chat: str, platform_message_id: str, case_id: str) -> None:
        key = (channel, self._v.address_hash(channel, chat), platform_message_id)
        if await self._s.get(MessageLink, key) is None:
            self._s.add(MessageLink(channel=channel, chat_hash=key[1],
                                    platform_message_id=platform_message_id, case_id=case_id))

    async def case_for(self, channel: str, chat: str, platform_message_id: str) -> str | None:
        row = await self._s.get(
            MessageLink, (channel, self._v.address_hash(channel, chat), platform_message_id))
        return row.case_id if row else None
