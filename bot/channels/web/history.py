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
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from bot.channels.base import ChannelState
from bot.channels.web.receipts import normalize_case_code
from bot.channels.web.sessions import state_key

log = logging.getLogger("confidant.web")

HISTORY_KEEP = 500
HISTORY_SHOW = 300
KEYS_KEEP = 2000
LINES_KEEP = 48
"""Lines written since the last compaction after which the next message
compacts them into the base record instead of adding one more."""
CACHE_SIZE = 256
"""Conversations kept decrypted in memory, least recently used out first."""
CACHE_ENTRY_BYTES = 128 * 1024
"""A conversation stored bigger than this (inline images) is read each time."""
WINDOW = 64
"""Line numbers read per query when looking for lines after a restart; a
window whose last quarter is empty ends the search (a failed event leaves
its number unused, and a page gives up after five tries)."""


class Histories:
    """The conversations and employee records of the web channel.

    A conversation is kept as a base record (the items, trimmed, and the
    idempotency keys of what was shown) plus one line per item added since
    (``<base key>:<number>``), each sealed on its own.  Adding an item seals
    and writes only that line, so it can ride in a transaction that is
    written anyway: the person's own words commit with their event
    (`Inbound.keep`).  Every change other than adding (an erased case, a
    replaced overview, trimming) rewrites the base and deletes the lines it
    read, in one transaction.  Line numbers come from this process (the
    channel serves every tab of an identity, under its lock); after a
    restart they are found again from the base's ``next``."""

    def __init__(
        self, state: ChannelState, clock: Callable[[], float], retention_seconds: int | None
    ) -> None:
        self.state = state
        self.clock = clock
        self.retention_seconds = retention_seconds
        self._marks: dict[str, tuple[int, int]] = {}
        """Per address: the first line not in the base, and the next line number."""
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        """The stored conversations read or written lately, as stored (every
        write goes through here, under the address lock), so a message to an
        open tab needs no read of the store.  Dropped when a write failed."""

    async def load(self, address: str) -> dict[str, Any]:
        """``{"items": [...], "keys": {idempotency key: item id}}``, without
        items older than the retention period (plus the private ``_lines``
        and ``_stale`` that `save` and `pending` use).  Yours to change: the
        lists are copies (the items themselves are shared)."""
        kept = self._cache.get(address)
        if kept is None:
            kept = await self._read(address)
            self._keep(address, kept)
        else:
            self._cache.move_to_end(address)
        data: dict[str, Any] = {"items": list(kept["items"]), "keys": dict(kept["keys"]),
                                "_lines": list(kept["_lines"]), "_stale": False}
        if self.retention_seconds is not None:
            oldest = self.clock() - self.retention_seconds
            fresh = [i for i in data["items"] if i.get("ts", 0) >= oldest]
            data["_stale"] = len(fresh) != len(data["items"])
            data["items"] = fresh
        return data

    async def _read(self, address: str) -> dict[str, Any]:
        """The stored conversation: base and lines, in one query once the
        line numbers are known."""
        base = state_key("hist", address)
        marks = self._marks.get(address)
        if marks is None:
            raw = await self.state.get(base)
            floor = int(json.loads(raw).get("next", 0)) if raw is not None else 0
            lines = await self._lines(base, floor)
        else:
            floor, top = marks
            wanted = [base, *(_line_key(base, n) for n in range(floor, top))]
            got = await self.state.get_many(wanted)
            raw = got.pop(base, None)
            lines = {_line_number(k): v for k, v in got.items()}
        data: dict[str, Any] = json.loads(raw) if raw is not None else {"items": [], "keys": {}}
        data.pop("next", None)
        for n in sorted(lines):
            line = json.loads(lines[n])
            data["items"].append(line["item"])
            if line.get("key"):
                data["keys"][line["key"]] = line["item"]["id"]
        top = max(lines) + 1 if lines else floor
        if marks is not None:
            top = max(top, marks[1])
        self._marks[address] = (floor, top)
        data["_lines"] = [_line_key(base, n) for n in lines]
        data["_size"] = len(raw or b"") + sum(len(v) for v in lines.values())
        return data

    def _keep(self, address: str, kept: dict[str, Any]) -> None:
        """Remember a stored conversation unless it is too big to (images)."""
        if kept["_size"] > CACHE_ENTRY_BYTES:
            self._cache.pop(address, None)
            return
        self._cache[address] = kept
        self._cache.move_to_end(address)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    async def _lines(self, base: str, floor: int) -> dict[int, bytes]:
        """The lines from ``floor`` on, window by window (see `WINDOW`)."""
        found: dict[int, bytes] = {}
        lo = floor
        while True:
            got = await self.state.get_many(_line_key(base, n) for n in range(lo, lo + WINDOW))
            found.update((_line_number(k), v) for k, v in got.items())
            if not got or max(found) < lo + WINDOW * 3 // 4:
                return found
            lo += WINDOW

    def pending(self, address: str) -> int:
        """How many lines a `load` read besides the base (0 when unknown)."""
        floor, top = self._marks.get(address, (0, 0))
        return top - floor

    def needs_compacting(self, address: str, history: dict[str, Any]) -> bool:
        """Whether the next item should rewrite the base instead of adding a
        line: many lines, or items past their retention still stored."""
        return bool(history.get("_stale")) or self.pending(address) >= LINES_KEEP

    async def line(self, address: str, item: dict[str, Any],
                   key: str | None = None) -> tuple[str, bytes]:
        """The state entry that adds ``item`` (shown for ``key``) to the
        history, for the caller to write; call it with the address lock held.
        Its number is taken whether or not the entry is ever written."""
        if address not in self._marks:
            await self.load(address)
        floor, top = self._marks[address]
        self._marks[address] = (floor, top + 1)
        value = json.dumps({"item": item, "key": key}).encode()
        return _line_key(state_key("hist", address), top), value

    def added(self, address: str, entry: tuple[str, bytes], item: dict[str, Any],
              key: str | None = None) -> None:
        """The entry `line` gave is committed (or its event was seen before,
        so it was then): the kept copy shows it too, once."""
        kept = self._cache.get(address)
        # A page that missed its ack sends again: the event was seen, nothing written.
        if kept is not None and not any(i.get("id") == item["id"] for i in kept["items"]):
            kept["items"].append(item)
            kept["_lines"].append(entry[0])
            kept["_size"] += len(entry[1])
            if key:
                kept["keys"][key] = item["id"]
            self._keep(address, kept)

    def unsure(self, address: str) -> None:
        """A write may or may not have landed: read the store next time."""
        self._cache.pop(address, None)

    async def append(self, address: str, item: dict[str, Any], key: str | None = None) -> None:
        """Add one item in a transaction of its own (address lock held)."""
        entry = await self.line(address, item, key)
        try:
            await self.state.set(*entry)
        except BaseException:
            self.unsure(address)
            raise
        self.added(address, entry, item, key)

    async def save(self, address: str, history: dict[str, Any]) -> None:
        """Rewrite the base from ``history`` (as `load` gave it, changed) and
        drop the lines it was read with, together (address lock held)."""
        if address not in self._marks:
            await self.load(address)
        _, top = self._marks[address]
        keys = history["keys"]
        if len(keys) > KEYS_KEEP:
            keys = dict(list(keys.items())[-KEYS_KEEP:])
        base = {"items": history["items"][-HISTORY_KEEP:], "keys": keys, "next": top}
        encoded = json.dumps(base).encode()
        try:
            await self.state.change({state_key("hist", address): encoded},
                                    history.get("_lines", ()))
        except BaseException:
            self.unsure(address)
            raise
        self._marks[address] = (top, top)
        self._keep(address, {"items": list(base["items"]), "keys": dict(keys), "_lines": [],
                             "_size": len(encoded)})
        history.update(items=base["items"], keys=keys, _lines=[], _stale=False)

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
        history = await self.load(address)
        await self.state.change({}, [state_key("emp", address), state_key("hist", address),
                                     *history["_lines"]])
        self._marks.pop(address, None)
        self._cache.pop(address, None)


def _line_key(base: str, number: int) -> str:
    return f"{base}:{number}"


def _line_number(key: str) -> int:
    return int(key.rsplit(":", 1)[1])


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
