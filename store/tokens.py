"""One-time login links and session ids: random, and kept only as a hash.

The confidant console and the web admin console log in the same way: the
CLI prints a link holding a random secret, the store keeps its SHA-256, and
the link works once, before it expires.  A stolen database gives no link.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from store.models import OneTimeLinkColumns

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


Link = TypeVar("Link", bound=OneTimeLinkColumns)


async def issue_link(session: AsyncSession, link: OneTimeLinkColumns, now: datetime) -> str:
    """Store a new link row (its owner already set by the caller) and return
    the secret to print; the row keeps only the secret's hash."""
    secret, link.token_hash = new_secret()
    link.created_at = now
    link.expires_at = now + LOGIN_TOKEN_LIFETIME
    session.add(link)
    await session.flush()
    return secret


async def redeem_link(session: AsyncSession, kind: type[Link], secret: str,
                      now: datetime) -> Link | None:
    """The link row a secret opens, marked used, or nothing if it is unknown,
    used or expired: the caller then loads the owner the row names."""
    row = await session.get(kind, secret_hash(secret))
    if row is None or not usable(row.expires_at, row.used_at, now):
        return None
    row.used_at = now
    return row
