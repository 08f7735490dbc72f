"""The delivery worker: outbox rows out to the channels, in order, with retries.

A row is marked sent only after the channel confirmed it, so a crash between
the two re-sends it (a duplicate only on channels without idempotent sends;
Matrix and web dedupe by the row's stable ``ref``).  Messages to one person
go strictly in order: only the oldest pending row of each recipient is ever
attempted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from datetime import timedelta

from bot import metrics
from bot.channels.base import Channel
from handlers.core import Core
from handlers.types import RetryLater, Unreachable
from store.db import is_transient
from store.outbox import DueMessage

log = logging.getLogger("confidant.delivery")

MAX_BACKOFF = 300.0


def backoff(attempts: int) -> float:
    """Exponential with jitter: 0.5 s, 1 s, 2 s … capped at five minutes."""
    base = min(MAX_BACKOFF, 0.5 * (2 ** min(attempts, 12)))
    return base * random.uniform(0.8, 1.2)


class DeliveryWorker:
    def __init__(self, core: Core, channels: Mapping[str, Channel], concurrency: int = 16) -> None:
        self.core = core
        self.channels = dict(channels)
        self._sem = asyncio.Semaphore(concurrency)
        self._stopping = False
        self.sent_count = 0

    async def run(self) -> None:
        """Deliver until stopped; sleeps until woken by new rows or the next retry."""
        while not self._stopping:
            try:
                processed = await self.deliver_due()
            except Exception as exc:  # the loop must survive a database outage
                level = logging.WARNING if is_transient(exc) else logging.ERROR
                log.log(level, "delivery pass failed kind=%s", type(exc).__name__)
                processed = 0
                await asyncio.sleep(1.0)
            if processed:
                continue
            wait = await self._idle_wait()
            self.core.outbox_changed.clear()
            try:
                await asyncio.wait_for(self.core.outbox_changed.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def _idle_wait(self) -> float:
        try:
            async with self.core.store.tx() as tx:
                next_at = await tx.outbox.next_due_at()
        except Exception:
            return 1.0
        if next_at is None:
            return 5.0
        return max(0.05, min(5.0, (next_at - self.core.clock.now()).total_seconds()))

    def stop(self) -> None:
        self._stopping = True
        self.core.outbox_changed.set()

    async def drain(self, within: float = 10.0) -> None:
        """Deliver everything that is due now (graceful shutdown, tests)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while loop.time() < end:
            if not await self.deliver_due():
                return

    async def deliver_due(self) -> int:
        async with self.core.store.tx() as tx:
            due = await tx.outbox.due(self.core.clock.now(), limit=64)
        if not due:
            return 0
        await asyncio.gather(*(self._deliver(row) for row in due))
        return len(due)

    async def _deliver(self, row: DueMessage) -> None:
        async with self._sem:
            now = self.core.clock.now()
            async with self.core.store.tx() as tx:
                out = await tx.outbox.load(row.seq)
            if out is None:
                return
            channel = self.channels.get(row.channel)
            if channel is None:
                async with self.core.store.tx() as tx:
                    await tx.outbox.retry(row.seq, now + timedelta(seconds=MAX_BACKOFF))
                metrics.count_delivery(row.channel, "retried")
                log.warning("no running channel for a pending message channel=%s", row.channel)
                return
            started = time.perf_counter()
            try:
                result = await channel.send(out, row.ref)
            except Unreachable:
                metrics.count_delivery(row.channel, "failed")
                log.warning("recipient unreachable channel=%s case=%s", row.channel, out.case)
                async with self.core.store.tx() as tx:
                    await tx.outbox.fail(row.seq, now)
                await self.core.unreachable(out)
                return
            except Exception as exc:
                after = exc.after if isinstance(exc, RetryLater) and exc.after else None
                delay = max(after or 0.0, backoff(row.attempts))
                metrics.count_delivery(row.channel, "retried")
                log.info("delivery retry channel=%s attempt=%d kind=%s", row.channel,
                         row.attempts + 1, type(exc).__name__)
                async with self.core.store.tx() as tx:
                    await tx.outbox.retry(row.seq, now + timedelta(seconds=delay))
                return
            async with self.core.store.tx() as tx:
                await tx.outbox.mark_sent(row.seq, self.core.clock.now())
                if result.platform_message_id and out.case:
                    case = await tx.cases.by_code(out.case)
                    if case is not None:
                        await tx.links.record(out.to.channel, out.to.address,
                                              result.platform_message_id, case.id)
            self.sent_count += 1
            metrics.count_delivery(row.channel, "sent", time.perf_counter() - started)
