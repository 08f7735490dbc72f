"""The built-in web channel: an anonymous chat page for employees and a chat
console for confidants, served by the bot itself on aiohttp.

Employees need no account and no cookie: the page keeps a random web identity
in ``sessionStorage`` and presents it on its WebSocket.  Confidants log in
with a one-time link and get an HttpOnly session cookie.  Both sides exchange
JSON over a WebSocket; the conversation of each identity is kept (encrypted by
the store) in the channel state so that a reload or a resume shows it again.

This module wires the parts together, delivers the core's messages and lets
other parts of the bot mount their pages on the same site; the parts are
`pages` (HTML shells and static files), `sockets` (the tabs' WebSockets),
`tabs` (open tabs and their locks), `history` (what is kept per identity),
`resume` and `receipts` (resume receipts), `console` (console log-in),
`sessions` (cookie sessions) and `security` (headers, origins, the guard).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiohttp import web

from bot.channels.base import ChannelError, ChannelState, InboundHandler
from bot.channels.web.console import CONSOLE_SESSION_SECONDS, ConsoleDoor
from bot.channels.web.history import Histories, without_erased
from bot.channels.web.pages import PAGES, Pages
from bot.channels.web.resume import ResumeDesk
from bot.channels.web.security import add_security_headers, allowed_origins, guard, same_origin
from bot.channels.web.sessions import WebSessions
from bot.channels.web.sockets import OPENING_SLOT, Sockets
from bot.channels.web.tabs import Tabs
from domain.ids import ChannelName
from domain.messages import Outbound, OutboundKind, SendResult
from domain.vocabulary import Control, Role

log = logging.getLogger("confidant.web")

MAX_TEXT = 4000
MAX_INLINE_IMAGE = 2 * 1024 * 1024
MAX_REQUEST = 64 * 1024

OWN_PATHS = (*PAGES, "/static", "/ws", "/console", "/api", "/healthz")
"""Where the channel's own routes live; `WebChannel.mount` keeps off them."""
_PREFIX = re.compile(r"/[a-z0-9][a-z0-9_-]{0,31}")
_KIND = re.compile(r"[a-z][a-z0-9]{0,15}")


class WebChannel:
    """`Channel` serving the employee page and the confidant console."""

    name = ChannelName("web")
    numbered_menus = False
    end_to_end = False  # the bot's own site: TLS at best, and the bot reads it
    idempotent_sends = True

    def __init__(
        self,
        listen: str,
        public_url: str | None,
        state: ChannelState,
        redeem_login: Callable[[str], Awaitable[str | None]],
        languages: Sequence[str],
        default_language: str,
        org_name: str,
        *,
        clock: Callable[[], float] = time.time,
        max_text: int = MAX_TEXT,
        retention_days: int | None = None,
        greet_new: bool = False,
        console_opening: str | None = None,
    ) -> None:
        self.listen = listen
        self.public_url = public_url.rstrip("/") if public_url else None
        self.state = state
        self.redeem_login = redeem_login
        self.languages = [str(lang) for lang in languages] or [default_language]
        self.default_language = default_language
        self.org_name = org_name
        self.clock = clock
        self.max_text = max_text
        self.retention_seconds = retention_days * 86400 if retention_days else None
        self._secure_cookie = bool(self.public_url and self.public_url.startswith("https://"))
        self._mounts: list[tuple[str, web.Application]] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._origins: set[str] = set()
        self.console_sessions = WebSessions(
            state, cookie_name="__Host-confidant" if self._secure_cookie else "confidant_console",
            key_kind="csess", lifetime=CONSOLE_SESSION_SECONDS, secure=self._secure_cookie,
            clock=clock)
        """The confidants' console sessions (their address as subject)."""
        self.tabs = Tabs()
        self.histories = Histories(state, clock, self.retention_seconds)
        self.resume = ResumeDesk(state, self.histories, self.tabs, self.same_origin, clock)
        self.pages = Pages(org_name, self.languages, default_language, max_text)
        self.console = ConsoleDoor(redeem_login, self.console_sessions, self.pages, self.tabs,
                                   self.same_origin)
        self.sockets = Sockets(self.name, self.histories, self.tabs, self.resume,
                               self.console_sessions, self.same_origin, clock,
                               max_text=max_text, greet_new=greet_new,
                               console_opening=console_opening)

    @property
    def greet_new(self) -> bool:
        """Say ``/start`` to the core for every new identity, so the page opens
        with the welcome and the privacy notice instead of an empty box."""
        return self.sockets.greet_new

    @property
    def console_opening(self) -> str | None:
        """Command sent for a console when its page loads (``/cases``), so the
        confidant sees their cases and deadlines without typing."""
        return self.sockets.console_opening

    @console_opening.setter
    def console_opening(self, command: str | None) -> None:
        self.sockets.console_opening = command

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The bound port (useful when listening on port 0 in tests)."""
        if self._port is None:
            return int(self.listen.rsplit(":", 1)[1])
        return self._port

    def _base_url(self) -> str:
        if self.public_url:
            return self.public_url
        host = self.listen.rsplit(":", 1)[0] or "127.0.0.1"
        if host in ("0.0.0.0", "::", "[::]"):  # noqa: S104 - only naming the wildcard
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    def url_for_employee(self) -> str:
        """Address of the employee chat page, for the demo and the docs to print."""
        return self._base_url() + "/"

    def url_for_console(self, token: str | None = None) -> str:
        """Address of the confidant console, or of its one-time login link."""
        if token is None:
            return self._base_url() + "/console"
        return self._base_url() + "/console/login?token=" + token

    @property
    def cookie_name(self) -> str:
        """Name of the console's session cookie."""
        return self.console_sessions.cookie_name

    # ------------------------------------------------------ pages of others

    def mount(
        self, prefix: str, routes: web.Application | Iterable[web.AbstractRouteDef]
    ) -> None:
        """Serve more pages on the channel's own site, under ``prefix``.

        This is how other parts of the bot (the admin console) put their pages
        next to the employee page and the confidant console, on the same port
        and origin, without a server of their own.  ``routes`` is an aiohttp
        sub-application or route definitions (``web.RouteTableDef``,
        ``[web.get("/x", handler)]``); their paths are relative to ``prefix``
        (``mount("/admin", [web.get("/grid", h)])`` serves ``/admin/grid``).

        Mounted routes get everything the channel's own pages get: the same
        security headers on every response, errors and WebSocket upgrades
        included (`bot.channels.web.security.SECURITY_HEADERS`: a CSP without
        inline script or style and with no external source, ``frame-ancestors
        'none'``, ``no-store`` …), the same 64 KiB request limit, and the
        same guard that answers an unexpected failure with a kind 500 and logs
        only its type.  Their pages must therefore load scripts and styles
        from the same origin (their own static route, or the channel's
        ``/static/common.js`` and ``/static/style.css``).  For log-ins and
        forms, use `sessions` (an HttpOnly, SameSite=Strict cookie of its
        own), `same_origin` (refuse cross-site POSTs) and `url_for` (links to
        print or send).

        Call it before `start` (or `make_app`); ``prefix`` is a plain path
        (``/admin``) that none of the channel's own pages uses.  Raises
        ValueError for a bad or taken prefix, RuntimeError once running."""
        if self._runner is not None:
            raise RuntimeError("web channel: mount() must be called before start()")
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"web channel: bad mount prefix {prefix!r} (like /admin)")
        taken = {"/" + p.strip("/").split("/")[0] for p in OWN_PATHS} | {
            p for p, _ in self._mounts}
        if prefix in taken:
            raise ValueError(f"web channel: mount prefix {prefix} is already in use")
        if isinstance(routes, web.Application):
            sub = routes
        else:
            sub = web.Application()
            sub.add_routes(routes)
        self._mounts.append((prefix, sub))

    def sessions(self, kind: str, lifetime: float) -> WebSessions:
        """Cookie sessions for a mounted part (``kind`` such as ``"admin"``):
        a cookie and state keys of their own, so a confidant's console session
        never opens them, nor theirs the console.  Secure (``__Host-``) cookies
        when the public URL is https, like the console's."""
        if not _KIND.fullmatch(kind) or kind in ("console", "csess"):
            raise ValueError(f"web channel: bad session kind {kind!r}")
        cookie = f"__Host-confidant-{kind}" if self._secure_cookie else f"confidant_{kind}"
        return WebSessions(self.state, cookie_name=cookie, key_kind=f"sess-{kind}",
                           lifetime=lifetime, secure=self._secure_cookie, clock=self.clock)

    def same_origin(self, request: web.Request) -> bool:
        """True when ``request`` comes from one of this site's own pages;
        check it on every state-changing request (POST, WebSocket)."""
        return same_origin(request, self._origins, strict=self.public_url is not None)

    def url_for(self, path: str) -> str:
        """Absolute address of ``path`` on this site (the public URL when set)."""
        return self._base_url() + path

    def make_app(self) -> web.Application:
        """Build the aiohttp application (also used by HTTP-level tests)."""
        app = web.Application(client_max_size=MAX_REQUEST, middlewares=[guard])
        app.on_response_prepare.append(add_security_headers)
        for path in PAGES:
            app.router.add_get(path, self.pages.page)
        app.router.add_get("/static/{name}", self.pages.static)
        app.router.add_get("/ws", self.sockets.employee)
        app.router.add_get("/console/ws", self.sockets.console)
        app.router.add_get("/console/login", self.console.login)
        app.router.add_post("/console/logout", self.console.logout)
        app.router.add_post("/api/resume", self.resume.handle)
        app.router.add_get("/healthz", self.pages.health)
        for prefix, sub in self._mounts:
            app.add_subapp(prefix, sub)
        return app

    async def start(self, on_inbound: InboundHandler) -> None:
        """Serve the pages; returns once the socket is listening."""
        self.sockets.on_inbound = on_inbound
        host, _, port = self.listen.rpartition(":")
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host or "127.0.0.1", int(port))
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            self._runner = None
            reason = os.strerror(err.errno) if err.errno else type(err).__name__
            raise ChannelError(
                f"web.listen: cannot listen on {self.listen} ({reason}); "
                "is another program using that port?"
            ) from None
        addresses = self._runner.addresses
        self._port = int(addresses[0][1]) if addresses else int(port)
        self._origins = allowed_origins(self.listen, self.port, self.public_url)
        log.info("web: channel listening")

    def attach(self, on_inbound: InboundHandler, port: int) -> None:
        """Wire a handler without binding a socket (aiohttp test client)."""
        self.sockets.on_inbound = on_inbound
        self._port = port
        self._origins = allowed_origins(self.listen, port, self.public_url)

    async def stop(self) -> None:
        """Close every tab politely, then the server."""
        await self.tabs.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        log.info("web: channel stopped")

    # ---------------------------------------------------------------- delivery

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        """Push a message to every open tab of the address and keep it in its
        history; a retried send with the same key is neither stored nor shown
        twice.  Controls riding on a message act after it is shown: ``forget``
        erases the identity, ``case-erase`` drops from the history and from
        the open tabs every item that names that case (`without_erased`).
        The notice of the erasure names the code too, so it is kept only
        until a page load after it was seen (`shown_once`).

        The answer to a console's page-load command (addressed to its
        `OPENING_SLOT`) replaces the previous one in the history rather than
        being added: a confidant who reloads must see their cases once, as
        they are now, and the real conversation must not be pushed out of the
        kept history by stale copies.  It is kept, not just shown, because a
        reconnect redraws the page from the history and the overview may be
        delivered after the tab that asked for it is gone.  Only the
        confidant's own answers get this: were the address no confidant's
        any more, the core's answers to it are ordinary messages."""
        address, opening = out.to.address, False
        if address.endswith(OPENING_SLOT):
            address = address[: -len(OPENING_SLOT)]
            opening = out.role == Role.CONFIDANT
        if out.kind == OutboundKind.CONTROL:
            # Case-room housekeeping is a Matrix idea; the web shows nothing.
            return SendResult(platform_message_id=None)
        if out.control == Control.FORGET:
            farewell = self._item_from_outbound(dataclasses.replace(out, case=None, menu=None))
            await self.forget(address, farewell=farewell)
            return SendResult(platform_message_id=farewell["id"])
        async with self.tabs.lock(address):
            history = await self.histories.load(address)
            known = history["keys"].get(idempotency_key)
            if known is not None:
                return SendResult(platform_message_id=known)
            erased: str | None = None
            dropped: list[str] = []
            if out.control == Control.CASE_ERASE and out.case:
                erased = str(out.case)
                kept = without_erased(history["items"], erased)
                staying = {id(i) for i in kept}
                dropped = [str(i["id"]) for i in history["items"]
                           if id(i) not in staying and "id" in i]
                history["items"] = kept
                # The notice outlives the case, so it must not be tagged with it.
                out = dataclasses.replace(out, case=None)
            item = self._item_from_outbound(out)
            if erased is not None:
                item["once"] = True
                item["seen"] = bool(self.tabs.of(address))
            if opening:
                item["opening"] = True
                history["items"] = [i for i in history["items"] if not i.get("opening")]
            if erased is not None or opening or self.histories.needs_compacting(address, history):
                history["items"].append(item)
                history["keys"][idempotency_key] = item["id"]
                await self.histories.save(address, history)
            else:  # the common case: one small sealed line, not the whole history
                await self.histories.append(address, item, idempotency_key)
            for tab in self.tabs.of(address):
                if erased is not None:
                    await tab.push({"type": "case-erased", "case": erased, "drop": dropped})
                await tab.push({"type": "message", "item": item})
            if erased is not None:
                log.info("web: case history dropped for case %s", erased)
            if out.case:
                await self.resume.maybe_receipt(address, str(out.case))
        return SendResult(platform_message_id=item["id"])

    def _item_from_outbound(self, out: Outbound) -> dict[str, Any]:
        """Turn an `Outbound` into the JSON the page renders (text, buttons, case)."""
        source = {
            OutboundKind.RELAY: "relay",
            OutboundKind.URGENT: "urgent",
        }.get(out.kind, "bot")
        item: dict[str, Any] = {
            "id": secrets.token_hex(8),
            "from": source,
            "text": out.text,
            "ts": int(self.clock()) // 60 * 60,
        }
        if out.case:
            item["case"] = str(out.case)
        if out.about:
            item["about"] = [str(code) for code in out.about]
        if out.menu is not None:
            item["buttons"] = [
                [{"label": b.label, "token": b.token} for b in row] for row in out.menu.rows
            ]
        if out.media is not None:
            media = out.media
            if (
                media.mime_type in ("image/jpeg", "image/png", "image/webp")
                and len(media.data) <= MAX_INLINE_IMAGE
            ):
                encoded = base64.b64encode(media.data).decode()
                item["image"] = f"data:{media.mime_type};base64,{encoded}"
            else:
                item["attachment"] = media.filename
            if media.caption:
                item["caption"] = media.caption
        return item

    async def forget(self, address: str, farewell: dict[str, Any] | None = None) -> None:
        """Erase what the web channel keeps for an employee (history, resume
        receipts) and clear their open tabs; called when they use ``/forget``.
        ``farewell`` (the core's "all erased" message) is shown, never stored."""
        async with self.tabs.lock(address):
            record = await self.histories.employee(address)
            if record is not None:
                await self.resume.void(record)
            await self.histories.erase(address)
            frame: dict[str, Any] = {"type": "forgotten"}
            if farewell is not None:
                frame["item"] = farewell
            for tab in self.tabs.of(address):
                await tab.push(frame)
                with contextlib.suppress(Exception):
                    await tab.ws.close()
        log.info("web: identity erased")

    # ------------------------------------------------------------------ state
