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
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from bot import metrics
from bot.channels.base import Channel
from bot.outcomes import MAX_BACKOFF, Behind, Outcome, backoff, write_outcomes
from domain.messages import Outbound, RetryLater, Unreachable
from handlers.context import Clock
from store.db import is_transient
from store.keyring import KeyringError
from store.outbox import DueMessage
from store.store import Store, Tx

log = logging.getLogger("confidant.delivery")

RECORD_SENT_PATIENCE = 300.0
"""How long a sent message waits for the database to record it as sent."""
MARK_WAIT = 0.1
"""How long the sent mark of a fast-lane message may wait for the next
event's transaction to carry it (`DeliveryWorker.carry_marks`) before it is
written in a transaction of its own."""


class DeliveryWorker:
    """Sends the outbox.  It knows the store, the channels, a clock, the
    event that wakes it (set by whoever writes outbox rows) and whom to tell
    when a recipient can never be reached; nothing of the conversation.
    Attached as the intake's fast lane (`bot.intake.FastLane`) while it runs,
    it also takes fresh messages straight from their commit."""

    def __init__(self, store: Store, channels: Mapping[str, Channel], *, clock: Clock,
                 wake: asyncio.Event, unreachable: Callable[[Outbound], Awaitable[None]],
                 concurrency: int = 16) -> None:
        self.store = store
        self.clock = clock
        self.wake = wake
        """Set when the outbox changed; a pass runs soon after."""
        self.unreachable = unreachable
        """Called (outside any delivery transaction) for a message whose
        recipient can never be reached."""
        self.channels = dict(channels)
        self._sem = asyncio.Semaphore(concurrency)
        self._stopping = False
        self.sent_count = 0
        self._inflight: set[int] = set()
        """Rows the fast lane owns (claimed, being sent or recorded): passes skip them."""
        self._fast_recipients: set[bytes] = set()
        self._fast_tasks: set[asyncio.Task[None]] = set()
        self._behind: dict[bytes, list[Behind]] = {}
        """Rows claimed for a recipient the lane is busy with, in claim order."""
        self._queued: dict[int, Behind] = {}
        self._held: dict[bytes, set[int]] = {}
        """Per recipient, the rows the lane holds that are still pending in the store."""
        self._waiting_behind: set[bytes] = set()
        """Recipients with messages queued behind one the fast lane holds:
        when that one is done, a pass must run for them."""
        self._to_record: list[tuple[list[Outcome], asyncio.Future[None]]] = []
        self._recording = False
        self._unmarked: list[Outcome] = []
        """Sent by the fast lane, not yet recorded: their rows stay in
        `_inflight` (no pass sends them again) until the next event's
        transaction carries the marks, or `MARK_WAIT` passes."""
        self._mark_timer: asyncio.TimerHandle | None = None
        self._mark_tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Deliver until stopped; sleeps until woken by new rows or the next retry.

        While it runs, the intake hands it fresh messages directly (the fast
        lane), so the common case needs no wake-up, query or decryption here.
        """
        while not self._stopping:
            self.wake.clear()
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
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=wait)
            except TimeoutError:
                pass

    # -------------------------------------------------------------- fast lane

    def claim(self, rows: list[tuple[DueMessage, Outbound, int]]
              ) -> list[tuple[DueMessage, Outbound]]:
        """Reserve fresh rows before their transaction commits (see `bot.intake`).

        A row goes out at once if nothing older waits for its recipient.  If
        what waits is exactly what the lane already holds for that recipient
        (being sent, or queued), it is queued behind it and sent right after,
        in order.  Anything else — something older the lane does not hold, or
        stopping — is left to the passes, which keep the order.
        """
        if self._stopping:
            return []
        taken: list[tuple[DueMessage, Outbound]] = []
        how: dict[bytes, str] = {}
        blocked: set[bytes] = set()
        loop = asyncio.get_running_loop()
        for row, out, older in rows:
            recipient = row.recipient_hash
            if recipient in blocked or row.seq in self._inflight:
                blocked.add(recipient)
                continue
            way = how.get(recipient)
            if way is None:
                held = self._held.get(recipient, set())
                if recipient not in self._fast_recipients and older == 0:
                    way = "send"
                elif recipient in self._fast_recipients and older == len(held):
                    way = "queue"
                else:
                    blocked.add(recipient)
                    continue
                how[recipient] = way
            if way == "queue":
                entry = Behind(row, out, loop.create_future())
                self._behind.setdefault(recipient, []).append(entry)
                self._queued[row.seq] = entry
            else:
                self._fast_recipients.add(recipient)
            self._held.setdefault(recipient, set()).add(row.seq)
            self._inflight.add(row.seq)
            taken.append((row, out))
        return taken

    def unclaim(self, rows: list[tuple[DueMessage, Outbound]]) -> None:
        """Their transaction failed: the rows do not exist, or a pass will find them."""
        for row, _ in rows:
            entry = self._queued.pop(row.seq, None)
            if entry is not None:
                self._unhold(row)
                if not entry.committed.done():
                    entry.committed.set_result(False)
            else:
                self._release([(row, _)])

    def hand_over(self, rows: list[tuple[DueMessage, Outbound]]) -> None:
        """Their transaction committed: send them now, in a task of their own
        (rows queued behind other work are picked up by that work's task)."""
        fresh: list[tuple[DueMessage, Outbound]] = []
        for row, out in rows:
            entry = self._queued.pop(row.seq, None)
            if entry is None:
                fresh.append((row, out))
            elif entry.committed.done():  # given up on by its task: a pass sends it
                self._unhold(row)
                self.wake.set()
            else:
                entry.committed.set_result(True)
        if fresh:
            task = asyncio.create_task(self._fast(fresh), name="delivery-fast")
            self._fast_tasks.add(task)
            task.add_done_callback(self._fast_tasks.discard)

    def _release(self, rows: list[tuple[DueMessage, Outbound]]) -> None:
        for row, _ in rows:
            self._unhold(row)
            self._fast_recipients.discard(row.recipient_hash)

    def _unhold(self, row: DueMessage) -> None:
        """The lane no longer holds this row (sent and recorded, or handed to passes)."""
        self._inflight.discard(row.seq)
        held = self._held.get(row.recipient_hash)
        if held is not None:
            held.discard(row.seq)
            if not held:
                del self._held[row.recipient_hash]

    def _take_behind(self, recipients: set[bytes]) -> list[Behind]:
        """What was queued behind these recipients' work, oldest first."""
        taken: list[Behind] = []
        for recipient in recipients:
            taken.extend(self._behind.pop(recipient, []))
        return taken

    def _give_up_behind(self, entries: list[Behind]) -> None:
        """Leave queued rows to the passes (their order is kept there)."""
        for entry in entries:
            if entry.committed.done():
                self._unhold(entry.row)
            else:  # not committed yet: `hand_over` or `unclaim` finishes it
                entry.committed.set_result(False)
        if entries:
            self.wake.set()

    async def _fast(self, rows: list[tuple[DueMessage, Outbound]]) -> None:
        """Send claimed rows (one recipient's in order, stopping at the first
        that is not sent), record the outcomes, then whatever was queued
        behind them meanwhile, then let passes see the recipients again."""
        recipients = {row.recipient_hash for row, _ in rows}
        owned = list(rows)
        outcomes: list[Outcome] = []
        unmarked: list[Outcome] = []
        leftover = False
        stalled: set[bytes] = set()
        try:
            batch = rows
            while batch:
                if unmarked:
                    # Recorded before the next message to the same people goes
                    # out: at most one sent message per person is ever unrecorded
                    # (a crash re-sends at most that one).
                    done, unmarked = unmarked, []
                    await self._record_together(done)
                now = self.clock.now()  # retry times count from this batch's send
                chains: dict[bytes, list[tuple[DueMessage, Outbound]]] = {}
                for row, out in batch:
                    chains.setdefault(row.recipient_hash, []).append((row, out))
                sent_now: list[Outcome] = []
                for chain_outcomes in await asyncio.gather(
                        *(self._send_chain(chain, now) for chain in chains.values())):
                    sent_now.extend(chain_outcomes)
                outcomes.extend(sent_now)
                stalled |= {o.row.recipient_hash for o in sent_now if o.kind != "sent"}
                stalled |= {r for r, chain in chains.items()
                            if sum(o.row.recipient_hash == r for o in sent_now) != len(chain)}
                # Retries and failures are recorded now; sent marks may wait
                # for the next transaction (see `carry_marks`).
                unmarked = [o for o in sent_now if o.kind == "sent"]
                others = [o for o in sent_now if o.kind != "sent"]
                if others:
                    await self._record_together(others)
                batch = []
                for entry in self._take_behind(recipients):
                    if entry.row.recipient_hash in stalled:
                        self._give_up_behind([entry])
                    elif await entry.committed:
                        owned.append((entry.row, entry.out))
                        batch.append((entry.row, entry.out))
        except Exception as exc:
            log.warning("fast delivery failed kind=%s", type(exc).__name__)
            leftover = True
            unmarked = []  # released below: a pass sends them again if need be
        finally:
            # No await from the last look at the queue to the release: a row
            # claimed for these recipients from now on starts a task of its own.
            self._give_up_behind(self._take_behind(recipients))
            waiting = {o.row.seq for o in unmarked}
            self._release([(row, out) for row, out in owned if row.seq not in waiting])
            for o in unmarked:
                self._fast_recipients.discard(o.row.recipient_hash)
            self._defer_marks(unmarked)
            behind = recipients & self._waiting_behind
            self._waiting_behind -= behind
            if leftover or behind or stalled or len(outcomes) != len(owned):
                self.wake.set()
        for outcome in outcomes:
            if outcome.kind == "unreachable" and outcome.out is not None:
                try:
                    await self.unreachable(outcome.out)
                except Exception as exc:
                    log.warning("unreachable handling failed kind=%s", type(exc).__name__)

    # ------------------------------------------------------------ sent marks

    def _defer_marks(self, outcomes: list[Outcome]) -> None:
        """Keep sent marks for the next transaction, at most `MARK_WAIT`."""
        if not outcomes:
            return
        self._unmarked.extend(outcomes)
        if self._mark_timer is None:
            self._mark_timer = asyncio.get_running_loop().call_later(
                MARK_WAIT, self._marks_overdue)

    def _marks_overdue(self) -> None:
        self._mark_timer = None
        task = asyncio.create_task(self.flush_marks(), name="delivery-marks")
        self._mark_tasks.add(task)
        task.add_done_callback(self._mark_tasks.discard)

    def _take_marks(self) -> list[Outcome]:
        taken, self._unmarked = self._unmarked, []
        if self._mark_timer is not None:
            self._mark_timer.cancel()
            self._mark_timer = None
        return taken

    async def carry_marks(self, tx: Tx) -> list[Outcome]:
        """Write the waiting sent marks in the caller's transaction (the next
        event's): one commit per relayed message instead of two.  The caller
        reports with `marks_done` whether that transaction committed."""
        taken = self._take_marks()
        if taken:
            try:
                await self._write(tx, taken, self.clock.now())
            except BaseException:
                self.marks_done(taken, committed=False)
                raise
        return taken

    def marks_done(self, taken: list[Outcome], committed: bool) -> None:
        """The transaction that carried ``taken`` committed (the rows are
        delivered for good) or not (the marks wait for the next one)."""
        if not taken:
            return
        if committed:
            for o in taken:
                self._unhold(o.row)
            if self._waiting_behind & {o.row.recipient_hash for o in taken}:
                self.wake.set()
            return
        for o in taken:
            self._held.setdefault(o.row.recipient_hash, set()).add(o.row.seq)
        self._unmarked[:0] = taken
        if self._mark_timer is None:
            self._mark_timer = asyncio.get_running_loop().call_later(
                MARK_WAIT, self._marks_overdue)

    async def flush_marks(self) -> None:
        """Record the waiting sent marks in a transaction of their own."""
        taken = self._take_marks()
        if not taken:
            return
        try:
            await self._record_together(taken)
        except Exception as exc:  # not recorded: a pass sends them again
            log.warning("recording sent messages failed kind=%s", type(exc).__name__)
            self.wake.set()
        for o in taken:
            self._unhold(o.row)
        if self._waiting_behind & {o.row.recipient_hash for o in taken}:
            self.wake.set()

    async def _send_chain(self, chain: list[tuple[DueMessage, Outbound]],
                          now: datetime) -> list[Outcome]:
        outcomes = []
        for row, out in chain:
            outcome = await self._send(row, out, now)
            outcomes.append(outcome)
            if outcome.kind != "sent":
                break
        return outcomes

    async def _record_together(self, outcomes: list[Outcome]) -> None:
        """Record outcomes, coalescing whatever other fast sends finished
        meanwhile into the same transaction (fewer commits under load)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._to_record.append((outcomes, done))
        if not self._recording:
            self._recording = True
            try:
                while self._to_record:
                    batch, self._to_record = self._to_record, []
                    try:
                        await self._record([o for part, _ in batch for o in part])
                    except Exception as exc:
                        for _, fut in batch:
                            if not fut.done():
                                fut.set_exception(exc)
                    else:
                        for _, fut in batch:
                            if not fut.done():
                                fut.set_result(None)
            finally:
                self._recording = False
        await done

    async def _idle_wait(self) -> float:
        try:
            async with self.store.tx() as tx:
                # The live set: rows the lane claims while this waits are skipped too.
                next_at = await tx.outbox.next_due_at(exclude=self._inflight)
        except Exception:
            return 1.0
        if next_at is None:
            return 5.0
        return max(0.05, min(5.0, (next_at - self.clock.now()).total_seconds()))

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()

    async def drain(self, within: float = 10.0) -> None:
        """Deliver everything that is due now (graceful shutdown, tests)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while loop.time() < end:
            if self._fast_tasks:
                await asyncio.wait(set(self._fast_tasks), timeout=max(0.0, end - loop.time()))
            await self.flush_marks()
            if self._mark_tasks:
                await asyncio.wait(set(self._mark_tasks), timeout=max(0.0, end - loop.time()))
            if not await self.deliver_due() and not self._fast_tasks:
                await self.flush_marks()
                return

    async def deliver_due(self) -> int:
        """One pass: load the heads of every recipient's queue in one
        transaction, send them concurrently, record every outcome in one more.

        Two transactions per pass, whatever its size, keep the database out
        of the hot path; a crash between sending and recording re-sends (the
        window the README describes), never loses.
        """
        now = self.clock.now()
        async with self.store.tx() as tx:
            due = await tx.outbox.due(now, limit=64)
            if self._inflight:
                held = [row for row in due if row.seq in self._inflight]
                if held:
                    # Only a recipient with more waiting behind the held head
                    # needs a pass once the lane is done with it; waking for
                    # every held head would keep passes running under load.
                    self._waiting_behind |= await tx.outbox.waiting_behind(
                        [(row.recipient_hash, row.seq) for row in held])
                    due = [row for row in due if row.seq not in self._inflight]
            loaded: list[tuple[DueMessage, Outbound | None]] = []
            for row in due:
                try:
                    loaded.append((row, await tx.outbox.load(row.seq)))
                except KeyringError:  # its key was shredded: the case is gone
                    loaded.append((row, None))
        if not due:
            return 0
        outcomes = await asyncio.gather(*(self._send(row, out, now) for row, out in loaded))
        await self._record(outcomes)
        for outcome in outcomes:
            if outcome.kind == "unreachable" and outcome.out is not None:
                await self.unreachable(outcome.out)
        return len(due)

    async def _send(self, row: DueMessage, out: Outbound | None, now: datetime) -> Outcome:
        if out is None:
            return Outcome(row, None, "gone")
        channel = self.channels.get(row.channel)
        if channel is None:
            metrics.count_delivery(row.channel, "retried")
            log.warning("no running channel for a pending message channel=%s", row.channel)
            return Outcome(row, out, "retry", now + timedelta(seconds=MAX_BACKOFF))
        async with self._sem:
            started = time.perf_counter()
            try:
                result = await channel.send(out, row.ref)
            except Unreachable:
                metrics.count_delivery(row.channel, "failed")
                log.warning("recipient unreachable channel=%s case=%s", row.channel, out.case)
                return Outcome(row, out, "unreachable")
            except Exception as exc:
                after = exc.after if isinstance(exc, RetryLater) and exc.after else None
                delay = max(after or 0.0, backoff(row.attempts))
                metrics.count_delivery(row.channel, "retried")
                log.info("delivery retry channel=%s attempt=%d kind=%s", row.channel,
                         row.attempts + 1, type(exc).__name__)
                return Outcome(row, out, "retry", now + timedelta(seconds=delay))
        self.sent_count += 1
        metrics.count_delivery(row.channel, "sent", time.perf_counter() - started)
        return Outcome(row, out, "sent", result=result)

    async def _record(self, outcomes: list[Outcome]) -> None:
        """Record a pass, waiting out a busy or restarting database: giving up
        here would send messages a second time although nothing crashed."""
        delay = 0.1
        deadline = time.monotonic() + RECORD_SENT_PATIENCE
        while True:
            try:
                async with self.store.tx() as tx:
                    await self._write(tx, outcomes, self.clock.now())
                return
            except Exception as exc:
                if not is_transient(exc) or time.monotonic() > deadline:
                    raise
                log.warning("database busy, retrying delivery record")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _write(self, tx: Tx, outcomes: list[Outcome], now: datetime) -> None:
        """The outcomes' statements, in ``tx``."""
        await write_outcomes(tx, outcomes, now)
        # Sent rows stop counting as waiting before the commit, not after:
        # an event recorded in between must not see them as held while the
        # store no longer has them pending.  Counted too low, the lane only
        # declines (see `claim`).
        for o in outcomes:
            if o.kind == "sent":
                self._held.get(o.row.recipient_hash, set()).discard(o.row.seq)
