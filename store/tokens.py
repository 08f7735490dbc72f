"""One-time login links and session ids: random, and kept only as a hash.

The confidant console and the web admin console log in the same way: the
CLI prints a link holding a random secret, the store keeps its SHA-256, and
the link works once, before it expires.  A stolen database gives no link.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

LOGIN_TOKEN_LIFETIME = timedelta(hours=24)
"""How long a printed login link stays valid (if not used)."""


def new_secret() -> tuple[str, bytes]:
    """A fresh secret for a link or a cookie, and the hash to store."""
    secret = secrets.token_urlsafe(24)
    return secret, secret_hash(secret)


def secret_hash(secret: str) -> bytes:
    """What the store keeps of a secret (and looks it up by)."""
    return hashlib.sha256(secret.encode()).digest()


def usable(expires_at: datetime, used_at: datetime | None, now: datetime) -> bool:
    """A link opens once, and only before it expires."""
    return used_at is None and now <= expires_at
