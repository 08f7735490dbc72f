"""The store's front door: one `Tx` per unit of work, carrying every repository.

Handlers never see SQL or sessions; they receive a `Tx` and call typed
methods on its repositories.  Everything written through one `Tx` commits
together or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store.appointments import AppointmentRepo
from store.audit import AuditRepo
from store.buttons import ButtonRepo
from store.cases import CaseRepo
from store.channel_state import ChannelStateRepo
from store.confidants import ConfidantCache, ConfidantRepo
from store.contacts import ContactRepo
from store.crypto import Crypto
from store.db import closes_in_place, create_engine, session_factory
from store.events import EventRepo
from store.links import LinkRepo
from store.models import DataKey
from store.outbox import OutboxRepo
from store.register import RegisterRepo
from store.rota import DutyCache, RotaRepo
from store.vault import KeyCache, Vault

SYSTEM_KEY_ID = "system"


class SystemKeyState:
    """Whether the system key's row is known to be committed, shared by the
    transactions of one process: channel state is written on hot paths, and
    looking the row up each time costs a query per transaction."""

    def __init__(self) -> None:
        self.committed = False


class Tx:
    """One transaction and the repositories bound to it."""

    def __init__(self, session: AsyncSession, crypto: Crypto,
                 keys: KeyCache | None = None, duty: DutyCache | None = None,
                 people: ConfidantCache | None = None,
                 system: SystemKeyState | None = None) -> None:
        self.session = session
        self._system = system if system is not None else SystemKeyState()
        self._made_system = False
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
        if self._system.committed:
            return SYSTEM_KEY_ID
        if await self.session.get(DataKey, SYSTEM_KEY_ID) is not None:
            # Read back and not made here, so committed; it is never deleted.
            self._system.committed = not self._made_system
        else:
            self._made_system = True
            key = self.vault.crypto.new_data_key()
            self.session.add(DataKey(id=SYSTEM_KEY_ID, purpose="system",
                                     wrapped=self.vault.crypto.wrap(SYSTEM_KEY_ID, key)))
            await self.session.flush()
        return SYSTEM_KEY_ID

    def channel_state(self, channel: str) -> ChannelStateRepo:
        """A channel's own state, written with whatever else this transaction writes."""
        return ChannelStateRepo(self.session, self.vault, channel, self.system_key)


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
        self.system = SystemKeyState()

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
        tx = Tx(session, self.crypto, self.keys, self.duty, self.people, self.system)
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
    """`bot.channels.base.ChannelState` backed by the store, sealed at rest;
    every call is one transaction."""

    def __init__(self, store: Store, channel: str) -> None:
        self._store = store
        self._channel = channel

    async def get(self, key: str) -> bytes | None:
        async with self._store.tx() as tx:
            return await tx.channel_state(self._channel).get(key)

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        async with self._store.tx() as tx:
            return await tx.channel_state(self._channel).get_many(keys)

    async def set(self, key: str, value: bytes) -> None:
        async with self._store.tx() as tx:
            await tx.channel_state(self._channel).set(key, value)

    async def delete(self, key: str) -> None:
        async with self._store.tx() as tx:
            await tx.channel_state(self._channel).delete_many([key])

    async def change(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        """Write ``puts`` and delete ``deletes`` together, or neither."""
        async with self._store.tx() as tx:
            state = tx.channel_state(self._channel)
            await state.delete_many(k for k in deletes if k not in puts)
            for key, value in puts.items():
                await state.set(key, value)

    async def keys(self, prefix: str = "") -> list[str]:
        async with self._store.tx() as tx:
            return await tx.channel_state(self._channel).keys(prefix)
