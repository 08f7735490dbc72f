"""Matrix channel: employees in encrypted DMs with the bot, confidants in one
encrypted room per case, all through matrix-nio with end-to-end encryption.

The adapter only translates.  It refuses to relay anything that did not arrive
encrypted, creates every room it owns encrypted, keeps its device (and its
cross-signing) stable across restarts, and makes sends idempotent through
Matrix transaction ids derived from the delivery worker's idempotency key.

The trust policy is described in `bot.channels.matrix.trust`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
from nio import (
    AsyncClient,
    DownloadError,
    ErrorResponse,
    MatrixRoom,
    MegolmEvent,
    MessageDirection,
    RoomEncryptedAudio,
    RoomEncryptedFile,
    RoomEncryptedImage,
    RoomEncryptedMedia,
    RoomEncryptedVideo,
    RoomMessage,
    RoomMessageAudio,
    RoomMessageEmote,
    RoomMessageFile,
    RoomMessageImage,
    RoomMessageMedia,
    RoomMessageNotice,
    RoomMessagesResponse,
    RoomMessageText,
    RoomMessageVideo,
    RoomSendResponse,
    SyncError,
    SyncResponse,
    UnknownEncryptedEvent,
    UploadResponse,
)
from nio.crypto.attachments import decrypt_attachment
from nio.exceptions import EncryptionError, LocalProtocolError, OlmUnverifiedDeviceError

from bot.channels.base import ChannelState, InboundHandler, NoticeWords
from bot.channels.matrix.connection import Connection, quiet_nio
from bot.channels.matrix.notices import RoomNotices
from bot.channels.matrix.rooms import (
    CaseRooms,
    ConfidantRooms,
    DmRooms,
    RoomUpkeep,
    addressed_user,
    wait_room,
)
from bot.channels.matrix.trust import DeviceTrust, exchange_keys
from bot.channels.media import MAX_MEDIA_BYTES, MediaRejected, scrub_image
from domain.ids import ChannelName
from domain.messages import (
    Inbound,
    Media,
    Outbound,
    OutboundKind,
    RetryLater,
    SendResult,
    Unreachable,
)
from domain.vocabulary import Control, Role

log = logging.getLogger(__name__)

MATRIX = ChannelName("matrix")

UNREADABLE = "undecryptable"
"""``Inbound.unsupported`` kind for a message the bot cannot read (its room key
never came, or an algorithm nio does not know): the core asks the sender, in
their language, to send it again."""

_UNREADABLE_SUFFIX = "#unreadable"
"""Appended to a Matrix event id to name the "could not read it" event handed
to the core: stable, so a replay asks once, yet distinct from the message's
own id, so the message still counts if its key turns up after all."""

_MEDIA_REFUSALS = {"media.too_large": "too_large", "media.undecryptable": UNREADABLE}
"""Why an attachment was refused → the ``unsupported`` kind the core answers."""

_RETRY_LIMIT = 20
_RETRY_DELAY = 1.0
_COMMAND = re.compile(r"^!(?=[A-Za-z])")


_CHECKPOINT_IDLE = 60.0
"""Seconds between saved sync positions when no event arrived (fewer writes)."""

_TIMELINE_LIMIT = 1000
"""Events per room asked of each sync.  Synapse cuts a sync's timeline to 10
events per room by default; whatever still does not fit (the room's timeline
comes back ``limited``) is fetched page by page (`MatrixChannel._fill_gap`)."""

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

_UNDECRYPTABLE_WAIT = 120.0
"""Seconds an encrypted event whose room key has not arrived is kept waiting
for it (keys often come a sync or two later, or answer our key request)
before the sender is asked to send it again."""

_HELD_MAX = 500
"""At most this many events wait for their key; beyond, the oldest gives up
early (a bound on what a misbehaving client can make the bot store)."""


class _Checkpoint:
    """Marker queued after a sync's events: once the dispatcher reaches it, all of
    them have been handed to the core.  It carries what was still owed to the
    core at that moment (unfilled gaps, events waiting for their key), which is
    saved before the sync position moves past it."""

    __slots__ = ("gaps", "held", "token")

    def __init__(self, token: str, gaps: bytes, held: bytes) -> None:
        self.token = token
        self.gaps = gaps
        self.held = held


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


@dataclass
class _Held:
    """An encrypted event whose room key has not arrived yet.  Only the event
    as the homeserver sent it (ciphertext) is kept, never plaintext."""

    room_id: str
    source: dict[str, Any]
    since: float
    """Wall-clock time it was first seen (survives a restart)."""


def _tx_id(idempotency_key: str, part: str) -> str:
    """Stable Matrix transaction id: the same key always yields the same id, so a
    retried send is deduplicated by the homeserver."""
    digest = hashlib.sha256(f"{idempotency_key}\0{part}".encode()).hexdigest()
    return f"cf{digest[:40]}"


def render_text(out: Outbound) -> str:
    """Text plus the menu as a numbered list ("1. label"); the core maps numbers back."""
    if out.menu is None or not out.menu.buttons():
        return out.text
    lines = [f"{i}. {b.label}" for i, b in enumerate(out.menu.buttons(), start=1)]
    return "\n".join([out.text, "", *lines]) if out.text else "\n".join(lines)


class MatrixChannel:
    """`Channel` for Matrix (see the module docstring for the trust policy)."""

    name = MATRIX
    numbered_menus = True
    idempotent_sends = True

    def __init__(
        self,
        homeserver: str,
        user_id: str,
        *,
        password: str | None = None,
        access_token: str | None = None,
        device_name: str = "Confidant",
        store_dir: str | Path,
        trust: Literal["tofu", "all"] = "tofu",
        pickle_key: str,
        state: ChannelState,
        sync_timeout_ms: int = 30_000,
        timeline_limit: int = _TIMELINE_LIMIT,
        notices: NoticeWords,
    ) -> None:
        if trust not in ("tofu", "all"):
            raise ValueError("trust must be 'tofu' or 'all'")
        if not password and not access_token:
            raise ValueError("a password or an access token is needed")
        self.homeserver = homeserver.rstrip("/")
        self.user_id = user_id
        self.device_name = device_name
        self.store_dir = Path(store_dir)
        self.trust = trust
        self._state = state
        self._connection = Connection(
            self.homeserver, user_id, password=password, access_token=access_token,
            device_name=device_name, store_dir=self.store_dir, pickle_key=pickle_key,
            state=state,
        )
        self._trust = DeviceTrust(self._connection, trust)
        self._room_notices = RoomNotices(self._connection, self._trust, notices)
        self._cases = CaseRooms(self._connection, state)
        self._confidant_rooms = ConfidantRooms(
            self._connection, self._cases, DmRooms(self._connection, state, self._cases, pickle_key)
        )
        self._upkeep = RoomUpkeep(self._connection, self._room_notices)
        self._sync_timeout_ms = sync_timeout_ms
        if timeline_limit < 1:
            raise ValueError("timeline_limit must be at least 1")
        self._sync_filter = {"room": {"timeline": {"limit": timeline_limit}}}
        self._on_inbound: InboundHandler | None = None
        self._task: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self._retry: deque[tuple[Inbound, int]] = deque()
        self._queue: asyncio.Queue[Inbound | _Checkpoint] = asyncio.Queue()
        self._checkpointed = 0.0
        self._dispatcher: asyncio.Task[None] | None = None
        self._seen: deque[str] = deque(maxlen=2000)
        self._gaps: dict[str, _Gap] = {}
        self._held: dict[str, _Held] = {}
        self._key_requested: set[str] = set()
        self._queued_total = 0
        self._saved_gaps = b"{}"
        self._saved_held = b"[]"
        self._queued_gaps = b"{}"
        self._queued_held = b"[]"
        self._synced_once = False

    # -- lifecycle -----------------------------------------------------------

    @property
    def device_id(self) -> str | None:
        """The bot's Matrix device id once started (stable across restarts)."""
        client = self._connection.current
        return client.device_id if client else None

    def room(self, room_id: str) -> MatrixRoom | None:
        """The room as the bot's syncs have seen it, if it is in it (for tests
        and diagnostics)."""
        client = self._connection.current
        return client.rooms.get(room_id) if client else None

    async def start(self, on_inbound: InboundHandler) -> None:
        """Log in (or restore the stored device), make sure cross-signing holds,
        run a first full-state sync, then keep syncing in the background."""
        self._on_inbound = on_inbound
        quiet_nio()
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="matrix-inbound")
        try:
            await self._connection.open()
            await self._load_owed()
            since = await self._state.get("since")
            await self._sync_once(full_state=True, since=since.decode() if since else None)
        except BaseException:
            await self._connection.close()
            await self._cancel_tasks()
            raise
        self._task = asyncio.create_task(self._run(), name="matrix-sync")

    async def stop(self) -> None:
        """Stop the sync loop and close the HTTP session (nio's store is on disk)."""
        await self._cancel_tasks()
        async with self._send_lock:
            await self._connection.close()

    async def _cancel_tasks(self) -> None:
        """Cancel the sync loop and the inbound dispatcher and wait for them."""
        tasks = [t for t in (self._task, self._dispatcher) if t is not None]
        self._task = self._dispatcher = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        """Long-poll forever, backing off on network errors and homeserver restarts."""
        delay = 0.2
        while True:
            try:
                ok = await self._sync_once(full_state=False)
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

    async def _sync_once(self, *, full_state: bool, since: str | None = None) -> bool:
        """One sync round: housekeeping, events, retries.  False on a sync error."""
        client = self._connection.client
        # Where this sync starts: every event after it is new to the bot, so a
        # cut-off timeline's gap starts here.
        boundary = since or client.next_batch or client.loaded_sync_token
        try:
            resp = await client.sync(
                timeout=0 if full_state else self._poll_timeout_ms(),
                sync_filter=self._sync_filter,
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
        self._synced_once = True
        await exchange_keys(self._connection)
        for room_id in resp.rooms.invite:
            await self._upkeep.accept_invite(room_id, resp)
        for room_id in resp.rooms.leave:
            self._gaps.pop(room_id, None)  # no longer readable: nothing more to fetch
        queued = self._queued_total
        # Keys that came with this sync may open events that waited for them;
        # they go before this sync's newer events.
        await self._release_held()
        for room_id in {*resp.rooms.join, *self._gaps}:
            room = client.rooms.get(room_id)
            if room is None:
                self._gaps.pop(room_id, None)
                continue
            info = resp.rooms.join.get(room_id)
            timeline = info.timeline if info is not None else None
            limited = bool(timeline and timeline.limited and timeline.prev_batch)
            gap = self._gaps.get(room_id)
            if gap is None and limited and boundary:
                assert timeline is not None and timeline.prev_batch
                gap = self._gaps[room_id] = _Gap(boundary, timeline.prev_batch)
            elif gap is not None and limited:
                gap.end = resp.next_batch  # the timeline is cut off again: fetch it all
            events = timeline.events if timeline is not None else []
            if gap is not None:
                if not await self._fill_gap(room, gap):
                    # This sync's events wait inside the gap, behind the older ones.
                    gap.end = resp.next_batch
                    events = []
                else:
                    del self._gaps[room_id]
                    if gap.end == resp.next_batch:
                        events = []  # already handed over with the gap
            for event in events:
                await self._handle_event(room, event)
            if info is not None:
                await self._upkeep.ensure_encrypted(room)
        await self._expire_held()
        await self._room_notices.warn_new_devices(self._trust.apply_everywhere())
        now = asyncio.get_running_loop().time()
        gaps, held = self._owed_snapshot()
        if (
            self._queued_total > queued
            or (gaps, held) != (self._queued_gaps, self._queued_held)
            or now - self._checkpointed > _CHECKPOINT_IDLE
        ):
            self._checkpointed = now
            self._queued_gaps, self._queued_held = gaps, held
            self._queue.put_nowait(_Checkpoint(resp.next_batch, gaps, held))
        return True

    def _poll_timeout_ms(self) -> int:
        """How long the next sync may wait for news: shorter when a gap is due for
        another try or a waiting event's time is up, so neither waits for traffic."""
        timeout = float(self._sync_timeout_ms)
        now = asyncio.get_running_loop().time()
        for gap in self._gaps.values():
            timeout = min(timeout, max(0.0, gap.due - now) * 1000)
        if self._held:
            oldest = min(h.since for h in self._held.values())
            left = oldest + _UNDECRYPTABLE_WAIT - time.time()
            timeout = min(timeout, max(0.0, left) * 1000 + 100)
        return int(timeout)

    async def _fill_gap(self, room: MatrixRoom, gap: _Gap) -> bool:
        """Hand over a room's missed events, oldest first; True once the gap is closed.

        Without this, an employee who wrote more messages than a sync carries
        (while the bot was down, say) would lose all but the last ones.  Pages
        forward from ``gap.start`` (where the core's record of the room ends)
        to ``gap.end``, at most `_BACKFILL_PAGES` pages per sync; nio decrypts
        the Megolm events of each page as it does for a sync.  When the
        homeserver fails, the gap is kept (and saved with the sync position,
        so a crash does not forget it) and tried again after a growing pause;
        the room's newer events wait in it meanwhile, so the core still sees
        the room in order.  An event handed over twice (after a crash) is
        dropped by the core, which records event ids."""
        client = self._connection.client
        now = asyncio.get_running_loop().time()
        if gap.due > now:
            return False
        pages = handed = 0
        while pages < _BACKFILL_PAGES:
            try:
                resp = await self._messages_page(client, room.room_id, gap.start, gap.end)
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
                await self._handle_event(room, event)
            if not resp.chunk or not resp.end or resp.end == gap.start:
                log.info("matrix: backfilled %d event(s) in %d page(s)", handed, pages)
                return True
            gap.start = resp.end
        gap.failures, gap.due = 0, 0.0
        log.info("matrix: backfill continues next sync, %d event(s) so far", handed)
        return False

    async def _messages_page(
        self, client: AsyncClient, room_id: str, start: str, end: str
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

    # -- what is still owed to the core --------------------------------------

    def _owed_snapshot(self) -> tuple[bytes, bytes]:
        """The open gaps and waiting events as saved (gap schedules are not)."""
        gaps = {r: {"start": g.start, "end": g.end} for r, g in sorted(self._gaps.items())}
        held = [
            {"event_id": e, "room_id": h.room_id, "source": h.source, "since": h.since}
            for e, h in self._held.items()
        ]
        return (
            json.dumps(gaps, sort_keys=True).encode(),
            json.dumps(held, sort_keys=True).encode(),
        )

    async def _load_owed(self) -> None:
        """Restore the gaps and waiting events the last run still owed the core."""
        raw_gaps = await self._state.get("gaps")
        raw_held = await self._state.get("held")
        try:
            for room_id, g in json.loads(raw_gaps or b"{}").items():
                self._gaps[room_id] = _Gap(str(g["start"]), str(g["end"]))
            for h in json.loads(raw_held or b"[]"):
                self._held[str(h["event_id"])] = _Held(
                    str(h["room_id"]), dict(h["source"]), float(h["since"])
                )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("matrix: saved gaps or waiting events unreadable (%s)", type(exc).__name__)
        self._saved_gaps = self._queued_gaps = raw_gaps or b"{}"
        self._saved_held = self._queued_held = raw_held or b"[]"
        if self._gaps or self._held:
            log.info(
                "matrix: %d gap(s) and %d event(s) waiting for a key carried over",
                len(self._gaps),
                len(self._held),
            )

    async def _hold(self, room: MatrixRoom, event: MegolmEvent) -> None:
        """Keep an event whose room key is missing and ask the sender's device
        for the key; `_release_held` hands it over when the key arrives.

        The event is saved (as ciphertext) with the next sync position, so a
        crash while it waits does not lose it.  Newer events of the room that
        do decrypt are not held back behind it: a missing key almost always
        concerns a whole Megolm session, so the messages after it wait too and
        are released together, in the order they came."""
        client = self._connection.client
        source = dict(event.source)
        source.setdefault("room_id", room.room_id)
        self._held[event.event_id] = _Held(room.room_id, source, time.time())
        log.info("matrix: event waits for its key")
        while len(self._held) > _HELD_MAX:
            oldest = next(iter(self._held))
            await self._give_up_held(oldest)
        session = event.session_id
        if session in self._key_requested or not event.device_id:
            return
        self._key_requested.add(session)
        try:
            request = event.as_key_request(event.sender, client.device_id or "", session,
                                           event.device_id)
            resp = await client.to_device(request)
        except (aiohttp.ClientError, TimeoutError, OSError, LocalProtocolError) as exc:
            log.warning("matrix: key request not sent (%s)", type(exc).__name__)
            return
        if isinstance(resp, ErrorResponse):
            log.warning("matrix: key request refused (%s)", resp.status_code)

    async def _release_held(self) -> None:
        """Hand over waiting events whose key has arrived, in the order they came."""
        client = self._connection.client
        if not self._held or client.olm is None:
            return
        for event_id, held in list(self._held.items()):
            room = client.rooms.get(held.room_id)
            if room is None:
                del self._held[event_id]
                continue
            event = MegolmEvent.from_dict(held.source)
            if not isinstance(event, MegolmEvent):
                del self._held[event_id]
                continue
            event.room_id = held.room_id
            if client.olm.inbound_group_store.get(
                held.room_id, event.sender_key, event.session_id
            ) is None:
                continue
            try:
                decrypted = client.olm.decrypt_megolm_event(event, held.room_id)
            except EncryptionError:
                continue  # e.g. a key that starts later than this message: keep waiting
            del self._held[event_id]
            log.info("matrix: event decrypted after its key arrived")
            await self._handle_event(room, decrypted)

    async def _expire_held(self) -> None:
        """Events whose key did not come in time: ask the sender to send them again."""
        cutoff = time.time() - _UNDECRYPTABLE_WAIT
        for event_id, held in list(self._held.items()):
            if held.since <= cutoff:
                await self._give_up_held(event_id)

    async def _give_up_held(self, event_id: str) -> None:
        """Drop a waiting event and have its sender asked, kindly, to send it again."""
        held = self._held.pop(event_id)
        self._seen.append(event_id)
        log.info("matrix: undecryptable event given up")
        await self._ask_again(held.room_id, held.source.get("sender"), event_id)

    async def _ask_again(self, room_id: str, sender: object, event_id: str) -> None:
        """Hand the core an unreadable message as an `UNREADABLE` event.

        The core, not the channel, answers it: only the core knows the
        person's language, and its answer goes out through the outbox, retried
        until delivered (a notice sent from here would be lost to a homeserver
        hiccup).  Queued like any event, so it is recorded before the sync
        position moves past the message."""
        if not isinstance(sender, str) or not sender or sender == self.user_id:
            return
        await self._dispatch(
            Inbound(
                channel=MATRIX,
                sender=sender,
                chat=room_id,
                event_id=event_id + _UNREADABLE_SUFFIX,
                unsupported=UNREADABLE,
                case_hint=await self._cases.case_for_room(room_id),
            )
        )

    async def _handle_event(self, room: MatrixRoom, event: Any) -> None:
        """Translate one timeline event; refuse anything that was not end-to-end encrypted."""
        if getattr(event, "sender", None) == self.user_id:
            return
        event_id = getattr(event, "event_id", None)
        if not event_id or event_id in self._seen:
            return
        if isinstance(event, MegolmEvent):
            if event_id not in self._held:
                await self._hold(room, event)
            return
        if isinstance(event, UnknownEncryptedEvent):  # an algorithm we cannot ever read
            self._seen.append(event_id)
            log.info("matrix: undecryptable event")
            await self._ask_again(room.room_id, event.sender, event_id)
            return
        if not isinstance(event, RoomMessage):
            return
        self._seen.append(event_id)
        self._held.pop(event_id, None)  # its key came with the same sync
        if not getattr(event, "decrypted", False):
            log.info("matrix: refused an unencrypted message")
            await self._room_notices.ask_for_encryption(room.room_id)
            return
        inbound = await self._to_inbound(room, event)
        if inbound is not None:
            await self._dispatch(inbound)

    async def _to_inbound(self, room: MatrixRoom, event: RoomMessage) -> Inbound | None:
        """Build the `Inbound` for a decrypted message (text, media or unsupported)."""
        case_code = await self._cases.case_for_room(room.room_id)
        inbound = inbound_from_event(room, event, case_code)
        if inbound is not None or not isinstance(event, RoomEncryptedMedia | RoomMessageMedia):
            return inbound
        base = _inbound_fields(room, event, case_code)
        try:
            media = await self._fetch_media(event)
        except MediaRejected as exc:
            log.info("matrix: media rejected (%s)", exc.reason)
            return Inbound(**base, unsupported=_MEDIA_REFUSALS.get(exc.reason, "invalid_media"))
        except RetryLater:
            log.warning("matrix: media download failed")
            return Inbound(**base, unsupported="unavailable")
        return Inbound(**base, media=media)

    async def _fetch_media(self, event: RoomEncryptedMedia | RoomMessageMedia) -> Media:
        """Download (and decrypt) an attachment; images are re-encoded without metadata."""
        client = self._connection.client
        resp = await client.download(mxc=event.url)
        if isinstance(resp, DownloadError) or not hasattr(resp, "body"):
            raise RetryLater("download failed")
        data: bytes = resp.body
        if isinstance(event, RoomEncryptedMedia):
            try:
                data = decrypt_attachment(data, event.key["k"], event.hashes["sha256"], event.iv)
            except (EncryptionError, KeyError, ValueError) as exc:
                raise MediaRejected("media.undecryptable") from exc
        if len(data) > MAX_MEDIA_BYTES:
            raise MediaRejected("media.too_large")
        mime = str(
            getattr(event, "mimetype", None)
            or event.source.get("content", {}).get("info", {}).get("mimetype")
            or "application/octet-stream"
        )
        name = _safe_filename(event.body)
        if isinstance(event, RoomEncryptedImage | RoomMessageImage):
            data, mime = scrub_image(data)
            ext = ".png" if mime == "image/png" else ".jpg"
            return Media("photo", data, filename="image" + ext, mime_type=mime)
        if isinstance(event, RoomEncryptedAudio | RoomMessageAudio):
            return Media("voice", data, filename=name, mime_type=mime)
        if isinstance(
            event, RoomEncryptedFile | RoomEncryptedVideo | RoomMessageFile | RoomMessageVideo
        ):
            return Media("document", data, filename=name, mime_type=mime)
        return Media("document", data, filename=name, mime_type=mime)

    async def _dispatch(self, inbound: Inbound) -> None:
        """Queue an event for the core.  The core runs in its own task so that a
        handler that sends (and so waits for the sync loop) cannot deadlock it."""
        self._queue.put_nowait(inbound)
        self._queued_total += 1

    async def _dispatch_loop(self) -> None:
        """Hand events to the core one at a time; failed ones are retried when idle."""
        while True:
            try:
                inbound = await asyncio.wait_for(
                    self._queue.get(), timeout=_RETRY_DELAY if self._retry else None
                )
            except TimeoutError:
                await self._retry_pending()
                continue
            if isinstance(inbound, _Checkpoint):
                await self._save_checkpoint(inbound)
            else:
                await self._deliver(inbound, 1)

    async def _save_checkpoint(self, mark: _Checkpoint) -> None:
        """Remember the sync position up to which the core has recorded every event.

        nio saves its own token before any callback runs, so a crash would
        skip events the core never saw; restarting from this one re-delivers
        them instead (the core drops the ones it already recorded).  Not
        saved while an event waits for a retry: it must come back after a
        crash too."""
        if self._retry:
            return
        try:
            # What is still owed first: a crash between the writes then only
            # re-delivers (which the core drops), never skips.
            if mark.gaps != self._saved_gaps:
                await self._state.set("gaps", mark.gaps)
                self._saved_gaps = mark.gaps
            if mark.held != self._saved_held:
                await self._state.set("held", mark.held)
                self._saved_held = mark.held
            await self._state.set("since", mark.token.encode())
        except Exception as exc:
            log.warning("matrix: sync position not saved (%s)", type(exc).__name__)

    async def _deliver(self, inbound: Inbound, attempt: int) -> None:
        """Call the core; on failure keep the event (never swallow it silently)."""
        assert self._on_inbound is not None
        try:
            await self._on_inbound(inbound)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if attempt >= _RETRY_LIMIT:
                log.error(
                    "matrix: dropped an event after %d attempts (%s)", attempt, type(exc).__name__
                )
            else:
                log.error("matrix: inbound handler failed (%s); will retry", type(exc).__name__)
                self._retry.append((inbound, attempt))

    async def _retry_pending(self) -> None:
        """Re-offer events whose handling failed, oldest first."""
        for _ in range(len(self._retry)):
            inbound, attempt = self._retry.popleft()
            await self._deliver(inbound, attempt + 1)

    @property
    def pending_retries(self) -> int:
        """How many inbound events wait for another try (for health checks and tests)."""
        return len(self._retry)

    # -- outbound ------------------------------------------------------------

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        """Deliver one message to an employee's DM or to the case's confidant room."""
        try:
            async with self._send_lock:
                return await self._send_locked(out, idempotency_key)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryLater(f"homeserver unreachable: {type(exc).__name__}") from exc

    async def _send_locked(self, out: Outbound, key: str) -> SendResult:
        client = self._connection.current
        if client is None or not self._synced_once:
            raise RetryLater("matrix channel not running")
        case_room: str | None = None
        if out.role == Role.CONFIDANT:
            room_id, case_room = await self._confidant_rooms.target(out)
            room = await wait_room(self._connection, room_id, addressed_user(out))
        else:
            room_id = out.to.address
            found_room = client.rooms.get(room_id)
            if found_room is None:
                raise Unreachable("the bot is not in that room")
            room = found_room
        if not room.encrypted:
            raise RetryLater("room not encrypted yet")
        event_id: str | None = None
        if out.media is not None:
            event_id = await self._send_media(room, out, key)
        if out.text or out.menu:
            msgtype = "m.notice" if out.kind == OutboundKind.NOTICE else "m.text"
            event_id = await self._room_send(
                room, {"msgtype": msgtype, "body": render_text(out)}, _tx_id(key, "text")
            )
        if out.control == Control.CASE_HANDOVER_OUT and room_id == case_room:
            resp = await client.room_kick(room_id, out.to.address, reason="case handed over")
            if isinstance(resp, ErrorResponse):
                log.warning("matrix: kick failed (%s)", resp.status_code)
        elif out.control in (Control.CASE_CLOSE, Control.CASE_ERASE) and out.case:
            await self._cases.forget(str(out.case))
        return SendResult(event_id)

    async def _room_send(self, room: MatrixRoom, content: dict[str, Any], tx_id: str) -> str:
        """Encrypt and send with our trust policy applied; map failures for the worker."""
        client = self._connection.client
        if not room.members_synced:
            await client.joined_members(room.room_id)
        if client.should_query_keys:
            await client.keys_query()
        self._trust.apply(room)
        try:
            resp = await client.room_send(room.room_id, "m.room.message", content, tx_id=tx_id)
        except OlmUnverifiedDeviceError:
            await client.keys_query()
            self._trust.apply(room)
            try:
                resp = await client.room_send(room.room_id, "m.room.message", content, tx_id=tx_id)
            except OlmUnverifiedDeviceError as exc:
                raise RetryLater("a device is not yet trusted") from exc
        except (LocalProtocolError, EncryptionError) as exc:
            raise RetryLater(f"could not encrypt: {type(exc).__name__}") from exc
        if isinstance(resp, RoomSendResponse):
            return str(resp.event_id)
        raise _map_error(resp)

    async def _send_media(self, room: MatrixRoom, out: Outbound, key: str) -> str:
        """Upload the file encrypted (re-uploaded, never forwarded) and send it."""
        client = self._connection.client
        media = out.media
        assert media is not None
        data, mime = media.data, media.mime_type
        if media.kind == "photo":
            try:
                data, mime = scrub_image(data)
            except MediaRejected as exc:
                raise Unreachable(f"media rejected: {exc.reason}") from exc
        upload, keys = await client.upload(
            _bytes_provider(data),
            content_type="application/octet-stream",
            filename=None,
            encrypt=True,
            filesize=len(data),
        )
        if not isinstance(upload, UploadResponse) or keys is None:
            raise _map_error(upload) if isinstance(upload, ErrorResponse) else RetryLater("upload")
        msgtype = {"photo": "m.image", "voice": "m.audio"}.get(media.kind, "m.file")
        file_info = {**keys, "url": upload.content_uri, "mimetype": mime}
        content = {
            "msgtype": msgtype,
            "body": media.caption or media.filename,
            "info": {"mimetype": mime, "size": len(data)},
            "file": file_info,
        }
        return await self._room_send(room, content, _tx_id(key, "media"))

def _map_error(resp: ErrorResponse) -> RetryLater | Unreachable:
    """Matrix errors → the delivery worker's vocabulary."""
    code = str(resp.status_code or "")
    transport = getattr(resp, "transport_response", None)
    http = getattr(transport, "status", None)
    if code == "M_LIMIT_EXCEEDED" or http == 429:
        ms = getattr(resp, "retry_after_ms", None)
        return RetryLater("rate limited", after=ms / 1000 if ms else None)
    if code in ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_ROOM") or http in (403, 404):
        return Unreachable(f"room refused the message: {code or http}")
    return RetryLater(f"homeserver error: {code or http}")


def _bytes_provider(data: bytes) -> Any:
    """nio's upload wants a callable returning a fresh readable for each attempt."""
    import io

    def provider(_got_429: int, _got_timeouts: int) -> io.BytesIO:
        return io.BytesIO(data)

    return provider


def _relation(content: Any) -> tuple[dict[str, Any], str | None]:
    """``m.relates_to`` and the replied-to event id, tolerating any shape: the
    homeserver passes content through unchecked, so a client may send junk."""
    relates = content.get("m.relates_to") if isinstance(content, dict) else None
    if not isinstance(relates, dict):
        return {}, None
    in_reply_to = relates.get("m.in_reply_to")
    reply_to = in_reply_to.get("event_id") if isinstance(in_reply_to, dict) else None
    return relates, reply_to if isinstance(reply_to, str) and reply_to else None


def _inbound_fields(room: MatrixRoom, event: RoomMessage, case_code: str | None) -> dict[str, Any]:
    """What every `Inbound` from a room event carries: the sender's Matrix id
    (for the core's lookup only), the room, the event and reply ids; never a
    display name or avatar."""
    return {
        "channel": MATRIX,
        "sender": event.sender,
        "chat": room.room_id,
        "event_id": event.event_id,
        "reply_to": _relation(event.source.get("content"))[1],
        "case_hint": case_code,
    }


def inbound_from_event(
    room: MatrixRoom, event: RoomMessage, case_code: str | None
) -> Inbound | None:
    """The `Inbound` for a decrypted room message, without any network call,
    so the translation can be tested (and fuzzed) on its own.

    Returns None only for media, which needs a download first
    (`MatrixChannel._to_inbound`).  Edits are reported as unsupported: a
    changed message cannot be taken back from the other side.
    """
    content = event.source.get("content")
    relates, _ = _relation(content)
    base = _inbound_fields(room, event, case_code)
    if relates.get("rel_type") == "m.replace":
        return Inbound(**base, unsupported="edit")
    if isinstance(event, RoomMessageText | RoomMessageNotice | RoomMessageEmote):
        body = event.body if isinstance(event.body, str) else ""
        replying = isinstance(relates.get("m.in_reply_to"), dict)
        text = _strip_reply_fallback(body) if replying else body
        return Inbound(**base, text=_COMMAND.sub("/", text.strip()))
    if isinstance(event, RoomEncryptedMedia | RoomMessageMedia):
        return None
    msgtype = content.get("msgtype") if isinstance(content, dict) else None
    return Inbound(**base, unsupported=msgtype if isinstance(msgtype, str) and msgtype
                   else "unknown")


def _safe_filename(body: str | None) -> str:
    """A harmless file name from the sender's body (no paths, bounded length)."""
    name = (body or "file").replace("/", "_").replace("\\", "_").strip() or "file"
    return name[:120]


def _strip_reply_fallback(body: str) -> str:
    """Drop the quoted "> <@user> …" fallback that replies carry, keeping the answer."""
    lines = body.splitlines()
    quoted = 0
    while quoted < len(lines) and lines[quoted].startswith(">"):
        quoted += 1
    rest = lines[quoted:]
    if quoted and not rest:
        return body  # a quote with no separator: the person's own words
    while rest and not rest[0].strip():
        rest.pop(0)
    # A fallback followed by an empty answer is empty: the quote (which may
    # carry the other person's name) is never passed on as if typed.
    return "\n".join(rest)
