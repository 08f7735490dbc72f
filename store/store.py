"""The store's front door: one `Tx` per unit of work, carrying every repository.

Handlers never see SQL or sessions; they receive a `Tx` and call typed
methods on its repositories.  Everything written through one `Tx` commits
together or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store.appointments import AppointmentRepo
from store.audit import AuditRepo
from store.buttons import ButtonRepo
from store.cases import CaseRepo
from store.confidants import ConfidantCache, ConfidantRepo
from store.contacts import ContactRepo
from store.crypto import Crypto
from store.db import closes_in_place, create_engine, session_factory
from store.events import EventRepo
from store.links import LinkRepo
from store.models import ChannelStateEntry, DataKey, utcnow
from store.outbox import OutboxRepo
from store.register import RegisterRepo
from store.rota import DutyCache, RotaRepo
from store.vault import KeyCache, Vault

SYSTEM_KEY_ID = "system"


class Tx:
    """One transaction and the repositories bound to it."""

    def __init__(self, session: AsyncSession, crypto: Crypto,
                 keys: KeyCache | None = None, duty: DutyCache | None = None,
                 people: ConfidantCache | None = None) -> None:
        self.session = session
        self.vault = Vault(session, crypto, keys)
        self.events = EventRepo(session)
        self.audit = AuditRepo(session)
        self.buttons = ButtonRepo(session)
        self.contacts = ContactRepo(session, self.vault)
        self.confidants = ConfidantRepo(session, self.vault, people)
        self.cases = CaseRepo(session, self.vault)
        self.outbox = OutboxRepo(session, self.vault)
        self.links = LinkRepo(session, self.vault)
        self.rota = RotaRepo(session, duty)
        self.register = RegisterRepo(session, self.vault)
        self.appointments = AppointmentRepo(session)

    async def system_key(self) -> str:
        """The key for data that belongs to no case or person (channel state)."""
        if await self.session.get(DataKey, SYSTEM_KEY_ID) is None:
            key = self.vault.crypto.new_data_key()
            self.session.add(DataKey(id=SYSTEM_KEY_ID, purpose="system",
                                     wrapped=self.vault.crypto.wrap(SYSTEM_KEY_ID, key)))
            await self.session.flush()
        return SYSTEM_KEY_ID


class Store:
    """Engine, sessions and the master key: created once per process."""

    def __init__(self, engine: AsyncEngine, crypto: Crypto) -> None:
        self.engine = engine
        self.crypto = crypto
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._close_in_place = closes_in_place(engine)
        self.keys = KeyCache()
        self.duty = DutyCache()
        self.people = ConfidantCache()

    @classmethod
    def open(cls, url: str, master_key: bytes) -> Store:
        return cls(create_engine(url), Crypto(master_key))

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Tx]:
        if not self._close_in_place:
            async with self._sessions() as session:
                async with self._run(session) as tx:
                    yield tx
            return
        session = self._sessions()
        try:
            async with self._run(session) as tx:
                yield tx
        finally:
            await session.close()  # runs straight through: see `closes_in_place`

    @asynccontextmanager
    async def _run(self, session: AsyncSession) -> AsyncIterator[Tx]:
        tx = Tx(session, self.crypto, self.keys, self.duty, self.people)
        try:
            async with session.begin():
                yield tx
        except BaseException:
            tx.vault.rolled_back()
            raise

    async def healthy(self) -> bool:
        """One trivial query, for the health probe; reads no data."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(select(1))
        except Exception:
            return False
        return True

    def channel_state(self, channel: str) -> StoreChannelState:
        return StoreChannelState(self, channel)

    async def close(self) -> None:
        await self.engine.dispose()


class StoreChannelState:
    """`bot.channels.base.ChannelState` backed by the store, sealed at rest."""

    def __init__(self, store: Store, channel: str) -> None:
        self._store = store
        self._channel = channel

    def _ad_row(self, key: str) -> str:
        return f"{self._channel}/{key}"

    async def get(self, key: str) -> bytes | None:
        async with self._store.tx() as tx:
            row = await tx.session.get(ChannelStateEntry, (self._channel, key))
            if row is None:
                return None
            return await tx.vault.open(row.data_key_id, row.value_enc, "channel_state.value_enc",
                                       self._ad_row(key))

    async def set(self, key: str, value: bytes) -> None:
        async with self._store.tx() as tx:
            key_id = await tx.system_key()
            sealed = await tx.vault.seal(key_id, value, "channel_state.value_enc",
                                         self._ad_row(key))
            row = await tx.session.get(ChannelStateEntry, (self._channel, key))
            if row is None:
                tx.session.add(ChannelStateEntry(channel=self._channel, key=key, value_enc=sealed,
                                                 data_key_id=key_id, updated_at=utcnow()))
            else:
                row.value_enc = sealed
                row.data_key_id = key_id
                row.updated_at = utcnow()

    async def delete(self, key: str) -> None:
        async with self._store.tx() as tx:
            row = await tx.session.get(ChannelStateEntry, (self._channel, key))
            if row is not None:
                await tx.session.delete(row)

    async def keys(self, prefix: str = "") -> list[str]:
        async with self._store.tx() as tx:
            rows = await tx.session.scalars(select(ChannelStateEntry.key).where(
                ChannelStateEntry.channel == self._channel,
                ChannelStateEntry.key.startswith(prefix)))
            return list(rows.all())


