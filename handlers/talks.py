"""What the steps on in-person talks share (`handlers.appointments`): the
free slots of a confidant, the slot menu an employee picks from, a talk's
details and its calendar file, and which case a confidant's message names.

Nothing here is a step of its own; the employee's and the confidant's steps
on talks both stand on it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain.messages import Media
from domain.vocabulary import CaseStatus, ShiftKind
from handlers.context import Ctx, MenuRows
from handlers.ics import talk_ics
from handlers.slots import Away, Busy, Slot, TalkHours, generate
from store.models import Appointment, Case, Confidant, Room

PAGE = 5
"""Slots shown per message: enough to choose, few enough to read on a phone."""
MIN_LEAD = timedelta(hours=2)
"""No talk sooner than this: the confidant needs time to see the booking."""


# ------------------------------------------------------------------ helpers


def buffer_time(ctx: Ctx) -> timedelta:
    return timedelta(minutes=ctx.settings.buffer_minutes)


async def employee_case(ctx: Ctx) -> Case | None:
    """The employee's active conversation (appointments always hang on one)."""
    if ctx.contact is None or ctx.contact.active_case_id is None:
        return None
    case = await ctx.tx.cases.by_id(ctx.contact.active_case_id)
    if case is None or case.status == CaseStatus.CLOSED or case.contact_id != ctx.contact.id:
        return None
    return case


async def confidants_for(ctx: Ctx, case: Case) -> list[Confidant]:
    """Whose talk hours count: the case's confidant, the chosen one, or everyone
    when the employee asked for the first available."""
    for cid in (case.confidant_id, case.chosen_confidant_id):
        if cid:
            c = await ctx.tx.confidants.by_id(cid)
            return [c] if c is not None and c.active else []
    return await ctx.tx.confidants.all()


def _days(ctx: Ctx) -> tuple[date, int]:
    today = ctx.now.astimezone(ctx.settings.tz).date()
    return today, max(1, ctx.settings.days_ahead)


async def free_slots(ctx: Ctx, confidants: list[Confidant], first_day: date | None = None,
                     days: int | None = None) -> list[Slot]:
    """Bookable slots of these confidants from ``first_day`` for ``days`` days."""
    today, horizon = _days(ctx)
    first_day = first_day or today
    days = horizon if days is None else days
    tz = ctx.settings.tz
    hours: list[TalkHours] = []
    away: list[Away] = []
    for c in confidants:
        hours += [TalkHours(c.id, s.weekday, s.start, s.end)
                  for s in await ctx.tx.rota.shifts(c.id, ShiftKind.TALKS)]
        away += [Away(c.id, a.start_date, a.end_date)
                 for a in await ctx.tx.rota.absences(c.id)]
    rooms = [r.id for r in await ctx.tx.rota.rooms()]
    if not hours or not rooms:
        return []
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    busy = [Busy(a.confidant_id, a.room_id, a.starts_at, a.ends_at)
            for a in await ctx.tx.appointments.booked_between(
                start - timedelta(days=1), start + timedelta(days=days + 1))]
    return generate(hours, away, busy, rooms, tz=tz, start_day=first_day, days=days,
                    slot_minutes=ctx.settings.slot_minutes,
                    buffer_minutes=ctx.settings.buffer_minutes,
                    not_before=ctx.now + MIN_LEAD)


async def _names(ctx: Ctx) -> tuple[dict[str, Confidant], dict[str, Room]]:
    confidants = {c.id: c for c in await ctx.tx.confidants.all(active_only=False)}
    rooms = {r.id: r for r in await ctx.tx.rota.rooms(active_only=False)}
    return confidants, rooms


def place(room: Room | None) -> str:
    if room is None:
        return "?"
    return f"{room.name} ({room.site})" if room.site else room.name


async def details(ctx: Ctx, appt: Appointment, lang: str) -> dict[str, str]:
    confidant = await ctx.tx.confidants.by_id(appt.confidant_id)
    room = await ctx.tx.appointments.room(appt.room_id)
    return {"when": ctx.when(appt.starts_at, lang=lang, style="long"),
            "name": confidant.name if confidant else "?",
            "room": room.name if room else "?", "place": place(room),
            "site": room.site if room and room.site else "-",
            "minutes": str(int((appt.ends_at - appt.starts_at).total_seconds() // 60))}


def ics(ctx: Ctx, appt: Appointment, case: Case, room: Room | None, lang: str,
         cancelled: bool = False) -> Media:
    return talk_ics(uid=appt.id, code=case.code, starts_at=appt.starts_at, ends_at=appt.ends_at,
                    room=room.name if room else "", site=room.site if room else "",
                    summary=ctx.t("appt.ics.summary", lang=lang),
                    description=ctx.t("appt.ics.description", lang=lang),
                    now=ctx.now, cancelled=cancelled, sequence=1 if cancelled else 0)


def case_for_confidant(case: Case, confidant: Confidant) -> Case | None:
    """Tag a message with the case only when the case is the confidant's own
    (Matrix puts tagged messages into the case room)."""
    return case if case.confidant_id == confidant.id else None


def about_for_confidant(case: Case, confidant: Confidant | None) -> list[Case]:
    """A message that names a case not tagged with it is about it (see
    `Outbound.about`), so a console history drops it with the case."""
    return [] if confidant is not None and case.confidant_id == confidant.id else [case]


# ------------------------------------------------------------- the slot menu


async def slot_menu(ctx: Ctx, case: Case, week: int, page: int, lang: str
                    ) -> tuple[str, MenuRows]:
    """Text and buttons for one page of slots in week ``week`` (0 = the next 7 days)."""
    today, horizon = _days(ctx)
    confidants = await confidants_for(ctx, case)
    first = today + timedelta(days=7 * week)
    weeks = (horizon + 6) // 7
    slots = await free_slots(ctx, confidants, first, min(7, horizon - 7 * week))
    names, rooms = await _names(ctx)
    many = len(confidants) > 1
    rows: list[list[tuple[str, str]]] = []
    for s in slots[page * PAGE:(page + 1) * PAGE]:
        label = ctx.when(s.starts_at, lang=lang)
        if many:
            label += f" · {names[s.confidant_id].name}"
        label += f" · {rooms[s.room_id].name}"
        rows.append([(label, f"appt:pick:{s.key}")])
    nav: list[tuple[str, str]] = []
    if len(slots) > (page + 1) * PAGE:
        nav.append((ctx.t("appt.more", lang=lang), f"appt:more:{week}:{page + 1}"))
    if week + 1 < weeks:
        nav.append((ctx.t("appt.next_week", lang=lang), f"appt:more:{week + 1}:0"))
    if nav:
        rows.append(nav)
    rows.append([(ctx.t("appt.none_suits", lang=lang), "appt:none")])
    end = first + timedelta(days=min(7, horizon - 7 * week) - 1)
    span = {"start": ctx.core.tr.day(lang, datetime.combine(first, datetime.min.time(),
                                                             tzinfo=ctx.settings.tz)),
            "end": ctx.core.tr.day(lang, datetime.combine(end, datetime.min.time(),
                                                           tzinfo=ctx.settings.tz))}
    if not slots:
        text = ctx.t("appt.no_slots_week", lang=lang, **span)
    elif len(confidants) == 1:
        text = ctx.t("appt.choose_with", lang=lang, name=confidants[0].name, **span)
    else:
        text = ctx.t("appt.choose_any", lang=lang, **span)
    return text, rows


async def first_week_with_slots(ctx: Ctx, case: Case) -> int | None:
    confidants = await confidants_for(ctx, case)
    slots = await free_slots(ctx, confidants)
    if not slots:
        return None
    today, _ = _days(ctx)
    return (slots[0].starts_at.astimezone(ctx.settings.tz).date() - today).days // 7


async def show_slots(ctx: Ctx, case: Case, week: int | None = None, page: int = 0,
                      intro: str | None = None) -> None:
    if week is None:
        week = await first_week_with_slots(ctx, case)
        if week is None:
            await ctx.reply(ctx.t("appt.no_slots"), [[(ctx.t("appt.none_suits"), "appt:none")]],
                            case=case)
            return
    text, rows = await slot_menu(ctx, case, week, page, ctx.lang)
    await ctx.reply(f"{intro}\n\n{text}" if intro else text, rows, case=case)
