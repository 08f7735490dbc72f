"""The channels' own small state (`bot.channels.base.ChannelState`), sealed
with the system key, as a repository inside a `store.store.Tx`: a channel's
record of an event can then commit with the event itself.  The stand-alone
state, every call a transaction of its own, is `store.store.StoreChannelState`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from store.driver import inline, sqlite_time
from store.models import ChannelStateEntry, utcnow
from store.vault import Vault

_FIELD = "channel_state.value_enc"
_TABLE = cast(Table, ChannelStateEntry.__table__)


def _upsert(insert: Any) -> Any:
    statement = insert(_TABLE)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_TABLE.c.channel, _TABLE.c.key],
        set_={"value_enc": excluded.value_enc, "data_key_id": excluded.data_key_id,
              "updated_at": excluded.updated_at})


_UPSERT = {"postgresql": _upsert(pg_insert), "sqlite": _upsert(sqlite_insert)}
"""Built once per dialect: the values come as parameters."""
_UPSERT_SQLITE = str(_UPSERT["sqlite"].compile(dialect=sqlite_dialect.dialect()))
"""The same statement as SQLite's text, for `store.driver`'s plain path
(parameters in table column order: channel, key, value_enc, data_key_id,
updated_at)."""


class ChannelStateRepo:
    """One channel's state in the caller's transaction."""

    def __init__(self, session: AsyncSession, vault: Vault, channel: str,
                 system_key: Callable[[], Awaitable[str]]) -> None:
        self.session = session
        self.vault = vault
        self.channel = channel
        self._system_key = system_key

    def _ad_row(self, key: str) -> str:
        """Binds each sealed value to its row: a value copied to another key
        does not open."""
        return f"{self.channel}/{key}"

    async def get(self, key: str) -> bytes | None:
        row = await self.session.get(ChannelStateEntry, (self.channel, key))
        if row is None:
            return None
        return await self.vault.open(row.data_key_id, row.value_enc, _FIELD, self._ad_row(key))

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The values of those ``keys`` that exist, in one query."""
        wanted = list(keys)
        if not wanted:
            return {}
        rows = await self.session.scalars(select(ChannelStateEntry).where(
            ChannelStateEntry.channel == self.channel, ChannelStateEntry.key.in_(wanted)))
        return {row.key: await self.vault.open(row.data_key_id, row.value_enc, _FIELD,
                                               self._ad_row(row.key))
                for row in rows.all()}

    async def set(self, key: str, value: bytes) -> None:
        """Write ``key`` whether or not it exists: one statement, no read
        (on SQLite plain SQL, as `store.driver` explains; it may ride in an
        event's transaction on the hot path)."""
        key_id = await self._system_key()
        sealed = await self.vault.seal(key_id, value, _FIELD, self._ad_row(key))
        now = utcnow()
        db = await inline(self.session)
        if db is not None:
            await db.run(_UPSERT_SQLITE, (self.channel, key, sealed, key_id, sqlite_time(now)))
        else:
            conn = await self.session.connection()
            await conn.execute(_UPSERT[conn.dialect.name], {
                "channel": self.channel, "key": key, "value_enc": sealed,
                "data_key_id": key_id, "updated_at": now})
        self._forget([key])

    async def delete_many(self, keys: Iterable[str]) -> None:
        gone = list(keys)
        if gone:
            await self.session.execute(delete(ChannelStateEntry).where(
                ChannelStateEntry.channel == self.channel, ChannelStateEntry.key.in_(gone)),
                execution_options={"synchronize_session": False})
            self._forget(gone)

    def _forget(self, keys: Iterable[str]) -> None:
        """Rows of ``keys`` this session loaded before are stale now: drop
        them, so neither a later read nor a flush uses the old values."""
        for key in keys:
            row = self.session.sync_session.identity_map.get(
                identity_key(ChannelStateEntry, (self.channel, key)))
            if row is not None:
                self.session.expunge(row)

    async def keys(self, prefix: str = "") -> list[str]:
        rows = await self.session.scalars(select(ChannelStateEntry.key).where(
            ChannelStateEntry.channel == self.channel,
            ChannelStateEntry.key.startswith(prefix, autoescape=True)))
        return list(rows.all())
