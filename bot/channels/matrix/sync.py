"""The sync loop: long-poll the homeserver and pass each sync on to the
parts that act on it, in an order that keeps every room's events in sequence.

One sync round: key traffic, invites, events whose key has just arrived,
each joined room's events (behind its gap, if its timeline was cut off),
room encryption, events whose key never came, device trust; then a
checkpoint, so the sync position is saved once the core has recorded all of
it.
"""

from __future__ import annotations

import asyncio
import logging
import random

import aiohttp
from nio import SyncError, SyncResponse

from bot.channels.base import ChannelState
from bot.channels.matrix.backfill import Backfill
from bot.channels.matrix.connection import Connection
from bot.channels.matrix.inbound import EventReader
from bot.channels.matrix.inbox import SINCE, Inbox, Owed
from bot.channels.matrix.notices import RoomNotices
from bot.channels.matrix.rooms import RoomUpkeep
from bot.channels.matrix.trust import DeviceTrust, exchange_keys

log = logging.getLogger(__name__)

TIMELINE_LIMIT = 1000
"""Events per room asked of each sync.  Synapse cuts a sync's timeline to 10
events per room by default; whatever still does not fit (the room's timeline
comes back ``limited``) is fetched page by page (`Backfill`)."""

_GAPS, _HELD = "gaps", "held"
"""State keys of what is still owed to the core, saved with the sync position."""


class SyncLoop:
    """Runs the syncs and keeps what the channel owes the core across restarts."""

    def __init__(
        self,
        connection: Connection,
        state: ChannelState,
        *,
        reader: EventReader,
        backfill: Backfill,
        upkeep: RoomUpkeep,
        trust: DeviceTrust,
        notices: RoomNotices,
        inbox: Inbox,
        timeout_ms: int,
        timeline_limit: int,
    ) -> None:
        self._connection = connection
        self._state = state
        self._reader = reader
        self._held = reader.held
        self._backfill = backfill
        self._upkeep = upkeep
        self._trust = trust
        self._notices = notices
        self._inbox = inbox
        self._timeout_ms = timeout_ms
        self._filter = {"room": {"timeline": {"limit": timeline_limit}}}
        self.synced_once = False
        """True once a sync succeeded: until then the rooms are not known."""

    async def first(self) -> None:
        """Take back what the last run still owed the core, then one full-state
        sync from the saved position (nio drops a sync whose token it has, and
        does not persist room state)."""
        await self._load_owed()
        since = await self._state.get(SINCE)
        await self.once(full_state=True, since=since.decode() if since else None)

    async def run(self) -> None:
        """Long-poll forever, backing off on network errors and homeserver restarts."""
        delay = 0.2
        while True:
            try:
                ok = await self.once(full_state=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("matrix: sync failed (%s)", type(exc).__name__)
                ok = False
            if ok:
                delay = 0.2
                continue
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 30.0)

    async def once(self, *, full_state: bool, since: str | None = None) -> bool:
        """One sync round: housekeeping, events, retries.  False on a sync error."""
        client = self._connection.client
        # Where this sync starts: every event after it is new to the bot, so a
        # cut-off timeline's gap starts here.
        boundary = since or client.next_batch or client.loaded_sync_token
        try:
            resp = await client.sync(
                timeout=0 if full_state else self._poll_timeout_ms(),
                sync_filter=self._filter,
                full_state=full_state,
                since=since,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("matrix: sync unreachable (%s)", type(exc).__name__)
            return False
        if isinstance(resp, SyncError):
            log.warning("matrix: sync error (%s)", resp.status_code)
            return False
        assert isinstance(resp, SyncResponse)
        self.synced_once = True
        await exchange_keys(self._connection)
        for room_id in resp.rooms.invite:
            await self._upkeep.accept_invite(room_id, resp)
        for room_id in resp.rooms.leave:
            self._backfill.drop(room_id)  # no longer readable: nothing more to fetch
        queued = self._inbox.queued
        # Keys that came with this sync may open events that waited for them;
        # they go before this sync's newer events.
        await self._reader.release_held()
        for room_id in {*resp.rooms.join, *self._backfill.rooms()}:
            room = client.rooms.get(room_id)
            if room is None:
                self._backfill.drop(room_id)
                continue
            info = resp.rooms.join.get(room_id)
            timeline = info.timeline if info is not None else None
            events = await self._backfill.catch_up(room, timeline, boundary, resp.next_batch)
            for event in events:
                await self._reader.handle(room, event)
            if info is not None:
                await self._upkeep.ensure_encrypted(room)
        await self._held.expire()
        await self._notices.warn_new_devices(self._trust.apply_everywhere())
        self._inbox.checkpoint(resp.next_batch, self._owed(), news=self._inbox.queued > queued)
        return True

    def _poll_timeout_ms(self) -> int:
        """How long the next sync may wait for news: shorter when a gap is due for
        another try or a waiting event's time is up, so neither waits for traffic."""
        timeout = float(self._timeout_ms)
        due = self._backfill.next_try()
        if due is not None:
            now = asyncio.get_running_loop().time()
            timeout = min(timeout, max(0.0, due - now) * 1000)
        left = self._held.seconds_left()
        if left is not None:
            timeout = min(timeout, max(0.0, left) * 1000 + 100)
        return int(timeout)

    def _owed(self) -> Owed:
        """The open gaps and waiting events as saved, gaps first."""
        return {_GAPS: self._backfill.snapshot(), _HELD: self._held.snapshot()}

    async def _load_owed(self) -> None:
        """Restore the gaps and waiting events the last run still owed the core."""
        raw_gaps = await self._state.get(_GAPS)
        raw_held = await self._state.get(_HELD)
        try:
            self._backfill.load(raw_gaps or b"{}")
            self._held.load(raw_held or b"[]")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("matrix: saved gaps or waiting events unreadable (%s)", type(exc).__name__)
        self._inbox.resume({_GAPS: raw_gaps or b"{}", _HELD: raw_held or b"[]"})
        if len(self._backfill) or len(self._held):
            log.info(
                "matrix: %d gap(s) and %d event(s) waiting for a key carried over",
                len(self._backfill),
                len(self._held),
            )
