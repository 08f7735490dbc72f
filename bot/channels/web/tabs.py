"""The open browser tabs of the web channel: one WebSocket each, grouped by
the identity they show, plus the per-identity lock that keeps a history's
read-modify-write and the pushes that follow it in one order.  Also the small
vocabulary of frames every part of the channel uses to talk to a page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger("confidant.web")

PUSH_TIMEOUT = 5.0

CLIENT_ID = re.compile(r"^[0-9A-Za-z-]{8,64}$")
"""The id a page gives each message it sends (a UUID in practice)."""


@dataclass(eq=False)
class Tab:
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


class Tabs:
    """Every open tab by address, and one lock per address."""

    def __init__(self) -> None:
        self._open: dict[str, set[Tab]] = defaultdict(set)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def lock(self, key: str) -> asyncio.Lock:
        """The lock of an address (or of any other name, such as a case code)."""
        return self._locks[key]

    def of(self, address: str) -> list[Tab]:
        """The tabs open on ``address`` now (a copy: pushing may close one)."""
        return list(self._open.get(address, ()))

    def add(self, tab: Tab) -> None:
        self._open[tab.address].add(tab)

    def discard(self, tab: Tab) -> None:
        self._open[tab.address].discard(tab)
        if not self._open[tab.address]:
            del self._open[tab.address]

    async def push(self, address: str, payload: dict[str, Any],
                   but: Tab | None = None) -> None:
        """Send ``payload`` to every tab of ``address`` (except ``but``)."""
        for tab in self.of(address):
            if tab is not but:
                await tab.push(payload)

    async def close_all(self) -> None:
        """Close every tab politely (the server is stopping)."""
        for tabs in list(self._open.values()):
            for tab in list(tabs):
                with contextlib.suppress(Exception):
                    await tab.ws.close(code=1001, message=b"server stopping")


class BadInput(Exception):
    """A client frame we refuse; ``code`` is the page's message key."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def parse(raw: str) -> dict[str, Any]:
    """Parse one client frame; anything but a JSON object is refused kindly."""
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise BadInput("invalid") from err
    if not isinstance(data, dict):
        raise BadInput("invalid")
    return data


def error(code: str, frame: dict[str, Any]) -> dict[str, Any]:
    """Error frame for the page, naming the message it concerns when known."""
    answer: dict[str, Any] = {"type": "error", "code": code}
    client_id = frame.get("id")
    if isinstance(client_id, str) and CLIENT_ID.match(client_id):
        answer["id"] = client_id
    return answer


async def refuse(ws: web.WebSocketResponse, code: str) -> None:
    """Tell the page why, then close; the page may already be gone."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json({"type": "error", "code": code})
        await ws.close()
