"""One reading of the weekdays, times, dates, weeks and months people type.

The chat admin, a confidant's ``/absence``, the admin CLI and the rota file
all call these, so a day or a time that works in one place works in every
other.  A refusal is a `ParseError`: its ``key`` names the sentence shown in
chat (``parse.<what>`` in the content files, filled with ``value``), its
``str()`` is the one-line English reason the CLI prints.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, time, timedelta

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Short English names, 0 = Monday: how the CLI and the rota file write a day."""

_FULL_NAMES = (
    ("monday", "maandag", "lundi"),
    ("tuesday", "dinsdag", "mardi"),
    ("wednesday", "woensdag", "mercredi"),
    ("thursday", "donderdag", "jeudi"),
    ("friday", "vrijdag", "vendredi"),
    ("saturday", "zaterdag", "samedi"),
    ("sunday", "zondag", "dimanche"),
)
"""Each weekday in English, Dutch and French."""

_SHORT_NAMES = ("ma", "di", "wo", "do", "vr", "za", "zo")
"""The two-letter Dutch abbreviations (ma, di … zo)."""

_MIN_PREFIX = 3
"""Any start of a full name this long or longer names one day only (``wed``,
``donder``, ``vendr``); shorter ones would be ambiguous (``ma``: Monday in
Dutch, ``mar``-di in French), so only the Dutch pairs above are taken."""

_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DAY_FIRST_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ParseError(ValueError):
    """Typed input that is not what was asked for.

    ``key`` is the content key of the sentence for a person (``parse.time``
    …), to be filled with ``value``; the exception's text is the English
    reason for the CLI, one line."""

    def __init__(self, key: str, value: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.value = value


def _plain(word: str) -> str:
    """Lower case, accents and a trailing full stop dropped: ``Mér.`` → ``mer``."""
    folded = unicodedata.normalize("NFKD", word.strip().casefold().rstrip("."))
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def parse_weekday(text: str) -> int:
    """Weekday number (0 = Monday) from a name in English, Dutch or French,
    full or shortened (``mon``, ``Monday``, ``ma``, ``maandag``, ``lun``,
    ``lundi``, ``thurs`` …), or its ISO number ``1`` (Monday) … ``7``, so
    admins can type the day the way they say it."""
    word = _plain(text)
    if word in _SHORT_NAMES:
        return _SHORT_NAMES.index(word)
    if len(word) == 1 and word in "1234567":
        return int(word) - 1
    if len(word) >= _MIN_PREFIX:
        for day, names in enumerate(_FULL_NAMES):
            if any(name.startswith(word) for name in names):
                return day
    raise ParseError("parse.weekday", text,
                     f"unknown weekday '{text}' (use mon, tue, wed, thu, fri, sat or sun)")


def parse_time(text: str) -> time:
    """A time of day: ``09:30``, ``9:30`` or a whole hour ``9``.  ``24:00``
    is refused (end a shift at 23:59)."""
    m = _TIME.match(text.strip())
    if m is None:
        raise ParseError("parse.time", text, f"'{text}' is not a time (write HH:MM, e.g. 09:30)")
    hour, minute = int(m[1]), int(m[2] or 0)
    if hour > 23 or minute > 59:
        raise ParseError("parse.time", text,
                         f"'{text}' is not a time of day (00:00 to 23:59)")
    return time(hour, minute)


def parse_date(text: str) -> date:
    """A date: ISO ``2026-12-01`` (also ``2026-12-1`` and the other ISO 8601
    forms), or day first as written in Belgium: ``1/12/2026``, ``1.12.2026``,
    ``1-12-2026``."""
    value = text.strip()
    try:
        if m := _ISO_DATE.match(value):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _DAY_FIRST_DATE.match(value):
            return date(int(m[3]), int(m[2]), int(m[1]))
        return date.fromisoformat(value)
    except ValueError:
        raise ParseError("parse.date", text,
                         f"'{text}' is not a date (write YYYY-MM-DD)") from None


def parse_week(text: str) -> date:
    """The Monday of an ISO week written ``2026-W49`` (or ``2026W49``, ``2026-w9``)."""
    m = _WEEK.match(text.strip())
    if m is None:
        raise ParseError("parse.week", text,
                         f"'{text}' is not a week (write YYYY-Www, e.g. 2025-W07)")
    try:
        return date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError:
        raise ParseError("parse.week", text, f"'{text}' is not a week of that year") from None


def parse_month(text: str) -> date:
    """The first day of a month written ``2026-01``."""
    m = _MONTH.match(text.strip())
    if m is None or not 1 <= int(m[2]) <= 12:
        raise ParseError("parse.month", text, f"'{text}' is not a month (write YYYY-MM)")
    return date(int(m[1]), int(m[2]), 1)


def week_label(day: date) -> str:
    """The ISO week a day falls in, as `parse_week` reads it: ``2026-W49``."""
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def month_label(day: date) -> str:
    """The month a day falls in, as `parse_month` reads it: ``2026-01``."""
    return f"{day.year:04d}-{day.month:02d}"


def monday_of(day: date) -> date:
    """The Monday that starts the ISO week of ``day``."""
    return day - timedelta(days=day.weekday())


def hhmm(moment: time) -> str:
    """A time as `parse_time` reads it and admins write it: ``09:30``."""
    return moment.strftime("%H:%M")


OfficeHours = tuple[tuple[int, time, time], ...]
"""(weekday, start, end) for each day someone should be on duty."""

_DAY_RANGE = re.compile(r"^\s*(\S+?)\s*(?:-\s*(\S+?))?\s+(\S+?)\s*-\s*(\S+?)\s*$")


def parse_office_hours(text: str) -> OfficeHours:
    """Office hours as people write them: ``mon-fri 09:00-17:00``, several
    parts separated by commas (``mon-thu 9-17, fri 9-12``); days and times as
    `parse_weekday` and `parse_time` read them; an empty text is none at all."""
    out: list[tuple[int, time, time]] = []
    for part in (p for p in re.split(r"[,;]", text) if p.strip()):
        m = _DAY_RANGE.match(part)
        if m is None:
            raise ParseError("parse.office_hours", part.strip(),
                             f"'{part.strip()}' is not office hours (write e.g. "
                             "mon-fri 09:00-17:00)")
        first = parse_weekday(m[1])
        last = parse_weekday(m[2]) if m[2] else first
        start, end = parse_time(m[3]), parse_time(m[4])
        if end <= start:
            raise ParseError("parse.office_hours", part.strip(),
                             f"'{part.strip()}': the end must be after the start")
        days = range(first, last + 1) if first <= last else [*range(first, 7),
                                                              *range(0, last + 1)]
        for day in days:
            if any(d == day for d, _, _ in out):
                raise ParseError("parse.office_hours", part.strip(),
                                 f"'{part.strip()}': {WEEKDAY_KEYS[day]} is given twice")
            out.append((day, start, end))
    return tuple(sorted(out))
