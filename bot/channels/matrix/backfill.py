"""Catching up on rooms whose sync timeline was cut off (``limited``).

Without this, an employee who wrote more messages than a sync carries (while
the bot was down, say) would lose all but the last ones.  The missed events
are paged forward with ``/messages`` and handed over oldest first; when the
homeserver fails, the gap is kept (and saved with the sync position, so a
crash does not forget it) and tried again after a growing pause, while the
room's newer events wait inside it so the core still sees the room in order.
An event handed over twice (after a crash) is dropped by the core, which
records event ids.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from nio import AsyncClient, MatrixRoom, MessageDirection, RoomMessagesResponse, Timeline

from bot.channels.matrix.connection import Connection

log = logging.getLogger(__name__)

_BACKFILL_PAGE = 100
"""Events per ``/messages`` page when filling a cut-off timeline's gap."""

_BACKFILL_PAGES = 10
"""At most this many pages per room per sync: a long gap is filled over several
syncs (its progress is kept), so one room never holds up the others for long."""

_BACKFILL_ATTEMPTS = 3
"""Tries per page within one sync before the gap is left for a later sync."""

_GAP_RETRY_BASE = 1.0
"""Seconds before the first retry of a gap whose paging failed; doubles per failure."""

_GAP_RETRY_MAX = 300.0
"""Longest wait between two tries of the same gap."""

HandleEvent = Callable[[MatrixRoom, Any], Awaitable[None]]
"""Hands one timeline event of a room towards the core."""


class _GapRefused(Exception):
    """The homeserver refuses the bot a room's history (forbidden, unknown)."""


@dataclass
class _Gap:
    """Events of one room not yet handed to the core: everything after ``start``
    up to ``end`` (both ``/messages`` tokens).  ``start`` moves forward as pages
    are handed over; ``end`` moves to the latest sync while the gap stays open,
    because the room's newer events wait inside it (so the core sees the room
    in order).  The retry schedule is not saved: after a restart, try at once."""

    start: str
    end: str
    failures: int = 0
    due: float = 0.0


class Backfill:
    """The open gaps, one per room at most, and the paging that closes them."""

    def __init__(self, connection: Connection, handle: HandleEvent) -> None:
        self._connection = connection
        self._handle = handle
        self._gaps: dict[str, _Gap] = {}

    def __len__(self) -> int:
        return len(self._gaps)

    def rooms(self) -> Iterable[str]:
        """The rooms with a gap open."""
        return self._gaps.keys()

    def drop(self, room_id: str) -> None:
        """Forget a room's gap (the bot left it, or cannot read it any more)."""
        self._gaps.pop(room_id, None)

    def next_try(self) -> float | None:
        """Loop time at which the earliest gap is due for another try."""
        return min((g.due for g in self._gaps.values()), default=None)

    async def catch_up(
        self, room: MatrixRoom, timeline: Timeline | None, boundary: str | None, position: str
    ) -> list[Any]:
        """Open, extend or fill the room's gap for a sync that ends at
        ``position`` (started at ``boundary``); return the sync's own events
        that are still to be handed over after it (none while a gap stays open)."""
        room_id = room.room_id
        limited = bool(timeline and timeline.limited and timeline.prev_batch)
        gap = self._gaps.get(room_id)
        if gap is None and limited and boundary:
            assert timeline is not None and timeline.prev_batch
            gap = self._gaps[room_id] = _Gap(boundary, timeline.prev_batch)
        elif gap is not None and limited:
            gap.end = position  # the timeline is cut off again: fetch it all
        events = timeline.events if timeline is not None else []
        if gap is None:
            return events
        if not await self._fill(room, gap):
            # This sync's events wait inside the gap, behind the older ones.
            gap.end = position
            return []
        del self._gaps[room_id]
        if gap.end == position:
            return []  # already handed over with the gap
        return events

    def snapshot(self) -> bytes:
        """The open gaps as saved with the sync position (their schedules are not)."""
        gaps = {r: {"start": g.start, "end": g.end} for r, g in sorted(self._gaps.items())}
        return json.dumps(gaps, sort_keys=True).encode()

    def load(self, raw: bytes) -> None:
        """Take back the gaps a former run saved; raises on damaged data."""
        for room_id, g in json.loads(raw).items():
            self._gaps[room_id] = _Gap(str(g["start"]), str(g["end"]))

    async def _fill(self, room: MatrixRoom, gap: _Gap) -> bool:
        """Hand over a room's missed events, oldest first; True once the gap is closed.

        Pages forward from ``gap.start`` (where the core's record of the room
        ends) to ``gap.end``, at most `_BACKFILL_PAGES` pages per sync; nio
        decrypts the Megolm events of each page as it does for a sync."""
        client = self._connection.client
        now = asyncio.get_running_loop().time()
        if gap.due > now:
            return False
        pages = handed = 0
        while pages < _BACKFILL_PAGES:
            try:
                resp = await _messages_page(client, room.room_id, gap.start, gap.end)
            except _GapRefused:
                # Retrying cannot help, and the room's newer events must not
                # wait behind it forever.
                log.error("matrix: backfill refused by the homeserver; gap dropped")
                return True
            if resp is None:
                gap.failures += 1
                pause = min(_GAP_RETRY_MAX, _GAP_RETRY_BASE * 2 ** (gap.failures - 1))
                gap.due = asyncio.get_running_loop().time() + pause * (0.8 + 0.4 * random.random())
                log.warning(
                    "matrix: backfill failed after %d event(s); gap kept, retry in %.0f s",
                    handed,
                    pause,
                )
                return False
            pages += 1
            for event in resp.chunk:  # oldest first
                handed += 1
                await self._handle(room, event)
            if not resp.chunk or not resp.end or resp.end == gap.start:
                log.info("matrix: backfilled %d event(s) in %d page(s)", handed, pages)
                return True
            gap.start = resp.end
        gap.failures, gap.due = 0, 0.0
        log.info("matrix: backfill continues next sync, %d event(s) so far", handed)
        return False


async def _messages_page(
    client: AsyncClient, room_id: str, start: str, end: str
) -> RoomMessagesResponse | None:
    """One ``/messages`` page forward towards ``end``, retried briefly on
    errors; None when it keeps failing (the gap is then tried on a later sync).
    Raises `_GapRefused` when the homeserver says the bot may not read it."""
    for attempt in range(_BACKFILL_ATTEMPTS):
        try:
            resp = await client.room_messages(
                room_id,
                start=start,
                end=end,
                direction=MessageDirection.front,
                limit=_BACKFILL_PAGE,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("matrix: backfill page unreachable (%s)", type(exc).__name__)
        else:
            if isinstance(resp, RoomMessagesResponse):
                return resp
            if resp.status_code in ("M_FORBIDDEN", "M_NOT_FOUND"):
                raise _GapRefused
            log.warning("matrix: backfill page error (%s)", resp.status_code)
        if attempt + 1 < _BACKFILL_ATTEMPTS:
            await asyncio.sleep(0.2 * (attempt + 1))
    return None
