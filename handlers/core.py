"""The conversation core: one inbound event in, effects and outbox rows out,
all in one transaction.

`Core.handle` is what every channel calls.  It decides the sender's role on
the server, runs the matching step of `handlers.employee`,
`handlers.confidant` or `handlers.admin`, and commits the event as handled
together with every message it caused.  A platform event delivered twice has
its effect once; a crash before the commit leaves nothing half-done, and the
platform re-delivers.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from domain.ids import CaseCode, ChannelName
from domain.messages import ChannelAddress, Inbound, Media, Outbound, OutboundKind
from domain.parsing import OfficeHours
from domain.vocabulary import SUPPORTED_LANGUAGES, Control, Language, Role
from handlers.administration.validation import DEFAULT_OFFICE_HOURS
from handlers.i18n import Translator
from handlers.info import InfoLibrary
from store.db import is_conflict, is_transient
from store.models import Case, Confidant, Contact
from store.outbox import DueMessage
from store.store import Store, Tx

log = logging.getLogger("confidant.core")

MAX_TEXT = 4000
"""Longest message relayed in one piece (Telegram's own limit is 4096)."""

MenuRows = Sequence[Sequence[tuple[str, str]]]


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class CoreSettings:
    """What the core needs from the configuration, and nothing more."""

    org_name: str = "Confidant"
    timezone: str = "Europe/Brussels"
    default_language: str = Language.NL.value
    languages: tuple[str, ...] = SUPPORTED_LANGUAGES
    response_hours: int = 24
    escalation_hours: int = 4
    idle_close_days: int = 30
    retention_days: int = 90
    admins: frozenset[tuple[str, str]] = frozenset()
    """(channel, platform user id) pairs of administrators."""
    numbered_channels: frozenset[str] = frozenset({"matrix"})
    """Channels that show menus as numbered lists answered with a number."""
    end_to_end_channels: frozenset[str] = frozenset({"matrix", "web"})
    slot_minutes: int = 45
    buffer_minutes: int = 15
    days_ahead: int = 21
    office_hours: OfficeHours = DEFAULT_OFFICE_HOURS
    """When someone should be on duty (``[rota] office_hours``): the admin
    service warns about the hours nobody covers."""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


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


class UserError(Exception):
    """A refusal meant for the person: carries a message key, shown translated."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values
        self.lang: str | None = None
        """The language to refuse in, when the step knew better than the event."""


REFUSALS: dict[str, str] = {
    "too_large": "media.too_large",
    "unavailable": "media.unavailable",
    "undecryptable": "message.undecryptable",
    "edit": "message.edited",
}
"""``Inbound.unsupported`` kinds that need their own answer: a file that could
not be fetched or a message that could not be read is worth sending again,
which the general refusal (stickers, locations, polls…) would not say."""


@dataclass
class Ctx:
    """Everything one step needs: the transaction, who is speaking, and the
    messages it wants sent (written to the outbox when the step succeeds)."""

    core: Core
    tx: Tx
    inbound: Inbound
    now: datetime
    role: Role
    lang: str
    contact: Contact | None = None
    confidant: Confidant | None = None
    _duty: dict[str, datetime | None] = field(default_factory=dict)
    """`off_duty_until` answers already looked up in this event."""
    _queued: list[tuple[Outbound, str | None, str | None, datetime | None]] = field(
        default_factory=list)
    """Messages to write to the outbox: (message, key id, case id, not before)."""

    @property
    def settings(self) -> CoreSettings:
        return self.core.settings

    @property
    def info(self) -> InfoLibrary:
        return self.core.info

    def t(self, key: str, lang: str | None = None, **values: object) -> str:
        return self.core.tr.t(lang or self.lang, key, **values)

    def when(self, moment: datetime, lang: str | None = None, style: str = "medium") -> str:
        return self.core.tr.when(lang or self.lang, moment, style)

    @property
    def here(self) -> ChannelAddress:
        return ChannelAddress(self.inbound.channel, self.inbound.chat)

    @property
    def sender_hash(self) -> bytes:
        return self.tx.vault.address_hash(self.inbound.channel, self.inbound.sender)

    async def send(self, to: ChannelAddress, text: str, *, owner_hash: bytes,
                   rows: MenuRows | None = None, kind: OutboundKind = OutboundKind.NOTICE,
                   case: Case | None = None, control: Control | None = None,
                   media: Media | None = None, role: Role | None = None,
                   case_code: str | None = None, not_before: datetime | None = None) -> None:
        """Queue a message; menu choices become tokens bound to ``owner_hash``.

        With ``case`` the row is sealed with the case key (so erasing the case
        erases it too); ``case_code`` only names a case, for messages that must
        outlive it (e.g. "case erased").  ``not_before`` holds it back (until a
        confidant's shift starts)."""
        menu = await self.tx.buttons.issue(owner_hash, rows, self.now) if rows else None
        code = case.code if case else case_code
        out = Outbound(to=to, text=text, menu=menu, media=media, kind=kind,
                       case=CaseCode(code) if code else None, control=control, role=role)
        self._queued.append((out, case.data_key_id if case else None, case.id if case else None,
                             not_before))

    async def reply(self, text: str, rows: MenuRows | None = None, *,
                    kind: OutboundKind = OutboundKind.NOTICE, case: Case | None = None,
                    media: Media | None = None) -> None:
        """Answer the person who sent this event, where they wrote from."""
        await self.send(self.here, text, owner_hash=self.sender_hash, rows=rows, kind=kind,
                        case=case, media=media, role=self.role)

    async def to_contact(self, contact: Contact, text: str, rows: MenuRows | None = None, *,
                         kind: OutboundKind = OutboundKind.NOTICE, case: Case | None = None,
                         media: Media | None = None) -> None:
        address = await self.tx.contacts.address(contact)
        await self.send(address, text, owner_hash=contact.address_hash, rows=rows, kind=kind,
                        case=case, media=media, role=Role.EMPLOYEE)

    async def to_confidant(self, confidant: Confidant, text: str, rows: MenuRows | None = None,
                           *, kind: OutboundKind = OutboundKind.NOTICE, case: Case | None = None,
                           media: Media | None = None, control: Control | None = None,
                           case_code: str | None = None) -> None:
        """Every channel the confidant is registered on gets it; never any
        employee identity, only what the caller put in ``text``.  Outside their
        shifts it waits for the next one (DESIGN: confidants get nothing off
        duty unless they ask), except what answers their own action."""
        not_before = await self.off_duty_until(confidant)
        for address in await self.tx.confidants.addresses(confidant):
            owner = self.tx.vault.address_hash(address.channel, address.address)
            await self.send(address, text, owner_hash=owner, rows=rows, kind=kind, case=case,
                            media=media, control=control, case_code=case_code,
                            role=Role.CONFIDANT, not_before=not_before)

    async def off_duty_until(self, confidant: Confidant) -> datetime | None:
        """When a message for this confidant may go out: None for now (on
        duty, acting themselves, or no rota at all), else their next shift."""
        if self.confidant is not None and self.confidant.id == confidant.id:
            return None
        # Asked again for the same confidant within one event (the relay,
        # then the note to the employee): the rota does not change meanwhile.
        if confidant.id in self._duty:
            return self._duty[confidant.id]
        until = None
        if not await self.tx.rota.on_duty(confidant.id, self.now, self.settings.tz):
            until = await self.tx.rota.next_duty_start([confidant.id], self.now, self.settings.tz)
        self._duty[confidant.id] = until
        return until

    async def button_action(self) -> str | None:
        """The action behind the pressed button, if it was sent to this very
        person; None for a stale, forged or someone else's token."""
        if self.inbound.button is None:
            return None
        return await self.tx.buttons.resolve(self.sender_hash, self.inbound.button, self.now)

    async def number_action(self) -> str | None:
        """On channels that show menus as numbered lists, a bare number picks
        from the last menu this person was sent."""
        text = self.inbound.text or ""
        if not text.isdigit() or self.inbound.channel not in self.settings.numbered_channels:
            return None
        return await self.tx.buttons.resolve_number(self.sender_hash, int(text), self.now)

    def unsupported_key(self) -> str | None:
        """The refusal for content that cannot be relayed, or None."""
        if self.inbound.unsupported is None:
            return None
        return REFUSALS.get(self.inbound.unsupported, "media.unsupported")

    def confidant_lang(self, confidant: Confidant) -> str:
        langs = [lang for lang in confidant.languages.split(",") if lang]
        for lang in langs:
            if lang in self.settings.languages:
                return lang
        return self.settings.default_language



ACTIVITY_GRAIN = timedelta(minutes=10)
"""Activity times serve day-scale timers (idle close): refreshing them once
per ten minutes instead of on every message saves a write per message."""


def touch(case: Case, now: datetime) -> None:
    """Note activity on a case for the idle-close timer."""
    if now - case.last_activity_at >= ACTIVITY_GRAIN:
        case.last_activity_at = now


def clean_text(text: str | None) -> str | None:
    """Drop control characters (except newline and tab) that platforms allow
    but no person means; keeps every letter and script as typed."""
    if text is None:
        return None
    kept = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    return kept.strip()


def split_command(text: str) -> tuple[str, str] | None:
    """``/claim K7F-3MQ`` → ("claim", "K7F-3MQ"); ``!help`` works too (Matrix habit)."""
    if not text or text[0] not in "/!":
        return None
    head, _, rest = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if not name or not name.replace("_", "").isalnum():
        return None
    return name, rest.strip()


class Core:
    """Channel-neutral conversation logic shared by every channel."""

    def __init__(self, store: Store, settings: CoreSettings, info: InfoLibrary,
                 clock: Clock | None = None) -> None:
        self.store = store
        self.settings = settings
        self.info = info
        self.clock: Clock = clock or SystemClock()
        self.tr = Translator(settings.default_language, settings.languages, settings.timezone,
                             settings.org_name)
        self.outbox_changed = asyncio.Event()
        self.lane: FastLane | None = None
        """Set by a running delivery worker: takes messages straight after commit."""

    # ---------------------------------------------------------------- inbound

    async def handle(self, inbound: Inbound) -> None:
        """Record one platform event and everything it causes, exactly once.

        Retries on a busy or briefly unavailable database, so the channel
        only sees an exception when the event truly could not be recorded
        (and must then be re-delivered by the platform).
        """
        delay = 0.05
        raced = False
        refusal: UserError | None = None
        for attempt in range(12):
            try:
                await self._handle_once(inbound, refusal)
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

    async def _handle_once(self, inbound: Inbound, refusal: UserError | None = None) -> None:
        """One attempt: the event's transaction, then its messages on their way.

        Messages that can go out at once (due, nothing older pending for the
        recipient) are claimed by the fast lane before the commit, so no
        delivery pass can pick them up as well, and handed to it after the
        commit; everything else wakes the delivery worker.
        """
        lane = self.lane
        claimed: list[tuple[DueMessage, Outbound]] = []
        wake = True
        try:
            async with self.store.tx() as tx:
                written = await self._record_event(tx, inbound, refusal)
                if written is None:  # seen before: nothing changed
                    wake = False
                elif lane is not None and written:
                    rows, fresh = await tx.outbox.fresh_rows(self.clock.now())
                    claimed = lane.claim(rows)
                    wake = fresh != written or len(claimed) != written
        except BaseException:
            if lane is not None and claimed:
                lane.unclaim(claimed)
            self.outbox_changed.set()  # a commit that failed late may still have landed
            raise
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
        from handlers import admin, confidant, employee  # steps import Ctx from here

        if not await tx.events.claim(inbound.channel, inbound.event_id, self.clock.now()):
            log.info("duplicate event ignored channel=%s", inbound.channel)
            return None
        ctx = await self._context(tx, inbound)
        if refusal is not None:
            ctx.lang = refusal.lang or ctx.lang
            await ctx.reply(self.tr.t(ctx.lang, refusal.key, **refusal.values))
        else:
            try:
                if ctx.role is Role.CONFIDANT:
                    await confidant.dispatch(ctx)
                elif ctx.role is Role.ADMIN and admin.wants(ctx):
                    await admin.dispatch(ctx)
                else:
                    await employee.dispatch(ctx)
            except UserError as err:
                err.lang = ctx.lang  # the step may have learnt it (a button's language)
                raise
        written = len(ctx._queued)
        await self._flush(ctx)
        return written

    async def _context(self, tx: Tx, inbound: Inbound) -> Ctx:
        now = self.clock.now()
        inbound = _sanitised(inbound)
        conf = await tx.confidants.find_by_address(inbound.channel, inbound.sender)
        if conf is not None:
            # A confidant who writes off duty is asking: what waited for the
            # shift is theirs now.
            for address in await tx.confidants.addresses(conf):
                await tx.outbox.release(
                    tx.vault.address_hash(address.channel, address.address), now)
            ctx = Ctx(self, tx, inbound, now, Role.CONFIDANT, "", confidant=conf)
            ctx.lang = ctx.confidant_lang(conf)
            return ctx
        is_admin = (inbound.channel, inbound.sender) in self.settings.admins
        contact = await tx.contacts.find(inbound.channel, inbound.sender)
        lang = contact.language if contact else self.tr.pick(inbound.language_hint)
        role = Role.ADMIN if is_admin else Role.EMPLOYEE
        return Ctx(self, tx, inbound, now, role, lang, contact=contact)

    async def _flush(self, ctx: Ctx) -> None:
        system_key: str | None = None
        await ctx.tx.outbox.hold_send_order(out.to for out, *_ in ctx._queued)
        for out, key_id, case_id, not_before in ctx._queued:
            if key_id is None:
                system_key = system_key or await ctx.tx.system_key()
                key_id = system_key
            await ctx.tx.outbox.enqueue(out, key_id, case_id, ctx.now, not_before)
        ctx._queued.clear()

    # --------------------------------------------------------------- delivery

    async def unreachable(self, out: Outbound) -> None:
        """A recipient can never be reached: mark the case and tell the other side."""
        from handlers import confidant

        async with self.store.tx() as tx:
            ctx = Ctx(self, tx, Inbound(out.to.channel, "", "", "system"), self.clock.now(),
                      Role.EMPLOYEE, self.settings.default_language)
            await tx.outbox.fail_pending_for(
                tx.vault.address_hash(out.to.channel, out.to.address), ctx.now)
            await confidant.recipient_unreachable(ctx, out)
            await self._flush(ctx)
        self.outbox_changed.set()

    # ----------------------------------------------------------------- timers

    async def tick(self) -> None:
        """Run every timed duty that is due; safe to call at any moment and
        after any restart, because each duty is a query on stored times."""
        from handlers import timers

        async with self.store.tx() as tx:
            ctx = Ctx(self, tx, Inbound(ChannelName("system"), "", "", "tick"), self.clock.now(),
                      Role.EMPLOYEE, self.settings.default_language)
            await timers.run_due(ctx)
            await self._flush(ctx)
        self.outbox_changed.set()

    def deadline(self, opened: datetime) -> datetime:
        """10 calendar days after the first contact, as the law counts."""
        return opened + timedelta(days=10)


def _sanitised(inbound: Inbound) -> Inbound:
    text = clean_text(inbound.text)
    if text == inbound.text:
        return inbound
    from dataclasses import replace

    return replace(inbound, text=text)
