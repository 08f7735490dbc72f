"""Employees as pseudonymous contacts: found by keyed hash, reached through a
sealed address, erased by shredding their keys."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVarTuple

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.ids import ChannelName
from domain.messages import ChannelAddress
from store.driver import Rows, inline
from store.models import Case, Confidant, Contact, new_id
from store.vault import Vault

_Ts = TypeVarTuple("_Ts")


def _found(query: Select[*_Ts]) -> Select[*_Ts]:
    """Where a sender's contact, active case and its confidant are found."""
    return (query.select_from(Contact)
            .outerjoin(Case, Case.id == Contact.active_case_id)
            .outerjoin(Confidant, Confidant.id == Case.confidant_id)
            .where(Contact.address_hash == bindparam("address_hash")))


_FIND = _found(select(Contact, Case, Confidant))
"""Built once (every event asks it): the hash comes as a parameter."""
_FOUND = Rows(Contact, Case, Confidant)
_FIND_SQL = _FOUND.sql(_found)
"""`_FIND` as plain SQL for SQLite (see `store.driver.Rows`): the same rows."""


class ContactRepo:
    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self._s = session
        self._v = vault
        self._kept: tuple[Case | None, Confidant | None] = (None, None)

    async def find(self, channel: str, sender: str) -> Contact | None:
        """The sender's contact.  Its active case and that case's confidant,
        if any, come along in the same query: nearly every event needs them
        next, and then finds them in the session instead of asking again."""
        address_hash = self._v.address_hash(channel, sender)
        plain = await inline(self._s)
        if plain is None:
            found = (await self._s.execute(_FIND, {"address_hash": address_hash})).first()
            row: Sequence[Any] | None = None if found is None else tuple(found)
        else:
            raw = (await plain.run(_FIND_SQL, (address_hash,))).fetchone()
            row = None if raw is None else _FOUND.adopt(self._s, raw)
        if row is None:
            return None
        # The session holds loaded objects only weakly: keep them alive for
        # this transaction, or they are gone (and fetched again) by then.
        self._kept = (row[1], row[2])
        contact: Contact = row[0]
        return contact

    async def by_id(self, contact_id: str) -> Contact | None:
        return await self._s.get(Contact, contact_id)

    async def create(self, channel: str, sender: str, chat: str, language: str,
                     now: datetime) -> Contact:
        """Found again by the keyed hash of the sender; reached at ``chat``."""
        cid = new_id()
        key_id = await self._v.new_key("contact")
        contact = Contact(
            id=cid, channel=channel, address_hash=self._v.address_hash(channel, sender),
            sender_enc=await self._v.seal(key_id, sender, "contacts.sender_enc", cid),
            address_enc=await self._v.seal(key_id, chat, "contacts.address_enc", cid),
            data_key_id=key_id, language=language, created_at=now, last_seen_at=now,
        )
        self._s.add(contact)
        await self._s.flush()
        return contact

    async def update_chat(self, contact: Contact, chat: str, now: datetime) -> None:
        """The person wrote from another room (Matrix) or tab: answer there."""
        if (await self.address(contact)).address != chat:
            contact.address_enc = await self._v.seal(contact.data_key_id, chat,
                                                     "contacts.address_enc", contact.id)
        if now - contact.last_seen_at >= timedelta(minutes=10):  # a write saved per message
            contact.last_seen_at = now

    async def address(self, contact: Contact) -> ChannelAddress:
        addr = await self._v.open_text(contact.data_key_id, contact.address_enc,
                                       "contacts.address_enc", contact.id)
        return ChannelAddress(ChannelName(contact.channel), addr)

    async def set_pending(self, contact: Contact, pending: str | None,
                          data: dict[str, Any] | None = None) -> None:
        contact.pending = pending
        contact.pending_enc = (
            await self._v.seal(contact.data_key_id, json.dumps(data, ensure_ascii=False),
                               "contacts.pending_enc", contact.id)
            if data is not None else None
        )

    async def pending_data(self, contact: Contact) -> dict[str, Any]:
        if contact.pending_enc is None:
            return {}
        raw = await self._v.open_text(contact.data_key_id, contact.pending_enc,
                                      "contacts.pending_enc", contact.id)
        value = json.loads(raw)
        return value if isinstance(value, dict) else {}

    async def erase(self, contact: Contact) -> None:
        """Crypto-shred the contact's key and delete the row: nothing links back."""
        await self._v.shred(contact.data_key_id)
        await self._s.delete(contact)
