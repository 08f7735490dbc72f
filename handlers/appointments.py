"""In-person talks: slots, booking, moving, cancelling, reminders, the
confirmation document, and a confidant's own duty overview and absences.

Employees reach this from their active case (``/appointment`` or a
confidant's ``/offer``); confidants act on talks booked with them.  Every
message to a confidant names the case code, the time and the room, never
anything about the employee.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from domain.messages import Media, OutboundKind
from domain.parsing import ParseError, parse_date
from domain.vocabulary import AppointmentStatus, CaseStatus
from handlers.administration.problems import AdminError
from handlers.administration.validation import check_absence
from handlers.context import Ctx, MenuRows, UserError
from handlers.talks import (
    about_for_confidant,
    buffer_time,
    case_for_confidant,
    confidants_for,
    details,
    employee_case,
    first_week_with_slots,
    free_slots,
    ics,
    place,
    show_slots,
    slot_menu,
)
from store.appointments import SlotTaken
from store.models import Appointment, Case

log = logging.getLogger("confidant.appointments")

MAX_ABSENCE_DAYS = 366

# ---------------------------------------------------------------- employees


async def employee_entry(ctx: Ctx, arg: str = "") -> None:
    """``/appointment``: the talk already booked (move, cancel) or the next slots."""
    case = await employee_case(ctx)
    if case is None:
        await ctx.reply(ctx.t("appt.no_case"), [[(ctx.t("menu.talk"), "talk")],
                                                [(ctx.t("menu.back"), "menu")]])
        return
    booked = [a for a in await ctx.tx.appointments.for_case(case.id) if a.starts_at > ctx.now]
    if booked:
        appt = booked[0]
        await ctx.reply(ctx.t("appt.current", **await details(ctx, appt, ctx.lang)),
                        [[(ctx.t("appt.move"), f"appt:move:{appt.id}"),
                          (ctx.t("appt.cancel"), f"appt:cancel:{appt.id}")],
                         [(ctx.t("menu.back"), "menu")]], case=case)
        return
    await show_slots(ctx, case)


async def employee_action(ctx: Ctx, arg: str) -> None:
    """A pressed ``appt:…`` button; the case is always the sender's own active one."""
    sub, _, rest = arg.partition(":")
    case = await employee_case(ctx)
    if case is None:
        await ctx.reply(ctx.t("appt.no_case"), [[(ctx.t("menu.talk"), "talk")]])
        return
    if sub == "more":
        week, _, page = rest.partition(":")
        if not (week.isdigit() and page.isdigit()):
            raise UserError("button.stale")
        await show_slots(ctx, case, int(week), int(page))
    elif sub == "pick":
        await _pick(ctx, case, rest)
    elif sub == "none":
        await _none_suits(ctx, case)
    elif sub == "move":
        await _own_appointment(ctx, case, rest)
        await show_slots(ctx, case, intro=ctx.t("appt.move_intro"))
    elif sub == "cancel":
        await _own_appointment(ctx, case, rest)
        await ctx.reply(ctx.t("appt.cancel_confirm"),
                        [[(ctx.t("appt.cancel_yes"), f"appt:cancelok:{rest}"),
                          (ctx.t("appt.cancel_no"), "appt:keep")]], case=case)
    elif sub == "cancelok":
        appt = await _own_appointment(ctx, case, rest)
        await _cancel(ctx, case, appt, by_employee=True)
    elif sub == "keep":
        await ctx.reply(ctx.t("appt.kept"), case=case)
    else:
        raise UserError("button.stale")


async def _own_appointment(ctx: Ctx, case: Case, appt_id: str) -> Appointment:
    appt = await ctx.tx.appointments.by_id(appt_id)
    if appt is None or appt.case_id != case.id or appt.status != AppointmentStatus.BOOKED:
        raise UserError("appt.gone")
    return appt


async def _pick(ctx: Ctx, case: Case, key: str) -> None:
    """Book the chosen slot (moving an earlier booking), or explain it was taken."""
    try:
        confidant_id, room_id, epoch = key.split(":")
        starts_at = datetime.fromtimestamp(int(epoch), UTC)
    except ValueError as exc:
        raise UserError("button.stale") from exc
    confidants = await confidants_for(ctx, case)
    if confidant_id not in {c.id for c in confidants}:
        raise UserError("appt.gone")
    local_day = starts_at.astimezone(ctx.settings.tz).date()
    fresh = [s for s in await free_slots(ctx, [c for c in confidants if c.id == confidant_id],
                                         local_day, 1)
             if s.starts_at == starts_at]
    existing = [a for a in await ctx.tx.appointments.for_case(case.id) if a.starts_at > ctx.now]
    replacing = existing[0] if existing else None
    slot = next((s for s in fresh if s.room_id == room_id), fresh[0] if fresh else None)
    if replacing is not None and slot is None and replacing.confidant_id == confidant_id \
            and replacing.starts_at == starts_at:
        await ctx.reply(ctx.t("appt.same"), case=case)
        return
    try:
        if slot is None:
            raise SlotTaken
        appt = await ctx.tx.appointments.book(
            case, confidant_id=slot.confidant_id, room_id=slot.room_id,
            starts_at=slot.starts_at, ends_at=slot.ends_at, buffer=buffer_time(ctx), now=ctx.now,
            replacing=replacing)
    except SlotTaken:
        log.info("slot taken case=%s", case.code)
        await show_slots(ctx, case, intro=ctx.t("appt.taken"))
        return
    await ctx.tx.audit.record("employee", "appointment.moved" if replacing else
                              "appointment.booked", case.code)
    log.info("talk booked case=%s", case.code)
    await _confirm(ctx, case, appt, replacing)


async def _confirm(ctx: Ctx, case: Case, appt: Appointment,
                   replaced: Appointment | None = None) -> None:
    """Both sides hear of the booking in their own language; the confidant gets
    an .ics, the employee what meeting in person means for anonymity."""
    d = await details(ctx, appt, case.language)
    key = "appt.moved_employee" if replaced else "appt.booked_employee"
    await ctx.reply(ctx.t(key, lang=case.language, **d) + "\n\n" +
                    ctx.t("appt.in_person_notice", lang=case.language),
                    [[(ctx.t("appt.move", lang=case.language), f"appt:move:{appt.id}"),
                      (ctx.t("appt.cancel", lang=case.language), f"appt:cancel:{appt.id}")]],
                    case=case)
    confidant = await ctx.tx.confidants.by_id(appt.confidant_id)
    if confidant is None:
        return
    lang = ctx.confidant_lang(confidant)
    room = await ctx.tx.appointments.room(appt.room_id)
    cd = await details(ctx, appt, lang)
    tag = case_for_confidant(case, confidant)
    if replaced is not None:
        old_room = await ctx.tx.appointments.room(replaced.room_id)
        await ctx.to_confidant(confidant, ctx.t("appt.moved_confidant", lang=lang, code=case.code,
                                                old=ctx.when(replaced.starts_at, lang=lang),
                                                **cd), case=tag, about=[] if tag else [case],
                               media=ics(ctx, replaced, case, old_room, lang, cancelled=True))
    await ctx.to_confidant(confidant, ctx.t("appt.booked_confidant", lang=lang, code=case.code,
                                            **cd),
                           _confidant_buttons(ctx, appt, lang), case=tag,
                           about=[] if tag else [case],
                           media=ics(ctx, appt, case, room, lang))


def _confidant_buttons(ctx: Ctx, appt: Appointment, lang: str) -> MenuRows:
    return [[(ctx.t("appt.held", lang=lang), f"appt:held:{appt.id}")],
            [(ctx.t("appt.move", lang=lang), f"appt:move:{appt.id}"),
             (ctx.t("appt.cancel", lang=lang), f"appt:cancel:{appt.id}")]]


async def _none_suits(ctx: Ctx, case: Case) -> None:
    """No time fits: the confidant is told so they can propose another one."""
    targets = await confidants_for(ctx, case)
    if case.confidant_id is None:
        targets = targets[:1] if case.chosen_confidant_id else targets
    for c in targets:
        await ctx.to_confidant(c, ctx.t("appt.none_suits_confidant", lang=ctx.confidant_lang(c),
                                        code=case.code), case=case_for_confidant(case, c),
                               about=about_for_confidant(case, c))
    await ctx.tx.audit.record("employee", "appointment.none_suits", case.code)
    await ctx.reply(ctx.t("appt.none_suits_done"), case=case)


async def _cancel(ctx: Ctx, case: Case, appt: Appointment, *, by_employee: bool) -> None:
    """Cancel a booked talk; the other side is told (the confidant with a
    cancelling .ics so the agenda follows)."""
    await ctx.tx.appointments.cancel(appt)
    actor = "employee" if by_employee or ctx.confidant is None \
        else f"confidant:{ctx.confidant.name}"
    await ctx.tx.audit.record(actor, "appointment.cancelled", case.code)
    confidant = await ctx.tx.confidants.by_id(appt.confidant_id)
    if confidant is None:
        return
    lang = ctx.confidant_lang(confidant)
    room = await ctx.tx.appointments.room(appt.room_id)
    media = ics(ctx, appt, case, room, lang, cancelled=True)
    cd = await details(ctx, appt, lang)
    if by_employee:
        await ctx.reply(ctx.t("appt.cancelled_employee",
                              **await details(ctx, appt, ctx.lang)), case=case)
        await ctx.to_confidant(confidant, ctx.t("appt.cancelled_by_employee", lang=lang,
                                                code=case.code, **cd),
                               case=case_for_confidant(case, confidant),
                               about=about_for_confidant(case, confidant), media=media)
        return
    await ctx.reply(ctx.t("appt.cancelled_confidant", code=case.code, **cd),
                    case=case_for_confidant(case, confidant),
                    about=about_for_confidant(case, confidant), media=media)


# --------------------------------------------------------------- confidants


async def _my_appointment(ctx: Ctx, appt_id: str) -> tuple[Appointment, Case]:
    """A talk booked with the sender; anything else is refused."""
    assert ctx.confidant is not None
    appt = await ctx.tx.appointments.by_id(appt_id)
    case = await ctx.tx.cases.by_id(appt.case_id) if appt else None
    if appt is None or case is None or appt.confidant_id != ctx.confidant.id:
        log.info("refused action on a talk not booked with the sender")
        raise UserError("appt.gone")
    return appt, case


async def confidant_action(ctx: Ctx, arg: str) -> None:
    """A confidant pressed held / move / cancel on one of their talks."""
    sub, _, appt_id = arg.partition(":")
    appt, case = await _my_appointment(ctx, appt_id)
    if sub == "held":
        await _held(ctx, appt, case)
        return
    if appt.status != AppointmentStatus.BOOKED:
        raise UserError("appt.gone")
    if sub == "cancel":
        await ctx.reply(ctx.t("appt.cancel_confirm_confidant", code=case.code,
                              when=ctx.when(appt.starts_at)),
                        [[(ctx.t("appt.cancel_yes"), f"appt:cancelok:{appt.id}"),
                          (ctx.t("appt.cancel_no"), f"appt:keep:{appt.id}")]],
                        case=case_for_confidant(case, ctx.confidant),  # type: ignore[arg-type]
                        about=about_for_confidant(case, ctx.confidant))
    elif sub == "keep":
        await ctx.reply(ctx.t("appt.kept"))
    elif sub in ("cancelok", "move"):
        await _cancel(ctx, case, appt, by_employee=False)
        contact = await ctx.case_contact(case)
        if contact is None or case.status == CaseStatus.CLOSED:
            return
        d = await details(ctx, appt, case.language)
        if sub == "cancelok":
            await ctx.to_contact(contact, ctx.t("appt.cancelled_by_confidant",
                                                lang=case.language, **d), case=case)
            return
        text, rows = await slot_menu(ctx, case, await first_week_with_slots(ctx, case) or 0, 0,
                                     case.language)
        await ctx.to_contact(contact, ctx.t("appt.moved_by_confidant", lang=case.language, **d)
                             + "\n\n" + text, rows, case=case)
        await ctx.reply(ctx.t("appt.move_sent", code=case.code))
    else:
        raise UserError("button.stale")


async def _held(ctx: Ctx, appt: Appointment, case: Case) -> None:
    """The talk took place: counts as the first conversation if none was recorded."""
    if appt.status == AppointmentStatus.CANCELLED:
        raise UserError("appt.gone")
    if appt.starts_at > ctx.now:
        raise UserError("appt.not_yet", when=ctx.when(appt.starts_at))
    appt.status = AppointmentStatus.HELD
    first = case.heard_at is None
    if first:
        case.heard_at = appt.starts_at
        await ctx.tx.audit.record(f"confidant:{ctx.confidant.name if ctx.confidant else ''}",
                                  "case.heard", case.code, "talk")
    await ctx.tx.audit.record("confidant", "appointment.held", case.code)
    key = "appt.held_first" if first else "appt.held_done"
    await ctx.reply(ctx.t(key, code=case.code, when=ctx.when(appt.starts_at)),
                    case=case_for_confidant(case, ctx.confidant),  # type: ignore[arg-type]
                    about=about_for_confidant(case, ctx.confidant))


async def confidant_offer(ctx: Ctx, case: Case) -> None:
    """``/offer``: the employee gets the confidant's next free slots as buttons."""
    assert ctx.confidant is not None
    contact = await ctx.contact_or_gone(case)
    if not await free_slots(ctx, [ctx.confidant]):
        raise UserError("appt.offer_none")
    week = await first_week_with_slots(ctx, case) or 0
    text, rows = await slot_menu(ctx, case, week, 0, case.language)
    await ctx.to_contact(contact, ctx.t("appt.offer_employee", lang=case.language,
                                        name=ctx.confidant.name) + "\n\n" + text, rows, case=case)
    await ctx.tx.audit.record(f"confidant:{ctx.confidant.name}", "appointment.offered", case.code)
    await ctx.reply(ctx.t("appt.offer_sent", code=case.code), case=case)


async def confirmation_document(ctx: Ctx, case: Case) -> None:
    """The document confirming that the conversation took place: date,
    confidant, organisation, case code; nothing of what was said."""
    assert ctx.confidant is not None
    held = await ctx.tx.appointments.for_case(case.id, status=AppointmentStatus.HELD)
    dates = [d for d in [case.heard_at, *(a.starts_at for a in held)] if d is not None]
    if not dates:
        raise UserError("appt.confirmation_not_yet", code=case.code)
    first = min(dates)
    lang = case.language
    body = ctx.t("appt.confirmation.body", lang=lang, date=ctx.core.tr.day(lang, first),
                 name=ctx.confidant.name, code=case.code,
                 issued=ctx.core.tr.day(lang, ctx.now))
    doc = Media(kind="document", data=(body + "\n").encode("utf-8"),
                filename=f"confirmation-{case.code}.txt", mime_type="text/plain")
    await ctx.tx.audit.record(f"confidant:{ctx.confidant.name}", "confirmation.issued", case.code)
    await ctx.reply(ctx.t("appt.confirmation.ready", code=case.code), case=case, media=doc)


async def confidant_absence(ctx: Ctx, arg: str) -> None:
    """``/absence FROM [TO]``: my own absence; booked talks in it are listed."""
    assert ctx.confidant is not None
    parts = arg.split()
    if not 1 <= len(parts) <= 2:
        raise UserError("appt.absence_usage")
    try:
        start, end = parse_date(parts[0]), parse_date(parts[-1])
    except ParseError:
        raise UserError("appt.absence_usage") from None
    today = ctx.now.astimezone(ctx.settings.tz).date()
    if start < today:
        raise UserError("appt.absence_past")
    if (end - start).days > MAX_ABSENCE_DAYS:
        raise UserError("appt.absence_too_long", days=MAX_ABSENCE_DAYS)
    try:
        check_absence(start, end)
    except AdminError as err:
        raise UserError(err.key) from None
    await ctx.tx.rota.add_absence(ctx.confidant, start, end)
    await ctx.tx.audit.record(f"confidant:{ctx.confidant.name}", "absence.added",
                              ctx.confidant.name, f"{start.isoformat()}..{end.isoformat()}")
    tz = ctx.settings.tz
    lo = datetime.combine(start, datetime.min.time(), tzinfo=tz)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    clashes = await ctx.tx.appointments.booked_between(lo, hi, ctx.confidant.id)
    text = ctx.t("appt.absence_added", start=start.isoformat(), end=end.isoformat())
    rows: list[list[tuple[str, str]]] = []
    if clashes:
        text += "\n\n" + ctx.t("appt.absence_clashes", count=len(clashes))
        for a in clashes:
            case = await ctx.tx.cases.by_id(a.case_id)
            code = case.code if case else "?"
            rows.append([(f"{code} · {ctx.when(a.starts_at)} · {ctx.t('appt.move')}",
                          f"appt:move:{a.id}")])
    await ctx.reply(text, rows or None)


async def confidant_duty(ctx: Ctx, arg: str = "") -> None:
    """My weekly shifts and talk hours, my absences, and my booked talks."""
    assert ctx.confidant is not None
    shifts = await ctx.tx.rota.shifts(ctx.confidant.id)
    absences = await ctx.tx.rota.absences(ctx.confidant.id)
    days = [ctx.t(f"weekday.{i}") for i in range(7)]
    lines = [ctx.t("duty.title")]
    for s in shifts:
        kind = ctx.t(f"duty.kind.{s.kind}")
        lines.append(f"• {days[s.weekday]} {s.start:%H:%M}–{s.end:%H:%M} ({kind})")
    if not shifts:
        lines.append(ctx.t("duty.none"))
    upcoming = [a for a in absences if a.end_date >= ctx.now.astimezone(ctx.settings.tz).date()]
    if upcoming:
        lines.append(ctx.t("duty.absences"))
        lines += [f"• {a.start_date.isoformat()} → {a.end_date.isoformat()}" for a in upcoming]
    talks = await ctx.tx.appointments.booked_between(
        ctx.now, ctx.now + timedelta(days=ctx.settings.days_ahead), ctx.confidant.id)
    rows: list[list[tuple[str, str]]] = []
    if talks:
        lines.append(ctx.t("appt.duty_talks"))
        rooms = {r.id: r for r in await ctx.tx.rota.rooms(active_only=False)}
        for a in talks:
            case = await ctx.tx.cases.by_id(a.case_id)
            code = case.code if case else "?"
            lines.append(f"• {ctx.when(a.starts_at)} — {code} — {place(rooms.get(a.room_id))}")
            rows.append([(f"{code} {ctx.when(a.starts_at)}: {ctx.t('appt.cancel')}",
                          f"appt:cancel:{a.id}")])
    await ctx.reply("\n".join(lines), rows or None)


# ------------------------------------------------------------------- timers


async def run_due(ctx: Ctx) -> None:
    """Reminders the day before and one hour before, to both sides.  Driven by
    stored times, so a restart in between loses none and sends none twice."""
    for appt in await ctx.tx.appointments.due_hour_reminders(ctx.now):
        appt.reminded_hour_at = ctx.now
        if appt.reminded_day_at is None:
            appt.reminded_day_at = ctx.now
        await _remind(ctx, appt, "hour")
    for appt in await ctx.tx.appointments.due_day_reminders(ctx.now):
        appt.reminded_day_at = ctx.now
        await _remind(ctx, appt, "day")


async def _remind(ctx: Ctx, appt: Appointment, which: str) -> None:
    case = await ctx.tx.cases.by_id(appt.case_id)
    if case is None:
        return
    log.info("talk reminder kind=%s case=%s", which, case.code)
    confidant = await ctx.tx.confidants.by_id(appt.confidant_id)
    if confidant is not None:
        lang = ctx.confidant_lang(confidant)
        await ctx.to_confidant(confidant, ctx.t(f"appt.remind_{which}_confidant", lang=lang,
                                                code=case.code,
                                                **await details(ctx, appt, lang)),
                               case=case_for_confidant(case, confidant),
                               about=about_for_confidant(case, confidant),
                               kind=OutboundKind.NOTICE)
    if case.status != CaseStatus.CLOSED and (contact := await ctx.case_contact(case)):
        await ctx.to_contact(contact, ctx.t(f"appt.remind_{which}_employee", lang=case.language,
                                            **await details(ctx, appt, case.language)),
                             case=case)
