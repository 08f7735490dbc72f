"""Administration in chat, on the admin service the CLI and the web admin
console use too (`handlers.administration`): confidants, shifts and talk
hours, absences, rooms, the week's rota and the anonymous report.

The role is decided on the server (``[[admins]]`` in the config) for every
command and button.  Every change is checked by the service (``dry_run``),
shown back, and applied only after a confirmation press (checked again, the
rota may have changed since); the service writes the audit event.  Admins
never see a case: the service reaches the store through `store.admin.AdminTx`,
and the report holds counts only, hidden as the CLI's report hides them.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Awaitable, Callable
from datetime import date, time
from typing import TypeVar

from domain.messages import Media
from domain.vocabulary import ShiftKind
from handlers.administration.problems import AdminError, Problem, localised
from handlers.administration.report import HEARD, TOTAL
from handlers.administration.service import AdminService, AdminSettings
from handlers.context import Ctx, MenuRows, UserError
from handlers.report_privacy import mask
from handlers.rota_picture import week_png
from store.admin import AdminTx

log = logging.getLogger("confidant.admin")

SEP = "|"

T = TypeVar("T")


def service(ctx: Ctx) -> AdminService:
    """The admin service over this event's transaction, acting for this admin."""
    s = ctx.settings
    return AdminService(AdminTx(ctx.tx), _actor(ctx), ctx.now,
                        AdminSettings(timezone=s.timezone, office_hours=s.office_hours,
                                      default_language=s.default_language))


def _refusal(ctx: Ctx, problem: Problem) -> UserError:
    return UserError(problem.key, **localised(problem, ctx.t))


async def _run(ctx: Ctx, step: Callable[[AdminService], Awaitable[T]]) -> T:
    """One service call; a refusal becomes the admin's own words."""
    try:
        return await step(service(ctx))
    except AdminError as err:
        raise _refusal(ctx, err.problem) from None


def _warnings(ctx: Ctx, problems: tuple[Problem, ...] | list[Problem]) -> str:
    """Warnings (office hours left uncovered) as lines under a reply."""
    return "".join("\n⚠️ " + ctx.core.tr.t(ctx.lang, p.key, **localised(p, ctx.t))
                   for p in problems)


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
    confidants = await _run(ctx, lambda s: s.confidants(include_inactive=True))
    if not confidants:
        await ctx.reply(ctx.t("adm.no_confidants"))
        return
    lines = [ctx.t("adm.confidants_title")]
    for c in confidants:
        state = "" if c.active else f" ({ctx.t('adm.inactive')})"
        lines.append(ctx.t("adm.confidant_line", name=c.name, languages=",".join(c.languages),
                           channels=", ".join(c.channels) or "-", shifts=c.shifts) + state)
    await ctx.reply("\n".join(lines))


async def list_rooms(ctx: Ctx) -> None:
    rooms = await _run(ctx, lambda s: s.rooms())
    if not rooms:
        await ctx.reply(ctx.t("adm.no_rooms"))
        return
    lines = [ctx.t("adm.rooms_title")]
    lines += [f"• {r.name}" + (f" — {r.site}" if r.site else "") for r in rooms]
    await ctx.reply("\n".join(lines))


async def list_absences(ctx: Ctx) -> None:
    current = await _run(ctx, lambda s: s.absences())
    if not current:
        await ctx.reply(ctx.t("adm.no_absences"))
        return
    lines = [ctx.t("adm.absences_title")]
    lines += [f"• [{a.id[:8]}] {a.confidant}: {a.start.isoformat()} → {a.end.isoformat()}"
              for a in current]
    await ctx.reply("\n".join(lines))


async def show_rota(ctx: Ctx, week_text: str = "") -> None:
    """The week as a readable table (and a picture): shifts, talk hours,
    absences, how many talks are booked each day (no case codes), and the
    office hours nobody covers."""
    week = await _run(ctx, lambda s: s.week(week_text or None))
    lines = [ctx.t("adm.rota_title", week=week.label, start=week.days[0].isoformat(),
                   end=week.days[-1].isoformat())]
    grid: list[tuple[str, int, time, time, str, bool]] = []
    for offset, day in enumerate(week.days):
        lines.append(f"\n{ctx.t(f'weekday.{offset}')} {day.isoformat()}")
        any_line = False
        for ws in week.shifts:
            s = ws.shift
            if s.weekday != offset:
                continue
            mark = f" — {ctx.t('adm.absent')}" if ws.absent else ""
            lines.append(f"  {s.confidant:<14} {s.start:%H:%M}–{s.end:%H:%M} "
                         f"{ctx.t(f'duty.kind.{s.kind}')}{mark}  [{s.id[:8]}]")
            grid.append((s.confidant, offset, s.start, s.end, s.kind, ws.absent))
            any_line = True
        count = week.talks_booked.get(day, 0)
        if count:
            lines.append("  " + ctx.t("adm.talks_booked", count=count))
        if not any_line and not count:
            lines.append("  –")
    text = "\n".join(lines) + _warnings(ctx, week.warnings)
    rows: MenuRows = [[(ctx.t("adm.prev_week"), f"adm:rota:{week.previous}"),
                       (ctx.t("adm.next_week"), f"adm:rota:{week.next}")]]
    picture = week_png(grid, [ctx.t(f"weekday.{i}") for i in range(7)], week.label) \
        if grid else None
    media = Media(kind="photo", data=picture, filename=f"rota-{week.label}.png",
                  mime_type="image/png") if picture else None
    await _reply(ctx, text, rows, media=media)


async def report(ctx: Ctx, month_from: str = "", month_to: str = "") -> None:
    """Anonymous statistics: counts per month, theme, channel and whether the
    case was heard in time, hidden where they could point at a person."""
    table, open_count, first, last = await _run(ctx, lambda s: s.overview(month_from, month_to))
    marks = ctx.t("adm.report_marks")
    if table.blurred():
        marks += ctx.t("adm.report_marks_blurred")
    lines = [ctx.t("adm.report_title", start=first, end=last), marks,
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
    await ctx.reply("\n".join(lines))


def _report_label(ctx: Ctx, month: str, dimension: str, value: str) -> str:
    """A line's name in the reader's language: themes by their words (as
    /close names them), a theme the bot has no words for by its key;
    months and channel names as they are."""
    if month != "all":
        return month
    if dimension == "theme" and ctx.core.tr.has(ctx.lang, f"theme.{value}"):
        return ctx.t(f"theme.{value}")
    return value


# ------------------------------------------------- changes: ask, then apply


async def _ask(ctx: Ctx, question: str, payload: list[str]) -> None:
    action = "adm:ok:" + SEP.join(payload)
    if len(action) > 120 or any(SEP in p for p in payload[1:]):
        raise UserError("adm.too_long")
    await _reply(ctx, question, [[(ctx.t("adm.confirm_yes"), action),
                                (ctx.t("adm.confirm_no"), "adm:no")]])


def _shift_words(ctx: Ctx, weekday: int, start: time, end: time, kind: str) -> dict[str, str]:
    return {"day": ctx.t(f"weekday.{weekday}"), "start": f"{start:%H:%M}",
            "end": f"{end:%H:%M}", "kind": ctx.t(f"duty.kind.{kind}")}


async def ask_shift_add(ctx: Ctx, args: list[str]) -> None:
    if len(args) not in (4, 5):
        raise UserError("adm.usage")
    name, day, start, end = args[:4]
    kind = args[4] if len(args) == 5 else ShiftKind.DUTY.value
    plan = await _run(ctx, lambda s: s.add_shift(name, day, start, end, kind, dry_run=True))
    p = plan.shift
    await _ask(ctx, ctx.t("adm.ask_shift_add", name=p.confidant,
                          **_shift_words(ctx, p.weekday, p.start, p.end, p.kind))
               + _warnings(ctx, plan.warnings),
               ["shift+", p.confidant_id, str(p.weekday), f"{p.start:%H%M}", f"{p.end:%H%M}",
                p.kind])


async def ask_shift_remove(ctx: Ctx, shift_id: str) -> None:
    plan = await _run(ctx, lambda s: s.remove_shift(shift_id, dry_run=True))
    p = plan.shift
    await _ask(ctx, ctx.t("adm.ask_shift_remove", name=p.confidant,
                          **_shift_words(ctx, p.weekday, p.start, p.end, p.kind))
               + _warnings(ctx, plan.warnings), ["shift-", p.id])


async def ask_absence_add(ctx: Ctx, name: str, start: str, end: str) -> None:
    plan = await _run(ctx, lambda s: s.add_absence(name, start, end, dry_run=True))
    await _ask(ctx, ctx.t("adm.ask_absence_add", name=plan.confidant,
                          start=plan.start.isoformat(), end=plan.end.isoformat()),
               ["absence+", plan.confidant_id, plan.start.isoformat(), plan.end.isoformat()])


async def ask_absence_remove(ctx: Ctx, absence_id: str) -> None:
    plan = await _run(ctx, lambda s: s.remove_absence(absence_id, dry_run=True))
    await _ask(ctx, ctx.t("adm.ask_absence_remove", name=plan.confidant,
                          start=plan.start.isoformat(), end=plan.end.isoformat()),
               ["absence-", plan.id])


async def ask_room_add(ctx: Ctx, name: str, site: str) -> None:
    if len(name.strip()) > 40 or len(site.strip()) > 40:
        raise UserError("adm.too_long")
    plan = await _run(ctx, lambda s: s.add_room(name, site, dry_run=True))
    await _ask(ctx, ctx.t("adm.ask_room_add", name=plan.name, site=plan.site or "-"),
               ["room+", plan.name, plan.site])


async def ask_room_remove(ctx: Ctx, name: str) -> None:
    plan = await _run(ctx, lambda s: s.remove_room(name, dry_run=True))
    await _ask(ctx, ctx.t("adm.ask_room_remove", name=plan.name), ["room-", plan.id])


def _hhmm(text: str) -> str:
    """``0930`` (as a button carries it) → ``09:30``."""
    return f"{text[:2]}:{text[2:]}"


async def apply(ctx: Ctx, payload: str) -> None:
    """The confirmed change, checked again by the service (the rota may have
    changed since the question)."""
    kind, *args = payload.split(SEP)
    warnings: tuple[Problem, ...] = ()
    if kind == "shift+" and len(args) == 5 and args[1].isdigit():
        change = await _run(ctx, lambda s: s.add_shift(args[0], int(args[1]), _hhmm(args[2]),
                                                       _hhmm(args[3]), args[4]))
        warnings = change.warnings
    elif kind == "shift-" and len(args) == 1:
        warnings = (await _run(ctx, lambda s: s.remove_shift(args[0]))).warnings
    elif kind == "absence+" and len(args) == 3:
        await _run(ctx, lambda s: s.add_absence(args[0], date.fromisoformat(args[1]),
                                                date.fromisoformat(args[2])))
    elif kind == "absence-" and len(args) == 1:
        await _run(ctx, lambda s: s.remove_absence(args[0]))
    elif kind == "room+" and len(args) == 2:
        await _run(ctx, lambda s: s.add_room(args[0], args[1]))
    elif kind == "room-" and len(args) == 1:
        await _run(ctx, lambda s: s.remove_room(args[0]))
    else:
        raise UserError("button.stale")
    log.info("admin change applied kind=%s", kind)
    await ctx.reply(ctx.t("adm.applied") + _warnings(ctx, warnings))


