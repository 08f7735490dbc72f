"""Sealing and opening row fields inside one transaction.

A `Vault` pairs the master-key `Crypto` with the transaction's session so
repositories can write ``vault.seal(key_id, text, "notes.body_enc", row_id)``
without caring how keys are wrapped, cached or shredded.
"""

from __future__ import annotations

from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncSession

from store import keyring
from store.crypto import Crypto


def associated_data(column: str, row_id: str) -> str:
    """Binds a ciphertext to its column and row: moved elsewhere, it will not open."""
    return f"{column}:{row_id}"


class KeyCache:
    """Unwrapped data keys shared by the transactions of one process.

    Unwrapping is an AES-GCM operation and a row read; a busy case needs its
    key for every message.  Shredding evicts the key here in the same step
    that clears it in the database, so an erased case is unreadable at once.
    Bounded, least recently used first out.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._keys: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key_id: str) -> bytes | None:
        key = self._keys.get(key_id)
        if key is not None:
            self._keys.move_to_end(key_id)
        return key

    def put(self, key_id: str, key: bytes) -> None:
        self._keys[key_id] = key
        self._keys.move_to_end(key_id)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def evict(self, key_id: str) -> None:
        self._keys.pop(key_id, None)

    def clear(self) -> None:
        self._keys.clear()


class Vault:
    """Per-transaction access to data keys, through the process's `KeyCache`."""

    def __init__(self, session: AsyncSession, crypto: Crypto,
                 cache: KeyCache | None = None) -> None:
        self._session = session
        self.crypto = crypto
        self._cache = cache if cache is not None else KeyCache()
        self._new: list[str] = []

    async def new_key(self, purpose: str) -> str:
        key_id, key = await keyring.new_key(self._session, self.crypto, purpose)
        self._cache.put(key_id, key)
        self._new.append(key_id)
        return key_id

    async def key(self, key_id: str) -> bytes:
        key = self._cache.get(key_id)
        if key is None:
            key = await keyring.load_key(self._session, self.crypto, key_id)
            self._cache.put(key_id, key)
        return key

    async def shred(self, key_id: str) -> None:
        self._cache.evict(key_id)
        await keyring.shred(self._session, key_id)

    def rolled_back(self) -> None:
        """Keys created by a transaction that did not commit never existed."""
        for key_id in self._new:
            self._cache.evict(key_id)
        self._new.clear()

    async def seal(self, key_id: str, plaintext: str | bytes, column: str, row_id: str) -> bytes:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        return self.crypto.seal(await self.key(key_id), data, associated_data(column, row_id))

    async def open(self, key_id: str, blob: bytes, column: str, row_id: str) -> bytes:
        return self.crypto.open(await self.key(key_id), blob, associated_data(column, row_id))

    async def open_text(self, key_id: str, blob: bytes, column: str, row_id: str) -> str:
        return (await self.open(key_id, blob, column, row_id)).decode()

    def address_hash(self, channel: str, address: str) -> bytes:
        return self.crypto.address_hash(channel, address)
