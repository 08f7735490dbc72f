"""What the web channel keeps per identity in its channel state: the
conversation a tab shows (so a reload or a resume draws it again) and, for an
employee, the record that proves the identity was issued here.

The store has the case's messages too, but this is the page's own copy: the
exact items the page rendered (buttons, images, the person's own words), in
order, with the idempotency keys of what was already shown.  It is encrypted
at rest like every channel state value, trimmed to a bounded length, and
items older than the retention period are never shown again."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from bot.channels.base import ChannelState
from bot.channels.web.receipts import normalize_case_code
from bot.channels.web.sessions import state_key

log = logging.getLogger("confidant.web")

HISTORY_KEEP = 500
HISTORY_SHOW = 300
KEYS_KEEP = 2000


class Histories:
    """The conversations and employee records of the web channel."""

    def __init__(
        self, state: ChannelState, clock: Callable[[], float], retention_seconds: int | None
    ) -> None:
        self.state = state
        self.clock = clock
        self.retention_seconds = retention_seconds

    async def load(self, address: str) -> dict[str, Any]:
        """``{"items": [...], "keys": {idempotency key: item id}}``, without
        items older than the retention period."""
        raw = await self.state.get(state_key("hist", address))
        if raw is None:
            return {"items": [], "keys": {}}
        data: dict[str, Any] = json.loads(raw)
        if self.retention_seconds is not None:
            oldest = self.clock() - self.retention_seconds
            data["items"] = [i for i in data["items"] if i.get("ts", 0) >= oldest]
        return data

    async def save(self, address: str, history: dict[str, Any]) -> None:
        history["items"] = history["items"][-HISTORY_KEEP:]
        keys = history["keys"]
        if len(keys) > KEYS_KEEP:
            history["keys"] = dict(list(keys.items())[-KEYS_KEEP:])
        await self.state.set(state_key("hist", address), json.dumps(history).encode())

    async def employee(self, address: str) -> dict[str, Any] | None:
        """The record of an issued employee identity (``receipts``: case codes
        with a resume receipt, ``pending``: cases whose receipt waits for a
        tab), or None for any address this channel did not issue."""
        raw = await self.state.get(state_key("emp", address))
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        return data

    async def save_employee(self, address: str, record: dict[str, Any]) -> None:
        await self.state.set(state_key("emp", address), json.dumps(record).encode())

    async def new_identity(self) -> str:
        """Issue a random employee identity; only issued ones are accepted later,
        so nobody can present a confidant's address as their own."""
        identity = "w" + secrets.token_urlsafe(32)
        await self.save_employee(identity, {"receipts": [], "pending": []})
        log.info("web: new anonymous identity")
        return identity

    async def erase(self, address: str) -> None:
        """Drop the identity's record and conversation (its receipts are the
        resume desk's to void, before this)."""
        await self.state.delete(state_key("emp", address))
        await self.state.delete(state_key("hist", address))


def without_case(items: list[dict[str, Any]], case: str) -> list[dict[str, Any]]:
    """History items that do not belong to ``case`` (codes compared loosely)."""
    code = normalize_case_code(case)
    return [i for i in items if normalize_case_code(str(i.get("case", ""))) != code]


def without_erased(items: list[dict[str, Any]], case: str) -> list[dict[str, Any]]:
    """History items that may stay once ``case`` is erased: neither its own
    nor the kept page-load overview.  The overview is not tagged with a case
    yet names them all, so a reconnect would redraw the erased code from it.
    It goes on every erasure, not only when its text names the code: reading
    the core's wording to find codes would miss one silently the day that
    wording changes, whereas dropping an overview that did not name it costs
    only a convenience the next page load or a ``/cases`` gives back.  A
    ``/cases`` asked for by hand is an ordinary answer and is not touched."""
    return [i for i in without_case(items, case) if not i.get("opening")]
