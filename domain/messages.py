"""The messages that travel between the channel adapters and the conversation core.

Channels translate platform events into `Inbound` values and render `Outbound`
values; nothing in here knows about Telegram, Matrix or HTTP.  Identity-bearing
fields (`sender`, `chat`) exist only so the core can find the pseudonymous
contact: they are hashed or encrypted before they reach the store and never
copied into anything addressed to a confidant.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from domain.ids import CaseCode, ChannelName
from domain.vocabulary import Control, Role


@dataclass(frozen=True, slots=True)
class ChannelAddress:
    """Where a platform delivers a message: a Telegram chat id, a Matrix room or
    user id, a web session id.  Treated as identity: never logged, encrypted at
    rest, looked up only by keyed hash."""

    channel: ChannelName
    address: str

    def __repr__(self) -> str:  # keeps the address out of tracebacks and logs
        return f"ChannelAddress({self.channel}, <hidden>)"


@dataclass(frozen=True, slots=True)
class Media:
    """A file to relay.  Bytes are always re-uploaded, never forwarded by
    reference, so no platform header travels with them."""

    kind: str  # "photo" | "document" | "voice"
    data: bytes
    filename: str = "file"
    mime_type: str = "application/octet-stream"
    caption: str | None = None

    def __repr__(self) -> str:
        return f"Media({self.kind}, {len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class Button:
    """One choice of a `Menu`.  ``token`` is an opaque server-side handle: the
    client sends it back and the core resolves it, so a client can never edit
    a button into another action."""

    label: str
    token: str


@dataclass(frozen=True, slots=True)
class Menu:
    """Choices a channel renders in its own idiom (inline keyboard, numbered
    list, HTML buttons).  Rows group buttons that belong on one line."""

    rows: tuple[tuple[Button, ...], ...]

    def buttons(self) -> list[Button]:
        return [b for row in self.rows for b in row]


@dataclass(frozen=True, slots=True)
class Inbound:
    """One platform event, already translated by a channel.

    ``event_id`` must be stable across re-deliveries (Telegram update id,
    Matrix event id, web message UUID): the core records it so an event seen
    twice has its effect once.
    """

    channel: ChannelName
    sender: str
    """Platform user id of the person (identity: never stored in plaintext)."""
    chat: str
    """Where replies go on that platform (chat id, room id, web session)."""
    event_id: str
    text: str | None = None
    button: str | None = None
    """The opaque token of a pressed `Button`."""
    media: Media | None = None
    reply_to: str | None = None
    """Platform message id this event answers (for confidants' reply routing)."""
    language_hint: str | None = None
    unsupported: str | None = None
    """Kind of content the channel cannot relay (sticker, location, contact, poll…)."""
    case_hint: str | None = None
    """Case the platform context points to (e.g. a Matrix per-case room)."""
    keep: tuple[tuple[str, bytes], ...] = ()
    """Entries of the channel's own state (key, value) to write with the
    event, in its transaction, only if the event is new: the channel's record
    of it (the web page's copy of the person's words) is then durable exactly
    when the event is, which is when the channel confirms it, and costs no
    transaction of its own.  Sealed by the store like all channel state."""

    def __repr__(self) -> str:
        return (
            f"Inbound({self.channel}, event={self.event_id!r}, "
            f"text={'yes' if self.text else 'no'}, button={'yes' if self.button else 'no'})"
        )


class OutboundKind(enum.StrEnum):
    NOTICE = "notice"  # bot speaking
    RELAY = "relay"  # words of the other party
    URGENT = "urgent"  # relay or notice flagged urgent
    CONTROL = "control"  # channel housekeeping, e.g. open/close a case room


@dataclass(frozen=True, slots=True)
class Outbound:
    """Something to deliver to one person.  Written to the outbox (encrypted)
    and handed to the recipient's channel by the delivery worker."""

    to: ChannelAddress
    text: str
    menu: Menu | None = None
    media: Media | None = None
    kind: OutboundKind = OutboundKind.NOTICE
    case: CaseCode | None = None
    """The case this message belongs to: shown to confidants, used by Matrix to
    pick the per-case room and by reply routing."""
    control: Control | None = None
    """Housekeeping for the channel, carried on an ordinary message."""
    role: Role | None = None
    """The recipient's role, when the sender knows it: a channel shows a
    confidant's messages differently (Matrix case rooms, the web console)."""
    about: tuple[CaseCode, ...] = ()
    """Cases this message names without belonging to them (a new-case notice
    with its Claim button, "taken by", a case list, a refusal): a channel
    that keeps a history (the web console) drops the message when one of
    them is erased.  Unlike ``case`` it picks no room and routes no reply."""

    def __repr__(self) -> str:
        return f"Outbound({self.to!r}, kind={self.kind}, case={self.case})"


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a channel reports after a successful send."""

    platform_message_id: str | None = None


class DeliveryError(Exception):
    """Base for failures a channel reports to the delivery worker."""


class RetryLater(DeliveryError):
    """Transient failure; ``after`` is the platform's retry-after in seconds, if given."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class Unreachable(DeliveryError):
    """The recipient can never get this message (blocked bot, left room,
    deleted chat).  The core marks the case and tells the other side."""
