"""Opaque button tokens: the server-side meaning of every menu choice.

A token is random, short (fits Telegram's 64-byte callback data) and bound
to the person the menu was sent to, so a forged, edited or replayed press
from anyone else resolves to nothing.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.messages import Button, Menu
from store.models import ButtonToken, new_id

TOKEN_LIFETIME = timedelta(days=30)

_serials = itertools.count()


def _next_serial() -> int:
    """Increasing across restarts (wall clock in µs) and within one (counter)."""
    return time.time_ns() // 1000 * 1000 + next(_serials) % 1000


class ButtonRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def issue(
        self, owner_hash: bytes, rows: Sequence[Sequence[tuple[str, str]]], now: datetime
    ) -> Menu:
        """Turn rows of (label, action) into a `Menu` of tokens for one person."""
        menu_id = new_id()
        serial = _next_serial()
        position = 0
        out_rows: list[tuple[Button, ...]] = []
        for row in rows:
            buttons = []
            for label, action in row:
                position += 1
                token = secrets.token_urlsafe(12)
                self._s.add(ButtonToken(token=token, owner_hash=owner_hash, menu_id=menu_id,
                                        position=position, serial=serial, action=action,
                                        created_at=now,
                                        expires_at=now + TOKEN_LIFETIME))
                buttons.append(Button(label=label, token=token))
            out_rows.append(tuple(buttons))
        return Menu(rows=tuple(out_rows))

    async def resolve(self, owner_hash: bytes, token: str, now: datetime) -> str | None:
        if not token or len(token) > 24:
            return None
        row = await self._s.get(ButtonToken, token)
        if row is None or row.owner_hash != owner_hash or row.expires_at < now:
            return None
        return row.action

    async def resolve_number(self, owner_hash: bytes, number: int, now: datetime) -> str | None:
        """For channels that show menus as numbered lists: the latest menu counts."""
        latest = await self._s.scalar(
            select(ButtonToken.menu_id)
            .where(ButtonToken.owner_hash == owner_hash)
            .order_by(ButtonToken.serial.desc())
            .limit(1)
        )
        if latest is None:
            return None
        row = await self._s.scalar(
            select(ButtonToken).where(ButtonToken.menu_id == latest,
                                      ButtonToken.position == number)
        )
        if row is None or row.expires_at < now:
            return None
        return row.action

    async def purge_expired(self, now: datetime) -> None:
        await self._s.execute(delete(ButtonToken).where(ButtonToken.expires_at < now))

    async def forget_owner(self, owner_hash: bytes) -> None:
        await self._s.execute(delete(ButtonToken).where(ButtonToken.owner_hash == owner_hash))
