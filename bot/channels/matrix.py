"""Matrix channel: employees in encrypted DMs with the bot, confidants in one
encrypted room per case, all through matrix-nio with end-to-end encryption.

The adapter only translates.  It refuses to relay anything that did not arrive
encrypted, creates every room it owns encrypted, keeps its device (and its
cross-signing) stable across restarts, and makes sends idempotent through
Matrix transaction ids derived from the delivery worker's idempotency key.

Trust policy (config ``matrix.trust``):

* ``all``  — every device of every room member is trusted for encryption.
* ``tofu`` — a user's devices are trusted the first time the bot sees that
  user.  When a *new* device shows up later for a user already known, it is
  trusted too (an employee who changes phone must not be cut off, and the bot
  has no interactive verification), but the bot posts a warning notice in
  every room it shares with that user, naming the new device, so a stolen
  login does not go unnoticed.
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
    AsyncClientConfig,
    DownloadError,
    ErrorResponse,
    InviteMemberEvent,
    JoinError,
    LoginResponse,
    MatrixRoom,
    MegolmEvent,
    MessageDirection,
    RoomCreateError,
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
    RoomPreset,
    RoomPutStateError,
    RoomSendResponse,
    SyncError,
    SyncResponse,
    UnknownEncryptedEvent,
    UploadResponse,
    WhoamiResponse,
)
from nio.crypto.attachments import decrypt_attachment
from nio.exceptions import EncryptionError, LocalProtocolError, OlmUnverifiedDeviceError

from bot.channels.base import ChannelState, InboundHandler, NoticeWords
from bot.channels.matrix_crosssign import (
    CrossSigningError,
    CrossSigningSeeds,
    ensure_cross_signing,
)
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

MEGOLM = "m.megolm.v1.aes-sha2"
ENCRYPTION_STATE = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}

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


class MatrixSetupError(Exception):
    """The Matrix login, store or keys are inconsistent; the message tells the operator
    what is wrong and what to do.  The bot must not start the channel."""


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
        self._password = password
        self._access_token = access_token
        self.device_name = device_name
        self.store_dir = Path(store_dir)
        self.trust = trust
        self._pickle_key = pickle_key
        self._state = state
        self._sync_timeout_ms = sync_timeout_ms
        if timeline_limit < 1:
            raise ValueError("timeline_limit must be at least 1")
        self._sync_filter = {"room": {"timeline": {"limit": timeline_limit}}}
        self._notices = notices
        self._client: AsyncClient | None = None
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
        self._room_case: dict[str, str | None] = {}
        self._encryption_asked: set[str] = set()
        self._synced_once = False

    # -- lifecycle -----------------------------------------------------------

    @property
    def device_id(self) -> str | None:
        """The bot's Matrix device id once started (stable across restarts)."""
        return self._client.device_id if self._client else None

    async def start(self, on_inbound: InboundHandler) -> None:
        """Log in (or restore the stored device), make sure cross-signing holds,
        run a first full-state sync, then keep syncing in the background."""
        self._on_inbound = on_inbound
        _quiet_nio()
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="matrix-inbound")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        client = AsyncClient(
            self.homeserver,
            self.user_id,
            store_path=str(self.store_dir),
            config=AsyncClientConfig(
                encryption_enabled=True,
                store_sync_tokens=True,
                pickle_key=self._pickle_key,
                max_limit_exceeded=0,
                max_timeouts=0,
                request_timeout=30,
            ),
        )
        self._client = client
        try:
            await self._login(client)
            if client.should_upload_keys:
                await client.keys_upload()
            await self._ensure_cross_signing(client)
            await self._load_owed()
            since = await self._state.get("since")
            await self._sync_once(full_state=True, since=since.decode() if since else None)
        except BaseException:
            await client.close()
            self._client = None
            await self._cancel_tasks()
            raise
        self._task = asyncio.create_task(self._run(), name="matrix-sync")

    async def stop(self) -> None:
        """Stop the sync loop and close the HTTP session (nio's store is on disk)."""
        await self._cancel_tasks()
        async with self._send_lock:
            if self._client is not None:
                await self._client.close()
            self._client = None

    async def _cancel_tasks(self) -> None:
        """Cancel the sync loop and the inbound dispatcher and wait for them."""
        tasks = [t for t in (self._task, self._dispatcher) if t is not None]
        self._task = self._dispatcher = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _login(self, client: AsyncClient) -> None:
        """First start: password login and persist the device; later starts:
        restore that same device from the state and nio's store."""
        raw = await self._state.get("login")
        store_files = sorted(self.store_dir.glob(f"{self.user_id}_*.db"))
        if raw is not None:
            saved = json.loads(raw)
            if saved.get("user_id") != self.user_id:
                raise MatrixSetupError(
                    "matrix.user_id differs from the account this bot's state was made for; "
                    "restore the old user_id or give the bot a fresh database"
                )
            device_id, token = saved["device_id"], saved["access_token"]
            if not (self.store_dir / f"{self.user_id}_{device_id}.db").exists():
                raise MatrixSetupError(
                    f"matrix.store_dir: the encryption store for device {device_id} is missing "
                    f"in {self.store_dir}; restore it from backup (without it the bot cannot "
                    "read its encrypted rooms), or delete the bot's Matrix state to start "
                    "with a new device"
                )
            client.device_id = device_id
            try:
                client.restore_login(self.user_id, device_id, token)
            except Exception as exc:
                raise MatrixSetupError(
                    "matrix.store_dir: the encryption store cannot be opened with this key "
                    f"file ({type(exc).__name__}); was the key file replaced?"
                ) from exc
            who = await client.whoami()
            if not isinstance(who, WhoamiResponse):
                raise MatrixSetupError(
                    "matrix: the homeserver rejected the stored access token "
                    f"({getattr(who, 'status_code', '?')}); the device was logged out. "
                    "Delete the bot's Matrix state and store_dir to log in as a new device"
                )
            if who.user_id != self.user_id or (who.device_id and who.device_id != device_id):
                raise MatrixSetupError(
                    "matrix: the stored access token belongs to another user or device"
                )
            return
        if store_files:
            raise MatrixSetupError(
                f"matrix.store_dir: {self.store_dir} already holds an encryption store for "
                f"{len(store_files)} device(s) but the bot's state has no Matrix login; "
                "use the matching database, or move store_dir away to start a new device"
            )
        if self._password:
            resp = await client.login(self._password, device_name=self.device_name)
            if not isinstance(resp, LoginResponse):
                raise MatrixSetupError(
                    f"matrix.password: login failed ({getattr(resp, 'status_code', '?')})"
                )
            device_id, token = resp.device_id, resp.access_token
        else:
            assert self._access_token is not None
            client.access_token = self._access_token
            who = await client.whoami()
            if not isinstance(who, WhoamiResponse) or not who.device_id:
                raise MatrixSetupError("matrix.access_token: rejected by the homeserver")
            if who.user_id != self.user_id:
                raise MatrixSetupError("matrix.access_token: belongs to another user")
            device_id, token = who.device_id, self._access_token
            client.restore_login(self.user_id, device_id, token)
        await self._state.set(
            "login",
            json.dumps(
                {"user_id": self.user_id, "device_id": device_id, "access_token": token}
            ).encode(),
        )
        log.info("matrix: logged in with a new device")

    async def _ensure_cross_signing(self, client: AsyncClient) -> None:
        """Bootstrap or check cross-signing; persist new seeds (encrypted by the store)."""
        assert client.olm is not None
        raw = await self._state.get("xsign")
        seeds = CrossSigningSeeds.from_bytes(raw) if raw else None
        try:
            new = await ensure_cross_signing(
                self.homeserver,
                client.access_token,
                self.user_id,
                client.device_id,
                dict(client.olm.account.identity_keys),
                seeds,
                password=self._password,
            )
        except CrossSigningError as exc:
            raise MatrixSetupError(f"matrix: cross-signing: {exc}") from exc
        if new != seeds:
            await self._state.set("xsign", new.to_bytes())

    # -- sync loop -----------------------------------------------------------

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
        client = self._require_client()
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
        await self._housekeeping()
        for room_id in resp.rooms.invite:
            await self._accept_invite(room_id, resp)
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
                await self._ensure_room_encrypted(room)
        await self._expire_held()
        await self._apply_trust_everywhere()
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
        client = self._require_client()
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
        client = self._require_client()
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
        client = self._require_client()
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
                case_hint=await self._case_for_room(room_id),
            )
        )

    async def _housekeeping(self) -> None:
        """What nio's sync_forever does between syncs: keys and to-device messages."""
        client = self._require_client()
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        await client.send_to_device_messages()

    async def _accept_invite(self, room_id: str, resp: SyncResponse) -> None:
        """Employees start a DM by inviting the bot: join it."""
        client = self._require_client()
        info = resp.rooms.invite[room_id]
        own = [
            e
            for e in info.invite_state
            if isinstance(e, InviteMemberEvent)
            and e.state_key == self.user_id
            and e.membership == "invite"
        ]
        if not own:
            return
        result = await client.join(room_id)
        if isinstance(result, JoinError):
            log.warning("matrix: could not join an invited room (%s)", result.status_code)
        else:
            log.info("matrix: joined a room on invite")

    async def _ensure_room_encrypted(self, room: MatrixRoom) -> None:
        """Turn encryption on in a DM that lacks it; if we may not, ask the user to."""
        if room.encrypted or room.room_id in self._encryption_asked:
            return
        self._encryption_asked.add(room.room_id)
        client = self._require_client()
        resp = await client.room_put_state(room.room_id, "m.room.encryption", {"algorithm": MEGOLM})
        if isinstance(resp, RoomPutStateError):
            log.info("matrix: may not enable encryption in a room; asking the user")
            await self._plain_notice(room.room_id, self._room_notice("matrix.not_encrypted"))
        else:
            log.info("matrix: enabled encryption in a room")

    def _room_notice(self, key: str, **values: object) -> str:
        """A notice the channel must send itself, in each of the organisation's
        languages (default first), from the same strings the core uses
        (the app's `NoticeWords`).

        Only for notices that cannot go through the core: the one asking for
        encryption is for an unencrypted room, where the core's messages must
        never go (letting the core answer there would also move the person's
        address to that room), and may come before anyone wrote; a new-device
        warning concerns a room, not anyone's message.  The reader's language
        is unknown here, so every language is shown."""
        return self._notices(key, **values)

    async def _plain_notice(self, room_id: str, text: str) -> None:
        """A fixed, content-free notice; the only thing ever sent to an unencrypted room."""
        client = self._require_client()
        room = client.rooms.get(room_id)
        try:
            if room is not None and room.encrypted:
                self._apply_trust(room)
            await client.room_send(
                room_id, "m.room.message", {"msgtype": "m.notice", "body": text}
            )
        except (LocalProtocolError, EncryptionError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("matrix: notice not sent (%s)", type(exc).__name__)

    # -- inbound -------------------------------------------------------------

    async def _case_for_room(self, room_id: str) -> str | None:
        """The case code a per-case room belongs to (None for employee DMs)."""
        if room_id not in self._room_case:
            raw = await self._state.get(f"room:{room_id}")
            self._room_case[room_id] = raw.decode() if raw else None
        return self._room_case[room_id]

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
            await self._plain_notice(room.room_id, self._room_notice("matrix.not_encrypted"))
            return
        inbound = await self._to_inbound(room, event)
        if inbound is not None:
            await self._dispatch(inbound)

    async def _to_inbound(self, room: MatrixRoom, event: RoomMessage) -> Inbound | None:
        """Build the `Inbound` for a decrypted message (text, media or unsupported)."""
        case_code = await self._case_for_room(room.room_id)
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
        client = self._require_client()
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

    # -- trust ---------------------------------------------------------------

    def _apply_trust(self, room: MatrixRoom) -> dict[str, list[str]]:
        """Trust the devices the policy accepts; return the new devices of users we
        already knew (``tofu`` warns about those)."""
        client = self._require_client()
        fresh: dict[str, list[str]] = {}
        for user_id in set(room.users) | set(room.invited_users):
            devices = list(client.device_store.active_user_devices(user_id))
            pending = [d for d in devices if not d.verified and not d.blacklisted]
            if not pending:
                continue
            known = any(d.verified for d in devices)
            for device in pending:
                client.verify_device(device)
            if self.trust == "tofu" and known and user_id != self.user_id:
                fresh[user_id] = [d.id for d in pending]
        return fresh

    async def _apply_trust_everywhere(self) -> None:
        """Run the policy over every encrypted room and post tofu warnings."""
        client = self._require_client()
        warnings: dict[str, set[str]] = {}
        for room in list(client.rooms.values()):
            if room.encrypted:
                for user_id, new_devices in self._apply_trust(room).items():
                    warnings.setdefault(user_id, set()).update(new_devices)
        for user_id, device_ids in warnings.items():
            log.info("matrix: new device of a known user trusted; warning posted")
            text = self._room_notice("matrix.new_device", devices=", ".join(sorted(device_ids)))
            for room in list(client.rooms.values()):
                if room.encrypted and user_id in room.users:
                    try:
                        await client.room_send(
                            room.room_id,
                            "m.room.message",
                            {"msgtype": "m.notice", "body": text},
                        )
                    except (LocalProtocolError, EncryptionError, aiohttp.ClientError) as exc:
                        log.warning("matrix: warning not sent (%s)", type(exc).__name__)

    # -- outbound ------------------------------------------------------------

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        """Deliver one message to an employee's DM or to the case's confidant room."""
        try:
            async with self._send_lock:
                return await self._send_locked(out, idempotency_key)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryLater(f"homeserver unreachable: {type(exc).__name__}") from exc

    async def _send_locked(self, out: Outbound, key: str) -> SendResult:
        client = self._client
        if client is None or not self._synced_once:
            raise RetryLater("matrix channel not running")
        case_room: str | None = None
        if out.role == Role.CONFIDANT:
            room_id, case_room = await self._confidant_target(out)
            room = await self._wait_room(room_id, _user(out))
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
            await self._forget_case_room(str(out.case))
        return SendResult(event_id)

    async def _confidant_target(self, out: Outbound) -> tuple[str, str | None]:
        """Where a message for a confidant goes, and the case's room if it has one.

        The case room when the message belongs to a case whose room the
        confidant is in (``case-open`` and relayed words create the room or
        invite them);
        otherwise the confidant's personal DM with the bot, so notifications,
        ``/cases`` answers and news about cases without a room are never
        dropped.  A reply addressed to a room (the confidant wrote from it)
        goes back there.
        """
        client = self._require_client()
        user = _user(out)
        case_room: str | None = None
        if out.case:
            raw = await self._state.get(f"case:{out.case}")
            case_room = raw.decode() if raw else None
            if case_room is not None and case_room not in client.rooms:
                case_room = None  # the bot is no longer in it: as good as gone
            # Words of the employee belong in the case room, so they open it too.
            opens = out.control == Control.CASE_OPEN or out.kind in (
                OutboundKind.RELAY,
                OutboundKind.URGENT,
            )
            if opens and user is not None:
                if case_room is None:
                    created = await self._create_case_room(out, user)
                    return created, created
                if user not in client.rooms[case_room].users:
                    resp = await client.room_invite(case_room, user)
                    if isinstance(resp, ErrorResponse):
                        log.warning("matrix: invite failed (%s)", resp.status_code)
                return case_room, case_room
            if case_room is not None and (user is None or user in client.rooms[case_room].users):
                return case_room, case_room
        if user is None:
            return out.to.address, case_room
        return await self._dm_room(user), case_room

    async def _create_case_room(self, out: Outbound, user: str) -> str:
        """A new encrypted room for the case, named with its code, only the confidant invited."""
        client = self._require_client()
        resp = await client.room_create(
            name=str(out.case),
            preset=RoomPreset.private_chat,
            invite=[user],
            initial_state=[ENCRYPTION_STATE],
        )
        if isinstance(resp, RoomCreateError):
            raise RetryLater(f"room creation failed: {resp.status_code}")
        room_id = str(resp.room_id)
        await self._state.set(f"case:{out.case}", room_id.encode())
        await self._state.set(f"room:{room_id}", str(out.case).encode())
        self._room_case[room_id] = str(out.case)
        log.info("matrix: case room created for %s", out.case)
        return room_id

    async def _forget_case_room(self, case: str) -> None:
        """Leave a closed or erased case's room and drop the mapping: nothing reopens it."""
        client = self._require_client()
        raw = await self._state.get(f"case:{case}")
        if raw is None:
            return
        room_id = raw.decode()
        if room_id in client.rooms:
            leave = await client.room_leave(room_id)
            if isinstance(leave, ErrorResponse):
                raise RetryLater(f"leave failed: {leave.status_code}")
        await self._state.delete(f"case:{case}")
        await self._state.delete(f"room:{room_id}")
        self._room_case.pop(room_id, None)

    def _dm_key(self, user: str) -> str:
        """State key of a confidant's DM room: a keyed hash, so the database names no one."""
        secret = hashlib.sha256(b"matrix-dm\0" + self._pickle_key.encode()).digest()
        return "dm:" + hashlib.blake2b(user.encode(), key=secret, digest_size=16).hexdigest()

    async def _dm_room(self, user: str) -> str:
        """The confidant's personal encrypted DM with the bot: the stored one, else a room
        the confidant invited the bot to, else a new one (created on first need)."""
        client = self._require_client()
        key = self._dm_key(user)
        raw = await self._state.get(key)
        if raw is not None:
            room_id = raw.decode()
            room = client.rooms.get(room_id)
            if room is not None and user in room.users:
                return room_id
            if room is not None:  # the confidant left: ask them back in
                resp = await client.room_invite(room_id, user)
                if not isinstance(resp, ErrorResponse):
                    return room_id
            await self._state.delete(key)
        for room in list(client.rooms.values()):
            if (
                set(room.users) == {self.user_id, user}
                and await self._case_for_room(room.room_id) is None
            ):
                await self._state.set(key, room.room_id.encode())
                log.info("matrix: confidant DM room adopted")
                return str(room.room_id)
        resp = await client.room_create(
            is_direct=True,
            preset=RoomPreset.trusted_private_chat,
            invite=[user],
            initial_state=[ENCRYPTION_STATE],
        )
        if isinstance(resp, RoomCreateError):
            raise RetryLater(f"DM creation failed: {resp.status_code}")
        room_id = str(resp.room_id)
        await self._state.set(key, room_id.encode())
        log.info("matrix: confidant DM room created")
        return room_id

    async def _wait_room(self, room_id: str, member: str | None) -> MatrixRoom:
        """Wait until the sync loop has seen the room encrypted (and ``member`` in it),
        so the Megolm session is shared with everyone who must read the message."""
        client = self._require_client()
        for _ in range(200):
            room = client.rooms.get(room_id)
            if room is not None and room.encrypted and (member is None or member in room.users):
                return room
            await asyncio.sleep(0.05)
        raise RetryLater("room state not synced yet")

    async def _room_send(self, room: MatrixRoom, content: dict[str, Any], tx_id: str) -> str:
        """Encrypt and send with our trust policy applied; map failures for the worker."""
        client = self._require_client()
        if not room.members_synced:
            await client.joined_members(room.room_id)
        if client.should_query_keys:
            await client.keys_query()
        self._apply_trust(room)
        try:
            resp = await client.room_send(room.room_id, "m.room.message", content, tx_id=tx_id)
        except OlmUnverifiedDeviceError:
            await client.keys_query()
            self._apply_trust(room)
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
        client = self._require_client()
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

    def _require_client(self) -> AsyncClient:
        if self._client is None:
            raise RetryLater("matrix channel not running")
        return self._client


def _quiet_nio() -> None:
    """matrix-nio logs user, device and room ids even at INFO and WARNING; our
    logs must carry none, so only its errors pass (whatever the app set up)."""
    nio_log = logging.getLogger("nio")
    if nio_log.getEffectiveLevel() < logging.ERROR:
        nio_log.setLevel(logging.ERROR)


def _user(out: Outbound) -> str | None:
    """The Matrix user a message is addressed to, when it names a user, not a room."""
    address = out.to.address
    return address if address.startswith("@") else None


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
