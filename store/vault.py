"""Sealing and opening row fields inside one transaction.

A `Vault` pairs the master-key `Crypto` with the transaction's session so
repositories can write ``vault.seal(key_id, text, "notes.body_enc", row_id)``
without caring how keys are wrapped, cached or shredded.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from store import keyring
from store.crypto import Crypto


def associated_data(column: str, row_id: str) -> str:
    """Binds a ciphertext to its column and row: moved elsewhere, it will not open."""
    return f"{column}:{row_id}"


class Vault:
    """Per-transaction access to data keys; unwrapped keys live only as long as it."""

    def __init__(self, session: AsyncSession, crypto: Crypto) -> None:
        self._session = session
        self.crypto = crypto
        self._keys: dict[str, bytes] = {}

    async def new_key(self, purpose: str) -> str:
        key_id, key = await keyring.new_key(self._session, self.crypto, purpose)
        self._keys[key_id] = key
        return key_id

    async def key(self, key_id: str) -> bytes:
        if key_id not in self._keys:
            self._keys[key_id] = await keyring.load_key(self._session, self.crypto, key_id)
        return self._keys[key_id]

    async def shred(self, key_id: str) -> None:
        self._keys.pop(key_id, None)
        await keyring.shred(self._session, key_id)

    async def seal(self, key_id: str, plaintext: str | bytes, column: str, row_id: str) -> bytes:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        return self.crypto.seal(await self.key(key_id), data, associated_data(column, row_id))

    async def open(self, key_id: str, blob: bytes, column: str, row_id: str) -> bytes:
        return self.crypto.open(await self.key(key_id), blob, associated_data(column, row_id))

    async def open_text(self, key_id: str, blob: bytes, column: str, row_id: str) -> str:
        return (await self.open(key_id, blob, column, row_id)).decode()

    def address_hash(self, channel: str, address: str) -> bytes:
        return self.crypto.address_hash(channel, address)
