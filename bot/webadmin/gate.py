"""Who may pass: the admin's session, the per-session token every change
must carry (CSRF), the same-origin check, and the page language.

A session is begun only by trading a one-time link from ``confidant admin
token --admin NAME`` with the admin service (`AccountOps.login`), which keeps
it (as a hash) and ends it after eight hours, at logout, or when the account
is removed.  The browser holds its secret in an HttpOnly, SameSite=Strict
cookie of its own (``__Host-`` and Secure behind https), which a confidant's
console cookie never opens.  A request without a live session gets nothing
but a refusal, and a change without the session's token or from another
site is refused before it reaches the admin service.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger("confidant.webadmin")

SESSION_SECONDS = 8 * 3600
"""How long a session lasts (the service's `ADMIN_SESSION_LIFETIME`; a test
holds the two equal)."""
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
LANG_COOKIE = "confidant_admin_lang"
MAX_SID = 200


@dataclass(frozen=True)
class Admin:
    """The admin behind a request, and the token their changes must carry."""

    name: str
    csrf: str


def csrf_token(session_id: str) -> str:
    """The session's change token: derived from the session secret (which
    the page never sees: the cookie is HttpOnly), so another site can
    neither read nor guess it, and it dies with the session."""
    return hashlib.sha256(b"confidant-admin-csrf\0" + session_id.encode()).hexdigest()[:40]


SessionLookup = Callable[[str], Awaitable[str | None]]
"""Session secret → the admin's name, or None (the admin service's check)."""


class Gate:
    """The checks every admin route makes before doing anything.

    ``lookup`` is the admin service's session check (session secret → the
    admin's name or None), ``same_origin`` the web channel's."""

    def __init__(self, lookup: SessionLookup, same_origin: Callable[[web.Request], bool],
                 secure: bool, languages: Sequence[str], default_language: str) -> None:
        self.lookup = lookup
        self.same_origin = same_origin
        self.secure = secure
        self.cookie_name = "__Host-confidant-admin" if secure else "confidant_admin"
        self.languages = tuple(languages) or (default_language,)
        self.default_language = default_language

    def session_id(self, request: web.Request) -> str:
        sid = request.cookies.get(self.cookie_name, "")
        return sid if 0 < len(sid) <= MAX_SID else ""

    async def admin(self, request: web.Request) -> Admin | None:
        """The logged-in admin, or None (no cookie, unknown or ended session)."""
        sid = self.session_id(request)
        if not sid:
            return None
        name = await self.lookup(sid)
        if name is None:
            return None
        return Admin(name=name, csrf=csrf_token(sid))

    def had_session(self, request: web.Request) -> bool:
        """The browser still sends a session cookie (so the session ended)."""
        return bool(self.session_id(request))

    def begin(self, response: web.StreamResponse, sid: str) -> None:
        """Hand the browser its session secret.  No Max-Age: the cookie also
        goes when the browser closes, on a shared computer too."""
        response.set_cookie(self.cookie_name, sid, httponly=True, samesite="Strict",
                            secure=self.secure, path="/")

    def end(self, response: web.StreamResponse) -> None:
        response.del_cookie(self.cookie_name, path="/")

    async def change_allowed(self, request: web.Request, admin: Admin,
                             token: str | None) -> bool:
        """A change must come from our own pages and carry the session's token."""
        if not self.same_origin(request):
            log.info("webadmin: cross-site change refused")
            return False
        given = token or request.headers.get(CSRF_HEADER) or ""
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
