"""In-person talks, duty overviews and the confirmation document.

The entry points are fixed here so employee and confidant steps can reach
them; booking itself is built in the appointments issue.
"""

from __future__ import annotations

from handlers.core import Ctx, UserError
from store.models import Case


async def employee_entry(ctx: Ctx, arg: str = "") -> None:
    raise UserError("appointment.unavailable")


async def employee_action(ctx: Ctx, arg: str) -> None:
    raise UserError("appointment.unavailable")


async def confidant_action(ctx: Ctx, arg: str) -> None:
    raise UserError("appointment.unavailable")


async def confidant_offer(ctx: Ctx, case: Case) -> None:
    raise UserError("appointment.unavailable")


async def confidant_absence(ctx: Ctx, arg: str) -> None:
    raise UserError("appointment.unavailable")


async def confirmation_document(ctx: Ctx, case: Case) -> None:
    raise UserError("appointment.unavailable")


async def confidant_duty(ctx: Ctx, arg: str = "") -> None:
    """My shifts this week and my absences."""
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
    await ctx.reply("\n".join(lines))


async def run_due(ctx: Ctx) -> None:
    """Appointment reminders (none until booking exists)."""
    return None
