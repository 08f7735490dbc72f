"""Data-key management: create, load and shred per-case keys, rotate the master key.

Every sealed column is encrypted under a data key stored only wrapped by the
master key (`DataKey.wrapped`).  Shredding a data key erases its wrapped
bytes, which makes every ciphertext under it unreadable for good, in backups
as well (crypto-shredding).  Rotating the master key re-wraps the data keys
and recomputes the keyed address hashes; it runs with the bot stopped and can
be resumed after a crash.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from store.crypto import (
    Crypto,
    DecryptError,
    fsync_dir,
    generate_master_key,
    load_master_key,
    write_key_file,
)
from store.models import (
    ADDRESS_HASH_COLUMNS,
    AppMeta,
    Base,
    ButtonToken,
    DataKey,
    MessageLink,
    OutboxMessage,
    new_id,
    utcnow,
)

log = logging.getLogger(__name__)

MASTER_CHECK_KEY = "master_key_check"
DEFAULT_BATCH = 500


class KeyringError(Exception):
    """A data key cannot be provided."""


class ShreddedError(KeyringError):
    """The data key was shredded: what it sealed is gone for good."""


class UnknownKeyError(KeyringError, LookupError):
    """No data key with this id exists."""


class WrongMasterKeyError(KeyringError):
    """The key file does not hold the master key this database was sealed with."""


class RotationError(KeyringError):
    """Rotation met data that neither the old nor the new master key opens."""


async def new_key(
    session: AsyncSession, crypto: Crypto, purpose: str = "case"
) -> tuple[str, bytes]:
    """Create and store (wrapped) a fresh data key; one per case, contact or
    confidant, so that each can be erased on its own.  Flushed at once: the
    models have no relationships, so the unit of work would not know to
    insert the key before the rows that reference it."""
    key_id = new_id()
    data_key = crypto.new_data_key()
    session.add(DataKey(id=key_id, wrapped=crypto.wrap(key_id, data_key), purpose=purpose))
    await session.flush()
    return key_id, data_key


async def load_key(session: AsyncSession, crypto: Crypto, key_id: str) -> bytes:
    """Unwrap a stored data key; refuses shredded keys so erased data stays erased."""
    row = await session.get(DataKey, key_id)
    if row is None:
        raise UnknownKeyError("no such data key")
    if row.wrapped is None or row.shredded_at is not None:
        raise ShreddedError("data key was shredded")
    return crypto.unwrap(key_id, row.wrapped)


async def shred(session: AsyncSession, key_id: str) -> None:
    """Destroy a data key (its wrapped bytes are cleared), leaving a tombstone
    row so foreign keys stay valid and a later read fails as "shredded"."""
    row = await session.get(DataKey, key_id)
    if row is None:
        raise UnknownKeyError("no such data key")
    row.wrapped = None
    if row.shredded_at is None:
        row.shredded_at = utcnow()
    await session.flush()


async def check_master(session: AsyncSession, crypto: Crypto) -> None:
    """Fail loudly at start when the key file is not the database's master key
    (a restored backup with the wrong key, a typo in ``store.key_file``),
    instead of failing message by message later.  Records the check value on
    first use."""
    expected = crypto.derive(MASTER_CHECK_KEY)
    row = await session.get(AppMeta, MASTER_CHECK_KEY)
    if row is None:
        session.add(AppMeta(key=MASTER_CHECK_KEY, value=expected))
        await session.flush()
        return
    if row.value != expected:
        raise WrongMasterKeyError(
            "the key file does not match this database (wrong key file or restored database?)"
        )


def _unwrap_either(key_id: str, wrapped: bytes, old: Crypto, new: Crypto) -> tuple[bytes, bool]:
    """Unwrap under the old key, or the new one if a previous run already
    re-wrapped it; returns the key and whether it still needs re-wrapping."""
    try:
        return old.unwrap(key_id, wrapped), True
    except DecryptError:
        pass
    try:
        return new.unwrap(key_id, wrapped), False
    except DecryptError:
        raise RotationError(
            "a data key opens under neither the old nor the new master key"
        ) from None


async def _in_batches(
    sessions: async_sessionmaker[AsyncSession],
    page: Callable[[str], Executable],
    handle: Callable[[AsyncSession, Sequence[Any]], Awaitable[int]],
) -> int:
    """Walk rows in primary-key order, ``page(last)`` selecting the batch after
    the key ``last`` (the first column), each batch handled and committed in a
    transaction of its own; returns how many rows ``handle`` says it changed."""
    done = 0
    last = ""
    while True:
        async with sessions.begin() as session:
            rows = (await session.execute(page(last))).all()
            if not rows:
                return done
            done += await handle(session, rows)
            last = rows[-1][0]


async def _rewrap_data_keys(
    sessions: async_sessionmaker[AsyncSession],
    old: Crypto,
    new: Crypto,
    batch: int,
    *,
    write: bool,
) -> int:
    """Re-wrap every live data key under the new master key, batch by batch
    (``write=False``: only check that each opens under one of the two keys)."""

    def page(last: str) -> Executable:
        return (
            select(DataKey.id, DataKey.wrapped)
            .where(DataKey.id > last, DataKey.wrapped.is_not(None))
            .order_by(DataKey.id)
            .limit(batch)
        )

    async def rewrap(session: AsyncSession, rows: Sequence[Any]) -> int:
        done = 0
        for key_id, wrapped in rows:
            assert wrapped is not None
            data_key, stale = _unwrap_either(key_id, wrapped, old, new)
            if stale and write:
                await session.execute(
                    update(DataKey)
                    .where(DataKey.id == key_id)
                    .values(wrapped=new.wrap(key_id, data_key))
                )
                done += 1
        return done

    return await _in_batches(sessions, page, rewrap)


def _key_source(table: Table) -> tuple[Any, ColumnElement[bool] | None]:
    """Where the data key that seals a table's addresses comes from: its own
    ``data_key_id`` or that of the parent row it belongs to (a confidant's
    addresses are sealed with the confidant's key)."""
    if "data_key_id" in table.c:
        return table.c.data_key_id, None
    for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
        parent = fk.column.table
        if isinstance(parent, Table) and "data_key_id" in parent.c:
            return parent.c.data_key_id, fk.parent == fk.column
    raise RotationError(f"{table.name}: cannot tell which data key seals its addresses")


async def _rehash_addresses(
    sessions: async_sessionmaker[AsyncSession],
    model: type[Base],
    hash_column: str,
    enc_column: str,
    old: Crypto,
    new: Crypto,
    batch: int,
    *,
    write: bool,
) -> int:
    """Recompute one keyed-hash column from the decrypted addresses, so lookups
    keep working under the new master key.  Idempotent: the hash is derived
    from the plaintext, whatever the column held before.

    With ``write=False`` it only checks that every stored hash is the old or
    new key's hash of the sealed value; rotation runs that check first, so a
    hash column that indexes something other than its sealed column stops
    the rotation before anything changed, instead of losing every lookup."""
    table = model.__table__
    assert isinstance(table, Table)
    (pk,) = table.primary_key.columns
    key_column, onclause = _key_source(table)
    source = table if onclause is None else table.join(key_column.table, onclause)
    ad_prefix = f"{table.name}.{enc_column}:"

    def page(last: str) -> Executable:
        return (
            select(
                pk,
                table.c.channel,
                table.c[hash_column],
                table.c[enc_column],
                key_column,
                DataKey.wrapped,
            )
            .select_from(source.join(DataKey, DataKey.id == key_column))
            .where(pk > last)
            .order_by(pk)
            .limit(batch)
        )

    async def rehash(session: AsyncSession, rows: Sequence[Any]) -> int:
        done = 0
        for row_id, channel, stored, blob, key_id, wrapped in rows:
            if wrapped is None or blob is None:
                continue  # shredded: the address is gone, so is the need to find it
            data_key, _ = _unwrap_either(key_id, wrapped, old, new)
            try:
                address = Crypto.open(data_key, blob, ad_prefix + row_id).decode()
            except DecryptError:
                raise RotationError(f"{table.name}.{enc_column}: a row does not open") from None
            fresh = new.address_hash(channel, address)
            if not write:
                if stored not in (fresh, old.address_hash(channel, address)):
                    raise RotationError(
                        f"{table.name}.{hash_column} is not the hash of "
                        f"{table.name}.{enc_column}: rotation would break lookups"
                    )
                continue
            if stored != fresh:
                await session.execute(
                    update(table).where(pk == row_id).values({hash_column: fresh})
                )
                done += 1
        return done

    return await _in_batches(sessions, page, rehash)


async def rotate_master(
    session_factory: async_sessionmaker[AsyncSession],
    old: Crypto,
    new: Crypto,
    *,
    batch: int = DEFAULT_BATCH,
) -> None:
    """Move the whole database from the old master key to the new one.

    Each batch commits on its own so a large database never holds one huge
    transaction; a crash part-way leaves rows under either key, and running
    it again with the same two keys completes the job.  A first read-only
    pass checks that every data key and address opens, so a wrong "old" key
    or an inconsistent hash column stops it before any write.  The caller then
    installs the new key file (see `rotate_key_file`).  Run with the bot
    stopped: a running bot holds the old key only."""
    for model, hash_column, enc_column in ADDRESS_HASH_COLUMNS:
        await _rehash_addresses(
            session_factory, model, hash_column, enc_column, old, new, batch, write=False
        )
    await _rewrap_data_keys(session_factory, old, new, batch, write=False)
    rewrapped = await _rewrap_data_keys(session_factory, old, new, batch, write=True)
    rehashed = 0
    for model, hash_column, enc_column in ADDRESS_HASH_COLUMNS:
        rehashed += await _rehash_addresses(
            session_factory, model, hash_column, enc_column, old, new, batch, write=True
        )
    async with session_factory.begin() as session:
        await _rekey_ephemera(session, new)
        row = await session.get(AppMeta, MASTER_CHECK_KEY)
        value = new.derive(MASTER_CHECK_KEY)
        if row is None:
            session.add(AppMeta(key=MASTER_CHECK_KEY, value=value))
        else:
            row.value = value
    log.info("master key rotated: keys=%d hashes=%d", rewrapped, rehashed)


async def _rekey_ephemera(session: AsyncSession, new: Crypto) -> None:
    """Short-lived keyed hashes after a rotation.

    Button tokens and reply links are keyed by hashes of addresses the
    database does not keep, so they cannot be recomputed: they are dropped
    (an old button then answers "no longer valid").  Pending outbox rows keep
    their recipient sealed, so their queue key is recomputed and per-person
    order survives the rotation."""
    await session.execute(delete(ButtonToken))
    await session.execute(delete(MessageLink))
    rows = (await session.scalars(select(OutboxMessage).where(
        OutboxMessage.status == "pending", OutboxMessage.recipient_enc.is_not(None)))).all()
    for row in rows:
        assert row.recipient_enc is not None
        data_key = await load_key(session, new, row.data_key_id)
        address = new.open(data_key, row.recipient_enc, f"outbox.recipient_enc:{row.ref}")
        row.recipient_hash = new.address_hash(row.channel, address.decode())


def _sibling(path: Path, suffix: str) -> Path:
    """``master.key`` → ``master.key.new`` / ``master.key.old``."""
    return path.with_name(path.name + suffix)


async def rotate_key_file(
    key_path: Path,
    session_factory: async_sessionmaker[AsyncSession],
    *,
    batch: int = DEFAULT_BATCH,
) -> None:
    """Rotate the master key end to end: new key written next to the old one
    (``<name>.new``), database rotated, old key kept as ``<name>.old`` while
    the new file is renamed into place, then the old key removed.

    Safe to rerun after a crash at any step: a leftover ``.new`` means the
    rotation to that key is resumed."""
    key_path = Path(key_path)
    new_path = _sibling(key_path, ".new")
    old_path = _sibling(key_path, ".old")
    old_key = load_master_key(key_path)
    if new_path.exists():
        new_key_bytes = load_master_key(new_path)
    else:
        old_path.unlink(missing_ok=True)  # leftover of a finished rotation
        new_key_bytes = generate_master_key()
        write_key_file(new_path, new_key_bytes)
    await rotate_master(session_factory, Crypto(old_key), Crypto(new_key_bytes), batch=batch)
    write_key_file(old_path, old_key)
    os.replace(new_path, key_path)
    fsync_dir(key_path.parent)
    old_path.unlink()
    fsync_dir(key_path.parent)
