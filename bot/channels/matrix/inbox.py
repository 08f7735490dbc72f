"""The queue between the sync loop and the core, and the saved sync position.

The core runs in its own task so that a handler that sends (and so waits for
the sync loop) cannot deadlock it.  After each sync's events comes a
checkpoint; once the core has recorded everything before it, the sync
position is saved, with what the channel still owes the core at that point
(open gaps, events waiting for their key).  nio saves its own token before
any callback runs, so a crash would skip events the core never saw;
restarting from our position re-delivers them instead (the core drops the
ones it already recorded).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from bot.channels.base import ChannelState, InboundHandler
from domain.messages import Inbound

log = logging.getLogger(__name__)

_RETRY_LIMIT = 20
"""Tries of one event before it is dropped (logged as an error)."""

_RETRY_DELAY = 1.0
"""Seconds of quiet after which failed events are offered again."""

_CHECKPOINT_IDLE = 60.0
"""Seconds between saved sync positions when no event arrived (fewer writes)."""

SINCE = "since"
"""State key of the saved sync position."""

Owed = dict[str, bytes]
"""State key → what is still owed to the core, as saved (``gaps``, ``held``)."""


class _Checkpoint:
    """Marker queued after a sync's events: once the dispatcher reaches it, all of
    them have been handed to the core.  It carries what was still owed to the
    core at that moment, which is saved before the sync position moves past it."""

    __slots__ = ("owed", "token")

    def __init__(self, token: str, owed: Owed) -> None:
        self.token = token
        self.owed = owed


class Inbox:
    """Hands events to the core one at a time, retries the ones it failed
    on, and saves the sync position behind them."""

    def __init__(self, state: ChannelState) -> None:
        self._state = state
        self._queue: asyncio.Queue[Inbound | _Checkpoint] = asyncio.Queue()
        self._retry: deque[tuple[Inbound, int]] = deque()
        self._queued_total = 0
        self._checkpointed = 0.0
        self._saved: Owed = {}
        self._queued: Owed = {}

    @property
    def queued(self) -> int:
        """How many events were ever queued (a sync compares it to see news)."""
        return self._queued_total

    @property
    def pending_retries(self) -> int:
        """How many inbound events wait for another try (for health checks and tests)."""
        return len(self._retry)

    def put(self, inbound: Inbound) -> None:
        """Queue an event for the core."""
        self._queue.put_nowait(inbound)
        self._queued_total += 1

    def resume(self, owed: Owed) -> None:
        """What the saved state holds at start, so it is not written again unchanged."""
        self._saved = dict(owed)
        self._queued = dict(owed)

    def checkpoint(self, token: str, owed: Owed, *, news: bool) -> None:
        """Queue the sync position ``token`` behind the events queued so far, when
        there was news, what is owed changed, or it was not saved for a while."""
        now = asyncio.get_running_loop().time()
        if news or owed != self._queued or now - self._checkpointed > _CHECKPOINT_IDLE:
            self._checkpointed = now
            self._queued = owed
            self._queue.put_nowait(_Checkpoint(token, owed))

    async def run(self, on_inbound: InboundHandler) -> None:
        """Hand events to the core one at a time; failed ones are retried when idle."""
        while True:
            try:
                inbound = await asyncio.wait_for(
                    self._queue.get(), timeout=_RETRY_DELAY if self._retry else None
                )
            except TimeoutError:
                await self._retry_pending(on_inbound)
                continue
            if isinstance(inbound, _Checkpoint):
                await self._save(inbound)
            else:
                await self._deliver(on_inbound, inbound, 1)

    async def _save(self, mark: _Checkpoint) -> None:
        """Remember the sync position up to which the core has recorded every event.

        Not saved while an event waits for a retry: it must come back after a
        crash too."""
        if self._retry:
            return
        try:
            # What is still owed first: a crash between the writes then only
            # re-delivers (which the core drops), never skips.
            for key, value in mark.owed.items():
                if value != self._saved.get(key):
                    await self._state.set(key, value)
                    self._saved[key] = value
            await self._state.set(SINCE, mark.token.encode())
        except Exception as exc:
            log.warning("matrix: sync position not saved (%s)", type(exc).__name__)

    async def _deliver(self, on_inbound: InboundHandler, inbound: Inbound, attempt: int) -> None:
        """Call the core; on failure keep the event (never swallow it silently)."""
        try:
            await on_inbound(inbound)
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

    async def _retry_pending(self, on_inbound: InboundHandler) -> None:
        """Re-offer events whose handling failed, oldest first."""
        for _ in range(len(self._retry)):
            inbound, attempt = self._retry.popleft()
            await self._deliver(on_inbound, inbound, attempt + 1)
