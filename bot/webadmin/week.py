"""One calendar week of the weekly rota, as the grid draws it.

Shifts are weekly wall-clock times in the organisation's timezone; a week
gives them dates.  Twice a year a Sunday is not 24 hours long: in Brussels
the last Sunday of March skips 02:00-03:00 and the last Sunday of October
lives 02:00-03:00 twice.  The grid says so on that day, and the hours on
duty it adds up are real elapsed hours (a 00:00-06:00 shift that Sunday is
5 or 7 hours), computed here through UTC, never by subtracting wall clocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.parsing import monday_of, parse_week, week_label

_STEP = timedelta(minutes=15)
"""Clock changes happen on the quarter hour everywhere the bot is used."""


@dataclass(frozen=True)
class ClockChange:
    """The wall clock jumps on this day: ``before`` becomes ``after``."""

    before: time
    after: time
    forward: bool
    """True in spring (an hour is skipped), False in autumn (one is lived twice)."""


@dataclass(frozen=True)
class Day:
    """One column of the grid."""

    date: date
    weekday: int
    hours: float
    """How long the day really is: 24, or 23/25 on a clock change."""
    change: ClockChange | None


@dataclass(frozen=True)
class Week:
    """The week shown, with its neighbours for the navigation links."""

    monday: date
    days: tuple[Day, ...]

    @property
    def label(self) -> str:
        return week_label(self.monday)

    @property
    def previous(self) -> str:
        return week_label(self.monday - timedelta(days=7))

    @property
    def next(self) -> str:
        return week_label(self.monday + timedelta(days=7))

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def clock_change(day: date, tz: ZoneInfo) -> ClockChange | None:
    """The clock change on ``day`` in ``tz``, if there is one."""
    start, end = _midnight(day, tz), _midnight(day + timedelta(days=1), tz)
    moment = start
    while moment < end:
        following = moment + _STEP
        before, after = moment.astimezone(tz), following.astimezone(tz)
        jump = (after.utcoffset() or timedelta()) - (before.utcoffset() or timedelta())
        if jump:
            at = after.replace(tzinfo=None)
            return ClockChange(before=(at - jump).time(), after=at.time(),
                               forward=jump > timedelta())
        moment = following
    return None


def week_of(monday: date, tz: ZoneInfo) -> Week:
    """The seven days from ``monday`` with their true lengths."""
    days = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        length = _midnight(day + timedelta(days=1), tz) - _midnight(day, tz)
        days.append(Day(date=day, weekday=day.weekday(), hours=length / timedelta(hours=1),
                        change=clock_change(day, tz)))
    return Week(monday=monday, days=tuple(days))


def chosen_week(text: str | None, today: date, tz: ZoneInfo) -> Week:
    """The week asked for (``2026-W13``, read by `domain.parsing.parse_week`;
    a `ParseError` for anything else), or this week."""
    monday = parse_week(text) if text else monday_of(today)
    return week_of(monday, tz)


def elapsed_hours(day: date, start: time, end: time, tz: ZoneInfo) -> float:
    """Real hours between two wall-clock times of one day (through UTC)."""
    begin = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
    finish = datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
    return max(0.0, (finish - begin) / timedelta(hours=1))
