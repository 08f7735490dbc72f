"""Confidants, their channel addresses and their web-console login tokens."""

from __future__ import annotations

from datetime import datetime
from time import monotonic

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.ids import ChannelName
from domain.messages import ChannelAddress
from store.models import Confidant, ConfidantAddress, LoginToken, new_id
from store.tokens import issue_link, redeem_link
from store.vault import Vault


class ConfidantCache:
    """Who is a confidant, and where each is reached, kept for a moment.

    Every inbound event asks whether its sender is a confidant, and every
    relay where the confidant is reached; registrations change rarely.  The
    whole directory of confidant address hashes (a few rows per confidant)
    is loaded at once, so an employee's message needs no query to learn
    that its sender is not a confidant, however many employees write.
    Writes through `ConfidantRepo` in this process clear it at once; a
    change made by another process (the admin CLI) is seen within ``ttl``.
    """

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._directory: tuple[float, dict[bytes, str]] | None = None
        self._where: dict[str, tuple[float, list[ChannelAddress]]] = {}

    def directory(self) -> dict[bytes, str] | None:
        """Address hash → confidant id for every registered address, if fresh."""
        entry = self._directory
        if entry is None or entry[0] < monotonic():
            return None
        return entry[1]

    def remember_directory(self, directory: dict[bytes, str]) -> None:
        self._directory = (monotonic() + self.ttl, directory)

    def where(self, confidant_id: str) -> list[ChannelAddress] | None:
        entry = self._where.get(confidant_id)
        if entry is None or entry[0] < monotonic():
            return None
        return list(entry[1])

    def remember_where(self, confidant_id: str, addresses: list[ChannelAddress]) -> None:
        self._where[confidant_id] = (monotonic() + self.ttl, list(addresses))

    def clear(self) -> None:
        self._directory = None
        self._where.clear()


class ConfidantRepo:
    def __init__(self, session: AsyncSession, vault: Vault,
                 cache: ConfidantCache | None = None) -> None:
        self._s = session
        self._v = vault
        self._cache = cache if cache is not None else ConfidantCache(ttl=0.0)

    async def add(self, name: str, *, bio: str, languages: list[str], attested_by: str,
                  now: datetime) -> Confidant:
        self._cache.clear()
        key_id = await self._v.new_key("confidant")
        c = Confidant(id=new_id(), name=name, bio=bio, languages=",".join(languages),
                      attested_by=attested_by, attested_at=now, data_key_id=key_id,
                      created_at=now, active=True)
        self._s.add(c)
        await self._s.flush()
        return c

    async def set_address(self, confidant: Confidant, channel: str, address: str | None) -> None:
        """Add, replace or (with None) remove the confidant's address on a channel."""
        self._cache.clear()
        await self._s.execute(delete(ConfidantAddress).where(
            ConfidantAddress.confidant_id == confidant.id, ConfidantAddress.channel == channel))
        await self._s.flush()
        if address is None:
            return
        aid = new_id()
        self._s.add(ConfidantAddress(
            id=aid, confidant_id=confidant.id, channel=channel,
            address_hash=self._v.address_hash(channel, address),
            address_enc=await self._v.seal(confidant.data_key_id, address,
                                           "confidant_addresses.address_enc", aid)))
        await self._s.flush()

    async def by_name(self, name: str) -> Confidant | None:
        found = await self._s.scalar(select(Confidant).where(Confidant.name == name))
        if found is None:
            # Names are typed by people: accept a case-insensitive match when it is unique.
            rows = (await self._s.scalars(select(Confidant))).all()
            matches = [c for c in rows if c.name.casefold() == name.casefold()]
            found = matches[0] if len(matches) == 1 else None
        return found

    async def by_id(self, confidant_id: str) -> Confidant | None:
        return await self._s.get(Confidant, confidant_id)

    async def find_by_address(self, channel: str, address: str) -> Confidant | None:
        directory = self._cache.directory()
        if directory is None:
            rows = await self._s.execute(
                select(ConfidantAddress.address_hash, ConfidantAddress.confidant_id))
            directory = {bytes(h): cid for h, cid in rows.all()}
            self._cache.remember_directory(directory)
        confidant_id = directory.get(self._v.address_hash(channel, address))
        if confidant_id is None:
            return None
        c = await self._s.get(Confidant, confidant_id)
        return c if c is not None and c.active else None

    async def all(self, active_only: bool = True) -> list[Confidant]:
        q = select(Confidant).order_by(Confidant.name)
        if active_only:
            q = q.where(Confidant.active.is_(True))
        return list((await self._s.scalars(q)).all())

    async def addresses(self, confidant: Confidant) -> list[ChannelAddress]:
        cached = self._cache.where(confidant.id)
        if cached is not None:
            return cached
        found = await self._load_addresses(confidant)
        self._cache.remember_where(confidant.id, found)
        return found

    async def _load_addresses(self, confidant: Confidant) -> list[ChannelAddress]:
        rows = (await self._s.scalars(
            select(ConfidantAddress).where(ConfidantAddress.confidant_id == confidant.id)
            .order_by(ConfidantAddress.channel))).all()
        out = []
        for r in rows:
            addr = await self._v.open_text(confidant.data_key_id, r.address_enc,
                                           "confidant_addresses.address_enc", r.id)
            out.append(ChannelAddress(ChannelName(r.channel), addr))
        return out

    async def channels(self, confidant: Confidant) -> list[str]:
        return list((await self._s.scalars(select(ConfidantAddress.channel).where(
            ConfidantAddress.confidant_id == confidant.id))).all())

    async def remove(self, confidant: Confidant) -> None:
        """Deactivate (cases keep their history) and forget every address."""
        self._cache.clear()
        confidant.active = False
        await self._s.execute(delete(ConfidantAddress).where(
            ConfidantAddress.confidant_id == confidant.id))

    async def new_login_token(self, confidant: Confidant, now: datetime) -> str:
        return await issue_link(self._s, LoginToken(confidant_id=confidant.id), now)

    async def redeem_login_token(self, token: str, now: datetime) -> Confidant | None:
        """One use only, and only before it expires."""
        row = await redeem_link(self._s, LoginToken, token, now)
        if row is None:
            return None
        c = await self._s.get(Confidant, row.confidant_id)
        return c if c is not None and c.active else None
