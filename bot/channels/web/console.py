"""How a confidant gets into the console and out again: a one-time login
link (``/console/login?token=…``, issued by ``confidant admin token``) is
traded for a console session cookie, and a same-origin ``POST
/console/logout`` ends it and closes the confidant's open console tabs.  The
console itself is an ordinary tab (`bot.channels.web.sockets`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.channels.web.pages import Pages
from bot.channels.web.sessions import WebSessions
from bot.channels.web.tabs import Tabs

log = logging.getLogger("confidant.web")

CONSOLE_SESSION_SECONDS = 12 * 3600


class ConsoleDoor:
    """The console's login and logout routes."""

    def __init__(
        self,
        redeem_login: Callable[[str], Awaitable[str | None]],
        sessions: WebSessions,
        pages: Pages,
        tabs: Tabs,
        same_origin: Callable[[web.Request], bool],
    ) -> None:
        self.redeem_login = redeem_login
        self.sessions = sessions
        self.pages = pages
        self.tabs = tabs
        self.same_origin = same_origin

    async def login(self, request: web.Request) -> web.StreamResponse:
        """Trade a one-time login link for a console session cookie."""
        token = request.query.get("token", "")
        address = None
        if 0 < len(token) <= 200:
            address = await self.redeem_login(token)
        if address is None:
            log.info("web: console login refused")
            body = self.pages.render("login_failed.html")
            return web.Response(status=403, body=body, content_type="text/html", charset="utf-8")
        response = web.HTTPSeeOther(location="/console")
        await self.sessions.begin(response, address)
        log.info("web: console login")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """End the console session (same-origin POST only)."""
        if not self.same_origin(request):
            raise web.HTTPForbidden(text="Cross-site request refused.")
        response = web.json_response({"ok": True})
        address = await self.sessions.end(request, response)
        if address is not None:
            for tab in self.tabs.of(address):
                await tab.push({"type": "error", "code": "login"})
                await tab.ws.close()
        log.info("web: console logout")
        return response
