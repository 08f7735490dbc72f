"""What every step stands on: the context of one event (`Ctx`), the polite
refusal (`UserError`), the clock, the settings, and text cleaning.

A step module (`handlers.employee`, `handlers.confidant`, …) imports this
module and nothing that runs it: the router (`handlers.router`) decides who
is speaking and which step runs, and the engine in ``bot/`` owns the
transaction and the retries.  So the arrows run one way: engine → router →
steps → context.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from domain.ids import CaseCode
from domain.messages import ChannelAddress, Inbound, Media, Outbound, OutboundKind
from domain.parsing import OfficeHours
from domain.vocabulary import SUPPORTED_LANGUAGES, Control, Language, Role
from handlers.administration.validation import DEFAULT_OFFICE_HOURS
from handlers.i18n import Translator
from handlers.info import InfoLibrary
from store.models import Case, Confidant, Contact
from store.store import Tx

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
    numbered_channels: frozenset[str] = frozenset()
    """Channels that show menus as numbered lists answered with a number
    (the app fills it from the channels' declared traits)."""
    end_to_end_channels: frozenset[str] = frozenset({"matrix"})
    """Channels that declare themselves end-to-end encrypted (the app fills it
    from the channels' traits; the default is what the shipped channels
    declare): the privacy notice promises end-to-end only over these."""
    channels: frozenset[str] = frozenset({"telegram", "matrix", "web"})
    """The channels the bot runs: a confidant's address elsewhere receives nothing,
    so the privacy notice leaves it out (`handlers.privacy_notice`)."""
    web_https: bool = False
    """Whether the web chat and console are served over HTTPS (``web.public_url``);
    only then may the notice say the web chat is encrypted on the way."""
    slot_minutes: int = 45
    buffer_minutes: int = 15
    days_ahead: int = 21
    office_hours: OfficeHours = DEFAULT_OFFICE_HOURS
    """When someone should be on duty (``[rota] office_hours``): the admin
    service warns about the hours nobody covers."""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Conversation(Protocol):
    """What a step reads besides its event: the settings, the pages and the
    words (the engine that runs the steps provides them)."""

    @property
    def settings(self) -> CoreSettings: ...

    @property
    def info(self) -> InfoLibrary: ...

    @property
    def tr(self) -> Translator: ...


Words = Callable[[str], str]
"""Text in a given language, e.g. ``lambda lang: ctx.t("close.to_employee", lang=lang)``."""


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

    core: Conversation
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
                   case_code: str | None = None, not_before: datetime | None = None,
                   about: Sequence[Case] = ()) -> None:
        """Queue a message; menu choices become tokens bound to ``owner_hash``.

        With ``case`` the row is sealed with the case key (so erasing the case
        erases it too); ``case_code`` only names a case, for messages that must
        outlive it (e.g. "case erased").  ``about`` names the cases a message
        speaks of without belonging to them (`Outbound.about`), so a console
        history drops it with any of them; about one case only, it is sealed
        with that case's key, and a copy still waiting goes with the case.
        ``not_before`` holds it back (until a confidant's shift starts)."""
        menu = await self.tx.buttons.issue(owner_hash, rows, self.now) if rows else None
        code = case.code if case else case_code
        out = Outbound(to=to, text=text, menu=menu, media=media, kind=kind,
                       case=CaseCode(code) if code else None, control=control, role=role,
                       about=tuple(dict.fromkeys(CaseCode(c.code) for c in about)))
        sealed_by = case or (about[0] if len(about) == 1 and case_code is None else None)
        self._queued.append((out, sealed_by.data_key_id if sealed_by else None,
                             sealed_by.id if sealed_by else None, not_before))

    async def reply(self, text: str, rows: MenuRows | None = None, *,
                    kind: OutboundKind = OutboundKind.NOTICE, case: Case | None = None,
                    media: Media | None = None, about: Sequence[Case] = ()) -> None:
        """Answer the person who sent this event, where they wrote from."""
        await self.send(self.here, text, owner_hash=self.sender_hash, rows=rows, kind=kind,
                        case=case, media=media, role=self.role, about=about)

    async def to_contact(self, contact: Contact, text: str, rows: MenuRows | None = None, *,
                         kind: OutboundKind = OutboundKind.NOTICE, case: Case | None = None,
                         media: Media | None = None) -> None:
        address = await self.tx.contacts.address(contact)
        await self.send(address, text, owner_hash=contact.address_hash, rows=rows, kind=kind,
                        case=case, media=media, role=Role.EMPLOYEE)

    async def to_confidant(self, confidant: Confidant, text: str, rows: MenuRows | None = None,
                           *, kind: OutboundKind = OutboundKind.NOTICE, case: Case | None = None,
                           media: Media | None = None, control: Control | None = None,
                           case_code: str | None = None, about: Sequence[Case] = ()) -> None:
        """Every channel the confidant is registered on gets it; never any
        employee identity, only what the caller put in ``text``.  Outside their
        shifts it waits for the next one (DESIGN: confidants get nothing off
        duty unless they ask), except what answers their own action."""
        not_before = await self.off_duty_until(confidant)
        for address in await self.tx.confidants.addresses(confidant):
            owner = self.tx.vault.address_hash(address.channel, address.address)
            await self.send(address, text, owner_hash=owner, rows=rows, kind=kind, case=case,
                            media=media, control=control, case_code=case_code,
                            role=Role.CONFIDANT, not_before=not_before, about=about)

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

    async def case_contact(self, case: Case) -> Contact | None:
        """The employee of a case; None once they have erased themselves."""
        return await self.tx.contacts.by_id(case.contact_id) if case.contact_id else None

    async def contact_or_gone(self, case: Case) -> Contact:
        """The employee of a case, for a step that cannot do without them."""
        contact = await self.case_contact(case)
        if contact is None:
            raise UserError("case.gone", code=case.code)
        return contact

    async def to_case_employee(self, case: Case, words: Words, rows: MenuRows | None = None,
                               *, kind: OutboundKind = OutboundKind.NOTICE,
                               media: Media | None = None) -> bool:
        """Write to the case's employee, in the case's language, sealed with
        the case; False (and nothing sent) when the employee is gone."""
        contact = await self.case_contact(case)
        if contact is None:
            return False
        await self.to_contact(contact, words(case.language), rows, kind=kind, case=case,
                              media=media)
        return True

    async def flush(self) -> int:
        """Write the queued messages to the outbox (in this event's
        transaction); returns how many."""
        written = len(self._queued)
        system_key: str | None = None
        await self.tx.outbox.hold_send_order(out.to for out, *_ in self._queued)
        for out, key_id, case_id, not_before in self._queued:
            if key_id is None:
                system_key = system_key or await self.tx.system_key()
                key_id = system_key
            await self.tx.outbox.enqueue(out, key_id, case_id, self.now, not_before)
        self._queued.clear()
        return written



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


def legal_deadline(opened: datetime) -> datetime:
    """10 calendar days after the first contact, as the law counts."""
    return opened + timedelta(days=10)


def sanitised(inbound: Inbound) -> Inbound:
    """The event with its text cleaned (`clean_text`)."""
    text = clean_text(inbound.text)
    if text == inbound.text:
        return inbound
    return replace(inbound, text=text)
