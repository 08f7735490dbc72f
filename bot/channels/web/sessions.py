"""Cookie sessions of the web channel: a random id in an HttpOnly,
SameSite=Strict cookie, and what it stands for (a confidant's address, an
admin's name …) kept, encrypted by the store, in the channel state.

One class serves the confidant console and any page mounted on the channel
(see `WebChannel.mount`); each kind of session has its own cookie and its own
state keys, so a session of one kind never opens the pages of another."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable

from aiohttp import web

from bot.channels.base import ChannelState

MAX_SID = 100
"""Longer cookie values are not ours; refused before touching the state."""


def state_key(kind: str, value: str) -> str:
    """State key for ``value`` that does not contain it: keys may be stored
    readable, values are encrypted by the store."""
    return f"web:{kind}:{hashlib.sha256(value.encode()).hexdigest()}"


class WebSessions:
    """Log-in sessions of one kind, carried by one cookie.

    ``subject`` is whatever the pages need to know who is there (never shown
    to the browser: the cookie holds only a random id).  Sessions end after
    ``lifetime`` seconds or on `end`."""

    def __init__(
        self,
        state: ChannelState,
        *,
        cookie_name: str,
        key_kind: str,
        lifetime: float,
        secure: bool,
        clock: Callable[[], float],
    ) -> None:
        self.state = state
        self.cookie_name = cookie_name
        self.key_kind = key_kind
        self.lifetime = lifetime
        self.secure = secure
        self.clock = clock

    def _key(self, sid: str) -> str:
        return state_key(self.key_kind, sid)

    async def begin(self, response: web.StreamResponse, subject: str) -> None:
        """Open a session for ``subject`` and set its cookie on ``response``
        (typically the redirect that follows a one-time login link)."""
        sid = secrets.token_urlsafe(32)
        session = {"address": subject, "expires": self.clock() + self.lifetime}
        await self.state.set(self._key(sid), json.dumps(session).encode())
        response.set_cookie(
            self.cookie_name,
            sid,
            httponly=True,
            samesite="Strict",
            secure=self.secure,
            path="/",
            max_age=int(self.lifetime),
        )

    async def subject(self, request: web.Request) -> str | None:
        """Who the request's session belongs to, or None (no cookie, unknown
        or expired session; an expired one is deleted on the way)."""
        sid = request.cookies.get(self.cookie_name)
        if not sid or len(sid) > MAX_SID:
            return None
        raw = await self.state.get(self._key(sid))
        if raw is None:
            return None
        session = json.loads(raw)
        if float(session["expires"]) < self.clock():
            await self.state.delete(self._key(sid))
            return None
        return str(session["address"])

    async def end(self, request: web.Request, response: web.StreamResponse) -> str | None:
        """End the request's session (if any) and clear its cookie on
        ``response``; returns whose session it was."""
        subject = await self.subject(request)
        sid = request.cookies.get(self.cookie_name)
        if sid and subject is not None:
            await self.state.delete(self._key(sid))
        response.del_cookie(self.cookie_name, path="/")
        return subject
