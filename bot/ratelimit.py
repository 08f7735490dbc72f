"""A small asyncio rate limiter for outbound platform calls: an overall rate,
a per-chat rate with a short burst, and a global pause after the platform said
"retry after N seconds"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable


class RateLimiter:
    """Spaces calls so that a platform's flood limits are never hit.

    Each limit is a GCRA (a token bucket kept as one timestamp per key):
    ``overall_rate`` calls per second with a burst of ``overall_burst``, and
    ``per_chat_rate`` calls per second per key with a burst of
    ``per_chat_burst``.  Slots are reserved synchronously, so concurrent
    callers never overbook.
    """

    def __init__(
        self,
        overall_rate: float = 30.0,
        overall_burst: int = 30,
        per_chat_rate: float = 1.0,
        per_chat_burst: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._overall_interval = 1.0 / overall_rate
        self._overall_tolerance = (overall_burst - 1) * self._overall_interval
        self._chat_interval = 1.0 / per_chat_rate
        self._chat_tolerance = (per_chat_burst - 1) * self._chat_interval
        self._clock = clock
        self._overall_tat = 0.0
        self._chat_tat: dict[Hashable, float] = {}
        self._paused_until = 0.0

    def reserve(self, key: Hashable) -> float:
        """Book the next slot for ``key``; return how many seconds to wait for it."""
        now = self._clock()
        overall_tat = max(self._overall_tat, now)
        chat_tat = max(self._chat_tat.get(key, now), now)
        slot = max(
            now,
            self._paused_until,
            overall_tat - self._overall_tolerance,
            chat_tat - self._chat_tolerance,
        )
        self._overall_tat = max(overall_tat, slot) + self._overall_interval
        self._chat_tat[key] = max(chat_tat, slot) + self._chat_interval
        if len(self._chat_tat) > 10_000:
            self._forget_idle(now)
        return slot - now

    async def acquire(self, key: Hashable) -> None:
        """Wait until a call for ``key`` may go out."""
        delay = self.reserve(key)
        if delay > 0:
            await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        """Hold every call for ``seconds`` (the platform asked us to slow down)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _forget_idle(self, now: float) -> None:
        """Drop keys whose bucket is full again, so memory stays bounded."""
        self._chat_tat = {k: t for k, t in self._chat_tat.items() if t > now}
