"""The admin console's routes under ``/admin``: log-in with a one-time link,
log-out, its own scripts and styles, and the sections (rota, confidants,
absences, rooms, figures, rota file), each in its own module.

`mount` is the one place that puts the console on the web channel; the app
calls it with the admin service, and the console is then served on the
channel's port with the channel's security headers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.webadmin import absences_pages, confidants_pages, figures_pages, rooms_pages, rota_pages
from bot.webadmin.gate import SESSION_SECONDS, Gate
from bot.webadmin.kit import Form, Kit, ServiceFactory, read_form
from bot.webadmin.pages import Pages, View
from handlers.i18n import Translator

log = logging.getLogger("confidant.webadmin")

STATIC = Path(__file__).with_name("static")
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}
_STATIC_NAME = re.compile(r"[a-z0-9_-]+\.(js|css)")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,100}")


class Site(Protocol):
    """What the console needs of the web channel (`bot.channels.web.WebChannel`)."""

    def mount(self, prefix: str, routes: Sequence[web.RouteDef]) -> None: ...

    def same_origin(self, request: web.Request) -> bool: ...

    def url_for(self, path: str) -> str: ...


class AdminConsole:
    """The console's routes, built around one `Kit`."""

    def __init__(self, kit: Kit, console_link: Callable[[str], str]) -> None:
        self.kit = kit
        self.console_link = console_link
        """A confidant's one-time console secret → the link to send them."""

    def routes(self) -> list[web.RouteDef]:
        kit = self.kit
        return [
            web.get("", kit.page(self.home)),
            web.get("/", kit.page(self.home)),
            web.get("/login", self.login_page),
            web.post("/login", self.login),
            web.post("/logout", kit.change(self.logout)),
            web.get("/static/{name}", self.static),
            *rota_pages.routes(kit),
            *confidants_pages.routes(kit, self.console_link),
            *absences_pages.routes(kit),
            *rooms_pages.routes(kit),
            *figures_pages.routes(kit),
        ]

    async def home(self, view: View) -> web.StreamResponse:
        """The console opens on the rota."""
        raise web.HTTPSeeOther(location="/admin/rota")

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        """The page a login link opens: one button that uses the link.  The
        link is spent by the button's post, not by opening it, so a mail
        scanner or a chat preview that fetches the link does not use it up."""
        view = await self.kit.view(request, None)
        token = request.query.get("token", "")
        if not _TOKEN.fullmatch(token):
            return self.kit.refused(view, 401, "login.needed_title", "login.needed")
        return self.kit.render(view, "login.html", token=token,
                               hours=SESSION_SECONDS // 3600)

    async def login(self, request: web.Request) -> web.StreamResponse:
        """Trade the one-time link for a session cookie."""
        view = await self.kit.view(request, None)
        if not self.kit.gate.same_origin(request):
            log.info("webadmin: cross-site login refused")
            return self.kit.refused(view, 403, "title", "csrf", command="")
        form = await read_form(request)
        token = form.get("token")
        opened = None
        if _TOKEN.fullmatch(token):
            async with self.kit.open_service("admin:web") as svc:
                opened = await svc.login(token)
        if opened is None:
            log.info("webadmin: login refused")
            return self.kit.refused(view, 403, "login.failed_title", "login.failed")
        _, sid = opened
        response = web.HTTPSeeOther(location="/admin/rota")
        self.kit.gate.begin(response, sid)
        log.info("webadmin: login")
        return response

    async def logout(self, view: View, form: Form) -> web.StreamResponse:
        async with self.kit.service(view) as svc:
            await svc.logout(self.kit.gate.session_id(view.request))
        response = self.kit.refused(view, 200, "logout", "login.logged_out", command="")
        self.kit.gate.end(response)
        log.info("webadmin: logout")
        return response

    async def static(self, request: web.Request) -> web.StreamResponse:
        """The console's scripts and styles; only plain names from its folder."""
        name = request.match_info["name"]
        path = STATIC / name
        if not _STATIC_NAME.fullmatch(name) or not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), content_type=STATIC_TYPES[path.suffix],
                            charset="utf-8")


def mount(site: Site, open_service: ServiceFactory, *, org_name: str,
          languages: Sequence[str], default_language: str, timezone: str,
          clock: Callable[[], float] = time.time) -> AdminConsole:
    """Serve the admin console under ``/admin`` on the web channel ``site``;
    ``open_service`` opens the admin service (actor → service in one
    transaction), the only way in to the data."""

    async def lookup(sid: str) -> str | None:
        async with open_service("admin:web") as svc:
            info = await svc.session(sid)
        return info.name if info is not None else None

    tr = Translator(default_language, languages, timezone, org_name)
    secure = site.url_for("/").startswith("https://")
    gate = Gate(lookup, site.same_origin, secure, languages, default_language)
    pages = Pages(tr, org_name, tuple(gate.languages))
    kit = Kit(gate, pages, open_service, ZoneInfo(timezone), clock)
    console = AdminConsole(kit, lambda secret: site.url_for("/console/login?token=" + secret))
    site.mount("/admin", console.routes())
    return console
