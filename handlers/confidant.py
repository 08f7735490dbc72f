"""What a confidant can do (what confidants are told is in `handlers.notifications`).

A confidant acts only on cases assigned to them (or, for a claim, offered to
them).  Everything they receive names the case by its code and carries the
employee's words, never the employee's identity.
"""

from __future__ import annotations

import logging

from domain.messages import Media, OutboundKind
from domain.vocabulary import CLOSE_THEMES, CaseStatus, ConsentForm, Control, Theme
from handlers.context import MAX_TEXT, Ctx, UserError, touch
from handlers.help_out import accept, copy_answer, copy_to_helper, helped_before, helping
from handlers.i18n import LANGUAGE_NAMES
from handlers.notifications import announced_to, relay_to_confidant
from store.cases import normalise_code
from store.models import Case, Confidant

log = logging.getLogger("confidant.confidant")


# ------------------------------------------------------------------ cases


def me(ctx: Ctx) -> Confidant:
    assert ctx.confidant is not None
    return ctx.confidant


async def my_case(ctx: Ctx, code: str | None = None, *, answering: bool = False) -> Case:
    """The case this event is about, only if it is assigned to the sender,
    or, for words to its employee (``answering``), if the sender helps out
    with it now (`handlers.help_out`).

    Order: an explicit code; the platform's context (a Matrix case room); the
    relayed message being replied to; the confidant's current case; their
    only open case.
    """
    confidant = me(ctx)
    inb = ctx.inbound
    case: Case | None = None
    if code:
        case = await ctx.tx.cases.by_code(code)
        if case is None:
            raise UserError("case.unknown", code=normalise_code(code))
    elif inb.case_hint:
        case = await ctx.tx.cases.by_code(inb.case_hint)
    elif inb.reply_to:
        case_id = await ctx.tx.links.case_for(inb.channel, inb.chat, inb.reply_to)
        case = await ctx.tx.cases.by_id(case_id) if case_id else None
    if case is None and not code and confidant.current_case_id:
        case = await ctx.tx.cases.by_id(confidant.current_case_id)
        if case is not None and answering and helped_before(case, confidant) \
                and not helping(case, confidant, ctx.now):
            # Words meant for the helped employee must not fall through to
            # another case of the former helper's.
            raise UserError("urgent.over", code=case.code)
        if case is not None and (case.status != CaseStatus.OPEN
                                 or case.confidant_id != confidant.id) \
                and not (answering and helping(case, confidant, ctx.now)):
            case = None
    if case is None and not code:
        mine = await ctx.tx.cases.open_for_confidant(confidant.id)
        if len(mine) == 1:
            case = mine[0]
        elif not mine:
            raise UserError("case.none_open")
        else:
            raise UserError("case.which")
    if case is None:
        raise UserError("case.which")
    if answering and helping(case, confidant, ctx.now):
        return case
    if answering and helped_before(case, confidant):
        raise UserError("urgent.over", code=case.code)
    if case.confidant_id != confidant.id or case.status != CaseStatus.OPEN:
        log.info("refused action on a case not assigned to the sender case=%s", case.code)
        raise UserError("case.not_yours", code=case.code)
    return case


# ----------------------------------------------------------------- commands


async def cmd_help(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(ctx.t("help.confidant"))


async def cmd_cases(ctx: Ctx, arg: str = "") -> None:
    """My open cases with their 10-day deadline, plus cases waiting for anyone."""
    confidant = me(ctx)
    lines = []
    rows: list[list[tuple[str, str]]] = []
    listed: list[Case] = []
    for case in await ctx.tx.cases.open_for_confidant(confidant.id):
        listed.append(case)
        state = ctx.t("cases.heard") if case.heard_at else \
            ctx.t("cases.deadline", deadline=ctx.when(case.deadline_at))
        flag = " ⚠️" if case.urgent else ""
        current = " ◀" if confidant.current_case_id == case.id else ""
        lines.append(f"• {case.code}{flag} — {state}{current}")
        rows.append([(ctx.t("cases.select", code=case.code), f"select:{case.id}")])
    waiting = [c for c in await ctx.tx.cases.waiting()
               if c.chosen_confidant_id in (None, confidant.id)]
    if waiting:
        lines.append(ctx.t("cases.waiting_title"))
        for case in waiting:
            listed.append(case)
            flag = " ⚠️" if case.urgent else ""
            lines.append(f"• {case.code}{flag} — {ctx.when(case.opened_at)}")
            rows.append([(ctx.t("notify.claim_button", code=case.code), f"claim:{case.id}")])
    if not lines:
        await ctx.reply(ctx.t("cases.none"))
        return
    await ctx.reply(ctx.t("cases.title") + "\n" + "\n".join(lines), rows or None,
                    about=listed)


async def cmd_claim(ctx: Ctx, arg: str = "") -> None:
    code = arg.strip()
    if not code:
        raise UserError("claim.usage")
    case = await ctx.tx.cases.by_code(code)
    if case is None:
        raise UserError("case.unknown", code=normalise_code(code))
    await claim(ctx, case)


async def claim_action(ctx: Ctx, case_id: str) -> None:
    case = await ctx.tx.cases.by_id(case_id)
    if case is None:
        raise UserError("case.gone", code="")
    await claim(ctx, case)


async def claim(ctx: Ctx, case: Case) -> None:
    """First claim wins; the others it was announced to are told who took
    it; held messages follow."""
    confidant = me(ctx)
    if case.status == CaseStatus.OPEN and case.confidant_id == confidant.id:
        confidant.current_case_id = case.id
        await ctx.reply(ctx.t("claim.already_yours", code=case.code), case=case)
        return
    if case.chosen_confidant_id and case.chosen_confidant_id != confidant.id:
        raise UserError("claim.chosen_other", code=case.code)
    if not await ctx.tx.cases.claim(case, confidant.id, ctx.now):
        if case.confidant_id is None:  # the employee ended it before anyone took it
            raise UserError("stop.to_confidant", code=case.code)
        holder = await ctx.tx.confidants.by_id(case.confidant_id) if case.confidant_id else None
        raise UserError("claim.too_late", code=case.code, name=holder.name if holder else "")
    confidant.current_case_id = case.id
    await ctx.tx.audit.record(f"confidant:{confidant.name}", "case.claimed", case.code)
    log.info("case claimed case=%s", case.code)
    await ctx.to_confidant(confidant, ctx.t("claim.done", code=case.code,
                                            language=LANGUAGE_NAMES.get(case.language,
                                                                        case.language),
                                            deadline=ctx.when(case.deadline_at, style="long")),
                           case=case, control=Control.CASE_OPEN)
    for other in await announced_to(ctx, case):
        if other.id != confidant.id:
            await ctx.to_confidant(other, ctx.t("claim.taken_by", lang=ctx.confidant_lang(other),
                                                code=case.code, name=confidant.name),
                                   about=[case])
    for text, media, urgent in await ctx.tx.cases.take_held_messages(case):
        await relay_to_confidant(ctx, case, confidant, text, media, urgent)
    await ctx.to_case_employee(case, lambda lang: ctx.t("claim.to_employee", lang=lang,
                                                        name=confidant.name))


async def cmd_case(ctx: Ctx, arg: str = "") -> None:
    """``/case CODE``: where plain messages go from now on."""
    if not arg.strip():
        raise UserError("case.usage")
    case = await my_case(ctx, arg.strip(), answering=True)  # a helper may choose it too
    me(ctx).current_case_id = case.id
    await ctx.reply(ctx.t("case.selected", code=case.code), case=case)


async def select_action(ctx: Ctx, case_id: str) -> None:
    case = await ctx.tx.cases.by_id(case_id)
    if case is None:
        raise UserError("case.gone", code="")
    await cmd_case(ctx, case.code)


def _code_and_rest(arg: str) -> tuple[str | None, str]:
    """``K7F-3MQ text`` → (code, text) when the first word looks like a case code."""
    first, _, rest = arg.strip().partition(" ")
    raw = "".join(ch for ch in first.upper() if ch.isalnum())
    if len(raw) == 6 and "-" in first:
        return first, rest.strip()
    return None, arg.strip()


async def relay_from_confidant(ctx: Ctx, text: str, media: Media | None) -> None:
    """Plain words from a confidant go to the employee of the case in context."""
    if not text and media is None:
        return
    if len(text) > MAX_TEXT:
        raise UserError("message.too_long", limit=MAX_TEXT)
    case = await my_case(ctx, answering=True)
    contact = await ctx.contact_or_gone(case)
    confidant = me(ctx)
    touch(case, ctx.now)
    body = ctx.t("relay.to_employee", lang=case.language, name=confidant.name, text=text) \
        if text else ctx.t("relay.media_from", lang=case.language, name=confidant.name)
    await ctx.to_contact(contact, body, case=case, media=media, kind=OutboundKind.RELAY)
    if case.confidant_id != confidant.id:
        await copy_answer(ctx, case, confidant, text, media)
    else:
        await copy_to_helper(ctx, case, confidant, text, media)


async def help_action(ctx: Ctx, case_id: str) -> None:
    """The "help out" button of an urgent message off shift."""
    await accept(ctx, case_id)


async def cmd_heard(ctx: Ctx, arg: str = "") -> None:
    """The first conversation took place: the 10-day duty is met."""
    code, _ = _code_and_rest(arg)
    case = await my_case(ctx, code)
    if case.heard_at is None:
        case.heard_at = ctx.now
        await ctx.tx.audit.record(f"confidant:{me(ctx).name}", "case.heard", case.code)
    in_time = case.heard_at <= case.deadline_at
    await ctx.reply(ctx.t("heard.done" if in_time else "heard.late", code=case.code,
                          when=ctx.when(case.heard_at)), case=case)


async def cmd_note(ctx: Ctx, arg: str = "") -> None:
    """A private note: sealed with the case key, never relayed."""
    code, text = _code_and_rest(arg)
    if not text:
        raise UserError("note.usage")
    if len(text) > MAX_TEXT:
        raise UserError("message.too_long", limit=MAX_TEXT)
    case = await my_case(ctx, code)
    await ctx.tx.cases.add_note(case, me(ctx).id, text, ctx.now)
    await ctx.reply(ctx.t("note.saved", code=case.code), case=case)


async def cmd_notes(ctx: Ctx, arg: str = "") -> None:
    code, _ = _code_and_rest(arg)
    case = await my_case(ctx, code)
    notes = await ctx.tx.cases.notes(case)
    if not notes:
        await ctx.reply(ctx.t("note.none", code=case.code), case=case)
        return
    lines = [f"• {ctx.when(at)} — {text}" for at, text in notes]
    await ctx.reply(ctx.t("note.list", code=case.code) + "\n" + "\n".join(lines), case=case)


async def cmd_consent(ctx: Ctx, arg: str = "") -> None:
    """Ask the employee's agreement for a form of informal intervention."""
    code, rest = _code_and_rest(arg)
    try:
        form = ConsentForm(rest.strip().lower())
    except ValueError:
        raise UserError("consent.usage") from None
    case = await my_case(ctx, code)
    contact = await ctx.contact_or_gone(case)
    consent = await ctx.tx.cases.request_consent(case, form, ctx.now)
    await ctx.tx.audit.record(f"confidant:{me(ctx).name}", "consent.requested", case.code, form)
    lang = case.language
    await ctx.to_contact(contact, ctx.t(f"consent.ask.{form}", lang=lang, name=me(ctx).name),
                         [[(ctx.t("consent.yes", lang=lang), f"consent:{consent.id}:yes"),
                           (ctx.t("consent.no", lang=lang), f"consent:{consent.id}:no")]],
                         case=case)
    await ctx.reply(ctx.t("consent.sent", code=case.code, form=ctx.t(f"consent.form.{form}")),
                    case=case)


async def cmd_handover(ctx: Ctx, arg: str = "") -> None:
    """Give the case to a colleague: they get it, I am told, the employee is told."""
    code, name = _code_and_rest(arg)
    if not name:
        raise UserError("handover.usage")
    case = await my_case(ctx, code)
    colleague = await ctx.tx.confidants.by_name(name)
    confidant = me(ctx)
    if colleague is None or not colleague.active:
        raise UserError("handover.unknown", name=name)
    if colleague.id == confidant.id:
        raise UserError("handover.self")
    case.confidant_id = colleague.id
    case.chosen_confidant_id = colleague.id
    touch(case, ctx.now)
    if confidant.current_case_id == case.id:
        confidant.current_case_id = None
    colleague.current_case_id = case.id
    await ctx.tx.audit.record(f"confidant:{confidant.name}", "case.handover", case.code,
                              f"to:{colleague.name}")
    await ctx.to_confidant(confidant, ctx.t("handover.done", code=case.code, name=colleague.name),
                           case=case, control=Control.CASE_HANDOVER_OUT)
    clang = ctx.confidant_lang(colleague)
    await ctx.to_confidant(colleague, ctx.t("handover.received", lang=clang, code=case.code,
                                            name=confidant.name,
                                            deadline=ctx.when(case.deadline_at, lang=clang)),
                           case=case, control=Control.CASE_OPEN)
    await ctx.to_case_employee(case, lambda lang: ctx.t("handover.to_employee", lang=lang,
                                                        name=colleague.name))


async def cmd_close(ctx: Ctx, arg: str = "") -> None:
    """Close with a theme (for the anonymous statistics); the employee is told."""
    code, word = _code_and_rest(arg)
    word = word.strip().lower().replace("-", "_").replace(" ", "_")
    theme = Theme(word) if word in CLOSE_THEMES else None
    if theme is None:
        rows = [[(ctx.t(f"theme.{t}"), f"close:{t}")] for t in CLOSE_THEMES]
        if code is None:
            await ctx.reply(ctx.t("close.usage"), rows)
            return
        raise UserError("close.usage")
    case = await my_case(ctx, code)
    await close_case(ctx, case, theme)


async def close_action(ctx: Ctx, theme: str) -> None:
    await cmd_close(ctx, theme)


async def close_case(ctx: Ctx, case: Case, theme: Theme) -> None:
    confidant = me(ctx)
    await ctx.tx.cases.close(case, theme, ctx.now)
    if confidant.current_case_id == case.id:
        confidant.current_case_id = None
    await ctx.tx.audit.record(f"confidant:{confidant.name}", "case.closed", case.code, theme)
    await ctx.to_confidant(confidant, ctx.t("close.done", code=case.code,
                                            theme=ctx.t(f"theme.{theme}")),
                           case=case, control=Control.CASE_CLOSE)
    await ctx.to_case_employee(case, lambda lang: ctx.t("close.to_employee", lang=lang,
                                                        days=ctx.settings.retention_days))


async def named_case(ctx: Ctx, arg: str = "") -> Case:
    """The case a command is about: ``/offer K7F-3MQ``, or the one in context."""
    code, _ = _code_and_rest(arg)
    return await my_case(ctx, code)


async def cmd_start(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(ctx.t("welcome.confidant", name=me(ctx).name))


async def not_for_confidants(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(ctx.t("role.confidant_not_employee"))
