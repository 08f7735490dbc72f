"""The WebSocket side of the web channel: a tab says ``hello``, gets its
history, and then sends messages and button presses that become `Inbound`
events for the core.

An employee tab names its identity in the ``hello`` (one this channel
issued, or it gets a new one); a console tab is the confidant whose session
cookie it carries.  A message is confirmed to the page (``ack``) only once the
core has recorded it; until then the page keeps it and sends it again."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from bot.channels.base import InboundHandler
from bot.channels.web.history import HISTORY_SHOW, LINES_KEEP, Histories, shown_once
from bot.channels.web.resume import ResumeDesk
from bot.channels.web.sessions import WebSessions
from bot.channels.web.tabs import CLIENT_ID, BadInput, Tab, Tabs, error, parse, refuse
from domain.ids import ChannelName
from domain.messages import Inbound

log = logging.getLogger("confidant.web")

MAX_WS_FRAME = 64 * 1024
HELLO_TIMEOUT = 30.0

_LANG = re.compile(r"^[a-z]{2,3}$")
_CASE = re.compile(r"^[A-Za-z0-9-]{3,16}$")

OPENING_SLOT = "#opening"
"""Appended to a console's address as the ``chat`` of the command said for it
on a page load.  The core answers every event where its ``chat`` says (see
`Inbound.chat`), so the overview comes back marked as the page load's own and
is kept as the one current overview instead of piling up (see
`WebChannel.send`).  ``#`` never occurs in a web identity, so the slot cannot
be mistaken for one."""


class Sockets:
    """Serves ``/ws`` (employees) and ``/console/ws`` (confidants)."""

    def __init__(
        self,
        channel: ChannelName,
        histories: Histories,
        tabs: Tabs,
        resume: ResumeDesk,
        console_sessions: WebSessions,
        same_origin: Callable[[web.Request], bool],
        clock: Callable[[], float],
        *,
        max_text: int,
        greet_new: bool,
        console_opening: str | None,
    ) -> None:
        self.channel = channel
        self.histories = histories
        self.tabs = tabs
        self.resume = resume
        self.console_sessions = console_sessions
        self.same_origin = same_origin
        self.clock = clock
        self.max_text = max_text
        self.greet_new = greet_new
        self.console_opening = console_opening
        self.on_inbound: InboundHandler | None = None
        """Set by `WebChannel.start`."""

    async def employee(self, request: web.Request) -> web.StreamResponse:
        """Employee tab: identity comes from the page's ``hello`` frame."""
        return await self._websocket(request, "employee", self._employee_tab)

    async def console(self, request: web.Request) -> web.StreamResponse:
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
            await refuse(ws, err.code)
        except Exception as exc:
            log.error("web: %s tab failed (%s)", role, type(exc).__name__)
            await refuse(ws, "unavailable")
        return ws

    async def _employee_tab(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        hello = await self._read_hello(ws)
        identity = hello.get("identity")
        opening: str | None = None
        if not (
            isinstance(identity, str)
            and len(identity) < 100
            and await self.histories.employee(identity) is not None
        ):
            identity = await self.histories.new_identity()
            opening = "/start" if self.greet_new else None
        await self._serve(ws, identity, "employee", hello.get("language"), opening)

    async def _console_tab(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        address = await self.console_sessions.subject(request)
        if address is None:
            raise BadInput("login")
        hello = await self._read_hello(ws)
        fresh = hello.get("fresh") is True
        opening = self.console_opening if fresh else None
        await self._serve(ws, address, "console", hello.get("language"), opening, fresh=fresh)

    async def _read_hello(self, ws: web.WebSocketResponse) -> dict[str, Any]:
        try:
            msg = await ws.receive(timeout=HELLO_TIMEOUT)
        except TimeoutError as err:
            raise BadInput("invalid") from err
        if msg.type != WSMsgType.TEXT:
            raise BadInput("invalid")
        data = parse(msg.data)
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
        *,
        fresh: bool = False,
    ) -> None:
        """Send the history, register the tab, say ``opening`` to the core on
        the person's behalf, then handle the tab's frames until it closes.
        A ``fresh`` page load no longer shows what was to be seen once
        (`shown_once`)."""
        tab = Tab(ws=ws, address=address, role=role, language=language)
        try:
            async with self.tabs.lock(address):
                history = await self.histories.load(address)
                if fresh:
                    history["items"], changed = shown_once(history["items"])
                    if changed:
                        await self.histories.save(address, history)
                ready: dict[str, Any] = {
                    "type": "ready",
                    "role": role,
                    "history": history["items"][-HISTORY_SHOW:],
                }
                if role == "employee":
                    ready["identity"] = address
                await tab.push(ready)
                self.tabs.add(tab)
                if role == "employee":
                    await self.resume.issue_pending(address)
            log.info("web: %s tab opened", role)
            if opening is not None:
                await self._say_for(tab, opening, role == "console")
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data: dict[str, Any] = {}
                try:
                    data = parse(msg.data)
                    await self._handle_frame(tab, data)
                except BadInput as err:
                    await tab.push(error(err.code, data))
                except Exception as exc:
                    # The page keeps the message and sends it again later.
                    log.error("web: frame failed (%s)", type(exc).__name__)
                    await tab.push(error("retry", data))
        finally:
            self.tabs.discard(tab)
            log.info("web: %s tab closed", role)

    async def _say_for(self, tab: Tab, text: str, to_slot: bool = False) -> None:
        """Hand the core a command the page did not type (the greeting, the
        console's case list); it is not shown as the person's own words, and a
        failure only costs the convenience, so it is logged and dropped.
        ``to_slot`` has the answer come back to the `OPENING_SLOT`."""
        if self.on_inbound is None:
            return
        nonce = secrets.token_hex(8)
        event_id = hashlib.sha256(f"{tab.address}\0open\0{nonce}".encode()).hexdigest()[:32]
        inbound = Inbound(
            channel=self.channel,
            sender=tab.address,
            chat=tab.address + OPENING_SLOT if to_slot else tab.address,
            event_id=event_id,
            text=text,
            language_hint=tab.language,
        )
        try:
            await self.on_inbound(inbound)
        except Exception as exc:
            log.warning("web: opening command not recorded (%s)", type(exc).__name__)

    async def _handle_frame(self, tab: Tab, data: dict[str, Any]) -> None:
        """One frame from a page: a message, a button press, or a keep-alive."""
        kind = data.get("type")
        if kind == "ping":
            await tab.push({"type": "pong"})
            return
        if kind not in ("message", "button"):
            raise BadInput("invalid")
        client_id = data.get("id")
        if not (isinstance(client_id, str) and CLIENT_ID.match(client_id)):
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
        tab: Tab,
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
        if self.on_inbound is None:
            raise RuntimeError("web channel used before start()")
        # The line commits with the event (`Inbound.keep`): acknowledged means
        # both are kept, a retried frame finds its event seen and adds nothing.
        # The lock keeps the line's number in order with what is sent to the
        # address meanwhile.
        async with self.tabs.lock(address):
            entry = await self.histories.line(address, item)
            inbound = Inbound(
                channel=self.channel,
                sender=address,
                chat=address,
                event_id=event_id,
                text=text,
                button=button,
                language_hint=tab.language,
                case_hint=case_hint,
                keep=(entry,),
            )
            await self.tabs.push(address, {"type": "message", "item": item}, but=tab)
            try:
                await self.on_inbound(inbound)
            except Exception as exc:
                # Only the type: database errors can quote parameters.
                log.error("web: inbound event could not be recorded (%s)", type(exc).__name__)
                self.histories.unsure(address)  # a commit can fail after it landed
                await tab.push({"type": "error", "code": "retry", "id": client_id})
                return
            self.histories.added(address, entry, item)
            if self.histories.pending(address) >= LINES_KEEP:
                # Someone who writes much and hears little: fold the lines
                # into the base now and then, so a load stays one query.
                await self.histories.save(address, await self.histories.load(address))
        await tab.push({"type": "ack", "id": client_id, "item": item})
