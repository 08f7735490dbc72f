"""Resume receipts for the web chat: a one-time passphrase that lets an
employee reopen their anonymous conversation in a fresh tab or on another
device.  Only an scrypt hash of the passphrase is kept, and wrong guesses per
case code are slowed down exponentially (without looking at who guesses)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford base32: no I, L, O or U, so a written-down code is hard to misread."""

GROUPS = 5
GROUP_LEN = 4
FREE_ATTEMPTS = 5
BASE_DELAY = 30.0
MAX_DELAY = 3600.0

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1

_READ_AS = {"O": "0", "I": "1", "L": "1", "U": "V"}


def new_passphrase() -> str:
    """Make a fresh 100-bit passphrase in readable groups (``7QX2-K9MD-…``)."""
    groups = ("".join(secrets.choice(ALPHABET) for _ in range(GROUP_LEN)) for _ in range(GROUPS))
    return "-".join(groups)


def normalize_passphrase(text: str) -> str:
    """Forgive how people copy a code: case, spaces, dashes, O/0 and I/L/1."""
    out = []
    for ch in text.upper():
        ch = _READ_AS.get(ch, ch)
        if ch in ALPHABET:
            out.append(ch)
    return "".join(out)


def normalize_case_code(text: str) -> str:
    """Compare case codes without caring for case, spaces or dashes."""
    return "".join(ch for ch in text.upper() if ch.isascii() and ch.isalnum())


def lockout_seconds(failures: int) -> float:
    """How long to refuse guesses after ``failures`` wrong ones: free at first,
    then doubling, so guessing a 100-bit secret stays hopeless and an employee
    who mistypes a few times is not locked out for long."""
    if failures < FREE_ATTEMPTS:
        return 0.0
    return float(min(BASE_DELAY * 2 ** (failures - FREE_ATTEMPTS), MAX_DELAY))


async def hash_passphrase(passphrase: str, salt: bytes) -> bytes:
    """scrypt off the event loop, so a resume attempt never stalls other chats."""
    secret = normalize_passphrase(passphrase).encode()
    return await asyncio.to_thread(
        hashlib.scrypt,
        secret,
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=64 * 1024 * 1024,
        dklen=32,
    )


@dataclass(slots=True)
class Receipt:
    """What the state keeps per case code: the identity to restore, the
    passphrase hash, and the wrong-guess counter.  Never the passphrase."""

    identity: str
    salt: str
    digest: str
    failures: int = 0
    locked_until: float = 0.0

    @classmethod
    async def create(cls, identity: str, passphrase: str) -> Receipt:
        """Hash a new passphrase for ``identity`` with a fresh salt."""
        salt = secrets.token_bytes(16)
        digest = await hash_passphrase(passphrase, salt)
        return cls(
            identity=identity,
            salt=base64.b64encode(salt).decode(),
            digest=base64.b64encode(digest).decode(),
        )

    async def matches(self, passphrase: str) -> bool:
        """Constant-time comparison of a guess with the stored hash."""
        digest = await hash_passphrase(passphrase, base64.b64decode(self.salt))
        return hmac.compare_digest(digest, base64.b64decode(self.digest))

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Receipt:
        data = json.loads(raw)
        return cls(
            identity=str(data["identity"]),
            salt=str(data["salt"]),
            digest=str(data["digest"]),
            failures=int(data.get("failures", 0)),
            locked_until=float(data.get("locked_until", 0.0)),
        )


async def dummy_check(passphrase: str) -> None:
    """Spend the same scrypt work for an unknown code, so timing does not tell
    whether a case code exists."""
    await hash_passphrase(passphrase, b"\0" * 16)
