"""An urgent message while the case's own confidant is off shift.

The confidants on duty now are asked at once, by case code only, to help
out; the first to accept answers in the case until the assigned confidant's
shift starts.  The assigned confidant finds everything (the employee's
words and the helper's answers) at that shift start, as any message that
waited for them; what they write in the case meanwhile is copied to the
helper, so both see the whole exchange.  Nobody off duty is woken: a
colleague whose shift starts before the assigned confidant's is asked when
it starts.  When nobody is on duty, the employee hears so plainly, and when
the first confidant will be.

The window is kept on the case (``help_until``, ``helper_id``), so a
forged, stale or late "help out" is refused kindly and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from domain.messages import Media, OutboundKind
from domain.vocabulary import CaseStatus
from handlers.context import Ctx, UserError
from handlers.notifications import relay_to_confidant
from store.models import Case, Confidant

log = logging.getLogger("confidant.help_out")


def helping(case: Case, confidant: Confidant, now: datetime) -> bool:
    """Whether this confidant may answer in the case now as its helper."""
    return (case.status == CaseStatus.OPEN and case.helper_id == confidant.id
            and case.help_until is not None and case.help_until > now)


def helped_before(case: Case, confidant: Confidant) -> bool:
    """Whether this confidant helped out with the case in a window now over."""
    return case.helper_id == confidant.id and case.confidant_id != confidant.id


async def while_off_shift(ctx: Ctx, case: Case, confidant: Confidant, text: str,
                          media: Media | None, urgent: bool) -> bool:
    """An employee's words for their assigned confidant (relayed to them by
    the caller, held until their shift when they are off duty): a helper who
    answers meanwhile gets them too, an open request keeps them for whoever
    accepts, and an urgent message with no help under way asks the
    colleagues on duty.  True when the employee has been told what happens
    (so the caller need not say that the confidant is off duty)."""
    until = await ctx.off_duty_until(confidant)
    if until is None:
        return False
    window_open = case.help_until is not None and case.help_until > ctx.now
    if window_open and case.helper_id is not None:
        helper = await ctx.tx.confidants.by_id(case.helper_id)
        if helper is not None and helper.active:
            await relay_to_confidant(ctx, case, helper, text, media, urgent, helping=True)
            return True
    if window_open:
        await ctx.tx.cases.hold_message(case, text, media, urgent, ctx.now)
        if urgent:
            await _tell_employee(ctx, case, confidant, until, await _asked_now(ctx, case, until))
        return urgent
    if not urgent:
        return False
    case.help_until, case.helper_id = until, None
    await ctx.tx.cases.hold_message(case, text, media, urgent, ctx.now)
    on_duty = await _ask_colleagues(ctx, case, confidant, until)
    await ctx.tx.audit.record("employee", "case.help_asked", case.code)
    log.info("colleagues asked to help out case=%s on_duty=%d", case.code, len(on_duty))
    await _tell_employee(ctx, case, confidant, until, on_duty)
    return True


async def _colleagues(ctx: Ctx, confidant: Confidant, until: datetime
                      ) -> list[tuple[Confidant, datetime | None]]:
    """Everyone else who is on duty now (None) or whose shift starts before
    ``until`` (that start): nobody is asked outside their own shift."""
    found: list[tuple[Confidant, datetime | None]] = []
    for c in await ctx.tx.confidants.all():
        if c.id == confidant.id or not c.active:
            continue
        if await ctx.tx.rota.on_duty(c.id, ctx.now, ctx.settings.tz):
            found.append((c, None))
            continue
        start = await ctx.tx.rota.next_duty_start([c.id], ctx.now, ctx.settings.tz)
        if start is not None and start < until:
            found.append((c, start))
    return found


async def _asked_now(ctx: Ctx, case: Case, until: datetime) -> list[Confidant]:
    """The colleagues on duty now (asked when the request was made, or at
    the start of their shift since)."""
    assigned = await ctx.tx.confidants.by_id(case.confidant_id or "")
    if assigned is None:
        return []
    return [c for c, start in await _colleagues(ctx, assigned, until) if start is None]


async def _ask_colleagues(ctx: Ctx, case: Case, confidant: Confidant, until: datetime
                          ) -> list[Confidant]:
    """The request, code only, with its "help out" button; to each colleague
    now if on duty, else at the start of their shift.  Returns those on duty."""
    on_duty = []
    for c, start in await _colleagues(ctx, confidant, until):
        lang = ctx.confidant_lang(c)
        await ctx.to_confidant(c, ctx.t("urgent.ask", lang=lang, code=case.code,
                                        name=confidant.name,
                                        when=ctx.when(until, lang=lang, style="long")),
                               [[(ctx.t("urgent.help_button", lang=lang, code=case.code),
                                  f"help:{case.id}")]],
                               kind=OutboundKind.URGENT, about=[case])
        if start is None:
            on_duty.append(c)
    return on_duty


async def _tell_employee(ctx: Ctx, case: Case, confidant: Confidant, until: datetime,
                         on_duty: list[Confidant]) -> None:
    """After the emergency numbers: who knows now, and when someone will be there."""
    if on_duty:
        await ctx.reply(ctx.t("urgent.colleagues_asked", name=confidant.name,
                              when=ctx.when(until, style="long")), case=case)
        return
    first = min([until, *[s for _, s in await _colleagues(ctx, confidant, until) if s]])
    await ctx.reply(ctx.t("urgent.nobody", when=ctx.when(first, style="long")), case=case)


async def accept(ctx: Ctx, case_id: str) -> None:
    """A colleague presses "help out": the first one answers in the case until
    the assigned confidant's shift starts; the words so far follow at once."""
    assert ctx.confidant is not None
    me = ctx.confidant
    case = await ctx.tx.cases.by_id(case_id)
    if case is None:
        raise UserError("case.gone", code="")
    assigned = await ctx.tx.confidants.by_id(case.confidant_id or "")
    if case.status != CaseStatus.OPEN or assigned is None or assigned.id == me.id \
            or case.help_until is None or case.help_until <= ctx.now \
            or await ctx.tx.rota.on_duty(assigned.id, ctx.now, ctx.settings.tz):
        log.info("help out refused: no help needed case=%s", case.code)
        raise UserError("urgent.over", code=case.code)
    until = case.help_until
    if case.helper_id == me.id:
        me.current_case_id = case.id
        await ctx.reply(ctx.t("urgent.helping", code=case.code, name=assigned.name,
                              when=ctx.when(until, style="long")), case=case)
        return
    if not await ctx.tx.cases.take_help(case, me.id, ctx.now):
        helper = await ctx.tx.confidants.by_id(case.helper_id or "")
        raise UserError("urgent.taken", code=case.code, name=helper.name if helper else "")
    me.current_case_id = case.id
    await ctx.tx.audit.record(f"confidant:{me.name}", "case.help_out", case.code)
    log.info("colleague helps out case=%s", case.code)
    # Tagged with the case (a console lists it, a reply to it routes to it); a
    # notice does not take the helper into a Matrix case room.
    await ctx.reply(ctx.t("urgent.helping", code=case.code, name=assigned.name,
                          when=ctx.when(until, style="long")), case=case)
    for text, media, urgent in await ctx.tx.cases.take_held_messages(case):
        await relay_to_confidant(ctx, case, me, text, media, urgent, helping=True)
    alang = ctx.confidant_lang(assigned)
    await ctx.to_confidant(assigned, ctx.t("urgent.helped_for_you", lang=alang, code=case.code,
                                           helper=me.name), case=case)
    await ctx.to_case_employee(case, lambda lang: ctx.t(
        "urgent.helper_to_employee", lang=lang, helper=me.name, name=assigned.name,
        when=ctx.when(until, lang=lang, style="long")))


async def copy_answer(ctx: Ctx, case: Case, helper: Confidant, text: str,
                      media: Media | None) -> None:
    """What the helper writes to the employee also waits for the assigned
    confidant, so both see the exchange."""
    assigned = await ctx.tx.confidants.by_id(case.confidant_id or "")
    if assigned is None:
        return
    lang = ctx.confidant_lang(assigned)
    body = ctx.t("urgent.copy", lang=lang, code=case.code, helper=helper.name, text=text) \
        if text else ctx.t("urgent.copy_media", lang=lang, code=case.code, helper=helper.name)
    await ctx.to_confidant(assigned, body, case=case, media=media)


async def copy_to_helper(ctx: Ctx, case: Case, assigned: Confidant, text: str,
                         media: Media | None) -> None:
    """What the assigned confidant writes to the employee while a colleague
    helps out reaches that colleague too (they may write off duty), so both
    see the exchange; once the window is over nothing more goes to them.  A
    notice about the case, as the employee's words for the helper are."""
    if case.helper_id is None or case.helper_id == assigned.id:
        return
    helper = await ctx.tx.confidants.by_id(case.helper_id)
    if helper is None or not helper.active or not helping(case, helper, ctx.now):
        return
    lang = ctx.confidant_lang(helper)
    body = ctx.t("urgent.copy_assigned", lang=lang, code=case.code, name=assigned.name,
                 text=text) if text else \
        ctx.t("urgent.copy_assigned_media", lang=lang, code=case.code, name=assigned.name)
    await ctx.to_confidant(helper, body, about=[case], media=media)


async def end_windows(ctx: Ctx) -> None:
    """At the assigned confidant's shift start the case is theirs alone
    again: the helper is thanked and told, unread copies go."""
    for case in await ctx.tx.cases.help_ending(ctx.now):
        case.help_until = None
        await ctx.tx.cases.drop_held_messages(case)
        if case.helper_id is None or case.status != CaseStatus.OPEN:
            continue
        helper = await ctx.tx.confidants.by_id(case.helper_id)
        assigned = await ctx.tx.confidants.by_id(case.confidant_id or "")
        if helper is None or assigned is None:
            continue
        # The helper's current case stays this one, so words they still
        # write for it are refused (`helped_before`) instead of going to
        # another case of theirs.
        log.info("help out over case=%s", case.code)
        await ctx.to_confidant(helper, ctx.t("urgent.ended", lang=ctx.confidant_lang(helper),
                                             code=case.code, name=assigned.name), about=[case])
