"""Every check of an admin's input, written once for the chat, the CLI, the
rota file and the web admin console.

The shift check is the one place that says what a sensible shift is: the
end after the start, a known kind, and no overlap with another shift of the
same confidant and kind on that day (a duty shift and talk hours may
coincide: a confidant can answer chats between talks).  The office-hours
check warns, without refusing, when no one would be on duty during part of
the organisation's office hours (``[rota] office_hours``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, time

from domain.parsing import WEEKDAY_KEYS, OfficeHours, hhmm, parse_office_hours
from domain.vocabulary import SUPPORTED_LANGUAGES, ShiftKind
from handlers.administration.problems import AdminError, Problem

KINDS: tuple[str, ...] = tuple(ShiftKind)
DEFAULT_OFFICE_HOURS: OfficeHours = parse_office_hours("mon-fri 09:00-17:00")
"""``[rota] office_hours`` when the config says nothing."""
NAME_MAX = 80
_MXID = re.compile(r"^@[^:\s]+:[^\s]+$")
_TELEGRAM_ID = re.compile(r"^\d{1,20}$")


@dataclass(frozen=True)
class ShiftSpec:
    """A weekly shift as asked for, before or after it is stored."""

    weekday: int
    start: time
    end: time
    kind: str = ShiftKind.DUTY.value

    def label(self) -> str:
        """``mon 09:00-12:00 duty``: how the CLI and the audit trail write it."""
        return f"{WEEKDAY_KEYS[self.weekday]} {hhmm(self.start)}-{hhmm(self.end)} {self.kind}"


def overlaps(a: ShiftSpec, b: ShiftSpec) -> bool:
    """Two shifts of one confidant collide on the same day and kind."""
    return (a.weekday == b.weekday and a.kind == b.kind
            and a.start < b.end and b.start < a.end)


def check_shift(spec: ShiftSpec, others: Iterable[tuple[str, ShiftSpec]] = (),
                name: str = "") -> None:
    """Refuse a shift that makes no sense or collides with one of ``others``
    (id, shift) of the same confidant ``name``."""
    if not 0 <= spec.weekday <= 6:
        raise AdminError("adm.rota_error.weekday", "unknown weekday", "day")
    if spec.kind not in KINDS:
        raise AdminError("adm.rota_error.kind", f"'{spec.kind}' is not a shift kind "
                         "(use duty or talks)", "kind")
    if spec.end <= spec.start:
        raise AdminError("adm.rota_error.end-before-start",
                         f"--end {hhmm(spec.end)} is not after --start {hhmm(spec.start)}",
                         "end")
    for other_id, other in others:
        if overlaps(spec, other):
            raise AdminError(
                "adm.rota_error.overlap",
                f"overlaps {name}'s {other.kind} shift {WEEKDAY_KEYS[other.weekday]} "
                f"{hhmm(other.start)}-{hhmm(other.end)} (id {other_id[:8]})",
                "start", name=name, weekday=other.weekday, start=hhmm(other.start),
                end=hhmm(other.end), kind=other.kind, id=other_id[:8])


def check_absence(start: date, end: date) -> None:
    """An absence is a range of whole days, the last one included."""
    if end < start:
        raise AdminError("adm.rota_error.end-before-start",
                         f"--to {end} is before --from {start}", "end")


@dataclass(frozen=True)
class Gap:
    """Part of the office hours of a weekday (or of one date) with nobody on duty."""

    weekday: int
    start: time
    end: time
    day: date | None = None

    def problem(self) -> Problem:
        """The warning: ``adm.gap`` for the weekly pattern, ``adm.gap_on`` for a date."""
        hours = {"weekday": self.weekday, "start": hhmm(self.start), "end": hhmm(self.end)}
        reason = f"{hhmm(self.start)}-{hhmm(self.end)}"
        if self.day is None:
            return Problem("adm.gap", "nobody on duty during office hours: "
                           f"{WEEKDAY_KEYS[self.weekday]} {reason}", hours)
        return Problem("adm.gap_on", "nobody on duty during office hours: "
                       f"{WEEKDAY_KEYS[self.weekday]} {self.day.isoformat()} {reason}",
                       {**hours, "date": self.day.isoformat()})


def gaps(office_hours: OfficeHours, duty: Iterable[tuple[int, time, time]],
         day_of: Sequence[date] | None = None) -> list[Gap]:
    """Where the office hours are not covered by the ``duty`` shifts
    (weekday, start, end), in weekday order; ``day_of`` gives each weekday
    its date when the shifts are those of one week."""
    shifts = sorted(duty)
    found: list[Gap] = []
    for weekday, open_at, close_at in office_hours:
        cursor = open_at
        for day, start, end in shifts:
            if day != weekday or end <= cursor or start >= close_at:
                continue
            if start > cursor:
                found.append(Gap(weekday, cursor, start,
                                 day_of[weekday] if day_of else None))
            cursor = max(cursor, end)
        if cursor < close_at:
            found.append(Gap(weekday, cursor, close_at, day_of[weekday] if day_of else None))
    return found


# ------------------------------------------------------------ people and rooms


def check_name(value: str, what: str = "name") -> str:
    """A display name for a confidant, a room or an admin."""
    value = value.strip()
    if not value:
        raise AdminError("adm.error.name_empty", f"--{what}: must not be empty", what)
    if len(value) > NAME_MAX:
        raise AdminError("adm.error.name_long", f"--{what}: at most {NAME_MAX} characters",
                         what, max=NAME_MAX)
    return value


def check_languages(value: str | Sequence[str]) -> list[str]:
    """``nl,fr,en`` (or a list) → the languages, each one the bot has texts for."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    langs = [part.strip().lower() for part in parts if part.strip()]
    supported = ", ".join(SUPPORTED_LANGUAGES)
    if not langs:
        raise AdminError("adm.error.languages_empty",
                         f"--languages: give at least one of {supported}", "languages",
                         supported=supported)
    for lang in langs:
        if lang not in SUPPORTED_LANGUAGES:
            raise AdminError("adm.error.language_unknown",
                             f"--languages: unknown language '{lang}' (supported: {supported})",
                             "languages", value=lang, supported=supported)
    return list(dict.fromkeys(langs))


def check_telegram(value: str) -> str:
    """A Telegram user id: the number the bot sees, not a @username."""
    value = value.strip()
    if not _TELEGRAM_ID.match(value):
        raise AdminError("adm.error.telegram_id", "--telegram: expected the numeric Telegram "
                         "user id (not a @username)", "telegram")
    return value


def check_matrix(value: str) -> str:
    """A full Matrix id."""
    value = value.strip()
    if not _MXID.match(value):
        raise AdminError("adm.error.matrix_id", '--matrix: expected a Matrix id like '
                         '"@name:server"', "matrix")
    return value
