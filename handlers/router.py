"""Who is speaking, and which step answers: the role decided on the server,
one way in for every role, and each role's command and button tables.

This is the only module that imports the step modules (`handlers.employee`,
`handlers.confidant`, `handlers.admin`, `handlers.appointments`,
`handlers.declare`, `handlers.timers`); they import `handlers.context` and
never each other or this module.  The engine (``bot/``) calls the entry
points at the end, inside the transaction it owns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from domain.ids import ChannelName
from domain.messages import Inbound, Outbound
from domain.vocabulary import Role
from handlers import admin, appointments, confidant, declare, employee, timers
from handlers.aliases import resolve
from handlers.context import Conversation, Ctx, UserError, sanitised, split_command
from handlers.notifications import recipient_unreachable
from store.models import Case
from store.store import Tx

Step = Callable[[Ctx, str], Awaitable[None]]
"""A command (with what was typed after it) or a button (with its argument)."""


@dataclass(frozen=True)
class Desk:
    """One role's way in: what it types, what it presses, and what becomes
    of everything else."""

    commands: Mapping[str, Step]
    actions: Mapping[str, Step]
    stale: Callable[[Ctx], Awaitable[None]]
    """A press that resolves to nothing (stale, forged, someone else's)."""
    unknown: Callable[[Ctx], Awaitable[None]]
    """A command word this role does not have."""
    words: Callable[[Ctx], Awaitable[None]]
    """Plain words (and files): the conversation itself."""
    arrive: Callable[[Ctx], Awaitable[None]] | None = None
    """Before anything else, on every event."""
    greet: Callable[[Ctx], Awaitable[bool]] | None = None
    """After a press is ruled out: True when greeting was all the event asked."""


# ------------------------------------------------------------------ entry


async def open_context(core: Conversation, tx: Tx, inbound: Inbound, now: datetime) -> Ctx:
    """The event's context with its sender's role, decided here on the
    server for every event (never taken from the platform)."""
    inbound = sanitised(inbound)
    conf = await tx.confidants.find_by_address(inbound.channel, inbound.sender)
    if conf is not None:
        # A confidant who writes off duty is asking: what waited for the
        # shift is theirs now.
        for address in await tx.confidants.addresses(conf):
            await tx.outbox.release(
                tx.vault.address_hash(address.channel, address.address), now)
        ctx = Ctx(core, tx, inbound, now, Role.CONFIDANT, "", confidant=conf)
        ctx.lang = ctx.confidant_lang(conf)
        return ctx
    is_admin = (inbound.channel, inbound.sender) in core.settings.admins
    contact = await tx.contacts.find(inbound.channel, inbound.sender)
    lang = contact.language if contact else core.tr.pick(inbound.language_hint)
    role = Role.ADMIN if is_admin else Role.EMPLOYEE
    return Ctx(core, tx, inbound, now, role, lang, contact=contact)


def system_context(core: Conversation, tx: Tx, now: datetime, channel: str,
                   event: str) -> Ctx:
    """A context for what nobody typed (timers, delivery failures)."""
    return Ctx(core, tx, Inbound(ChannelName(channel), "", "", event), now, Role.EMPLOYEE,
               core.settings.default_language)


async def dispatch(ctx: Ctx) -> None:
    """Run the step this event asks for.  A `UserError` leaves carrying the
    language to refuse in (a step may have learnt it, e.g. from a button)."""
    try:
        if ctx.role is Role.CONFIDANT:
            await serve(ctx, CONFIDANT)
        elif ctx.role is Role.ADMIN and _for_admin_steps(ctx):
            await _admin(ctx)
        else:
            await serve(ctx, EMPLOYEE)
    except UserError as err:
        err.lang = ctx.lang
        raise


async def refuse(ctx: Ctx, refusal: UserError) -> None:
    """Answer a refused event (its step's changes are gone) politely."""
    ctx.lang = refusal.lang or ctx.lang
    await ctx.reply(ctx.core.tr.t(ctx.lang, refusal.key, **refusal.values),
                    about=await _named_case(ctx, refusal))


async def _named_case(ctx: Ctx, refusal: UserError) -> list[Case]:
    """The case a refusal names by its code ("K7F-3MQ is not yours"), so the
    refusal goes from a console history with it."""
    code = refusal.values.get("code")
    found = await ctx.tx.cases.by_code(code) if isinstance(code, str) and code else None
    return [found] if found is not None else []


async def run_timers(ctx: Ctx) -> None:
    """Every timed duty that is due, in a fixed order."""
    await timers.run_due(ctx)
    await appointments.run_due(ctx)
    await timers.housekeeping(ctx)


async def unreachable(ctx: Ctx, out: Outbound) -> None:
    """Delivery gave up on ``out`` for good: the other side is told."""
    await recipient_unreachable(ctx, out)


# ------------------------------------------------------------ the one prelude


async def serve(ctx: Ctx, desk: Desk) -> None:
    """Button, greeting, unreadable content, menu number, command, words:
    the same order for every role."""
    inb = ctx.inbound
    if desk.arrive is not None:
        await desk.arrive(ctx)
    if inb.button is not None:
        await _run_action(ctx, desk, await ctx.button_action())
        return
    if desk.greet is not None and await desk.greet(ctx):
        return
    if (refusal := ctx.unsupported_key()) is not None:
        await ctx.reply(ctx.t(refusal))
        return
    if (action := await ctx.number_action()) is not None:
        await _run_action(ctx, desk, action)
        return
    cmd = split_command(inb.text or "")
    if cmd is not None:
        name, arg = resolve(*cmd)  # /toestemming tussenkomst is /consent supervisor
        step = desk.commands.get(name)
        if step is None:
            await desk.unknown(ctx)
            return
        await step(ctx, arg)
        return
    await desk.words(ctx)


async def _run_action(ctx: Ctx, desk: Desk, action: str | None) -> None:
    """A pressed button: the action string was written by the bot itself and
    bound to this person, but every permission is still checked again."""
    name, _, arg = (action or "").partition(":")
    step = desk.actions.get(name)
    if step is None:
        await desk.stale(ctx)
        return
    await step(ctx, arg)


def _for_admin_steps(ctx: Ctx) -> bool:
    """Which events of an admin go to the admin steps: ``/admin``, and every
    button press or menu number (resolved in `_admin`; anything that is not
    an ``adm:`` action goes on to the employee steps)."""
    inb = ctx.inbound
    if inb.button is not None:
        return True
    text = inb.text or ""
    if text.isdigit() and inb.channel in ctx.settings.numbered_channels:
        return True
    cmd = split_command(text)
    return cmd is not None and cmd[0] == "admin"


async def _admin(ctx: Ctx) -> None:
    """An admin's event; the role is checked again here, not trusted."""
    if ctx.role is not Role.ADMIN:
        raise UserError("role.not_admin")
    inb = ctx.inbound
    text = inb.text or ""
    if inb.button is not None or (text.isdigit()
                                  and inb.channel in ctx.settings.numbered_channels):
        action = await ctx.button_action() if inb.button is not None \
            else await ctx.number_action()
        if action is not None and action.startswith("adm:"):
            lang, _, rest = action[4:].partition(":")
            if lang in ctx.settings.languages:
                ctx.lang = lang  # a press carries no language hint; the menu's counts
            await admin.run_action(ctx, rest)
            return
        await serve(ctx, EMPLOYEE)
        return
    cmd = split_command(text)
    await admin.command(ctx, cmd[1] if cmd else "")


# ------------------------------------------------------------ the employee


async def _employee_stale(ctx: Ctx) -> None:
    await ctx.reply(ctx.t("button.stale"), employee.main_menu(ctx))


async def _employee_unknown(ctx: Ctx) -> None:
    await ctx.reply(ctx.t("command.unknown"), employee.main_menu(ctx))


async def _employee_words(ctx: Ctx) -> None:
    """An answer to the register's questions, or words for the confidant."""
    assert ctx.contact is not None
    text = ctx.inbound.text or ""
    if ctx.contact.pending == "declare:name":
        await declare.name_answer(ctx, text)
        return
    if ctx.contact.pending and ctx.contact.pending.startswith("declare:"):
        await declare.answer(ctx, text)
        return
    await employee.message(ctx, text, ctx.inbound.media)


EMPLOYEE = Desk(
    commands={
        "start": employee.cmd_start,
        "menu": employee.cmd_menu,
        "help": employee.cmd_help,
        "info": employee.cmd_info,
        "talk": employee.cmd_talk,
        "confidants": employee.cmd_confidants,
        "appointment": appointments.employee_entry,
        "stop": employee.cmd_stop,
        "forget": employee.cmd_forget,
        "language": employee.cmd_language,
        "privacy": employee.cmd_privacy,
        "emergency": employee.cmd_emergency,
        "declare": declare.start,
        "confirmation": employee.cmd_confirmation,
        # confidant and admin words reach here only from people without the role
        "claim": employee.not_a_confidant, "cases": employee.not_a_confidant,
        "heard": employee.not_a_confidant, "note": employee.not_a_confidant,
        "consent": employee.not_a_confidant, "offer": employee.not_a_confidant,
        "handover": employee.not_a_confidant, "close": employee.not_a_confidant,
        "duty": employee.not_a_confidant, "case": employee.not_a_confidant,
        "absence": employee.not_a_confidant,
        "admin": employee.not_an_admin,
    },
    actions={
        "menu": employee.cmd_menu,
        "info": employee.show_info,
        "talk": employee.cmd_talk,
        "open": employee.open_case,
        "confidants": employee.cmd_confidants,
        "appointment": appointments.employee_entry,
        "appt": appointments.employee_action,
        "emergency": employee.cmd_emergency,
        "declare": declare.start,
        "decl": declare.button,
        "language": employee.cmd_language,
        "lang": employee.set_language,
        "privacy": employee.cmd_privacy,
        "forget": employee.forget,
        "consent": employee.answer_consent,
        "stop": employee.cmd_stop,
    },
    stale=_employee_stale,
    unknown=_employee_unknown,
    words=_employee_words,
    arrive=employee.arrive,
    greet=employee.greet,
)


# ------------------------------------------------------------ the confidant


async def _confidant_stale(ctx: Ctx) -> None:
    await ctx.reply(ctx.t("button.stale"))


async def _confidant_unknown(ctx: Ctx) -> None:
    await ctx.reply(ctx.t("command.unknown_confidant"))


async def _confidant_words(ctx: Ctx) -> None:
    await confidant.relay_from_confidant(ctx, ctx.inbound.text or "", ctx.inbound.media)


async def _offer(ctx: Ctx, arg: str = "") -> None:
    await appointments.confidant_offer(ctx, await confidant.named_case(ctx, arg))


async def _confirmation(ctx: Ctx, arg: str = "") -> None:
    await appointments.confirmation_document(ctx, await confidant.named_case(ctx, arg))


CONFIDANT = Desk(
    commands={
        "start": confidant.cmd_start, "help": confidant.cmd_help, "cases": confidant.cmd_cases,
        "claim": confidant.cmd_claim, "case": confidant.cmd_case, "heard": confidant.cmd_heard,
        "note": confidant.cmd_note, "notes": confidant.cmd_notes,
        "consent": confidant.cmd_consent, "handover": confidant.cmd_handover,
        "close": confidant.cmd_close, "duty": appointments.confidant_duty,
        "offer": _offer, "absence": appointments.confidant_absence,
        "confirmation": _confirmation,
        "talk": confidant.not_for_confidants, "forget": confidant.not_for_confidants,
    },
    actions={
        "claim": confidant.claim_action,
        "help": confidant.help_action,
        "select": confidant.select_action,
        "close": confidant.close_action,
        "appt": appointments.confidant_action,
    },
    stale=_confidant_stale,
    unknown=_confidant_unknown,
    words=_confidant_words,
)
