"""Administration in chat, mirroring the ``confidant admin`` CLI: confidants,
shifts and talk hours, absences, rooms, the week's rota and the anonymous
report.

The role is decided on the server (``[[admins]]`` in the config) for every
command and button.  Every change is shown back and applied only after a
confirmation press, validated like the CLI, and written to the audit log.
Admins never see a case: the report holds counts only, hidden by the same
rule as the CLI's report (`handlers.report_privacy`), so that no small count
can be read or worked out from the total.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from domain.messages import Media
from domain.parsing import (
    ParseError,
    monday_of,
    month_label,
    parse_date,
    parse_month,
    parse_time,
    parse_week,
    parse_weekday,
    week_label,
)
from domain.vocabulary import CLOSE_THEMES, ShiftKind, Theme
from handlers.context import Ctx, MenuRows, UserError
from handlers.report_privacy import (
    BLURRED,
    CHANNELS,
    HEARD,
    Cell,
    Key,
    Sum,
    mask,
    months_between,
    protect,
)
from handlers.rota_picture import week_png
from store.models import CaseStatistic, Confidant
from store.rota import RotaError

log = logging.getLogger("confidant.admin")

SEP = "|"

T = TypeVar("T")


def _parsed(parser: Callable[[str], T], text: str) -> T:
    """What the admin typed, read as the CLI reads it; a refusal in their words."""
    try:
        return parser(text)
    except ParseError as err:
        raise UserError(err.key, value=err.value) from None


async def _reply(ctx: Ctx, text: str, rows: MenuRows, media: Media | None = None) -> None:
    """Reply with ``adm:`` buttons that remember the language they were shown in
    (an admin need not have an employee profile that would keep it)."""
    tagged = [[(label, f"adm:{ctx.lang}:{action[4:]}" if action.startswith("adm:") else action)
               for label, action in row] for row in rows]
    await ctx.reply(text, tagged, media=media)


def _actor(ctx: Ctx) -> str:
    """Who did it, for the audit log: the role and channel, never a platform id."""
    return f"admin:{ctx.inbound.channel}"


# ----------------------------------------------------------------- commands


async def command(ctx: Ctx, arg: str) -> None:
    """``/admin AREA VERB ARGS`` (quotes for names with spaces)."""
    try:
        words = shlex.split(arg)
    except ValueError as exc:
        raise UserError("adm.usage") from exc
    area = words[0].lower() if words else ""
    verb = words[1].lower() if len(words) > 1 else ""
    rest = words[2:]
    if area in ("", "menu"):
        await show_menu(ctx)
    elif area == "help":
        await ctx.reply(ctx.t("adm.usage"))
    elif area in ("confidants", "confidant"):
        await list_confidants(ctx)
    elif area in ("shift", "rota") and verb == "add":
        await ask_shift_add(ctx, rest)
    elif area in ("shift", "rota") and verb == "remove" and len(rest) == 1:
        await ask_shift_remove(ctx, rest[0])
    elif area == "rota" and verb in ("", "show"):
        await show_rota(ctx, rest[0] if rest else "")
    elif area == "rota" and verb.upper().startswith("20"):
        await show_rota(ctx, verb)
    elif area in ("absence", "absences") and verb == "add" and len(rest) == 3:
        await ask_absence_add(ctx, *rest)
    elif area in ("absence", "absences") and verb == "remove" and len(rest) == 1:
        await ask_absence_remove(ctx, rest[0])
    elif area in ("absence", "absences") and verb in ("", "list"):
        await list_absences(ctx)
    elif area in ("room", "rooms") and verb == "add" and 1 <= len(rest) <= 2:
        await ask_room_add(ctx, rest[0], rest[1] if len(rest) > 1 else "")
    elif area in ("room", "rooms") and verb == "remove" and len(rest) == 1:
        await ask_room_remove(ctx, rest[0])
    elif area in ("room", "rooms") and verb in ("", "list"):
        await list_rooms(ctx)
    elif area == "report":
        await report(ctx, *words[1:3])
    else:
        raise UserError("adm.usage")


async def show_menu(ctx: Ctx) -> None:
    t = ctx.t
    await _reply(ctx, t("adm.menu"), [
        [(t("adm.btn.confidants"), "adm:confidants"), (t("adm.btn.rota"), "adm:rota:")],
        [(t("adm.btn.absences"), "adm:absences"), (t("adm.btn.rooms"), "adm:rooms")],
        [(t("adm.btn.report"), "adm:report"), (t("adm.btn.help"), "adm:help")],
    ])


async def run_action(ctx: Ctx, action: str) -> None:
    """An ``adm:`` button the bot gave this admin; every change re-validated."""
    name, _, arg = action.partition(":")
    if name == "confidants":
        await list_confidants(ctx)
    elif name == "rota":
        await show_rota(ctx, arg)
    elif name == "absences":
        await list_absences(ctx)
    elif name == "rooms":
        await list_rooms(ctx)
    elif name == "report":
        await report(ctx)
    elif name == "help":
        await ctx.reply(ctx.t("adm.usage"))
    elif name == "ok":
        await apply(ctx, arg)
    elif name == "no":
        await ctx.reply(ctx.t("adm.not_applied"))
    else:
        raise UserError("button.stale")


# ---------------------------------------------------------------- listings


async def list_confidants(ctx: Ctx) -> None:
    confidants = await ctx.tx.confidants.all(active_only=False)
    if not confidants:
        await ctx.reply(ctx.t("adm.no_confidants"))
        return
    lines = [ctx.t("adm.confidants_title")]
    for c in confidants:
        channels = ", ".join(await ctx.tx.confidants.channels(c)) or "-"
        shifts = await ctx.tx.rota.shifts(c.id)
        state = "" if c.active else f" ({ctx.t('adm.inactive')})"
        lines.append(ctx.t("adm.confidant_line", name=c.name, languages=c.languages,
                           channels=channels, shifts=len(shifts)) + state)
    await ctx.reply("\n".join(lines))


async def list_rooms(ctx: Ctx) -> None:
    rooms = await ctx.tx.rota.rooms()
    if not rooms:
        await ctx.reply(ctx.t("adm.no_rooms"))
        return
    lines = [ctx.t("adm.rooms_title")]
    lines += [f"• {r.name}" + (f" — {r.site}" if r.site else "") for r in rooms]
    await ctx.reply("\n".join(lines))


async def list_absences(ctx: Ctx) -> None:
    today = ctx.now.astimezone(ctx.settings.tz).date()
    names = {c.id: c.name for c in await ctx.tx.confidants.all(active_only=False)}
    current = [a for a in await ctx.tx.rota.absences() if a.end_date >= today]
    if not current:
        await ctx.reply(ctx.t("adm.no_absences"))
        return
    lines = [ctx.t("adm.absences_title")]
    lines += [f"• [{a.id[:8]}] {names.get(a.confidant_id, '?')}: {a.start_date.isoformat()} → "
              f"{a.end_date.isoformat()}" for a in current]
    await ctx.reply("\n".join(lines))


async def show_rota(ctx: Ctx, week_text: str = "") -> None:
    """The week as a readable table (and a picture): shifts, talk hours,
    absences, and how many talks are booked each day (no case codes)."""
    today = ctx.now.astimezone(ctx.settings.tz).date()
    monday = _parsed(parse_week, week_text) if week_text else monday_of(today)
    label = week_label(monday)
    confidants = await ctx.tx.confidants.all()
    shifts = await ctx.tx.rota.shifts()
    absences = await ctx.tx.rota.absences()
    names = {c.id: c.name for c in confidants}
    tz = ctx.settings.tz
    lo = datetime.combine(monday, time(0), tzinfo=tz)
    talks = await ctx.tx.appointments.booked_between(lo, lo + timedelta(days=7))
    lines = [ctx.t("adm.rota_title", week=label, start=monday.isoformat(),
                   end=(monday + timedelta(days=6)).isoformat())]
    grid: list[tuple[str, int, time, time, str, bool]] = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        lines.append(f"\n{ctx.t(f'weekday.{offset}')} {day.isoformat()}")
        any_line = False
        for s in shifts:
            if s.weekday != offset or s.confidant_id not in names:
                continue
            away = any(a.confidant_id == s.confidant_id and a.start_date <= day <= a.end_date
                       for a in absences)
            mark = f" — {ctx.t('adm.absent')}" if away else ""
            lines.append(f"  {names[s.confidant_id]:<14} {s.start:%H:%M}–{s.end:%H:%M} "
                         f"{ctx.t(f'duty.kind.{s.kind}')}{mark}  [{s.id[:8]}]")
            grid.append((names[s.confidant_id], offset, s.start, s.end, s.kind, away))
            any_line = True
        count = sum(1 for a in talks if a.starts_at.astimezone(tz).date() == day)
        if count:
            lines.append("  " + ctx.t("adm.talks_booked", count=count))
        if not any_line and not count:
            lines.append("  –")
    week = timedelta(days=7)
    rows: MenuRows = [[(ctx.t("adm.prev_week"), f"adm:rota:{week_label(monday - week)}"),
                       (ctx.t("adm.next_week"), f"adm:rota:{week_label(monday + week)}")]]
    picture = week_png(grid, [ctx.t(f"weekday.{i}") for i in range(7)], label) if grid else None
    media = Media(kind="photo", data=picture, filename=f"rota-{label}.png",
                  mime_type="image/png") if picture else None
    await _reply(ctx, "\n".join(lines), rows, media=media)


async def report(ctx: Ctx, month_from: str = "", month_to: str = "") -> None:
    """Anonymous statistics: counts per month, theme, channel and whether the
    case was heard in time, hidden where they could point at a person."""
    local = ctx.now.astimezone(ctx.settings.tz).date()
    last = _parsed(parse_month, month_to) if month_to else local.replace(day=1)
    if month_from:
        first = _parsed(parse_month, month_from)
    else:  # the twelve months up to this one
        first = date(local.year - 1, local.month + 1, 1) if local.month < 12 \
            else date(local.year, 1, 1)
    first, last = sorted((first, last))
    month_from, month_to = month_label(first), month_label(last)
    months = months_between(first, last)
    table = overview(await ctx.tx.cases.statistics(month_from, month_to), months)
    open_count = await ctx.tx.appointments.open_case_count()
    marks = ctx.t("adm.report_marks")
    if table.blurred():
        marks += ctx.t("adm.report_marks_blurred")
    lines = [ctx.t("adm.report_title", start=month_from, end=month_to), marks,
             ctx.t("adm.report_total", count=table.cell(TOTAL))]
    for key, heard in zip(("adm.report_heard", "adm.report_heard_late", "adm.report_not_heard"),
                          HEARD, strict=True):
        lines.append(ctx.t(key, count=table.cell(("all", "heard", heard))))
    for title, keys in (("adm.report_by_month", table.month_keys()),
                        ("adm.report_by_theme", table.row_keys("theme", table.themes)),
                        ("adm.report_by_channel", table.row_keys("channel", table.channels))):
        lines.append("\n" + ctx.t(title))
        # A month's line is (month, "cases", "all"); the others ("all", dimension, value).
        lines += [f"  {_report_label(ctx, month, d, value)}: {table.cell((month, d, value))}"
                  for month, d, value in keys]
    lines.append("\n" + ctx.t("adm.report_open", count=mask(open_count)))
    lines.append(ctx.t("adm.report_note"))
    await ctx.tx.audit.record(_actor(ctx), "report.viewed", "", f"{month_from}..{month_to}")
    await ctx.reply("\n".join(lines))


TOTAL: Key = ("all", "cases", "all")


def _report_label(ctx: Ctx, month: str, dimension: str, value: str) -> str:
    """A line's name in the reader's language: themes by their words (as
    /close names them), a theme the bot has no words for by its key;
    months and channel names as they are."""
    if month != "all":
        return month
    if dimension == "theme" and ctx.core.tr.has(ctx.lang, f"theme.{value}"):
        return ctx.t(f"theme.{value}")
    return value


@dataclass
class Overview:
    """The chat report as a table for `protect`: the conversations in all,
    split by month, by theme, by channel and by heard in time, each split
    adding up to the total.  Every theme, channel and month has its line even
    at zero: a missing line would say "none", and subtracting the shown lines
    from the total would give back a hidden one."""

    months: list[str]
    themes: list[str]
    channels: list[str]
    counts: dict[Key, int] = field(default_factory=dict)
    _hidden: dict[Key, str] | None = field(default=None, init=False, repr=False)

    def cell(self, key: Key) -> Cell:
        """One count as shown: the number, or the mark hiding it."""
        if self._hidden is None:
            self._hidden = protect(self)
        return self._hidden.get(key, self.counts.get(key, 0))

    def blurred(self) -> bool:
        """Whether some count is hidden as "any number", so the legend says so."""
        return any(self.cell(k) == BLURRED for k in self.keys())

    def month_keys(self) -> list[Key]:
        return [(m, "cases", "all") for m in self.months]

    @staticmethod
    def row_keys(dimension: str, values: Iterable[str]) -> list[Key]:
        return [("all", dimension, v) for v in values]

    def keys(self) -> list[Key]:
        """Every printed count, in the order printed."""
        return [TOTAL, *self.row_keys("heard", HEARD), *self.month_keys(),
                *self.row_keys("theme", self.themes), *self.row_keys("channel", self.channels)]

    def sums(self) -> list[Sum]:
        """What the reader knows adds up: each split sums to the total."""
        return [(TOTAL, self.month_keys()), (TOTAL, self.row_keys("theme", self.themes)),
                (TOTAL, self.row_keys("channel", self.channels)),
                (TOTAL, self.row_keys("heard", HEARD))]


def overview(stats: Iterable[CaseStatistic], months: list[str]) -> Overview:
    """Count the store's anonymous counters into the chat report's table,
    with the same themes and channels as the CLI's report."""
    rows = [s for s in stats if s.month in months]
    themes: list[str] = [*CLOSE_THEMES, Theme.WITHDRAWN]
    themes += sorted({s.theme for s in rows} - set(themes))
    channels = [*CHANNELS, *sorted({s.channel for s in rows} - set(CHANNELS))]
    table = Overview(months=months, themes=themes, channels=channels)
    for s in rows:
        heard = ("not_heard" if s.heard_in_time is None
                 else "within_10_days" if s.heard_in_time else "late")
        for key in (TOTAL, (s.month, "cases", "all"), ("all", "theme", s.theme),
                    ("all", "channel", s.channel), ("all", "heard", heard)):
            table.counts[key] = table.counts.get(key, 0) + 1
    return table


# ------------------------------------------------- changes: ask, then apply


async def _confidant(ctx: Ctx, name: str) -> Confidant:
    c = await ctx.tx.confidants.by_name(name)
    if c is None:
        raise UserError("adm.unknown_confidant", name=name)
    return c


async def _ask(ctx: Ctx, question: str, payload: list[str]) -> None:
    action = "adm:ok:" + SEP.join(payload)
    if len(action) > 120 or any(SEP in p for p in payload[1:]):
        raise UserError("adm.too_long")
    await _reply(ctx, question, [[(ctx.t("adm.confirm_yes"), action),
                                (ctx.t("adm.confirm_no"), "adm:no")]])


async def ask_shift_add(ctx: Ctx, args: list[str]) -> None:
    if len(args) not in (4, 5):
        raise UserError("adm.usage")
    name, day, start_s, end_s = args[:4]
    kind = args[4].lower() if len(args) == 5 else ShiftKind.DUTY
    c = await _confidant(ctx, name)
    weekday = _parsed(parse_weekday, day)
    start, end = _parsed(parse_time, start_s), _parsed(parse_time, end_s)
    reason = _shift_problem(weekday, start, end, kind)
    if reason:
        raise UserError(f"adm.rota_error.{reason}")
    await _ask(ctx, ctx.t("adm.ask_shift_add", name=c.name, day=ctx.t(f"weekday.{weekday}"),
                          start=f"{start:%H:%M}", end=f"{end:%H:%M}",
                          kind=ctx.t(f"duty.kind.{kind}")),
               ["shift+", c.id, str(weekday), f"{start:%H%M}", f"{end:%H%M}", kind])


def _shift_problem(weekday: int, start: time, end: time, kind: str) -> str | None:
    """The CLI's checks that need no database, so the question is never absurd."""
    if not 0 <= weekday <= 6:
        return "weekday"
    if end <= start:
        return "end-before-start"
    if kind not in tuple(ShiftKind):
        return "kind"
    return None


async def ask_shift_remove(ctx: Ctx, shift_id: str) -> None:
    s = await ctx.tx.rota.shift(shift_id)
    if s is None:
        raise UserError("adm.unknown_id", value=shift_id)
    c = await ctx.tx.confidants.by_id(s.confidant_id)
    await _ask(ctx, ctx.t("adm.ask_shift_remove", name=c.name if c else "?",
                          day=ctx.t(f"weekday.{s.weekday}"), start=f"{s.start:%H:%M}",
                          end=f"{s.end:%H:%M}", kind=ctx.t(f"duty.kind.{s.kind}")),
               ["shift-", s.id])


async def ask_absence_add(ctx: Ctx, name: str, start_s: str, end_s: str) -> None:
    c = await _confidant(ctx, name)
    start, end = _parsed(parse_date, start_s), _parsed(parse_date, end_s)
    if end < start:
        raise UserError("adm.rota_error.end-before-start")
    await _ask(ctx, ctx.t("adm.ask_absence_add", name=c.name, start=start.isoformat(),
                          end=end.isoformat()),
               ["absence+", c.id, start.isoformat(), end.isoformat()])


async def ask_absence_remove(ctx: Ctx, absence_id: str) -> None:
    a = await ctx.tx.rota.absence(absence_id)
    if a is None:
        raise UserError("adm.unknown_id", value=absence_id)
    c = await ctx.tx.confidants.by_id(a.confidant_id)
    await _ask(ctx, ctx.t("adm.ask_absence_remove", name=c.name if c else "?",
                          start=a.start_date.isoformat(), end=a.end_date.isoformat()),
               ["absence-", a.id])


async def ask_room_add(ctx: Ctx, name: str, site: str) -> None:
    name, site = name.strip(), site.strip()
    if not name or len(name) > 40 or len(site) > 40:
        raise UserError("adm.too_long")
    if await ctx.tx.rota.room_by_name(name) is not None:
        raise UserError("adm.room_exists", name=name)
    await _ask(ctx, ctx.t("adm.ask_room_add", name=name, site=site or "-"),
               ["room+", name, site])


async def ask_room_remove(ctx: Ctx, name: str) -> None:
    room = await ctx.tx.rota.room_by_name(name)
    if room is None or not room.active:
        raise UserError("adm.unknown_room", name=name)
    await _ask(ctx, ctx.t("adm.ask_room_remove", name=room.name), ["room-", room.id])


async def apply(ctx: Ctx, payload: str) -> None:
    """The confirmed change, validated again (the rota may have changed since)."""
    kind, *args = payload.split(SEP)
    actor = _actor(ctx)
    try:
        if kind == "shift+" and len(args) == 5:
            c = await _by_id(ctx, args[0])
            start = time(int(args[2][:2]), int(args[2][2:]))
            end = time(int(args[3][:2]), int(args[3][2:]))
            s = await ctx.tx.rota.add_shift(c, int(args[1]), start, end, args[4])
            await ctx.tx.audit.record(actor, "rota.shift_added", c.name,
                                      f"{s.id[:8]} {s.weekday} {start:%H:%M}-{end:%H:%M} "
                                      f"{s.kind}")
        elif kind == "shift-" and len(args) == 1:
            found = await ctx.tx.rota.shift(args[0])
            if found is None:
                raise UserError("adm.unknown_id", value=args[0][:8])
            c = await _by_id(ctx, found.confidant_id)
            await ctx.tx.rota.remove_shift(found)
            await ctx.tx.audit.record(actor, "rota.shift_removed", c.name,
                                      f"{found.id[:8]} {found.weekday} "
                                      f"{found.start:%H:%M}-{found.end:%H:%M} {found.kind}")
        elif kind == "absence+" and len(args) == 3:
            c = await _by_id(ctx, args[0])
            a = await ctx.tx.rota.add_absence(c, date.fromisoformat(args[1]),
                                              date.fromisoformat(args[2]))
            await ctx.tx.audit.record(actor, "absence.added", c.name,
                                      f"{a.id[:8]} {args[1]}..{args[2]}")
        elif kind == "absence-" and len(args) == 1:
            absence = await ctx.tx.rota.absence(args[0])
            if absence is None:
                raise UserError("adm.unknown_id", value=args[0][:8])
            c = await _by_id(ctx, absence.confidant_id)
            await ctx.tx.rota.remove_absence(absence)
            await ctx.tx.audit.record(actor, "absence.removed", c.name,
                                      f"{absence.id[:8]} {absence.start_date.isoformat()}.."
                                      f"{absence.end_date.isoformat()}")
        elif kind == "room+" and len(args) == 2:
            if await ctx.tx.rota.room_by_name(args[0]) is not None:
                raise UserError("adm.room_exists", name=args[0])
            await ctx.tx.rota.add_room(args[0], site=args[1])
            await ctx.tx.audit.record(actor, "room.added", args[0], args[1])
        elif kind == "room-" and len(args) == 1:
            room = next((r for r in await ctx.tx.rota.rooms() if r.id == args[0]), None)
            if room is None:
                raise UserError("adm.unknown_room", name="?")
            busy = await ctx.tx.appointments.future_in_room(room.id, ctx.now)
            if busy:
                raise UserError("adm.room_busy", name=room.name, count=busy)
            room.active = False
            await ctx.tx.audit.record(actor, "room.removed", room.name)
        else:
            raise UserError("button.stale")
    except RotaError as err:
        raise UserError(f"adm.rota_error.{err}") from err
    log.info("admin change applied kind=%s", kind)
    await ctx.reply(ctx.t("adm.applied"))


async def _by_id(ctx: Ctx, confidant_id: str) -> Confidant:
    c = await ctx.tx.confidants.by_id(confidant_id)
    if c is None:
        raise UserError("adm.unknown_confidant", name="?")
    return c
