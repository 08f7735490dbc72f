"""Who may pass: the admin's session (a cookie of its own, which a
confidant's console session never opens), the per-session token every change
must carry (CSRF), the same-origin check, and the page language.

A session is begun only by redeeming a one-time link from ``confidant admin
token --admin NAME`` and ends after `SESSION_SECONDS` or on logout.  Every
route asks the gate first; a request without a session gets nothing but a
refusal, and a change without the session's token or from another site is
refused before it reaches the admin service.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

log = logging.getLogger("confidant.webadmin")

SESSION_SECONDS = 8 * 3600
"""One working day; after that a new link is needed."""
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
LANG_COOKIE = "confidant_admin_lang"


class Sessions(Protocol):
    """The web channel's cookie sessions of one kind (`WebChannel.sessions`)."""

    cookie_name: str

    async def begin(self, response: web.StreamResponse, subject: str) -> None: ...

    async def subject(self, request: web.Request) -> str | None: ...

    async def end(self, request: web.Request, response: web.StreamResponse) -> str | None: ...


@dataclass(frozen=True)
class Admin:
    """The admin behind a request, and the token their changes must carry."""

    name: str
    csrf: str


def csrf_token(session_id: str) -> str:
    """The session's change token: derived from the session id (which the
    page never sees: the cookie is HttpOnly), so another site can neither
    read nor guess it, and it dies with the session."""
    return hashlib.sha256(b"confidant-admin-csrf\0" + session_id.encode()).hexdigest()[:40]


class Gate:
    """The checks every admin route makes before doing anything."""

    def __init__(self, sessions: Sessions, same_origin: Callable[[web.Request], bool],
                 languages: Sequence[str], default_language: str) -> None:
        self.sessions = sessions
        self.same_origin = same_origin
        self.languages = tuple(languages) or (default_language,)
        self.default_language = default_language

    async def admin(self, request: web.Request) -> Admin | None:
        """The logged-in admin, or None (no cookie, unknown or expired session)."""
        name = await self.sessions.subject(request)
        if name is None:
            return None
        sid = request.cookies.get(self.sessions.cookie_name, "")
        return Admin(name=name, csrf=csrf_token(sid))

    async def change_allowed(self, request: web.Request, admin: Admin,
                             token: str | None) -> bool:
        """A change must come from our own pages and carry the session's token."""
        if not self.same_origin(request):
            log.info("webadmin: cross-site change refused")
            return False
        given = token or request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode(), admin.csrf.encode()):
            log.info("webadmin: change without the session token refused")
            return False
        return True

    def language(self, request: web.Request) -> str:
        """The admin's choice (a language link, then the cookie it sets),
        else the browser's first language we have, else the organisation's."""
        for chosen in (request.query.get("lang", ""), request.cookies.get(LANG_COOKIE, "")):
            if chosen in self.languages:
                return chosen
        for part in request.headers.get("Accept-Language", "").split(","):
            code = part.split(";")[0].strip().split("-")[0].lower()
            if code in self.languages:
                return code
        return self.default_language


Redeem = Callable[[str], Awaitable[str | None]]
"""One-time login token → the admin's name, or None (unknown, used, expired)."""
