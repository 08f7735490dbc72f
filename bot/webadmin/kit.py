"""What every section of the console shares: the gate, the pages, the admin
service, the clock; and the two wrappers every route goes through, `page`
for what an admin reads and `change` for what an admin changes.

Both refuse a request without an admin session before the section's code
runs (so no route can forget to); `change` also refuses a request from
another site or without the session's token.  A section's code therefore
only ever runs for a logged-in admin, and only ever reaches the admin
service it is given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web
from multidict import MultiDict

from bot.webadmin.gate import CSRF_FIELD, LANG_COOKIE, Admin, Gate
from bot.webadmin.pages import Pages, View
from handlers.administration.problems import Problem, localised
from handlers.administration.service import AdminService
from handlers.i18n import LANGUAGE_NAMES

log = logging.getLogger("confidant.webadmin")

PageHandler = Callable[[View], Awaitable[web.StreamResponse]]
ChangeHandler = Callable[[View, "Form"], Awaitable[web.StreamResponse]]
LOGIN_COMMAND = "confidant admin token --admin NAME"
ServiceFactory = Callable[[str], AbstractAsyncContextManager["AdminService"]]
"""Actor (``admin:web:<name>``) → the admin service in one transaction."""


@dataclass
class Form:
    """The fields of a posted form (or of a script's post); uploads apart."""

    fields: MultiDict[str] = field(default_factory=MultiDict)
    files: dict[str, bytes] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        value = self.fields.get(name, default)
        return value.strip() if isinstance(value, str) else default

    def all(self, name: str) -> list[str]:
        return [v for v in self.fields.getall(name, []) if isinstance(v, str)]

    def checked(self, name: str) -> bool:
        return self.get(name) not in ("", "0", "off", "false")

    def as_dict(self) -> dict[str, str]:
        return {k: self.get(k) for k in self.fields if k != CSRF_FIELD}


@dataclass
class Kit:
    """The console's shared parts, handed to every section."""

    gate: Gate
    pages: Pages
    open_service: ServiceFactory
    """Opens the admin service (`handlers.administration`) for one admin in
    one transaction: the only thing the console's routes can ask for data or
    changes."""
    timezone: ZoneInfo
    clock: Callable[[], float] = time.time

    def service(self, view: View) -> AbstractAsyncContextManager[AdminService]:
        """The admin service for this request's admin; everything done with
        it commits together, audited under the admin's name."""
        assert view.admin is not None
        return self.open_service(f"admin:web:{view.admin.name}")

    def problem_text(self, view: View, problem: Problem) -> str:
        """A refusal or warning of the service in the admin's language."""
        return view.tt(problem.key, **localised(problem, view.tt))

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def today(self) -> date:
        return self.now().astimezone(self.timezone).date()

    async def view(self, request: web.Request, admin: Admin | None) -> View:
        return View(request=request, admin=admin, lang=self.gate.language(request),
                    tr=self.pages.tr)

    def refused(self, view: View, status: int, heading: str, text: str,
                command: str = LOGIN_COMMAND) -> web.Response:
        """A refusal page (401, 403, 404) in the admin's language."""
        if wants_json(view.request):
            return web.json_response({"ok": False, "error": view.t(text)}, status=status)
        return self.pages.render(view, "refused.html", status=status, heading=heading,
                                 text=text, command=command,
                                 language_links=language_links(view, self.gate.languages))

    def no_session(self, view: View) -> web.Response:
        """401: never logged in, or the session ended (expired, logged out)."""
        text = "login.expired" if self.gate.had_session(view.request) else "login.needed"
        response = self.refused(view, 401, "login.needed_title", text)
        self.gate.end(response)
        return response

    async def _signed_in(self, request: web.Request) -> tuple[Admin | None, View]:
        """The request's admin (None without a live session) and its view:
        the one prelude every route shares, so pages and changes cannot
        disagree about who is signed in."""
        admin = await self.gate.admin(request)
        return admin, await self.view(request, admin)

    def page(self, handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap a route that shows something: an admin session or nothing."""
        async def route(request: web.Request) -> web.StreamResponse:
            admin, view = await self._signed_in(request)
            if admin is None:
                log.info("webadmin: page without a session refused")
                return self.no_session(view)
            response = await handler(view)
            return remember_language(request, response, self.gate.languages)
        return route

    def change(self, handler: ChangeHandler
               ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap a route that changes something: an admin session, our own
        site, and the session's token, checked before the form is read."""
        async def route(request: web.Request) -> web.StreamResponse:
            admin, view = await self._signed_in(request)
            if admin is None:
                log.info("webadmin: change without a session refused")
                return self.no_session(view)
            form = await read_form(request)
            if not await self.gate.change_allowed(request, admin, form.get(CSRF_FIELD) or None):
                return self.refused(view, 403, "title", "csrf", command="")
            return await handler(view, form)
        return route

    def render(self, view: View, template: str, status: int = 200,
               **context: Any) -> web.Response:
        """A section's page with the console's frame around it."""
        return self.pages.render(view, template, status=status,
                                 language_links=language_links(view, self.gate.languages),
                                 **context)


async def read_form(request: web.Request) -> Form:
    """A urlencoded or multipart form, or a script's JSON object, as fields."""
    form = Form()
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            data = {}
        if isinstance(data, Mapping):
            for key, value in data.items():
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, str | int):
                        form.fields.add(str(key), str(item))
        return form
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                form.files[part.name] = await part.read()
            else:
                form.fields.add(part.name, await part.text())
        return form
    posted = await request.post()
    for key, value in posted.items():
        if isinstance(value, str):
            form.fields.add(key, value)
    return form


def wants_json(request: web.Request) -> bool:
    """The console's scripts ask for JSON; plain forms get pages."""
    return "application/json" in request.headers.get("Accept", "")


def language_links(view: View, languages: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(code, name, link) for the language switch: this page in each language."""
    return [(code, LANGUAGE_NAMES.get(code, code),
             str(view.request.rel_url.update_query(lang=code)))
            for code in languages]


def remember_language(request: web.Request, response: web.StreamResponse,
                      languages: tuple[str, ...]) -> web.StreamResponse:
    """A ``?lang=`` link sets the admin's language for the next pages too."""
    chosen = request.query.get("lang", "")
    if chosen in languages:
        response.set_cookie(LANG_COOKIE, chosen, path="/admin", samesite="Strict",
                            httponly=True, max_age=365 * 86400)
    return response


def json_ok(**values: object) -> web.Response:
    return web.json_response({"ok": True, **values})


def back(location: str) -> web.HTTPSeeOther:
    """After a plain form: show the page again (post, redirect, get)."""
    return web.HTTPSeeOther(location=location)
