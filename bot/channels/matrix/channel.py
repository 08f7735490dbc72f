"""`MatrixChannel`: the `Channel` the app wires, composed of the package's parts.

The adapter only translates.  It refuses to relay anything that did not arrive
encrypted, creates every room it owns encrypted, keeps its device (and its
cross-signing) stable across restarts, and makes sends idempotent through
Matrix transaction ids derived from the delivery worker's idempotency key.
The trust policy is described in `bot.channels.matrix.trust`.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
from nio import MatrixRoom

from bot.channels.base import ChannelState, InboundHandler, NoticeWords
from bot.channels.matrix.backfill import Backfill
from bot.channels.matrix.connection import Connection, quiet_nio
from bot.channels.matrix.inbound import EventReader
from bot.channels.matrix.inbox import Inbox
from bot.channels.matrix.notices import RoomNotices
from bot.channels.matrix.outbound import Sender
from bot.channels.matrix.rooms import CaseRooms, ConfidantRooms, DmRooms, RoomUpkeep
from bot.channels.matrix.sync import TIMELINE_LIMIT, SyncLoop
from bot.channels.matrix.translate import MATRIX
from bot.channels.matrix.trust import DeviceTrust, TrustPolicy
from domain.messages import Outbound, RetryLater, SendResult


class MatrixChannel:
    """`Channel` for Matrix: starts and stops the parts and lets them through."""

    name = MATRIX
    numbered_menus = True
    end_to_end = True
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
        trust: TrustPolicy = "tofu",
        pickle_key: str,
        state: ChannelState,
        sync_timeout_ms: int = 30_000,
        timeline_limit: int = TIMELINE_LIMIT,
        notices: NoticeWords,
    ) -> None:
        if trust not in ("tofu", "all"):
            raise ValueError("trust must be 'tofu' or 'all'")
        if not password and not access_token:
            raise ValueError("a password or an access token is needed")
        if timeline_limit < 1:
            raise ValueError("timeline_limit must be at least 1")
        self.homeserver = homeserver.rstrip("/")
        self.user_id = user_id
        self.device_name = device_name
        self.store_dir = Path(store_dir)
        self.trust = trust
        connection = self._connection = Connection(
            self.homeserver, user_id, password=password, access_token=access_token,
            device_name=device_name, store_dir=self.store_dir, pickle_key=pickle_key,
            state=state,
        )
        device_trust = DeviceTrust(connection, trust)
        room_notices = RoomNotices(connection, device_trust, notices)
        cases = CaseRooms(connection, state)
        dms = DmRooms(connection, state, cases, pickle_key)
        self._inbox = Inbox(state)
        reader = EventReader(connection, cases, room_notices, self._inbox)
        self._sync = SyncLoop(
            connection, state, reader=reader, backfill=Backfill(connection, reader.handle),
            upkeep=RoomUpkeep(connection, room_notices), trust=device_trust,
            notices=room_notices, inbox=self._inbox, timeout_ms=sync_timeout_ms,
            timeline_limit=timeline_limit,
        )
        self._sender = Sender(connection, ConfidantRooms(connection, cases, dms), cases,
                              device_trust)
        self._send_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def device_id(self) -> str | None:
        """The bot's Matrix device id once started (stable across restarts)."""
        client = self._connection.current
        return client.device_id if client else None

    @property
    def pending_retries(self) -> int:
        """How many inbound events wait for another try (for health checks and tests)."""
        return self._inbox.pending_retries

    def room(self, room_id: str) -> MatrixRoom | None:
        """The room as the bot's syncs have seen it, if it is in it (for tests
        and diagnostics)."""
        client = self._connection.current
        return client.rooms.get(room_id) if client else None

    async def start(self, on_inbound: InboundHandler) -> None:
        """Log in (or restore the stored device), make sure cross-signing holds,
        run a first full-state sync, then keep syncing in the background."""
        quiet_nio()
        self._dispatcher = asyncio.create_task(self._inbox.run(on_inbound), name="matrix-inbound")
        try:
            await self._connection.open()
            await self._sync.first()
        except BaseException:
            await self._connection.close()
            await self._cancel_tasks()
            raise
        self._task = asyncio.create_task(self._sync.run(), name="matrix-sync")

    async def stop(self) -> None:
        """Stop the sync loop and close the HTTP session (nio's store is on disk)."""
        await self._cancel_tasks()
        async with self._send_lock:
            await self._connection.close()

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        """Deliver one message to an employee's DM or to the case's confidant room."""
        try:
            async with self._send_lock:
                if self._connection.current is None or not self._sync.synced_once:
                    raise RetryLater("matrix channel not running")
                return await self._sender.send(out, idempotency_key)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryLater(f"homeserver unreachable: {type(exc).__name__}") from exc

    async def _cancel_tasks(self) -> None:
        """Cancel the sync loop and the inbound dispatcher and wait for them."""
        tasks = [t for t in (self._task, self._dispatcher) if t is not None]
        self._task = self._dispatcher = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
