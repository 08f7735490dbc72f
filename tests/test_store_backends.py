"""The store on SQLite and PostgreSQL: nothing readable at rest, rotation,
crypto-shredding, connection settings and transient-error classification."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

import store.db as db
from store import keyring
from store.crypto import Crypto, DecryptError, create_key_file, generate_master_key, load_master_key
from store.db import create_engine, is_transient, session_factory
from store.models import (
    AppMeta,
    Case,
    CaseMessage,
    Confidant,
    ConfidantAddress,
    Contact,
    DataKey,
    Note,
    Room,
    new_id,
)
from tests.support.stores import Store

TELEGRAM_ID = "7301928374615"
MATRIX_ID = "@sofie.vermeulen-zq:intra.example.org"
BODY = "Mijn leidinggevende scheldt mij elke ochtend uit (kanarie-4471)"
NOTE = "Vertrouwelijke notitie: werknemer vreest represailles (kanarie-9902)"
CANARY_TEXT = "plain-canary-text-5318"
CANARY_BYTES = b"plain-canary-bytes-6627"


def _needles(value: str | bytes) -> list[bytes]:
    """The forms a value could take in a raw file or a dump: raw, or hex (bytea)."""
    raw = value.encode() if isinstance(value, str) else value
    return [raw, raw.hex().encode(), raw.hex().upper().encode()]


def _found(haystack: bytes, value: str | bytes) -> bool:
    return any(needle in haystack for needle in _needles(value))


@dataclass
class Seeded:
    """Ids of what `_seed` wrote, to read it back."""

    confidant_id: str = ""
    address_id: str = ""
    contact_ids: list[str] = field(default_factory=list)
    case_ids: list[str] = field(default_factory=list)
    message_ids: dict[str, str] = field(default_factory=dict)  # case id -> message id


async def _seed(
    store: Store, crypto: Crypto, cases: int = 1, *, matrix_contact: bool = False
) -> Seeded:
    """Write a confidant (Matrix address), contacts (Telegram), cases with a
    message and a note, all sealed the way the models document."""
    out = Seeded()
    now = datetime.now(UTC)
    async with store.sessions.begin() as s:
        conf_key_id, conf_key = await keyring.new_key(s, crypto, "confidant")
        out.confidant_id = new_id()
        s.add(Confidant(id=out.confidant_id, name="Ann", data_key_id=conf_key_id, attested_by="hr"))
        await s.flush()
        out.address_id = new_id()
        s.add(
            ConfidantAddress(
                id=out.address_id,
                confidant_id=out.confidant_id,
                channel="matrix",
                address_hash=crypto.address_hash("matrix", MATRIX_ID),
                address_enc=crypto.seal(
                    conf_key,
                    MATRIX_ID.encode(),
                    f"confidant_addresses.address_enc:{out.address_id}",
                ),
            )
        )
        for n in range(cases):
            key_id, key = await keyring.new_key(s, crypto, "contact")
            contact_id = new_id()
            sender = f"{TELEGRAM_ID}{n}"
            chat = f"!room{n}:intra.example.org" if matrix_contact else sender
            s.add(
                Contact(
                    id=contact_id,
                    channel="telegram",
                    address_hash=crypto.address_hash("telegram", sender),
                    sender_enc=crypto.seal(
                        key, sender.encode(), f"contacts.sender_enc:{contact_id}"
                    ),
                    address_enc=crypto.seal(
                        key, chat.encode(), f"contacts.address_enc:{contact_id}"
                    ),
                    data_key_id=key_id,
                    language="nl",
                )
            )
            out.contact_ids.append(contact_id)
            await s.flush()
            case_key_id, case_key = await keyring.new_key(s, crypto, "case")
            case_id = new_id()
            s.add(
                Case(
                    id=case_id,
                    code=f"K7F-{n:03d}",
                    contact_id=contact_id,
                    data_key_id=case_key_id,
                    status="open",
                    channel="telegram",
                    language="nl",
                    confidant_id=out.confidant_id,
                    deadline_at=now + timedelta(days=10),
                )
            )
            await s.flush()
            message_id, note_id = new_id(), new_id()
            s.add(
                CaseMessage(
                    id=message_id,
                    case_id=case_id,
                    seq=1,
                    body_enc=crypto.seal(
                        case_key, f"{BODY} #{n}".encode(), f"case_messages.body_enc:{message_id}"
                    ),
                )
            )
            s.add(
                Note(
                    id=note_id,
                    case_id=case_id,
                    confidant_id=out.confidant_id,
                    body_enc=crypto.seal(case_key, NOTE.encode(), f"notes.body_enc:{note_id}"),
                )
            )
            out.case_ids.append(case_id)
            out.message_ids[case_id] = message_id
    return out


async def _read_message(store: Store, crypto: Crypto, case_id: str, message_id: str) -> str:
    """Open a case's message the way a repository would."""
    async with store.sessions() as s:
        case = await s.get(Case, case_id)
        message = await s.get(CaseMessage, message_id)
        assert case is not None and message is not None
        key = await keyring.load_key(s, crypto, case.data_key_id)
        return Crypto.open(key, message.body_enc, f"case_messages.body_enc:{message_id}").decode()


# -- nothing readable at rest --------------------------------------------------


async def test_no_plaintext_at_rest(
    store: Store, raw_database_bytes: Callable[[str], bytes]
) -> None:
    seeded = await _seed(store, store.crypto, cases=2)
    async with store.sessions.begin() as s:
        # positive controls: readable values that the scan must find
        s.add(Room(name="Room A", notes=CANARY_TEXT))
        s.add(AppMeta(key="canary", value=CANARY_BYTES))
    assert (
        await _read_message(
            store, store.crypto, seeded.case_ids[0], seeded.message_ids[seeded.case_ids[0]]
        )
        == f"{BODY} #0"
    )
    await store.engine.dispose()

    raw = raw_database_bytes(store.url)
    assert _found(raw, CANARY_TEXT), "scan cannot see plain text columns"
    assert _found(raw, CANARY_BYTES), "scan cannot see binary columns"
    for secret in [
        BODY,
        "kanarie-4471",
        NOTE,
        "kanarie-9902",
        TELEGRAM_ID,
        MATRIX_ID,
        "sofie.vermeulen",
    ]:
        assert not _found(raw, secret), f"found a plaintext at rest ({store.backend})"


# -- master key rotation ----------------------------------------------------------


async def _find_contact(store: Store, crypto: Crypto, sender: str) -> Contact | None:
    async with store.sessions() as s:
        return await s.scalar(
            select(Contact).where(Contact.address_hash == crypto.address_hash("telegram", sender))
        )


async def _find_confidant_address(store: Store, crypto: Crypto) -> ConfidantAddress | None:
    async with store.sessions() as s:
        return await s.scalar(
            select(ConfidantAddress).where(
                ConfidantAddress.address_hash == crypto.address_hash("matrix", MATRIX_ID)
            )
        )


async def test_rotation_keeps_cases_readable_with_the_new_key_only(store: Store) -> None:
    old, new = store.crypto, Crypto(generate_master_key())
    seeded = await _seed(store, old, cases=5)
    shredded = seeded.case_ids[2]
    async with store.sessions.begin() as s:
        await keyring.check_master(s, old)
        case = await s.get(Case, shredded)
        assert case is not None
        await keyring.shred(s, case.data_key_id)

    await keyring.rotate_master(store.sessions, old, new, batch=2)
    await keyring.rotate_master(store.sessions, old, new, batch=2)  # rerun = resume: harmless

    for n, case_id in enumerate(seeded.case_ids):
        message_id = seeded.message_ids[case_id]
        if case_id == shredded:
            with pytest.raises(keyring.ShreddedError):
                await _read_message(store, new, case_id, message_id)
            continue
        assert await _read_message(store, new, case_id, message_id) == f"{BODY} #{n}"
        with pytest.raises(DecryptError):
            await _read_message(store, old, case_id, message_id)

    for n, contact_id in enumerate(seeded.contact_ids):
        found = await _find_contact(store, new, f"{TELEGRAM_ID}{n}")
        assert found is not None and found.id == contact_id
        assert await _find_contact(store, old, f"{TELEGRAM_ID}{n}") is None
    address = await _find_confidant_address(store, new)
    assert address is not None and address.id == seeded.address_id
    assert await _find_confidant_address(store, old) is None

    async with store.sessions() as s:
        await keyring.check_master(s, new)
        with pytest.raises(keyring.WrongMasterKeyError):
            await keyring.check_master(s, old)


async def test_rotation_with_the_wrong_old_key_changes_nothing(store: Store) -> None:
    real = store.crypto
    seeded = await _seed(store, real, cases=2)
    with pytest.raises(keyring.RotationError):
        await keyring.rotate_master(
            store.sessions, Crypto(generate_master_key()), Crypto(generate_master_key())
        )
    case_id = seeded.case_ids[1]
    assert await _read_message(store, real, case_id, seeded.message_ids[case_id]) == f"{BODY} #1"


async def test_rotation_keeps_contacts_whose_chat_differs_from_their_id(store: Store) -> None:
    """A Matrix employee is found by their user id but answered in a DM room:
    rotation re-derives the lookup from the sealed sender id, not the room."""
    old, new = store.crypto, Crypto(generate_master_key())
    seeded = await _seed(store, old, cases=1, matrix_contact=True)
    await keyring.rotate_master(store.sessions, old, new)
    case_id = seeded.case_ids[0]
    assert await _read_message(store, new, case_id, seeded.message_ids[case_id]) == f"{BODY} #0"
    assert await _find_contact(store, new, f"{TELEGRAM_ID}0") is not None
    assert await _find_contact(store, old, f"{TELEGRAM_ID}0") is None


async def test_rotate_key_file_end_to_end(store: Store, tmp_path: Path) -> None:
    key_path = tmp_path / "keys" / "master.key"
    create_key_file(key_path)
    old = Crypto(load_master_key(key_path))
    seeded = await _seed(store, old, cases=2)

    await keyring.rotate_key_file(key_path, store.sessions)

    new = Crypto(load_master_key(key_path))
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["master.key"]
    case_id = seeded.case_ids[0]
    assert await _read_message(store, new, case_id, seeded.message_ids[case_id]) == f"{BODY} #0"
    with pytest.raises(DecryptError):
        await _read_message(store, old, case_id, seeded.message_ids[case_id])


async def test_rotate_key_file_resumes_after_a_crash(store: Store, tmp_path: Path) -> None:
    """A crash after the new key was written and the database half rotated:
    the rerun finishes with that same new key."""
    key_path = tmp_path / "master.key"
    create_key_file(key_path)
    old = Crypto(load_master_key(key_path))
    seeded = await _seed(store, old, cases=3)
    pending = generate_master_key()
    new_path = tmp_path / "master.key.new"
    new_path.write_bytes(pending)
    new_path.chmod(0o600)
    async with store.sessions.begin() as s:  # half done: one data key already re-wrapped
        row = (await s.scalars(select(DataKey).limit(1))).one()
        assert row.wrapped is not None
        row.wrapped = Crypto(pending).wrap(row.id, old.unwrap(row.id, row.wrapped))

    await keyring.rotate_key_file(key_path, store.sessions)

    assert load_master_key(key_path) == pending
    assert not new_path.exists()
    for n, case_id in enumerate(seeded.case_ids):
        got = await _read_message(store, Crypto(pending), case_id, seeded.message_ids[case_id])
        assert got == f"{BODY} #{n}"


# -- crypto-shredding ---------------------------------------------------------------


async def test_shredded_case_cannot_be_decrypted_even_with_the_master_key(
    store: Store, raw_database_bytes: Callable[[str], bytes]
) -> None:
    crypto = store.crypto
    seeded = await _seed(store, crypto, cases=2)
    victim = seeded.case_ids[0]
    message_id = seeded.message_ids[victim]
    async with store.sessions.begin() as s:
        case = await s.get(Case, victim)
        assert case is not None
        key_row = await s.get(DataKey, case.data_key_id)
        assert key_row is not None and key_row.wrapped is not None
        wrapped_before = key_row.wrapped
        await keyring.shred(s, case.data_key_id)

    async with store.sessions() as s:
        message = await s.get(CaseMessage, message_id)
        assert message is not None
        ciphertext = message.body_enc  # still there; only the key is gone
        key_row = await s.get(DataKey, case.data_key_id)
        assert key_row is not None and key_row.wrapped is None and key_row.shredded_at is not None
        every_wrapped = (
            await s.execute(select(DataKey.id, DataKey.wrapped).where(DataKey.wrapped.is_not(None)))
        ).all()
    assert every_wrapped, "other keys must still exist for the next check to mean something"
    for key_id, wrapped in every_wrapped:
        assert wrapped is not None
        candidate = crypto.unwrap(key_id, wrapped)
        with pytest.raises(DecryptError):
            Crypto.open(candidate, ciphertext, f"case_messages.body_enc:{message_id}")
    with pytest.raises(keyring.ShreddedError):
        await _read_message(store, crypto, victim, message_id)
    other = seeded.case_ids[1]
    assert await _read_message(store, crypto, other, seeded.message_ids[other]) == f"{BODY} #1"

    await store.engine.dispose()
    raw = raw_database_bytes(store.url)
    assert _found(raw, ciphertext), "the scan must see the remaining ciphertext"
    assert not _found(raw, wrapped_before), f"shredded key bytes linger ({store.backend})"


# -- engine settings and error classification -----------------------------------------


async def test_sqlite_engine_settings(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "confidant.db"
    engine = create_engine(f"sqlite:///{path}")  # plain URL gets the async driver
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in [
                    "journal_mode",
                    "foreign_keys",
                    "busy_timeout",
                    "synchronous",
                    "secure_delete",
                ]
            }
    finally:
        await engine.dispose()
    assert path.parent.is_dir()
    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        # The bot waits for locks in asyncio, not inside SQLite (see the next test).
        "busy_timeout": 0,
        "synchronous": 1,
        "secure_delete": 1,
    }


async def test_sqlite_lock_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    """Another process holds the write lock for a while: the bot's write
    waits and then goes through, and meanwhile the event loop keeps running
    (the other channels, the health probe) instead of sleeping in SQLite."""
    path = tmp_path / "held.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (0)")
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def release_later() -> None:
        await asyncio.sleep(0.5)
        holder.execute("COMMIT")

    tick_task = asyncio.create_task(ticker())
    release = asyncio.create_task(release_later())
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        await release
        assert ticks >= 20, f"the loop stood still while waiting for the lock ({ticks} ticks)"
        async with engine.connect() as conn:
            values = (await conn.execute(text("SELECT x FROM t ORDER BY x"))).scalars().all()
        assert values == [0, 1]
    finally:
        tick_task.cancel()
        holder.close()
        await engine.dispose()


async def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError) as err:
        async with store.sessions.begin() as s:
            s.add(Note(case_id="no-such-case", body_enc=b"x"))
    assert not is_transient(err.value)


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(db.UnsupportedDatabaseError):
        create_engine("mysql://127.0.0.1/x")


async def test_sqlite_lock_is_transient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(Exception) as err:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
        assert "locked" in str(err.value)
        assert is_transient(err.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await engine.dispose()


async def test_unreachable_postgres_is_transient() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        engine = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{port}/none")
        try:
            with pytest.raises(Exception) as err:
                async with engine.connect():
                    pass
            assert is_transient(err.value)
        finally:
            await engine.dispose()


async def test_postgres_lock_timeout_is_transient(
    pg_database: Callable[[], Awaitable[str]],
) -> None:
    url = await pg_database()
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.connect() as holder:
            await holder.execute(text("BEGIN"))
            await holder.execute(text("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(Exception) as err:
                async with sessions.begin() as s:
                    await s.execute(text("SET LOCAL lock_timeout = '50ms'"))
                    await s.execute(text("INSERT INTO t VALUES (1)"))
            assert is_transient(err.value)
            await holder.rollback()
    finally:
        await engine.dispose()


def test_ordinary_errors_are_not_transient() -> None:
    assert not is_transient(ValueError("bug"))
    assert not is_transient(KeyError("x"))
    assert is_transient(ConnectionRefusedError())
