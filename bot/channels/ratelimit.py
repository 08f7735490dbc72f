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
    callers never overbook.  After `pause`, nothing is booked before the pause ends.
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

    def reserve_chat(self, key: Hashable) -> float:
        """Book the next slot for ``key`` alone; return the seconds to wait for it."""
        now = self._clock()
        tat = max(self._chat_tat.get(key, now), now)
        slot = max(now, self._paused_until, tat - self._chat_tolerance)
        self._chat_tat[key] = max(tat, slot) + self._chat_interval
        if len(self._chat_tat) > 10_000:
            self._forget_idle(now)
        return slot - now

    def reserve_overall(self) -> float:
        """Book the next slot of the overall budget; return the seconds to wait for it."""
        now = self._clock()
        tat = max(self._overall_tat, now)
        slot = max(now, self._paused_until, tat - self._overall_tolerance)
        self._overall_tat = max(tat, slot) + self._overall_interval
        return slot - now

    async def acquire(self, key: Hashable) -> None:
        """Wait until a call for ``key`` may go out.

        The chat's own slot is awaited first and only then the overall one, so
        a busy chat waiting for its turn never holds back everybody else.
        """
        delay = self.reserve_chat(key)
        if delay > 0:
            await asyncio.sleep(delay)
        delay = self.reserve_overall()
        if delay > 0:
            await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        """Hold every call for ``seconds`` (the platform asked us to slow down)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _forget_idle(self, now: float) -> None:
        """Drop keys whose bucket is full again, so memory stays bounded."""
        self._chat_tat = {k: t for k, t in self._chat_tat.items() if t > now}
