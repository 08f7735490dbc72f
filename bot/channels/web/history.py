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
import re
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
    """History items that may stay once ``case`` is erased: nothing that
    names it.  That is its own messages; the notices about it (``about``: the
    new-case notice with its Claim button, "taken by", a case list naming it,
    a refusal); the confidant's own words outside any case that name it
    (``/claim K7F-3MQ``, the pressed "Claim K7F-3MQ" button); and the kept
    page-load overview.  The overview goes on every erasure, also when it
    was written before notices were tagged and names the case only in its
    text: dropping one that did not name it costs only a convenience the
    next page load or a ``/cases`` gives back."""
    named = _names(case)
    kept = []
    for item in without_case(items, case):
        if item.get("opening") or case_about(item, case):
            continue
        if item.get("from") == "me" and not item.get("case") \
                and named.search(str(item.get("text", ""))):
            continue
        kept.append(item)
    return kept


def case_about(item: dict[str, Any], case: str) -> bool:
    """Whether a history item is a notice about ``case`` (`Outbound.about`)."""
    code = normalize_case_code(case)
    about = item.get("about")
    return isinstance(about, list) and any(normalize_case_code(str(c)) == code for c in about)


def _names(case: str) -> re.Pattern[str]:
    """A case code as a person may type it: any case, with or without its
    dash (or a space), not inside a longer word."""
    chars = normalize_case_code(case)
    loose = r"[-\s]?".join(re.escape(ch) for ch in chars)
    return re.compile(rf"(?<![A-Za-z0-9]){loose}(?![A-Za-z0-9])", re.IGNORECASE)


def shown_once(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The history a console page load shows, and whether it changed.

    An item marked ``once`` (the notice that a case was erased, which names
    its code) is shown until a page load after it was seen: live in an open
    tab (``seen``), or in the page load that first shows it.  A reconnect
    shows it as it stands, so a dropped connection does not lose it."""
    kept = [i for i in items if not (i.get("once") and i.get("seen"))]
    fresh = [i for i in kept if i.get("once")]
    for item in fresh:
        item["seen"] = True
    return kept, bool(fresh) or len(kept) != len(items)
