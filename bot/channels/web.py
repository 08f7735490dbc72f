"""The built-in web channel: an anonymous chat page for employees and a chat
console for confidants, served by the bot itself on aiohttp.

Employees need no account and no cookie: the page keeps a random web identity
in ``sessionStorage`` and presents it on its WebSocket.  Confidants log in
with a one-time link and get an HttpOnly session cookie.  Both sides exchange
JSON over a WebSocket; the conversation of each identity is kept (encrypted by
the store) in the channel state so that a reload or a resume shows it again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import html
import json
import logging
import os
import re
import secrets
import time
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from bot.channels.base import ChannelError, ChannelState, InboundHandler
from bot.channels.web_resume import (
    Receipt,
    dummy_check,
    lockout_seconds,
    new_passphrase,
    normalize_case_code,
)
from bot.channels.web_security import add_security_headers, allowed_origins, same_origin
from bot.channels.web_sessions import WebSessions, state_key
from domain.ids import ChannelName
from domain.messages import Inbound, Outbound, OutboundKind, SendResult
from domain.vocabulary import Control, Role

log = logging.getLogger("confidant.web")

STATIC_DIR = Path(__file__).with_name("web_static")
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
}
PAGES = {
    "/": "index.html",
    "/resume": "resume.html",
    "/console": "console.html",
    "/weather": "weather.html",
}
OWN_PATHS = (*PAGES, "/static", "/ws", "/console", "/api", "/healthz")
"""Where the channel's own routes live; `WebChannel.mount` keeps off them."""
_PREFIX = re.compile(r"/[a-z0-9][a-z0-9_-]{0,31}")
_KIND = re.compile(r"[a-z][a-z0-9]{0,15}")

MAX_TEXT = 4000
MAX_WS_FRAME = 64 * 1024
HISTORY_KEEP = 500
HISTORY_SHOW = 300
KEYS_KEEP = 2000
CONSOLE_SESSION_SECONDS = 12 * 3600
HELLO_TIMEOUT = 30.0
PUSH_TIMEOUT = 5.0
MAX_INLINE_IMAGE = 2 * 1024 * 1024
UNKNOWN_CODES_KEEP = 10_000

_CLIENT_ID = re.compile(r"^[0-9A-Za-z-]{8,64}$")
_LANG = re.compile(r"^[a-z]{2,3}$")
_CASE = re.compile(r"^[A-Za-z0-9-]{3,16}$")

OPENING_SLOT = "#opening"
"""Appended to a console's address as the ``chat`` of the command said for it
on a page load.  The core answers every event where its ``chat`` says (see
`Inbound.chat`), so the overview comes back marked as the page load's own and
is kept as the one current overview instead of piling up (see `send`).  ``#``
never occurs in a web identity, so the slot cannot be mistaken for one."""


_key = state_key


@dataclass(eq=False)
class _Tab:
    """One open WebSocket: an employee tab or a console tab."""

    ws: web.WebSocketResponse
    address: str
    role: str  # "employee" | "console"
    language: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def push(self, payload: dict[str, Any]) -> None:
        """Send one JSON frame; one slow or dead tab never blocks the others."""
        if self.ws.closed:
            return
        try:
            async with self.lock:
                await asyncio.wait_for(self.ws.send_json(payload), PUSH_TIMEOUT)
        except (ConnectionError, TimeoutError, RuntimeError):
            log.info("web: push to a tab failed")


class BadInput(Exception):
    """A client frame we refuse; ``code`` is the page's message key."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class WebChannel:
    """`Channel` serving the employee page and the confidant console."""

    name = ChannelName("web")
    numbered_menus = False
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
        self.greet_new = greet_new
        """Say ``/start`` to the core for every new identity, so the page opens
        with the welcome and the privacy notice instead of an empty box."""
        self.console_opening = console_opening
        """Command sent for a console when its page loads (``/cases``), so the
        confidant sees their cases and deadlines without typing."""
        self._secure_cookie = bool(self.public_url and self.public_url.startswith("https://"))
        self.console_sessions = WebSessions(
            state, cookie_name="__Host-confidant" if self._secure_cookie else "confidant_console",
            key_kind="csess", lifetime=CONSOLE_SESSION_SECONDS, secure=self._secure_cookie,
            clock=clock)
        """The confidants' console sessions (their address as subject)."""
        self._mounts: list[tuple[str, web.Application]] = []
        self._on_inbound: InboundHandler | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._origins: set[str] = set()
        self._tabs: dict[str, set[_Tab]] = defaultdict(set)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._unknown_codes: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._pages: dict[str, bytes] = {}

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
        included (`bot.channels.web_security.SECURITY_HEADERS`: a CSP without
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
        app = web.Application(client_max_size=64 * 1024, middlewares=[_guard])
        app.on_response_prepare.append(add_security_headers)
        app.router.add_get("/", self._page)
        app.router.add_get("/resume", self._page)
        app.router.add_get("/console", self._page)
        app.router.add_get("/weather", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/ws", self._employee_ws)
        app.router.add_get("/console/ws", self._console_ws)
        app.router.add_get("/console/login", self._console_login)
        app.router.add_post("/console/logout", self._console_logout)
        app.router.add_post("/api/resume", self._resume)
        app.router.add_get("/healthz", self._health)
        for prefix, sub in self._mounts:
            app.add_subapp(prefix, sub)
        return app

    async def start(self, on_inbound: InboundHandler) -> None:
        """Serve the pages; returns once the socket is listening."""
        self._on_inbound = on_inbound
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
        self._on_inbound = on_inbound
        self._port = port
        self._origins = allowed_origins(self.listen, port, self.public_url)

    async def stop(self) -> None:
        """Close every tab politely, then the server."""
        for tabs in list(self._tabs.values()):
            for tab in list(tabs):
                with contextlib.suppress(Exception):
                    await tab.ws.close(code=1001, message=b"server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        log.info("web: channel stopped")

    # ---------------------------------------------------------------- delivery

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        """Push a message to every open tab of the address and keep it in its
        history; a retried send with the same key is neither stored nor shown
        twice.  Controls riding on a message act after it is shown: ``forget``
        erases the identity, ``case-erase`` drops that case from the history
        together with the kept page-load overview, which names it.

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
        async with self._locks[address]:
            history = await self._load_history(address)
            known = history["keys"].get(idempotency_key)
            if known is not None:
                return SendResult(platform_message_id=known)
            erased: str | None = None
            if out.control == Control.CASE_ERASE and out.case:
                erased = str(out.case)
                history["items"] = _without_erased(history["items"], erased)
                # The notice outlives the case, so it must not be tagged with it.
                out = dataclasses.replace(out, case=None)
            item = self._item_from_outbound(out)
            if opening:
                item["opening"] = True
                history["items"] = [i for i in history["items"] if not i.get("opening")]
            history["items"].append(item)
            history["keys"][idempotency_key] = item["id"]
            await self._save_history(address, history)
            for tab in list(self._tabs.get(address, ())):
                if erased is not None:
                    await tab.push({"type": "case-erased", "case": erased})
                await tab.push({"type": "message", "item": item})
            if erased is not None:
                log.info("web: case history dropped for case %s", erased)
            if out.case:
                await self._maybe_receipt(address, str(out.case))
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
        async with self._locks[address]:
            record = await self._employee_record(address)
            if record is not None:
                for code in record.get("receipts", []):
                    await self.state.delete(_key("resume", code))
            await self.state.delete(_key("emp", address))
            await self.state.delete(_key("hist", address))
            frame: dict[str, Any] = {"type": "forgotten"}
            if farewell is not None:
                frame["item"] = farewell
            for tab in list(self._tabs.get(address, ())):
                await tab.push(frame)
                with contextlib.suppress(Exception):
                    await tab.ws.close()
        log.info("web: identity erased")

    # ------------------------------------------------------------------ state

    async def _load_history(self, address: str) -> dict[str, Any]:
        raw = await self.state.get(_key("hist", address))
        if raw is None:
            return {"items": [], "keys": {}}
        data: dict[str, Any] = json.loads(raw)
        if self.retention_seconds is not None:
            oldest = self.clock() - self.retention_seconds
            data["items"] = [i for i in data["items"] if i.get("ts", 0) >= oldest]
        return data

    async def _save_history(self, address: str, history: dict[str, Any]) -> None:
        history["items"] = history["items"][-HISTORY_KEEP:]
        keys = history["keys"]
        if len(keys) > KEYS_KEEP:
            history["keys"] = dict(list(keys.items())[-KEYS_KEEP:])
        await self.state.set(_key("hist", address), json.dumps(history).encode())

    async def _employee_record(self, address: str) -> dict[str, Any] | None:
        raw = await self.state.get(_key("emp", address))
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        return data

    async def _new_identity(self) -> str:
        """Issue a random employee identity; only issued ones are accepted later,
        so nobody can present a confidant's address as their own."""
        identity = "w" + secrets.token_urlsafe(32)
        record: dict[str, list[str]] = {"receipts": [], "pending": []}
        await self.state.set(_key("emp", identity), json.dumps(record).encode())
        log.info("web: new anonymous identity")
        return identity

    async def _maybe_receipt(self, address: str, case: str) -> None:
        """First message of a case to an employee: give them a resume receipt.

        Must be called with the address lock held.  With no tab open the receipt
        waits (as a marker, never as a passphrase) for the next connection.
        """
        record = await self._employee_record(address)
        if record is None:
            return
        code = normalize_case_code(case)
        if code in record["receipts"] or case in record["pending"]:
            return
        if not self._tabs.get(address):
            record["pending"].append(case)
            await self.state.set(_key("emp", address), json.dumps(record).encode())
            return
        await self._issue_receipt(address, record, case)

    async def _issue_receipt(self, address: str, record: dict[str, Any], case: str) -> None:
        passphrase = new_passphrase()
        receipt = await Receipt.create(address, passphrase)
        code = normalize_case_code(case)
        await self.state.set(_key("resume", code), receipt.to_bytes())
        record["receipts"].append(code)
        if case in record["pending"]:
            record["pending"].remove(case)
        await self.state.set(_key("emp", address), json.dumps(record).encode())
        for tab in list(self._tabs.get(address, ())):
            await tab.push({"type": "receipt", "case": case, "passphrase": passphrase})
        log.info("web: resume receipt issued for case %s", case)

    # ------------------------------------------------------------------ pages

    def _render(self, filename: str) -> bytes:
        if filename not in self._pages:
            text = (STATIC_DIR / filename).read_text(encoding="utf-8")
            text = (
                text.replace("{{org_name}}", html.escape(self.org_name))
                .replace("{{languages}}", html.escape(",".join(self.languages)))
                .replace("{{default_language}}", html.escape(self.default_language))
                .replace("{{max_text}}", str(self.max_text))
            )
            self._pages[filename] = text.encode()
        return self._pages[filename]

    async def _page(self, request: web.Request) -> web.Response:
        """The four HTML pages; all static shells filled by their scripts."""
        body = self._render(PAGES[request.path])
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def _static(self, request: web.Request) -> web.Response:
        """Scripts, styles and the UI strings; only plain names from our folder."""
        name = request.match_info["name"]
        suffix = Path(name).suffix
        if not re.fullmatch(r"[a-z0-9_-]+\.(js|css|json)", name) or suffix not in STATIC_TYPES:
            raise web.HTTPNotFound()
        path = STATIC_DIR / name
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(
            body=path.read_bytes(), content_type=STATIC_TYPES[suffix], charset="utf-8"
        )

    async def _health(self, request: web.Request) -> web.Response:
        """Liveness probe for the operator; says nothing about anyone."""
        return web.json_response({"ok": True})

    # --------------------------------------------------------------- websocket

    async def _employee_ws(self, request: web.Request) -> web.StreamResponse:
        """Employee tab: identity comes from the page's ``hello`` frame."""
        return await self._websocket(request, "employee", self._employee_tab)

    async def _console_ws(self, request: web.Request) -> web.StreamResponse:
        """Confidant tab: identity comes from the HttpOnly session cookie."""
        return await self._websocket(request, "console", self._console_tab)

    async def _websocket(
        self, request: web.Request, role: str,
        serve: Callable[[web.Request, web.WebSocketResponse], Awaitable[None]],
    ) -> web.StreamResponse:
        """Same-origin check, then one tab served until it closes; a failure
        is answered kindly in the tab and logged by its kind only."""
        if not self.same_origin(request):
            log.info("web: cross-origin websocket refused")
            raise web.HTTPForbidden(text="This page can only be used from its own site.")
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_WS_FRAME)
        await ws.prepare(request)
        try:
            await serve(request, ws)
        except BadInput as err:
            await _refuse(ws, err.code)
        except Exception as exc:
            log.error("web: %s tab failed (%s)", role, type(exc).__name__)
            await _refuse(ws, "unavailable")
        return ws

    async def _employee_tab(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        hello = await self._read_hello(ws)
        identity = hello.get("identity")
        opening: str | None = None
        if not (
            isinstance(identity, str)
            and len(identity) < 100
            and await self._employee_record(identity) is not None
        ):
            identity = await self._new_identity()
            opening = "/start" if self.greet_new else None
        await self._serve(ws, identity, "employee", hello.get("language"), opening)

    async def _console_tab(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        address = await self.console_sessions.subject(request)
        if address is None:
            raise BadInput("login")
        hello = await self._read_hello(ws)
        opening = self.console_opening if hello.get("fresh") is True else None
        await self._serve(ws, address, "console", hello.get("language"), opening)

    async def _read_hello(self, ws: web.WebSocketResponse) -> dict[str, Any]:
        try:
            msg = await ws.receive(timeout=HELLO_TIMEOUT)
        except TimeoutError as err:
            raise BadInput("invalid") from err
        if msg.type != WSMsgType.TEXT:
            raise BadInput("invalid")
        data = _parse(msg.data)
        if data.get("type") != "hello":
            raise BadInput("invalid")
        language = data.get("language")
        if not (isinstance(language, str) and _LANG.match(language)):
            data["language"] = None
        return data

    async def _serve(
        self,
        ws: web.WebSocketResponse,
        address: str,
        role: str,
        language: str | None,
        opening: str | None = None,
    ) -> None:
        """Send the history, register the tab, say ``opening`` to the core on
        the person's behalf, then handle the tab's frames until it closes."""
        tab = _Tab(ws=ws, address=address, role=role, language=language)
        try:
            async with self._locks[address]:
                history = await self._load_history(address)
                ready: dict[str, Any] = {
                    "type": "ready",
                    "role": role,
                    "history": history["items"][-HISTORY_SHOW:],
                }
                if role == "employee":
                    ready["identity"] = address
                await tab.push(ready)
                self._tabs[address].add(tab)
                record = await self._employee_record(address) if role == "employee" else None
                if record is not None:
                    for case in list(record["pending"]):
                        await self._issue_receipt(address, record, case)
            log.info("web: %s tab opened", role)
            if opening is not None:
                await self._say_for(tab, opening, role == "console")
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data: dict[str, Any] = {}
                try:
                    data = _parse(msg.data)
                    await self._handle_frame(tab, data)
                except BadInput as err:
                    await tab.push(_error(err.code, data))
                except Exception as exc:
                    # The page keeps the message and sends it again later.
                    log.error("web: frame failed (%s)", type(exc).__name__)
                    await tab.push(_error("retry", data))
        finally:
            self._tabs[address].discard(tab)
            if not self._tabs[address]:
                del self._tabs[address]
            log.info("web: %s tab closed", role)

    async def _say_for(self, tab: _Tab, text: str, to_slot: bool = False) -> None:
        """Hand the core a command the page did not type (the greeting, the
        console's case list); it is not shown as the person's own words, and a
        failure only costs the convenience, so it is logged and dropped.
        ``to_slot`` has the answer come back to the `OPENING_SLOT`."""
        if self._on_inbound is None:
            return
        nonce = secrets.token_hex(8)
        event_id = hashlib.sha256(f"{tab.address}\0open\0{nonce}".encode()).hexdigest()[:32]
        inbound = Inbound(
            channel=self.name,
            sender=tab.address,
            chat=tab.address + OPENING_SLOT if to_slot else tab.address,
            event_id=event_id,
            text=text,
            language_hint=tab.language,
        )
        try:
            await self._on_inbound(inbound)
        except Exception as exc:
            log.warning("web: opening command not recorded (%s)", type(exc).__name__)

    async def _handle_frame(self, tab: _Tab, data: dict[str, Any]) -> None:
        """One frame from a page: a message, a button press, or a keep-alive."""
        kind = data.get("type")
        if kind == "ping":
            await tab.push({"type": "pong"})
            return
        if kind not in ("message", "button"):
            raise BadInput("invalid")
        client_id = data.get("id")
        if not (isinstance(client_id, str) and _CLIENT_ID.match(client_id)):
            raise BadInput("invalid")
        case_hint = None
        if tab.role == "console":
            case = data.get("case")
            if isinstance(case, str) and _CASE.match(case):
                case_hint = case
        if kind == "message":
            text = data.get("text")
            if not isinstance(text, str) or not text.strip():
                raise BadInput("invalid")
            if len(text) > self.max_text:
                raise BadInput("too_long")
            inbound_text: str | None = text
            button = None
            shown = text
        else:
            token = data.get("token")
            label = data.get("label", "")
            if not isinstance(token, str) or not 0 < len(token) <= 256:
                raise BadInput("invalid")
            if not isinstance(label, str):
                label = ""
            inbound_text = None
            button = token
            shown = label[:200]
        await self._deliver_inbound(tab, client_id, inbound_text, button, shown, case_hint)

    async def _deliver_inbound(
        self,
        tab: _Tab,
        client_id: str,
        text: str | None,
        button: str | None,
        shown: str,
        case_hint: str | None,
    ) -> None:
        """Record the person's own words in their history, hand the event to
        the core, and confirm to the page only once the core has it."""
        address = tab.address
        # Namespaced per identity: one page can never collide with another's ids.
        event_id = hashlib.sha256(f"{address}\0{client_id}".encode()).hexdigest()[:32]
        item: dict[str, Any] = {
            "id": "in-" + event_id[:16],
            "cid": client_id,
            "from": "me",
            "text": shown,
            "ts": int(self.clock()) // 60 * 60,
        }
        if button is not None:
            item["button"] = True
        if case_hint:
            item["case"] = case_hint
        fresh = False
        async with self._locks[address]:
            history = await self._load_history(address)
            if not any(i.get("cid") == client_id for i in history["items"]):
                history["items"].append(item)
                await self._save_history(address, history)
                fresh = True
        inbound = Inbound(
            channel=self.name,
            sender=address,
            chat=address,
            event_id=event_id,
            text=text,
            button=button,
            language_hint=tab.language,
            case_hint=case_hint,
        )
        if fresh:
            for other in list(self._tabs.get(address, ())):
                if other is not tab:
                    await other.push({"type": "message", "item": item})
        if self._on_inbound is None:
            raise RuntimeError("web channel used before start()")
        try:
            await self._on_inbound(inbound)
        except Exception as exc:
            # Only the type: database errors can quote parameters.
            log.error("web: inbound event could not be recorded (%s)", type(exc).__name__)
            if fresh:
                async with self._locks[address]:
                    history = await self._load_history(address)
                    history["items"] = [i for i in history["items"] if i.get("cid") != client_id]
                    await self._save_history(address, history)
            await tab.push({"type": "error", "code": "retry", "id": client_id})
            return
        await tab.push({"type": "ack", "id": client_id, "item": item})

    # ----------------------------------------------------------------- console

    async def _console_login(self, request: web.Request) -> web.StreamResponse:
        """Trade a one-time login link for a console session cookie."""
        token = request.query.get("token", "")
        address = None
        if 0 < len(token) <= 200:
            address = await self.redeem_login(token)
        if address is None:
            log.info("web: console login refused")
            body = self._render("login_failed.html")
            return web.Response(status=403, body=body, content_type="text/html", charset="utf-8")
        response = web.HTTPSeeOther(location="/console")
        await self.console_sessions.begin(response, address)
        log.info("web: console login")
        return response

    async def _console_logout(self, request: web.Request) -> web.StreamResponse:
        """End the console session (same-origin POST only)."""
        if not self.same_origin(request):
            raise web.HTTPForbidden(text="Cross-site request refused.")
        response = web.json_response({"ok": True})
        address = await self.console_sessions.end(request, response)
        if address is not None:
            for tab in list(self._tabs.get(address, ())):
                await tab.push({"type": "error", "code": "login"})
                await tab.ws.close()
        log.info("web: console logout")
        return response

    # ------------------------------------------------------------------ resume

    async def _resume(self, request: web.Request) -> web.Response:
        """Check a case code and passphrase; on success hand back the identity
        so the page can reopen the conversation."""
        if not self.same_origin(request):
            log.info("web: cross-origin resume refused")
            return web.json_response({"error": "forbidden"}, status=403)
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "invalid"}, status=400)
        if not isinstance(data, dict):
            return web.json_response({"error": "invalid"}, status=400)
        code_in, passphrase = data.get("code"), data.get("passphrase")
        if not (
            isinstance(code_in, str)
            and isinstance(passphrase, str)
            and 0 < len(code_in) <= 32
            and 0 < len(passphrase) <= 128
        ):
            return web.json_response({"error": "invalid"}, status=400)
        code = normalize_case_code(code_in)
        now = self.clock()
        key = _key("resume", code)
        async with self._locks["resume:" + code]:
            raw = await self.state.get(key)
            if raw is None:
                return await self._unknown_code(code, passphrase, now)
            receipt = Receipt.from_bytes(raw)
            if receipt.locked_until > now:
                return _wait(receipt.locked_until - now)
            if await receipt.matches(passphrase):
                receipt.failures = 0
                receipt.locked_until = 0.0
                await self.state.set(key, receipt.to_bytes())
                log.info("web: conversation resumed for case %s", code_in.upper())
                return web.json_response({"identity": receipt.identity})
            receipt.failures += 1
            receipt.locked_until = now + lockout_seconds(receipt.failures)
            await self.state.set(key, receipt.to_bytes())
            log.info("web: wrong resume passphrase")
            return web.json_response({"error": "wrong"}, status=403)

    async def _unknown_code(self, code: str, passphrase: str, now: float) -> web.Response:
        """Answer an unknown code exactly like a wrong passphrase (same work,
        same limit), so guessing codes teaches nothing."""
        failures, locked_until = self._unknown_codes.pop(code, (0, 0.0))
        if locked_until > now:
            self._unknown_codes[code] = (failures, locked_until)
            return _wait(locked_until - now)
        await dummy_check(passphrase)
        failures += 1
        self._unknown_codes[code] = (failures, now + lockout_seconds(failures))
        while len(self._unknown_codes) > UNKNOWN_CODES_KEEP:
            self._unknown_codes.popitem(last=False)
        log.info("web: wrong resume passphrase")
        return web.json_response({"error": "wrong"}, status=403)


def _without_case(items: list[dict[str, Any]], case: str) -> list[dict[str, Any]]:
    """History items that do not belong to ``case`` (codes compared loosely)."""
    code = normalize_case_code(case)
    return [i for i in items if normalize_case_code(str(i.get("case", ""))) != code]


def _without_erased(items: list[dict[str, Any]], case: str) -> list[dict[str, Any]]:
    """History items that may stay once ``case`` is erased: neither its own
    nor the kept page-load overview.  The overview is not tagged with a case
    yet names them all, so a reconnect would redraw the erased code from it.
    It goes on every erasure, not only when its text names the code: reading
    the core's wording to find codes would miss one silently the day that
    wording changes, whereas dropping an overview that did not name it costs
    only a convenience the next page load or a ``/cases`` gives back.  A
    ``/cases`` asked for by hand is an ordinary answer and is not touched."""
    return [i for i in _without_case(items, case) if not i.get("opening")]


def _error(code: str, frame: dict[str, Any]) -> dict[str, Any]:
    """Error frame for the page, naming the message it concerns when known."""
    error: dict[str, Any] = {"type": "error", "code": code}
    client_id = frame.get("id")
    if isinstance(client_id, str) and _CLIENT_ID.match(client_id):
        error["id"] = client_id
    return error


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer unexpected failures ourselves: aiohttp's own error log would
    write the remote address, and tracebacks can quote personal data."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.error("web: request failed (%s)", type(exc).__name__)
        return web.Response(
            status=500,
            text="Something went wrong. Nothing is lost; please try again later.",
        )


async def _refuse(ws: web.WebSocketResponse, code: str) -> None:
    """Tell the page why, then close; the page may already be gone."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json({"type": "error", "code": code})
        await ws.close()


def _wait(seconds: float) -> web.Response:
    retry = max(1, int(seconds + 0.999))
    return web.json_response(
        {"error": "wait", "retry_after": retry},
        status=429,
        headers={"Retry-After": str(retry)},
    )


def _parse(raw: str) -> dict[str, Any]:
    """Parse one client frame; anything but a JSON object is refused kindly."""
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise BadInput("invalid") from err
    if not isinstance(data, dict):
        raise BadInput("invalid")
    return data
