"""Bookable talk slots: talk hours minus booked talks (plus buffer) minus
absences, each paired with a free discreet room.

Pure functions on plain values so the calendar arithmetic can be tested on
its own.  Talk hours are wall-clock times in the organisation's timezone; a
slot is built on the local calendar day and only then converted to UTC, so a
09:00 talk stays at 09:00 local on both sides of a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.parsing import monday_of


@dataclass(frozen=True, slots=True)
class TalkHours:
    """One weekly talk-hours window of a confidant (local wall-clock times)."""

    confidant_id: str
    weekday: int
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Away:
    """Dates (inclusive) a confidant is absent; a public holiday is an absence too."""

    confidant_id: str
    start: date
    end: date


@dataclass(frozen=True, slots=True)
class Busy:
    """A booked talk: occupies its confidant and its room."""

    confidant_id: str
    room_id: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Slot:
    confidant_id: str
    room_id: str
    starts_at: datetime
    """UTC."""
    ends_at: datetime

    @property
    def key(self) -> str:
        """Compact handle for a button: ``<confidant>:<room>:<epoch seconds>``."""
        return f"{self.confidant_id}:{self.room_id}:{int(self.starts_at.timestamp())}"


def local_moment(day: date, at: time, tz: ZoneInfo) -> datetime | None:
    """``day`` at wall-clock ``at`` in ``tz`` as UTC, or None when that wall
    time does not exist (skipped by a spring-forward change)."""
    local = datetime.combine(day, at, tzinfo=tz)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return utc


def _clashes(start: datetime, end: datetime, busy: Busy, buffer: timedelta) -> bool:
    return start < busy.ends_at + buffer and busy.starts_at < end + buffer


def generate(hours: Iterable[TalkHours], absences: Iterable[Away], busy: Sequence[Busy],
             rooms: Sequence[str], *, tz: ZoneInfo, start_day: date, days: int,
             slot_minutes: int, buffer_minutes: int, not_before: datetime,
             limit: int | None = None) -> list[Slot]:
    """Every free slot from ``start_day`` for ``days`` local days, earliest first.

    A slot needs its confidant free (no talk within the buffer), not absent
    that day, and at least one room free for the same span (plus buffer);
    the first free room by the given order is taken.
    """
    length = timedelta(minutes=slot_minutes)
    buffer = timedelta(minutes=buffer_minutes)
    step = length + buffer
    by_day: dict[int, list[TalkHours]] = {}
    for h in hours:
        by_day.setdefault(h.weekday, []).append(h)
    away: dict[str, list[Away]] = {}
    for a in absences:
        away.setdefault(a.confidant_id, []).append(a)
    out: list[Slot] = []
    for offset in range(days):
        day = start_day + timedelta(days=offset)
        for h in sorted(by_day.get(day.weekday(), []), key=lambda x: (x.start, x.confidant_id)):
            if any(a.start <= day <= a.end for a in away.get(h.confidant_id, [])):
                continue
            window_end = datetime.combine(day, h.end)
            cursor = datetime.combine(day, h.start)
            while cursor + length <= window_end:
                slot = _slot_at(h.confidant_id, day, cursor.time(), length, busy, rooms, tz,
                                buffer, not_before)
                if slot is not None:
                    out.append(slot)
                cursor += step
    out.sort(key=lambda s: (s.starts_at, s.confidant_id))
    return out[:limit] if limit is not None else out


def _slot_at(confidant_id: str, day: date, at: time, length: timedelta, busy: Sequence[Busy],
             rooms: Sequence[str], tz: ZoneInfo, buffer: timedelta,
             not_before: datetime) -> Slot | None:
    start = local_moment(day, at, tz)
    if start is None or start < not_before:
        return None
    end = start + length
    if any(b.confidant_id == confidant_id and _clashes(start, end, b, buffer) for b in busy):
        return None
    for room in rooms:
        if not any(b.room_id == room and _clashes(start, end, b, buffer) for b in busy):
            return Slot(confidant_id, room, start, end)
    return None


def week_start(moment: datetime, tz: ZoneInfo) -> date:
    """Monday of the local week that holds ``moment``."""
    return monday_of(moment.astimezone(tz).date())
