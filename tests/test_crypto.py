"""Encryption at rest: key file handling, sealing, wrapping, keyed hashes, shredding."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from store import keyring
from store.crypto import (
    KEY_LENGTH,
    Crypto,
    DecryptError,
    KeyFileError,
    create_key_file,
    generate_master_key,
    load_master_key,
    write_key_file,
)
from tests.support.stores import Store

AD = "messages.body:row-1"


@pytest.fixture
def crypto() -> Crypto:
    return Crypto(generate_master_key())


# -- key file -----------------------------------------------------------------


def test_create_key_file_makes_a_0600_key_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "nested" / "master.key"
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        assert create_key_file(path) is True
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    assert len(first) == KEY_LENGTH
    assert create_key_file(path) is False
    assert path.read_bytes() == first, "a second init must not replace the key"
    assert load_master_key(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["master.key"], "no temp file left"


def test_two_key_files_differ(tmp_path: Path) -> None:
    create_key_file(tmp_path / "a.key")
    create_key_file(tmp_path / "b.key")
    assert (tmp_path / "a.key").read_bytes() != (tmp_path / "b.key").read_bytes()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    create_key_file(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="readable by others") as err:
        load_master_key(path)
    assert f"{mode:04o}" in str(err.value)


def test_missing_key_file_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"does not exist.*confidant init"):
        load_master_key(tmp_path / "nope.key")


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_key_file_of_wrong_length_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(b"k" * size)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="exactly 32 bytes"):
        load_master_key(path)


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "master.key"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyFileError):
        load_master_key(folder)


def test_write_key_file_replaces_atomically_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_key_file(path)
    new = generate_master_key()
    write_key_file(path, new)
    assert load_master_key(path) == new
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.key"]
    with pytest.raises(KeyFileError):
        write_key_file(path, b"short")


def test_crypto_refuses_a_short_master_key() -> None:
    with pytest.raises(KeyFileError):
        Crypto(b"x" * 16)


def test_crypto_repr_hides_the_key() -> None:
    key = generate_master_key()
    assert key.hex() not in repr(Crypto(key))


# -- sealing ------------------------------------------------------------------


def test_seal_open_round_trip(crypto: Crypto) -> None:
    key = crypto.new_data_key()
    for text in [b"", b"hello", "Ik word gepest op het werk — hulp?".encode(), os.urandom(5000)]:
        blob = crypto.seal(key, text, AD)
        assert text == Crypto.open(key, blob, AD)
        if text:
            assert text not in blob


def test_seal_is_randomised(crypto: Crypto) -> None:
    key = crypto.new_data_key()
    assert crypto.seal(key, b"same", AD) != crypto.seal(key, b"same", AD)


def test_open_with_another_data_key_fails(crypto: Crypto) -> None:
    blob = crypto.seal(crypto.new_data_key(), b"secret", AD)
    with pytest.raises(DecryptError):
        Crypto.open(crypto.new_data_key(), blob, AD)


def test_ciphertext_moved_to_another_row_does_not_open(crypto: Crypto) -> None:
    key = crypto.new_data_key()
    blob = crypto.seal(key, b"secret", "messages.body:row-1")
    for other in ["messages.body:row-2", "notes.body:row-1", "messages.body:row-1 ", ""]:
        with pytest.raises(DecryptError):
            Crypto.open(key, blob, other)


def test_tampered_ciphertext_fails(crypto: Crypto) -> None:
    key = crypto.new_data_key()
    blob = crypto.seal(key, b"a message body", AD)
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptError):
            Crypto.open(key, bytes(tampered), AD)
    for broken in [blob[:-1], blob[:13], b"", blob + b"\x00"]:
        with pytest.raises(DecryptError):
            Crypto.open(key, broken, AD)


def test_decrypt_error_does_not_echo_data(crypto: Crypto) -> None:
    key = crypto.new_data_key()
    blob = crypto.seal(key, b"very private", AD)
    with pytest.raises(DecryptError) as err:
        Crypto.open(key, blob, "elsewhere")
    assert "private" not in str(err.value) and blob.hex() not in str(err.value)


# -- wrapping -----------------------------------------------------------------


def test_wrap_unwrap_round_trip(crypto: Crypto) -> None:
    data_key = crypto.new_data_key()
    wrapped = crypto.wrap("key-1", data_key)
    assert data_key not in wrapped
    assert crypto.unwrap("key-1", wrapped) == data_key


def test_wrong_master_key_fails_loudly(crypto: Crypto) -> None:
    wrapped = crypto.wrap("key-1", crypto.new_data_key())
    with pytest.raises(DecryptError):
        Crypto(generate_master_key()).unwrap("key-1", wrapped)


def test_wrapped_key_bound_to_its_id(crypto: Crypto) -> None:
    wrapped = crypto.wrap("key-1", crypto.new_data_key())
    with pytest.raises(DecryptError):
        crypto.unwrap("key-2", wrapped)


def test_same_master_key_material_unwraps(crypto: Crypto) -> None:
    master = generate_master_key()
    wrapped = Crypto(master).wrap("k", b"\x07" * 32)
    assert Crypto(master).unwrap("k", wrapped) == b"\x07" * 32


# -- keyed hashes and derived keys ----------------------------------------------


def test_address_hash_is_keyed_and_separates_channels(crypto: Crypto) -> None:
    h = crypto.address_hash("telegram", "123456789")
    assert len(h) == 32
    assert h == crypto.address_hash("telegram", "123456789")
    assert h != crypto.address_hash("matrix", "123456789")
    assert h != crypto.address_hash("telegram", "123456780")
    assert h != Crypto(generate_master_key()).address_hash("telegram", "123456789")
    # no ambiguity between channel and address boundaries
    assert crypto.address_hash("a", "bc") != crypto.address_hash("ab", "c")


def test_derive_is_deterministic_and_purpose_bound(crypto: Crypto) -> None:
    pickle = crypto.derive("matrix-store")
    assert pickle == crypto.derive("matrix-store")
    assert len(pickle) == 32 and len(crypto.derive("web-pepper", 16)) == 16
    assert pickle != crypto.derive("web-pepper")
    assert pickle != Crypto(generate_master_key()).derive("matrix-store")
    with pytest.raises(ValueError):
        crypto.derive("")


# -- keyring over the database (both backends) ----------------------------------


async def test_keyring_round_trip_and_shredding(store: Store) -> None:
    crypto = store.crypto
    async with store.sessions.begin() as session:
        key_id, data_key = await keyring.new_key(session, crypto, "case")
        blob = crypto.seal(data_key, b"case message", f"case_messages.body_enc:{key_id}")
    async with store.sessions() as session:
        loaded = await keyring.load_key(session, crypto, key_id)
        assert loaded == data_key
        assert Crypto.open(loaded, blob, f"case_messages.body_enc:{key_id}") == b"case message"
    async with store.sessions.begin() as session:
        await keyring.shred(session, key_id)
        with pytest.raises(keyring.ShreddedError):
            await keyring.load_key(session, crypto, key_id)
    async with store.sessions() as session:
        with pytest.raises(keyring.ShreddedError):
            await keyring.load_key(session, crypto, key_id)
        with pytest.raises(keyring.UnknownKeyError):
            await keyring.load_key(session, crypto, "0" * 32)


async def test_keyring_with_wrong_master_key_fails_loudly(store: Store) -> None:
    async with store.sessions.begin() as session:
        key_id, _ = await keyring.new_key(session, store.crypto)
    async with store.sessions() as session:
        with pytest.raises(DecryptError):
            await keyring.load_key(session, Crypto(generate_master_key()), key_id)


async def test_check_master_spots_the_wrong_key_file(store: Store) -> None:
    async with store.sessions.begin() as session:
        await keyring.check_master(session, store.crypto)
    async with store.sessions.begin() as session:
        await keyring.check_master(session, store.crypto)
    async with store.sessions() as session:
        with pytest.raises(keyring.WrongMasterKeyError):
            await keyring.check_master(session, Crypto(generate_master_key()))
