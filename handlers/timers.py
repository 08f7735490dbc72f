"""Timed duties, run by the engine's tick through `handlers.router`: each is
a query on stored times, so a restart loses none and running twice does
nothing twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from domain.messages import OutboundKind
from domain.vocabulary import Control, Theme
from handlers.context import Ctx
from handlers.help_out import end_windows
from handlers.notifications import announce_case, candidates, case_confidants

log = logging.getLogger("confidant.timers")

EVENT_MEMORY = timedelta(days=30)
"""How long handled platform event ids are kept (platforms re-deliver for far less)."""


async def run_due(ctx: Ctx) -> None:
    """The case timers (the router runs the appointment reminders next, then
    `housekeeping`)."""
    await announce_waiting(ctx)
    await escalate(ctx)
    await remind_deadlines(ctx)
    await close_idle(ctx)
    await end_windows(ctx)
    await erase_expired(ctx)


async def housekeeping(ctx: Ctx) -> None:
    """Expired buttons, delivered messages and old event ids go."""
    await ctx.tx.buttons.purge_expired(ctx.now)
    await ctx.tx.outbox.purge_delivered(ctx.now - timedelta(days=1))
    await ctx.tx.events.forget_before(ctx.now - EVENT_MEMORY)


async def announce_waiting(ctx: Ctx) -> None:
    """Cases opened outside every shift are announced when a shift starts."""
    for case in await ctx.tx.cases.unannounced():
        on_duty = [c for c in await candidates(ctx, case)
                   if await ctx.tx.rota.on_duty(c.id, ctx.now, ctx.settings.tz)]
        if on_duty:
            await announce_case(ctx, case, on_duty)
            log.info("waiting case announced case=%s", case.code)


async def escalate(ctx: Ctx) -> None:
    """Unclaimed too long: every confidant hears of it (code only)."""
    cutoff = ctx.now - timedelta(hours=ctx.settings.escalation_hours)
    for case in await ctx.tx.cases.unclaimed_since(cutoff):
        case.escalated_at = ctx.now
        await ctx.tx.audit.record("system", "case.escalated", case.code)
        await announce_case(ctx, case, await ctx.tx.confidants.all(), escalation=True)


async def remind_deadlines(ctx: Ctx) -> None:
    """Two days before the 10-day deadline, the confidant is reminded."""
    for case in await ctx.tx.cases.deadline_soon(ctx.now + timedelta(days=2)):
        case.deadline_reminded_at = ctx.now
        targets = []
        if case.confidant_id:
            c = await ctx.tx.confidants.by_id(case.confidant_id)
            targets = [c] if c else []
        else:
            targets = await candidates(ctx, case)
        for c in targets:
            lang = ctx.confidant_lang(c)
            await ctx.to_confidant(c, ctx.t("deadline.reminder", lang=lang, code=case.code,
                                            deadline=ctx.when(case.deadline_at, lang=lang,
                                                              style="long")),
                                   case=case if case.confidant_id else None,
                                   about=[] if case.confidant_id else [case],
                                   kind=OutboundKind.URGENT)


async def close_idle(ctx: Ctx) -> None:
    cutoff = ctx.now - timedelta(days=ctx.settings.idle_close_days)
    for case in await ctx.tx.cases.idle_since(cutoff):
        await ctx.tx.cases.close(case, Theme(case.theme or Theme.UNCLASSIFIED), ctx.now)
        await ctx.tx.audit.record("system", "case.idle_closed", case.code)
        if case.confidant_id:
            c = await ctx.tx.confidants.by_id(case.confidant_id)
            if c is not None:
                await ctx.to_confidant(c, ctx.t("idle.to_confidant", lang=ctx.confidant_lang(c),
                                                code=case.code, days=ctx.settings.idle_close_days),
                                       case=case, control=Control.CASE_CLOSE)
        await ctx.to_case_employee(case, lambda lang: ctx.t(
            "idle.to_employee", lang=lang, days=ctx.settings.idle_close_days))


async def erase_expired(ctx: Ctx) -> None:
    """Closed cases go after the retention period; their keys are shredded."""
    cutoff = ctx.now - timedelta(days=ctx.settings.retention_days)
    for case in await ctx.tx.cases.closed_before(cutoff):
        await ctx.tx.audit.record("system", "case.erased", case.code)
        # Lets channels that keep a history (the web console) drop this case's.
        for c in await case_confidants(ctx, case):
            await ctx.to_confidant(c, ctx.t("retention.to_confidant",
                                            lang=ctx.confidant_lang(c), code=case.code,
                                            days=ctx.settings.retention_days),
                                   control=Control.CASE_ERASE, case_code=case.code)
        await ctx.tx.cases.erase(case, ctx.now)
    await ctx.tx.register.expire(ctx.now)
