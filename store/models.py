"""SQLAlchemy 2 models for the whole domain.

Every column ending in ``_enc`` holds AES-256-GCM ciphertext sealed with a
data key from `DataKey` and associated data ``"<table>.<column>:<row id>"``,
so a ciphertext copied to another row does not open.  Columns ending in
``_hash`` hold HMAC-SHA256 lookups of platform addresses, never addresses.
Row ids are random strings made in Python so the associated data is known
before the insert.  The base, the ids and the UTC column type are in
`store.model_base`.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from domain.vocabulary import AppointmentStatus, Language, ShiftKind
from store.model_base import Base, UTCDateTime, new_id, utcnow


class DataKey(Base):
    """A per-case (or per-contact, per-confidant, system) AES key, wrapped by
    the master key.  Shredding clears ``wrapped``: every ciphertext sealed
    with it becomes unreadable, in backups too."""

    __tablename__ = "data_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    purpose: Mapped[str] = mapped_column(String(16))
    """``case`` | ``contact`` | ``confidant`` | ``system`` | ``register``."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    shredded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Contact(Base):
    """An employee as the bot knows them: a pseudonym plus an encrypted way to
    reach them.  No name, no username, no platform id in clear."""

    __tablename__ = "contacts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    channel: Mapped[str] = mapped_column(String(16))
    address_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    """Keyed hash of the sender's platform id: how the bot finds them again."""
    sender_enc: Mapped[bytes] = mapped_column(LargeBinary)
    """The sender's platform id, sealed: key rotation re-derives the hash from it."""
    address_enc: Mapped[bytes] = mapped_column(LargeBinary)
    """Where to answer (a chat, a Matrix DM room, a web identity), sealed."""
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.id"))
    language: Mapped[str] = mapped_column(String(8))
    welcomed: Mapped[bool] = mapped_column(Boolean, default=False)
    active_case_id: Mapped[str | None] = mapped_column(
        ForeignKey("cases.id", use_alter=True, ondelete="SET NULL"), nullable=True
    )
    pending: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """A question awaiting an answer (e.g. ``forget``, ``declare:what``)."""
    pending_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """Answers gathered so far for a multi-step intake, encrypted."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Confidant(Base):
    """A registered confidant.  Eligibility was attested by an admin (who, when)."""

    __tablename__ = "confidants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    bio: Mapped[str] = mapped_column(Text, default="")
    languages: Mapped[str] = mapped_column(String(32), default=Language.NL.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.id"))
    attested_by: Mapped[str] = mapped_column(String(80))
    attested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    current_case_id: Mapped[str | None] = mapped_column(
        ForeignKey("cases.id", use_alter=True, ondelete="SET NULL"), nullable=True
    )
    """The case plain messages go to when the channel gives no other hint."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConfidantAddress(Base):
    """How to reach a confidant on one channel (Telegram chat, Matrix user, web)."""

    __tablename__ = "confidant_addresses"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    confidant_id: Mapped[str] = mapped_column(ForeignKey("confidants.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    address_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    address_enc: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (UniqueConstraint("confidant_id", "channel"),)


class Case(Base):
    """One anonymous conversation.  ``code`` is what confidants see."""

    __tablename__ = "cases"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    contact_id: Mapped[str | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.id"))
    status: Mapped[str] = mapped_column(String(12), index=True)
    """A `CaseStatus`: ``waiting`` (not claimed) | ``open`` (claimed) | ``closed``."""
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    chosen_confidant_id: Mapped[str | None] = mapped_column(
        ForeignKey("confidants.id", ondelete="SET NULL"), nullable=True
    )
    confidant_id: Mapped[str | None] = mapped_column(
        ForeignKey("confidants.id", ondelete="SET NULL"), nullable=True, index=True
    )
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    theme: Mapped[str | None] = mapped_column(String(24), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """10 calendar days after the first contact: the confidant must hear the worker."""
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heard_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When confidants were first told of the case (deferred outside shifts)."""
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deadline_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirmation_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    helper_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """A colleague on duty answering an urgent message while the confidant is
    off shift.  A plain id, not a foreign key: SQLite adds a foreign key to an
    existing table only by copying it, and confidants are never deleted
    (`ConfidantRepo.remove` deactivates)."""
    help_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """End of that help (the assigned confidant's next shift start), set when
    the colleagues on duty are asked; None when no help is open."""
    __table_args__ = (
        Index("ix_cases_status_closed_at", "status", "closed_at"),
        Index("ix_cases_help_until", "help_until"),
        Index("ix_cases_status_last_activity_at", "status", "last_activity_at"),
    )


class CaseMessage(Base):
    """Messages held back while a case waits for a claim; deleted once relayed."""

    __tablename__ = "case_messages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseAnnouncement(Base):
    """Who was told of a waiting case (new case, urgent word, escalation), so
    "taken by" goes to them and not to a colleague who never heard of it."""

    __tablename__ = "case_announcements"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"),
                                         primary_key=True)
    confidant_id: Mapped[str] = mapped_column(ForeignKey("confidants.id", ondelete="CASCADE"),
                                              primary_key=True)


class Note(Base):
    """A confidant's private note on a case: never relayed, shredded with the case."""

    __tablename__ = "notes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    confidant_id: Mapped[str | None] = mapped_column(
        ForeignKey("confidants.id", ondelete="SET NULL"), nullable=True
    )
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(Base):
    """The form of informal intervention the employee agreed to (or refused)."""

    __tablename__ = "consents"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    form: Mapped[str] = mapped_column(String(16))
    """A `ConsentForm`: ``supervisor`` | ``advisor`` | ``reconcile``."""
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    agreed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class OutboxMessage(Base):
    """A message to deliver.  Written in the same transaction as the inbound
    event that caused it; its body is deleted once delivered."""

    __tablename__ = "outbox"
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    ref: Mapped[str] = mapped_column(String(32), default=new_id)
    """Stable idempotency key for the channel, and the row's associated data.
    Random 128 bits, so unique without a unique index: no query reads by it,
    and the index cost a page per message (0006)."""
    channel: Mapped[str] = mapped_column(String(16))
    recipient_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    recipient_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    payload_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.id"))
    case_id: Mapped[str | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(12), default="pending")
    """``pending`` | ``sending`` | ``sent`` | ``failed``."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        # Order checks ask "anything older still pending for this person?":
        # only pending rows, so the cost does not grow with delivered history.
        # Every query by recipient asks about pending rows only, so there is
        # no full (recipient, seq) index to write for each row (0006).
        Index("ix_outbox_pending_recipient_seq", "recipient_hash", "seq",
              sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
    )


class HandledEvent(Base):
    """Platform events already processed: a re-delivered event has no second effect."""

    __tablename__ = "handled_events"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    """Indexed for `EventRepo.forget_before`, which every timer tick runs."""
    __table_args__ = ({"sqlite_with_rowid": False},)
    """The natural key is the row's place on SQLite: one b-tree written per
    event, not a rowid table and a key index beside it."""


class MessageLink(Base):
    """Platform message id → case, so a confidant replying to a relayed message
    answers that case."""

    __tablename__ = "message_links"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    platform_message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    """Indexed for the cascade when a case is erased."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = ({"sqlite_with_rowid": False},)
    """As for `HandledEvent`: the natural key is the row's place on SQLite."""


class ButtonToken(Base):
    """Server-side meaning of a menu button.  Bound to the person it was sent
    to: a token pressed by anyone else, or edited, resolves to nothing."""

    __tablename__ = "button_tokens"
    token: Mapped[str] = mapped_column(String(24), primary_key=True)
    owner_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    menu_id: Mapped[str] = mapped_column(String(32), index=True)
    position: Mapped[int] = mapped_column(Integer)
    serial: Mapped[int] = mapped_column(BigInteger)
    """Issue order: menus sent in one step share a timestamp, and a typed
    number must answer the one sent last."""
    action: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Shift(Base):
    """A weekly slot of a confidant: ``duty`` (answers chats) or ``talks``
    (in-person talks may be booked).  Times are local to the organisation."""

    __tablename__ = "shifts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    confidant_id: Mapped[str] = mapped_column(
        ForeignKey("confidants.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)
    kind: Mapped[str] = mapped_column(String(8), default=ShiftKind.DUTY.value)


class Absence(Base):
    """Dates (inclusive) on which a confidant is away."""

    __tablename__ = "absences"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    confidant_id: Mapped[str] = mapped_column(
        ForeignKey("confidants.id", ondelete="CASCADE"), index=True
    )
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)


class Room(Base):
    """A discreet room for in-person talks."""

    __tablename__ = "rooms"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    site: Mapped[str] = mapped_column(String(80), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Appointment(Base):
    """An in-person talk.  Partial unique indexes make a double booking of a
    confidant or a room at the same start impossible, whatever the race."""

    __tablename__ = "appointments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    confidant_id: Mapped[str] = mapped_column(ForeignKey("confidants.id", ondelete="CASCADE"))
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default=AppointmentStatus.BOOKED.value)
    """An `AppointmentStatus`: ``booked`` | ``cancelled`` | ``held``."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reminded_day_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reminded_hour_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    __table_args__ = (
        Index(
            "uq_appointments_confidant_start",
            "confidant_id",
            "starts_at",
            unique=True,
            sqlite_where=text(f"status = '{AppointmentStatus.BOOKED}'"),
            postgresql_where=text(f"status = '{AppointmentStatus.BOOKED}'"),
        ),
        Index(
            "uq_appointments_room_start",
            "room_id",
            "starts_at",
            unique=True,
            sqlite_where=text(f"status = '{AppointmentStatus.BOOKED}'"),
            postgresql_where=text(f"status = '{AppointmentStatus.BOOKED}'"),
        ),
        Index("ix_appointments_status_starts_at", "status", "starts_at"),
    )


class Declaration(Base):
    """An entry in the register of acts by third parties.  Kept five years,
    apart from the case (its own key), identity only with explicit agreement."""

    __tablename__ = "declarations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.id"))
    facts_enc: Mapped[bytes] = mapped_column(LargeBinary)
    """JSON: what happened, when, where, and identity if agreed."""
    identity_agreed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuditEvent(Base):
    """Who did what, never with content: admin actions and case transitions."""

    __tablename__ = "audit_events"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[str] = mapped_column(String(255), default="")


class OneTimeLinkColumns:
    """What every one-time login link row holds, whoever it opens for: the
    secret's hash, when it was made, when it expires and when it was used.
    One set of columns so `store.tokens` redeems both kinds by one rule."""

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginToken(OneTimeLinkColumns, Base):
    """One-time login link for the web console; only its hash is kept."""

    __tablename__ = "login_tokens"
    confidant_id: Mapped[str] = mapped_column(ForeignKey("confidants.id", ondelete="CASCADE"))


class AdminAccount(Base):
    """A person who may use the web admin console: HR or the prevention
    service.  Added with ``confidant admin admin add`` (``source`` ``cli``) or
    taken from a named ``[[admins]]`` entry of the config (``config``)."""

    __tablename__ = "admin_accounts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    source: Mapped[str] = mapped_column(String(8), default="cli")
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdminLoginToken(OneTimeLinkColumns, Base):
    """One-time login link for the web admin console; only its hash is kept."""

    __tablename__ = "admin_login_tokens"
    admin_id: Mapped[str] = mapped_column(ForeignKey("admin_accounts.id", ondelete="CASCADE"),
                                          index=True)


class AdminSession(Base):
    """A web admin console session opened with a login link; only the hash of
    its cookie is kept, and it ends at ``expires_at`` or with the account."""

    __tablename__ = "admin_sessions"
    sid_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    admin_id: Mapped[str] = mapped_column(ForeignKey("admin_accounts.id", ondelete="CASCADE"),
                                          index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ChannelStateEntry(Base):
    """A channel's own small persistent state (Matrix device, case rooms, web
    history), sealed with the system key or a case key."""

    __tablename__ = "channel_state"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value_enc: Mapped[bytes] = mapped_column(LargeBinary)
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseStatistic(Base):
    """Anonymous counters that outlive erased cases: no link to any person or case."""

    __tablename__ = "case_statistics"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    month: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM of opening
    channel: Mapped[str] = mapped_column(String(16))
    theme: Mapped[str] = mapped_column(String(24))
    heard_in_time: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class AppMeta(Base):
    """Small facts about the installation (e.g. a check value for the master key)."""

    __tablename__ = "app_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


ADDRESS_HASH_COLUMNS: tuple[tuple[type[Base], str, str], ...] = (
    (Contact, "address_hash", "sender_enc"),
    (ConfidantAddress, "address_hash", "address_enc"),
)
"""Keyed-hash columns and the encrypted column they index: key rotation
recomputes each hash from the decrypted address."""

ENCRYPTED_COLUMNS: tuple[tuple[type[Base], str], ...] = (
    (Contact, "address_enc"),
    (Contact, "sender_enc"),
    (Contact, "pending_enc"),
    (ConfidantAddress, "address_enc"),
    (CaseMessage, "body_enc"),
    (Note, "body_enc"),
    (OutboxMessage, "recipient_enc"),
    (OutboxMessage, "payload_enc"),
    (Declaration, "facts_enc"),
    (ChannelStateEntry, "value_enc"),
)
