"""What the admin service returns: plain, frozen records with no store objects.

Nothing here can lead back to a case: a confidant is a name, languages and
the channels they are reached on (never an address); a week counts booked
talks per day (never which case).  Times are local to the organisation;
``starts_at``/``ends_at`` are aware datetimes in its timezone, so a week
that crosses a DST change is 167 or 169 hours long, as it really is
(`WeekView.length`; compare instants in UTC, not by subtracting local ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from domain.parsing import WEEKDAY_KEYS, hhmm
from handlers.administration.problems import Problem
from handlers.administration.validation import Gap, ShiftSpec


@dataclass(frozen=True)
class ConfidantInfo:
    id: str
    name: str
    bio: str
    languages: tuple[str, ...]
    channels: tuple[str, ...]
    """Channel names (``telegram``, ``matrix``, ``web``), never addresses."""
    active: bool
    attested_by: str
    attested_at: datetime
    shifts: int
    """How many weekly shifts they have."""


@dataclass(frozen=True)
class ShiftInfo:
    id: str
    confidant_id: str
    confidant: str
    weekday: int
    start: time
    end: time
    kind: str

    @property
    def spec(self) -> ShiftSpec:
        return ShiftSpec(self.weekday, self.start, self.end, self.kind)

    def label(self) -> str:
        """``mon 09:00-12:00 duty``."""
        return self.spec.label()


@dataclass(frozen=True)
class WeekShift:
    """A weekly shift on its date in one week."""

    shift: ShiftInfo
    day: date
    starts_at: datetime
    ends_at: datetime
    absent: bool
    """The confidant is away that day: the shift does not count."""


@dataclass(frozen=True)
class WeekView:
    """One ISO week of the rota."""

    label: str
    """``2026-W48``."""
    monday: date
    days: tuple[date, ...]
    starts_at: datetime
    ends_at: datetime
    timezone: str
    shifts: tuple[WeekShift, ...]
    talks_booked: dict[date, int]
    gaps: tuple[Gap, ...]
    """Office hours with nobody on duty that week (absences counted)."""
    previous: str
    next: str

    @property
    def warnings(self) -> list[Problem]:
        return [g.problem() for g in self.gaps]

    @property
    def length(self) -> timedelta:
        """How long the week really lasts (subtracting two datetimes of one
        timezone in Python gives wall-clock time, which a DST week is not)."""
        return self.ends_at.astimezone(UTC) - self.starts_at.astimezone(UTC)


@dataclass(frozen=True)
class ShiftChange:
    """A shift added, changed or removed (or only checked), and what the rota
    then lacks: warnings, never refusals."""

    shift: ShiftInfo
    warnings: tuple[Problem, ...] = ()
    applied: bool = True


@dataclass(frozen=True)
class AbsenceInfo:
    id: str
    confidant_id: str
    confidant: str
    start: date
    end: date
    """The last day away (inclusive)."""


@dataclass(frozen=True)
class RoomInfo:
    id: str
    name: str
    site: str
    notes: str
    active: bool = True


@dataclass(frozen=True)
class AdminInfo:
    """An account that may use the web admin console."""

    name: str
    source: str
    """``cli`` (added with ``confidant admin admin add``) or ``config`` (``[[admins]]``)."""
    created_by: str = ""
    created_at: datetime | None = None
    stored: bool = True
    """False for a named ``[[admins]]`` entry that has never logged in."""


@dataclass(frozen=True)
class ImportResult:
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return ", ".join(f"{v} {k}" for k, v in self.counts.items())


def shift_words(s: ShiftInfo) -> str:
    """``mon 09:00-12:00`` for one-line CLI output."""
    return f"{WEEKDAY_KEYS[s.weekday]} {hhmm(s.start)}-{hhmm(s.end)}"
