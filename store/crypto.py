"""Encryption at rest: the master key file, per-case data keys and sealed columns.

The master key (32 random bytes in a 0600 file outside the database) never
encrypts data directly.  It derives, with HKDF-SHA256, a key-encryption key
that wraps the per-case data keys, a key for the keyed address index and any
other purpose-specific secret.  Column values are sealed with AES-256-GCM under
a data key, with associated data naming the column and row, so that a
ciphertext copied into another row or column no longer opens.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_LENGTH = 32
NONCE_LENGTH = 12
VERSION = 1
_HEADER = bytes([VERSION])
_SALT = b"confidant/v1"
_TAG_LENGTH = 16


class KeyFileError(Exception):
    """The master key file is missing, malformed or readable by others."""


class DecryptError(Exception):
    """A ciphertext did not open: wrong key, tampered, or moved to another row.

    Deliberately carries no detail: which of these happened is not something
    the caller can act on, and the message must never echo data."""


def generate_master_key() -> bytes:
    """Return fresh key material for a master key file."""
    return secrets.token_bytes(KEY_LENGTH)


def fsync_dir(folder: Path) -> None:
    """Make a rename or file creation in ``folder`` survive a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` exclusively with mode 0600 and durable contents."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask may not lower it, but be explicit
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def create_key_file(path: Path) -> bool:
    """Create a new master key file unless one exists; return whether it did.

    Idempotent so that ``confidant init`` can run twice without destroying the
    key that every existing ciphertext depends on.  The file is written under
    a temporary name and linked into place, so a crash never leaves a short
    key file behind, and ``O_EXCL`` semantics keep two racing inits from
    overwriting each other.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        return False
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    _write_new_file(tmp, generate_master_key())
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def write_key_file(path: Path, key: bytes) -> None:
    """Atomically put ``key`` at ``path`` (replacing any file there).

    Used when the master key is rotated: the new file is complete and synced
    before the rename, so the path always holds one whole key."""
    if len(key) != KEY_LENGTH:
        raise KeyFileError(f"{path}: a master key must be {KEY_LENGTH} bytes")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    _write_new_file(tmp, key)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def load_master_key(path: Path) -> bytes:
    """Read the master key, refusing a file that others could read.

    A key that the group or the world can read is treated as compromised
    configuration: the bot does not start rather than run on it."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileError(
            f"{path}: key file does not exist (run 'confidant init' to create it)"
        ) from None
    except PermissionError:
        raise KeyFileError(f"{path}: key file is not readable by this user") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: key file cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"{path}: key file is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(
                f"{path}: key file is readable by others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); run 'chmod 600 {path}'"
            )
        data = os.read(fd, KEY_LENGTH + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_LENGTH:
        raise KeyFileError(
            f"{path}: key file must hold exactly {KEY_LENGTH} bytes, found "
            f"{'more' if len(data) > KEY_LENGTH else len(data)}"
        )
    return data


def _hkdf(master: bytes, info: bytes, length: int) -> bytes:
    """Derive an independent key for one purpose from the master key."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(master)


def _aead_seal(key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """AES-256-GCM with a random nonce; output = version | nonce | ciphertext+tag."""
    nonce = secrets.token_bytes(NONCE_LENGTH)
    return _HEADER + nonce + AESGCM(key).encrypt(nonce, plaintext, ad)


def _aead_open(key: bytes, blob: bytes, ad: bytes) -> bytes:
    """Inverse of `_aead_seal`; every failure becomes `DecryptError`."""
    if (
        not isinstance(blob, bytes | bytearray | memoryview)
        or len(blob) < 1 + NONCE_LENGTH + _TAG_LENGTH
        or blob[0] != VERSION
        or len(key) != KEY_LENGTH
    ):
        raise DecryptError("ciphertext does not open")
    blob = bytes(blob)
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + NONCE_LENGTH], blob[1 + NONCE_LENGTH :], ad)
    except (InvalidTag, ValueError):
        raise DecryptError("ciphertext does not open") from None


class Crypto:
    """All key operations that depend on one master key.

    Instances are cheap and immutable; rotation works with two of them side
    by side (old and new)."""

    __slots__ = ("_address_key", "_kek", "_master")

    def __init__(self, master_key: bytes) -> None:
        """Derive the working keys once, so each operation is a single AEAD/HMAC call."""
        if not isinstance(master_key, bytes) or len(master_key) != KEY_LENGTH:
            raise KeyFileError(f"a master key must be {KEY_LENGTH} bytes")
        self._master = master_key
        self._kek = _hkdf(master_key, b"key-wrap", KEY_LENGTH)
        self._address_key = _hkdf(master_key, b"address-index", KEY_LENGTH)

    def __repr__(self) -> str:
        """Keep key material out of logs and tracebacks."""
        return "Crypto(<master key hidden>)"

    @staticmethod
    def new_data_key() -> bytes:
        """Return a fresh random data key (one per case, so erasure can shred it)."""
        return secrets.token_bytes(KEY_LENGTH)

    def wrap(self, key_id: str, data_key: bytes) -> bytes:
        """Encrypt a data key for storage; the key id is bound as associated data
        so a wrapped key cannot be swapped onto another key id."""
        if len(data_key) != KEY_LENGTH:
            raise ValueError(f"a data key must be {KEY_LENGTH} bytes")
        return _aead_seal(self._kek, data_key, b"datakey:" + key_id.encode())

    def unwrap(self, key_id: str, blob: bytes) -> bytes:
        """Recover a data key; raises `DecryptError` under a wrong master key."""
        key = _aead_open(self._kek, blob, b"datakey:" + key_id.encode())
        if len(key) != KEY_LENGTH:
            raise DecryptError("ciphertext does not open")
        return key

    @staticmethod
    def seal(data_key: bytes, plaintext: bytes, ad: str) -> bytes:
        """Encrypt one column value; ``ad`` names where it lives, e.g.
        ``"messages.body:<row id>"``, so the value only opens in that place."""
        if len(data_key) != KEY_LENGTH:
            raise ValueError(f"a data key must be {KEY_LENGTH} bytes")
        return _aead_seal(data_key, plaintext, ad.encode())

    @staticmethod
    def open(data_key: bytes, blob: bytes, ad: str) -> bytes:
        """Decrypt one column value sealed with the same key and ``ad``."""
        return _aead_open(data_key, blob, ad.encode())

    def address_hash(self, channel: str, address: str) -> bytes:
        """Keyed hash for looking up a contact by platform address without
        storing the address; without the master key it cannot be brute-forced
        from the (small) space of Telegram ids."""
        message = channel.encode() + b"\x00" + address.encode()
        return hmac.digest(self._address_key, message, "sha256")

    def derive(self, purpose: str, length: int = KEY_LENGTH) -> bytes:
        """A secret for one named purpose (Matrix store pickle key, web
        passphrase pepper), independent of every other derived key."""
        if not purpose:
            raise ValueError("purpose must not be empty")
        return _hkdf(self._master, b"purpose:" + purpose.encode(), length)
