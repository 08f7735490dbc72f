"""The fixed sets of values the bot stores, sends and compares.

Each value equals the string written to the database and the outbox before
these enums existed (``"open"``, ``"case-close"``, ``"talks"`` …), so rows
written by any release still read back; a `StrEnum` member *is* that string,
so it can be stored, formatted into a content key or compared with a value
read from a row as it is.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """Who is speaking (decided on the server for every event), and who a
    message is for."""

    EMPLOYEE = "employee"
    CONFIDANT = "confidant"
    ADMIN = "admin"


class Control(enum.StrEnum):
    """Housekeeping for a channel, carried on an ordinary message."""

    CASE_OPEN = "case-open"
    """A confidant gets the case (Matrix opens a per-case room)."""
    CASE_HANDOVER_OUT = "case-handover-out"
    """The confidant loses the case to a colleague."""
    CASE_CLOSE = "case-close"
    CASE_ERASE = "case-erase"
    """The case is gone: drop any copy of its history."""
    FORGET = "forget"
    """The employee erased everything: drop their history."""


class CaseStatus(enum.StrEnum):
    """Where a case stands (``cases.status``)."""

    WAITING = "waiting"
    """Not claimed by a confidant yet."""
    OPEN = "open"
    """Claimed: a confidant answers."""
    CLOSED = "closed"


ACTIVE_CASE_STATUSES: tuple[CaseStatus, ...] = (CaseStatus.WAITING, CaseStatus.OPEN)
"""A case still under way (the timers and the open-case count look at these)."""


class AppointmentStatus(enum.StrEnum):
    """Where an in-person talk stands (``appointments.status``)."""

    BOOKED = "booked"
    CANCELLED = "cancelled"
    HELD = "held"


class ShiftKind(enum.StrEnum):
    """What a weekly slot of a confidant is for (``shifts.kind``)."""

    DUTY = "duty"
    """Answers chats."""
    TALKS = "talks"
    """In-person talks may be booked."""


class Theme(enum.StrEnum):
    """What a closed case was about, for the anonymous statistics
    (``cases.theme``, ``case_statistics.theme``)."""

    STRESS = "stress"
    BULLYING = "bullying"
    SEXUAL = "sexual"
    VIOLENCE_INTERNAL = "violence_internal"
    VIOLENCE_THIRD_PARTY = "violence_third_party"
    CONFLICT = "conflict"
    PRIVATE = "private"
    OTHER = "other"
    UNCLASSIFIED = "unclassified"
    """Closed without a theme (the employee stopped, or the case went idle)."""
    WITHDRAWN = "withdrawn"
    """Erased before it was closed."""


CLOSE_THEMES: tuple[Theme, ...] = (
    Theme.STRESS, Theme.BULLYING, Theme.SEXUAL, Theme.VIOLENCE_INTERNAL,
    Theme.VIOLENCE_THIRD_PARTY, Theme.CONFLICT, Theme.PRIVATE, Theme.OTHER,
)
"""The themes a confidant chooses from with ``/close``, in the order offered."""


class ConsentForm(enum.StrEnum):
    """The form of informal intervention an employee is asked to agree to
    (``/consent CODE FORM``, ``consents.form``)."""

    SUPERVISOR = "supervisor"
    ADVISOR = "advisor"
    RECONCILE = "reconcile"


class Language(enum.StrEnum):
    """A language the bot speaks: every text exists in each of them."""

    NL = "nl"
    FR = "fr"
    EN = "en"


SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(lang.value for lang in Language)
"""The language codes as plain strings, in the order shown: ``("nl", "fr", "en")``."""
