"""The rota as a TOML file.

``confidant admin rota export`` and the web admin console write, and
``confidant admin rota import`` and the console read, this shape (every table optional)::

    # Weekly shifts and absences of registered confidants, and discreet rooms.
    [[confidant]]
    name = "An Peeters"            # must already be registered (admin confidant add)

    [[confidant.shift]]
    day = "mon"                    # mon..sun, Dutch/French names (ma, maandag, lundi…) or 1..7
    start = "09:00"                # local time of the organisation, HH:MM (or a whole hour: 9)
    end = "12:30"                  # after start
    kind = "duty"                  # "duty" (answers chats, default) or "talks"

    [[confidant.absence]]
    from = 2025-07-01              # a TOML date or "YYYY-MM-DD", inclusive
    to = 2025-07-14

    [[room]]
    name = "Room 2.14"
    site = "Head office"           # optional
    notes = "Second floor, end of the corridor"   # optional

Import is declarative: for each confidant named in the file, their shifts and
absences become exactly those in the file; confidants not named are left as
they are.  Rooms in the file are added, or updated by name; other rooms are
left as they are.  The whole file is validated before anything is written,
and everything is applied in one transaction.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from domain.parsing import (
    WEEKDAY_KEYS,
    ParseError,
    hhmm,
    parse_date,
    parse_time,
    parse_weekday,
)
from domain.vocabulary import ShiftKind
from handlers.administration.problems import AdminError
from handlers.administration.validation import KINDS, ShiftSpec, check_absence, check_shift
from store.admin import AdminTx
from store.models import Confidant


class RotaFileError(ValueError):
    """A rota file that cannot be used; the message is one line."""


def file_date(value: str | date) -> date:
    """A date as `parse_date` reads it; TOML dates pass through, a TOML date
    and time is refused."""
    if isinstance(value, datetime):
        raise RotaFileError(f"'{value}' is a date and time; write only the date (YYYY-MM-DD)")
    if isinstance(value, date):
        return value
    return parse_date(value)


@dataclass
class ConfidantSpec:
    """A confidant's shifts and absences from a file."""

    name: str
    shifts: list[ShiftSpec] = field(default_factory=list)
    absences: list[tuple[date, date]] = field(default_factory=list)


@dataclass
class RoomSpec:
    """One room from a file."""

    name: str
    site: str = ""
    notes: str = ""


@dataclass
class RotaSpec:
    """A whole validated rota file."""

    confidants: list[ConfidantSpec] = field(default_factory=list)
    rooms: list[RoomSpec] = field(default_factory=list)


class _Problems:
    """Collects every problem of a file so the admin fixes them in one go."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, key: str, what: str) -> None:
        self.lines.append(f"{key}: {what}")


def _table_keys(table: Any, key: str, allowed: set[str], required: set[str],
                problems: _Problems) -> bool:
    """Unknown and missing keys of one table; False when it is not a table at all."""
    if not isinstance(table, dict):
        problems.add(key, "expected a table")
        return False
    for name in table:
        if name not in allowed:
            problems.add(f"{key}.{name}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
    for name in sorted(required - set(table)):
        problems.add(f"{key}.{name}", "missing")
    return True


def _text(table: dict[str, Any], name: str, key: str, problems: _Problems,
          default: str | None = None) -> str | None:
    """A string value, or a problem when it is something else."""
    value = table.get(name, default)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(f"{key}.{name}", "expected a string (in quotes)")
        return None
    return value


def _list(table: dict[str, Any], name: str, key: str, problems: _Problems) -> list[Any]:
    """An array of tables (``[[x]]``), empty when absent."""
    value = table.get(name, [])
    if not isinstance(value, list):
        problems.add(f"{key}.{name}", f"expected [[{key}.{name}]] tables")
        return []
    return value


def parse_rota(text: str) -> RotaSpec:
    """Validate a whole rota file; raises `RotaFileError` naming the first
    problem (and how many more) so nothing half-valid is ever applied."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RotaFileError(f"not valid TOML: {exc}") from None
    problems = _Problems()
    spec = RotaSpec()
    _table_keys(raw, "(top level)", {"confidant", "room"}, set(), problems)
    names: set[str] = set()
    for i, entry in enumerate(_list(raw, "confidant", "", problems)):
        key = f"confidant[{i}]"
        if not _table_keys(entry, key, {"name", "shift", "absence"}, {"name"}, problems):
            continue
        name = _text(entry, "name", key, problems)
        if name is not None:
            _named_once(name, name.casefold(), key, names, problems)
        person = ConfidantSpec(name=(name or "").strip())
        for j, raw_shift in enumerate(_list(entry, "shift", key, problems)):
            shift = _parse_shift(raw_shift, f"{key}.shift[{j}]", problems)
            if shift is None:
                continue
            try:
                check_shift(shift, [(str(k), s) for k, s in enumerate(person.shifts)])
            except AdminError as err:  # the only check left once the shift parsed
                problems.add(f"{key}.shift[{j}]", f"overlaps {key}.shift[{err.values['id']}]")
            person.shifts.append(shift)
        for j, raw_absence in enumerate(_list(entry, "absence", key, problems)):
            absence = _parse_absence(raw_absence, f"{key}.absence[{j}]", problems)
            if absence is not None:
                person.absences.append(absence)
        spec.confidants.append(person)
    rooms: set[str] = set()
    for i, entry in enumerate(_list(raw, "room", "", problems)):
        key = f"room[{i}]"
        if not _table_keys(entry, key, {"name", "site", "notes"}, {"name"}, problems):
            continue
        name = _text(entry, "name", key, problems)
        site = _text(entry, "site", key, problems, "")
        notes = _text(entry, "notes", key, problems, "")
        if name is None:
            continue
        _named_once(name, name.strip(), key, rooms, problems)
        spec.rooms.append(RoomSpec(name.strip(), (site or "").strip(), notes or ""))
    if problems.lines:
        more = len(problems.lines) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise RotaFileError(problems.lines[0] + suffix)
    return spec


def _named_once(name: str, same_as: str, key: str, seen: set[str],
                problems: _Problems) -> None:
    """A name must be given, and only once in the file; ``same_as`` is the
    name as two entries count the same (confidants regardless of case)."""
    if not name.strip():
        problems.add(f"{key}.name", "must not be empty")
    elif same_as in seen:
        problems.add(f"{key}.name", f"'{name}' appears twice")
    seen.add(same_as)


def _parse_shift(raw: Any, key: str, problems: _Problems) -> ShiftSpec | None:
    """One ``[[confidant.shift]]`` table."""
    if not _table_keys(raw, key, {"day", "start", "end", "kind"}, {"day", "start", "end"},
                       problems):
        return None
    before = len(problems.lines)
    day = _text(raw, "day", key, problems)
    start = _text(raw, "start", key, problems)
    end = _text(raw, "end", key, problems)
    kind = _text(raw, "kind", key, problems, ShiftKind.DUTY)
    values: dict[str, Any] = {}
    for name, value, parser in (("day", day, parse_weekday), ("start", start, parse_time),
                                ("end", end, parse_time)):
        if value is None:
            continue
        try:
            values[name] = parser(value)
        except ParseError as exc:
            problems.add(f"{key}.{name}", str(exc))
    if kind is not None and kind not in KINDS:
        problems.add(f"{key}.kind", f"'{kind}' is not a shift kind (use duty or talks)")
    if len(problems.lines) > before or len(values) < 3:
        return None
    shift = ShiftSpec(values["day"], values["start"], values["end"], kind or ShiftKind.DUTY)
    try:
        check_shift(shift)
    except AdminError:  # day and kind are known here: the end is before the start
        problems.add(f"{key}.end", f"{hhmm(shift.end)} is not after start {hhmm(shift.start)}")
        return None
    return shift


def _parse_absence(raw: Any, key: str, problems: _Problems) -> tuple[date, date] | None:
    """One ``[[confidant.absence]]`` table."""
    if not _table_keys(raw, key, {"from", "to"}, {"from", "to"}, problems):
        return None
    parsed: dict[str, date] = {}
    for name in ("from", "to"):
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, str | date):
            problems.add(f"{key}.{name}", "expected a date (YYYY-MM-DD)")
            continue
        try:
            parsed[name] = file_date(value)
        except (ParseError, RotaFileError) as exc:
            problems.add(f"{key}.{name}", str(exc))
    if len(parsed) < 2:
        return None
    try:
        check_absence(parsed["from"], parsed["to"])
    except AdminError:
        problems.add(f"{key}.to", f"{parsed['to']} is before from {parsed['from']}")
        return None
    return parsed["from"], parsed["to"]


async def resolve_confidants(tx: AdminTx, spec: RotaSpec) -> dict[str, Confidant]:
    """Map every confidant named in the file to a registered, active one;
    refuses the file if any is unknown (import never registers people)."""
    found: dict[str, Confidant] = {}
    for i, person in enumerate(spec.confidants):
        c = await tx.confidant_by_name(person.name)
        if c is None or not c.active:
            raise RotaFileError(
                f"confidant[{i}].name: no registered confidant '{person.name}' "
                "(register with: confidant admin confidant add)"
            )
        found[person.name] = c
    return found


async def apply_rota(tx: AdminTx, spec: RotaSpec) -> dict[str, int]:
    """Write a validated file inside the caller's transaction; returns counts
    for the summary line."""
    people = await resolve_confidants(tx, spec)
    counts = {"confidants": 0, "shifts": 0, "absences": 0, "rooms": 0}
    for person in spec.confidants:
        c = people[person.name]
        for old in await tx.shifts(c.id):
            await tx.remove_shift(old)
        for old_absence in await tx.absences(c.id):
            await tx.remove_absence(old_absence)
        await tx.flush()
        for s in person.shifts:
            await tx.add_shift(c, s.weekday, s.start, s.end, s.kind)
            counts["shifts"] += 1
        for start, end in person.absences:
            await tx.add_absence(c, start, end)
            counts["absences"] += 1
        counts["confidants"] += 1
    for r in spec.rooms:
        room = await tx.room_by_name(r.name)
        if room is None:
            await tx.add_room(r.name, r.site, r.notes)
        else:
            room.site, room.notes, room.active = r.site, r.notes, True
        counts["rooms"] += 1
    return counts


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset TOML accepts)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


async def export_rota(tx: AdminTx) -> str:
    """The current rota in the import shape, so export → edit → import works."""
    lines = [
        "# Confidant rota: weekly shifts and absences of registered confidants, and rooms.",
        "# Edit and load with: confidant admin rota import FILE.toml",
        "# For each confidant listed, import replaces their shifts and absences.",
        "",
    ]
    for c in await tx.confidants():
        lines += ["[[confidant]]", f"name = {_toml_string(c.name)}", ""]
        for s in await tx.shifts(c.id):
            lines += [
                "[[confidant.shift]]",
                f'day = "{WEEKDAY_KEYS[s.weekday]}"',
                f'start = "{hhmm(s.start)}"',
                f'end = "{hhmm(s.end)}"',
                f'kind = "{s.kind}"',
                "",
            ]
        for a in await tx.absences(c.id):
            lines += [
                "[[confidant.absence]]",
                f"from = {a.start_date.isoformat()}",
                f"to = {a.end_date.isoformat()}",
                "",
            ]
    for room in await tx.rooms():
        lines += ["[[room]]", f"name = {_toml_string(room.name)}"]
        if room.site:
            lines.append(f"site = {_toml_string(room.site)}")
        if room.notes:
            lines.append(f"notes = {_toml_string(room.notes)}")
        lines.append("")
    return "\n".join(lines)
