"""The way in: one inbound event in, its effects and outbox rows out, all in
one transaction, retried until it is recorded.

`Intake.handle` is what every channel calls.  It records the event as
handled, lets `handlers.router` decide the sender's role and run the
matching step, and commits the event together with every message it caused.
A platform event delivered twice has its effect once; a crash before the
commit leaves nothing half-done, and the platform re-delivers.  Messages
that can go out at once are handed to the delivery worker's fast lane
(`FastLane`) right after the commit.  Clock ticks (timers) and delivery
failures come in here too, each in a transaction of its own.

The conversation itself (who may do what, what is said) is ``handlers/``;
this module only owns transactions, retries and the hand-over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from domain.messages import Inbound, Outbound
from handlers import router
from handlers.context import Clock, CoreSettings, SystemClock, UserError
from handlers.i18n import Translator
from handlers.info import InfoLibrary
from store.db import is_conflict, is_transient
from store.outbox import DueMessage
from store.store import Store, Tx

log = logging.getLogger("confidant.intake")

GROUP_LIMIT = 64
"""Events recorded in one transaction at most: a group's first event waits
for the whole group's commit, so groups stay short (a ``getUpdates`` answer
holds up to 100)."""


class GroupAbandoned(RuntimeError):
    """The event waited for a group whose recording was cancelled (the
    process is stopping): not recorded, the platform re-delivers it."""


class FastLane(Protocol):
    """The delivery worker's way in for messages that can go out at once."""

    def claim(self, rows: list[tuple[DueMessage, Outbound, int]]
              ) -> list[tuple[DueMessage, Outbound]]:
        """Reserve rows (each with the count of older messages waiting for
        its recipient) before their transaction commits; returns those taken."""
        ...

    def unclaim(self, rows: list[tuple[DueMessage, Outbound]]) -> None:
        """The transaction did not commit: forget the reservation."""
        ...

    def hand_over(self, rows: list[tuple[DueMessage, Outbound]]) -> None:
        """The transaction committed: send the reserved rows now."""
        ...

    async def carry_marks(self, tx: Tx) -> Sequence[object]:
        """Write the sent marks waiting for a transaction into ``tx`` (so a
        relayed message costs one commit, not two); returns what it wrote."""
        ...

    def marks_done(self, carried: Any, committed: bool) -> None:
        """Whether the transaction that carried the marks committed."""
        ...


class Intake:
    """Runs the conversation (`handlers.router`) for every channel, one
    transaction per event or per group of events arriving together."""

    def __init__(self, store: Store, settings: CoreSettings, info: InfoLibrary,
                 clock: Clock | None = None) -> None:
        self.store = store
        self.settings = settings
        self.info = info
        self.clock: Clock = clock or SystemClock()
        self.tr = Translator(settings.default_language, settings.languages, settings.timezone,
                             settings.org_name)
        self.outbox_changed = asyncio.Event()
        """Set whenever the outbox may hold work for the delivery worker's passes."""
        self.lane: FastLane | None = None
        """The running delivery worker's fast lane (the app attaches it when
        delivery starts): takes messages straight after their commit."""
        self._waiting: list[tuple[Inbound, asyncio.Future[bool]]] = []
        self._recording = False

    # ---------------------------------------------------------------- inbound

    async def handle(self, inbound: Inbound) -> None:
        """Record one platform event and everything it causes, exactly once.

        Retries on a busy or briefly unavailable database, so the channel
        only sees an exception when the event truly could not be recorded
        (and must then be re-delivered by the platform).

        Events that arrive while another is being recorded (a ``getUpdates``
        answer handed over at once, many web tabs, a webhook burst) wait and
        are then recorded together, in arrival order, in one transaction: a
        group commit.  The promise is the same for each (its effects and
        messages commit together, before anything is sent); the commit and
        the transaction's set-up are paid once per group instead of once per
        event.  If anything in a group fails (a refusal, a race, a busy
        database), nothing of it was committed and each of its events is
        recorded alone, exactly as a lone event is.
        """
        turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((inbound, turn))
        if self._recording:
            try:
                if await turn:
                    return  # recorded in the group of an earlier event
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled() and turn.result() is False:
                    self._pass_the_turn()  # it was this event's turn to lead: the next one's
                raise
        else:
            self._recording = True
        group: list[tuple[Inbound, asyncio.Future[bool]]] = []
        try:
            await asyncio.sleep(0)  # the events already on their way join this group
            group = self._waiting[:GROUP_LIMIT]
            del self._waiting[:GROUP_LIMIT]
            await self._record_group(group)
        finally:
            for _, other in group:
                if other is not turn and not other.done():
                    other.set_exception(GroupAbandoned())  # the leader was cancelled
            if not group:  # cancelled before taking its group: not waiting any more
                self._waiting = [w for w in self._waiting if w[1] is not turn]
            self._pass_the_turn()
        turn.result()  # this event's own failure, if any

    def _pass_the_turn(self) -> None:
        """The next waiting event leads the next group, or nobody waits."""
        while self._waiting and self._waiting[0][1].done():
            self._waiting.pop(0)  # its caller stopped waiting (cancelled): re-delivered
        if self._waiting:
            self._waiting[0][1].set_result(False)
        else:
            self._recording = False

    async def _record_group(self, group: list[tuple[Inbound, asyncio.Future[bool]]]) -> None:
        """Every event of ``group`` recorded (futures set), together if it can be."""
        if len(group) > 1:
            try:
                await self._handle_once([inbound for inbound, _ in group])
            except Exception:
                log.info("group of %d events recorded one by one", len(group))
            else:
                for _, turn in group:
                    if not turn.done():
                        turn.set_result(True)
                return
        failed: dict[tuple[str, str], BaseException] = {}
        for inbound, turn in group:
            sender = (inbound.channel, inbound.sender)
            try:
                if sender in failed:
                    # Never after an earlier event of the same person that was
                    # not recorded: the platform re-delivers both, in order.
                    raise failed[sender]
                await self._handle_alone(inbound)
            except Exception as exc:
                failed.setdefault(sender, exc)
                if not turn.done():
                    turn.set_exception(exc)
            else:
                if not turn.done():
                    turn.set_result(True)

    async def _handle_alone(self, inbound: Inbound) -> None:
        """One event in its own transaction, with the retries `handle` promises."""
        delay = 0.05
        raced = False
        refusal: UserError | None = None
        for attempt in range(12):
            try:
                await self._handle_once([inbound], refusal)
                break
            except UserError as err:
                # A refusal must change nothing: the step's transaction is
                # gone; a fresh one records the event and the polite answer.
                refusal = err
                continue
            except Exception as exc:
                if is_conflict(exc) and not raced:
                    # The same event handled concurrently (two deliveries racing):
                    # the loser's commit hits the handled-events key; once more,
                    # it finds the event seen and does nothing.
                    raced = True
                    log.info("concurrent duplicate event, checking again channel=%s",
                             inbound.channel)
                    continue
                if is_transient(exc) and attempt < 11:
                    log.warning("database busy, retrying event (attempt %d)", attempt + 1)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                raise

    async def _handle_once(self, inbounds: Sequence[Inbound],
                           refusal: UserError | None = None) -> None:
        """One attempt: the events' transaction, then their messages on their way.

        Messages that can go out at once (due, nothing older pending for the
        recipient) are claimed by the fast lane before the commit, so no
        delivery pass can pick them up as well, and handed to it after the
        commit; everything else wakes the delivery worker.  The transaction
        also carries the sent marks of messages the lane delivered since
        the last one (they are marked before anything of these events is
        written, so their new rows do not count them as waiting).
        """
        lane = self.lane
        claimed: list[tuple[DueMessage, Outbound]] = []
        carried: Sequence[object] = ()
        wake = True
        try:
            async with self.store.tx() as tx:
                if lane is not None:
                    carried = await lane.carry_marks(tx)
                seen = [await self._record_event(tx, inbound, refusal) for inbound in inbounds]
                written = sum(n for n in seen if n is not None)
                if all(n is None for n in seen):  # all seen before: nothing changed
                    wake = False
                elif lane is not None and written:
                    rows, fresh = await tx.outbox.fresh_rows(self.clock.now())
                    claimed = lane.claim(rows)
                    wake = fresh != written or len(claimed) != written
        except BaseException:
            if lane is not None and claimed:
                lane.unclaim(claimed)
            if lane is not None and carried:
                lane.marks_done(carried, committed=False)  # written again, harmlessly
            self.outbox_changed.set()  # a commit that failed late may still have landed
            raise
        if lane is not None and carried:
            lane.marks_done(carried, committed=True)
        if lane is not None and claimed:
            lane.hand_over(claimed)
        if wake:
            self.outbox_changed.set()

    async def _record_event(self, tx: Tx, inbound: Inbound,
                            refusal: UserError | None = None) -> int | None:
        """Run the event's step in ``tx`` (or, after a refusal, only answer
        it); returns how many outbox rows it wrote, or None for an event
        handled before.  A `UserError` raised by a step leaves ``tx`` to roll
        back whole."""
        now = self.clock.now()
        if not await tx.events.claim(inbound.channel, inbound.event_id, now):
            log.info("duplicate event ignored channel=%s", inbound.channel)
            return None
        if inbound.keep:
            state = tx.channel_state(inbound.channel)
            for key, value in inbound.keep:
                await state.set(key, value)
        ctx = await router.open_context(self, tx, inbound, now)
        if refusal is not None:
            await router.refuse(ctx, refusal)
        else:
            await router.dispatch(ctx)
        return await ctx.flush()

    # --------------------------------------------------------------- delivery

    async def unreachable(self, out: Outbound) -> None:
        """A recipient can never be reached: mark the case and tell the other side."""
        async with self.store.tx() as tx:
            ctx = router.system_context(self, tx, self.clock.now(), out.to.channel, "system")
            await tx.outbox.fail_pending_for(
                tx.vault.address_hash(out.to.channel, out.to.address), ctx.now)
            await router.unreachable(ctx, out)
            await ctx.flush()
        self.outbox_changed.set()

    # ----------------------------------------------------------------- timers

    async def tick(self) -> None:
        """Run every timed duty that is due; safe to call at any moment and
        after any restart, because each duty is a query on stored times."""
        async with self.store.tx() as tx:
            ctx = router.system_context(self, tx, self.clock.now(), "system", "tick")
            await router.run_timers(ctx)
            await ctx.flush()
        self.outbox_changed.set()
