"""What a confidant can do, and what confidants are told.

A confidant acts only on cases assigned to them (or, for a claim, offered to
them).  Everything they receive names the case by its code and carries the
employee's words, never the employee's identity.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from domain.messages import Media, Outbound, OutboundKind
from domain.vocabulary import CLOSE_THEMES, CaseStatus, ConsentForm, Control, Role, Theme
from handlers import appointments
from handlers.core import MAX_TEXT, Ctx, UserError, split_command, touch
from handlers.doc_clean import DocumentRejected, clean_document
from handlers.i18n import LANGUAGE_NAMES
from store.cases import normalise_code
from store.models import Case, Confidant

log = logging.getLogger("confidant.confidant")


# ------------------------------------------------------------------ entry


async def dispatch(ctx: Ctx) -> None:
    inb = ctx.inbound
    if inb.button is not None:
        await _run_action(ctx, await ctx.button_action())
        return
    if (refusal := ctx.unsupported_key()) is not None:
        await ctx.reply(ctx.t(refusal))
        return
    text = inb.text or ""
    if (action := await ctx.number_action()) is not None:
        await _run_action(ctx, action)
        return
    cmd = split_command(text)
    if cmd is not None:
        name, arg = cmd
        command = COMMANDS.get(name)
        if command is None:
            await ctx.reply(ctx.t("command.unknown_confidant"))
            return
        await command(ctx, arg)
        return
    await relay_from_confidant(ctx, text, inb.media)


async def _run_action(ctx: Ctx, action: str | None) -> None:
    name, _, arg = (action or "").partition(":")
    step = ACTIONS.get(name)
    if step is None:
        await ctx.reply(ctx.t("button.stale"))
        return
    await step(ctx, arg)


def me(ctx: Ctx) -> Confidant:
    assert ctx.confidant is not None
    return ctx.confidant


async def my_case(ctx: Ctx, code: str | None = None) -> Case:
    """The case this event is about, only if it is assigned to the sender.

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
        if case is not None and (case.status != CaseStatus.OPEN
                                 or case.confidant_id != confidant.id):
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
    if case.confidant_id != confidant.id or case.status != CaseStatus.OPEN:
        log.info("refused action on a case not assigned to the sender case=%s", case.code)
        raise UserError("case.not_yours", code=case.code)
    return case


async def employee_of(ctx: Ctx, case: Case) -> None:
    """Sanity: a case always needs its contact to relay anything."""
    if case.contact_id is None:
        raise UserError("case.gone", code=case.code)


# ------------------------------------------------------------- notifications


async def candidates(ctx: Ctx, case: Case) -> list[Confidant]:
    """Who may claim: the chosen confidant, or everyone."""
    if case.chosen_confidant_id:
        chosen = await ctx.tx.confidants.by_id(case.chosen_confidant_id)
        if chosen is not None and chosen.active:
            return [chosen]
    return await ctx.tx.confidants.all()


async def announce_case(ctx: Ctx, case: Case, to: list[Confidant], escalation: bool = False
                        ) -> None:
    """New case: code, language, channel, urgency; no content until claimed."""
    if case.announced_at is None:
        case.announced_at = ctx.now
    for c in to:
        lang = ctx.confidant_lang(c)
        key = "notify.escalation" if escalation else "notify.new_case"
        urgent = ctx.t("notify.urgent_flag", lang=lang) if case.urgent else ""
        text = ctx.t(key, lang=lang, code=case.code,
                     language=LANGUAGE_NAMES.get(case.language, case.language),
                     channel=case.channel, urgent=urgent,
                     deadline=ctx.when(case.deadline_at, lang=lang))
        await ctx.to_confidant(c, text, [[(ctx.t("notify.claim_button", lang=lang,
                                                 code=case.code), f"claim:{case.id}")]],
                               kind=OutboundKind.URGENT if case.urgent else OutboundKind.NOTICE,
                               about=[case])


async def announce_urgent(ctx: Ctx, case: Case) -> None:
    """A crisis word in a case nobody has claimed yet: every candidate hears now."""
    for c in await candidates(ctx, case):
        lang = ctx.confidant_lang(c)
        await ctx.to_confidant(c, ctx.t("notify.urgent_waiting", lang=lang, code=case.code),
                               [[(ctx.t("notify.claim_button", lang=lang, code=case.code),
                                  f"claim:{case.id}")]], kind=OutboundKind.URGENT,
                               about=[case])


CLEAN_TIMEOUT = 60.0
"""Seconds a document may take to clean before it is refused rather than relayed."""


def neutral_media(media: Media) -> Media:
    """A file's own name can carry identity (``Jan_Peeters_payslip.pdf``): the
    confidant gets the bytes under a neutral name that keeps only the extension.

    So can its insides: a PDF, Office or OpenDocument file (told by its content,
    not its name) is rewritten without author, company, comment authors and
    other metadata (see `handlers.doc_clean`), and named after what it really
    is.  Raises `DocumentRejected` for such a file that cannot be cleaned.
    """
    cleaned = clean_document(media.data, media.filename, media.mime_type) \
        if media.kind == "document" else None
    if cleaned is not None:
        return replace(media, data=cleaned.data, filename=f"{media.kind}.{cleaned.ext}",
                       mime_type=cleaned.mime_type)
    stem, dot, ext = media.filename.rpartition(".")
    suffix = f".{ext.lower()}" if dot and stem and ext.isascii() and ext.isalnum() \
        and len(ext) <= 5 else ""
    return replace(media, filename=f"{media.kind}{suffix}")


async def cleaned_or_refused(ctx: Ctx, case: Case, media: Media) -> Media | None:
    """`neutral_media`, or None once the employee has been told the file
    cannot go anywhere.

    Used when a file is relayed and, earlier, when it is held for a case
    nobody has claimed yet: so the employee hears at once that the file was
    refused (not "kept safely" now and a refusal at the claim), and what waits
    in the database is the cleaned copy, never the raw file.  The caller still
    relays or holds the words typed with the file, so words of distress are
    never lost with it.
    """
    try:
        # Cleaning a large document can take a while: off the event loop, so
        # other conversations keep flowing.
        return await asyncio.wait_for(asyncio.to_thread(neutral_media, media), CLEAN_TIMEOUT)
    except (DocumentRejected, TimeoutError) as exc:
        # Its raw bytes would carry the metadata: the file goes nowhere, and
        # the employee hears why and what to send instead.
        log.info("document not relayed case=%s reason=%s", case.code,
                 "timeout" if isinstance(exc, TimeoutError) else "not cleanable")
        await _tell_employee(ctx, case, "media.not_cleanable")
        return None


async def relay_to_confidant(ctx: Ctx, case: Case, confidant: Confidant, text: str,
                             media: Media | None, urgent: bool) -> None:
    if media is not None:
        # A held file was cleaned when it was held; cleaning it again at the
        # claim is the second line of defence, kept because it is cheap (it
        # costs what cleaning here always cost, e.g. 0.2 s for a 200-page
        # 20 MB PDF, off the event loop; a clean file comes out byte for byte
        # the same) and because messages held by an older version, which did
        # not clean at hold time, were stored as sent.
        media = await cleaned_or_refused(ctx, case, media)
        if media is None and not text:
            return
    lang = ctx.confidant_lang(confidant)
    key = "relay.urgent" if urgent else "relay.to_confidant"
    body = ctx.t(key, lang=lang, code=case.code, text=text) if text else \
        ctx.t("relay.media", lang=lang, code=case.code)
    await ctx.to_confidant(confidant, body, case=case, media=media,
                           kind=OutboundKind.URGENT if urgent else OutboundKind.RELAY)


async def _tell_employee(ctx: Ctx, case: Case, key: str) -> None:
    if ctx.role == Role.EMPLOYEE and ctx.contact is not None \
            and ctx.contact.id == case.contact_id:
        await ctx.reply(ctx.t(key), case=case)
        return
    contact = await ctx.tx.contacts.by_id(case.contact_id) if case.contact_id else None
    if contact is not None:
        await ctx.to_contact(contact, ctx.t(key, lang=case.language), case=case)


async def _told_of(ctx: Ctx, case: Case) -> list[Confidant]:
    """Who knows of the case: its confidant, or, while unclaimed, everyone it
    was announced to (so nobody tries to claim a case that is gone)."""
    if case.confidant_id:
        c = await ctx.tx.confidants.by_id(case.confidant_id)
        return [c] if c is not None else []
    if case.announced_at is None:
        return []
    return await candidates(ctx, case) if case.escalated_at is None \
        else await ctx.tx.confidants.all()


async def employee_stopped(ctx: Ctx, case: Case) -> None:
    for c in await _told_of(ctx, case):
        await ctx.to_confidant(c, ctx.t("stop.to_confidant", lang=ctx.confidant_lang(c),
                                        code=case.code),
                               case=case if case.confidant_id else None,
                               case_code=None if case.confidant_id else case.code,
                               control=Control.CASE_CLOSE)


async def case_erased(ctx: Ctx, case: Case) -> None:
    for c in await _told_of(ctx, case):
        # Sealed with the system key: the case key is shredded right after.
        await ctx.to_confidant(c, ctx.t("forget.to_confidant", lang=ctx.confidant_lang(c),
                                        code=case.code), control=Control.CASE_ERASE,
                               case_code=case.code, kind=OutboundKind.NOTICE)


async def recipient_unreachable(ctx: Ctx, out: Outbound) -> None:
    """Delivery gave up for good (blocked bot, left room): tell the other side."""
    if out.case is None:
        return
    case = await ctx.tx.cases.by_code(out.case)
    if case is None or case.status == CaseStatus.CLOSED:
        return
    if out.role == Role.EMPLOYEE:
        case.unreachable = True
        await ctx.tx.audit.record("system", "case.unreachable", case.code)
        if case.confidant_id:
            c = await ctx.tx.confidants.by_id(case.confidant_id)
            if c is not None:
                await ctx.to_confidant(c, ctx.t("unreachable.employee",
                                                lang=ctx.confidant_lang(c), code=case.code),
                                       case=case)
    elif case.contact_id:
        contact = await ctx.tx.contacts.by_id(case.contact_id)
        if contact is not None:
            await ctx.to_contact(contact, ctx.t("unreachable.confidant", lang=contact.language),
                                 case=case)


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
    """First claim wins; the others are told who took it; held messages follow."""
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
    for other in await candidates(ctx, case):
        if other.id != confidant.id and case.announced_at is not None:
            await ctx.to_confidant(other, ctx.t("claim.taken_by", lang=ctx.confidant_lang(other),
                                                code=case.code, name=confidant.name),
                                   about=[case])
    for text, media, urgent in await ctx.tx.cases.take_held_messages(case):
        await relay_to_confidant(ctx, case, confidant, text, media, urgent)
    if case.contact_id:
        contact = await ctx.tx.contacts.by_id(case.contact_id)
        if contact is not None:
            await ctx.to_contact(contact, ctx.t("claim.to_employee", lang=case.language,
                                                name=confidant.name), case=case)



async def cmd_case(ctx: Ctx, arg: str = "") -> None:
    """``/case CODE``: where plain messages go from now on."""
    if not arg.strip():
        raise UserError("case.usage")
    case = await my_case(ctx, arg.strip())
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
    case = await my_case(ctx)
    await employee_of(ctx, case)
    contact = await ctx.tx.contacts.by_id(case.contact_id or "")
    if contact is None:
        raise UserError("case.gone", code=case.code)
    confidant = me(ctx)
    touch(case, ctx.now)
    body = ctx.t("relay.to_employee", lang=case.language, name=confidant.name, text=text) \
        if text else ctx.t("relay.media_from", lang=case.language, name=confidant.name)
    await ctx.to_contact(contact, body, case=case, media=media, kind=OutboundKind.RELAY)


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
    await employee_of(ctx, case)
    contact = await ctx.tx.contacts.by_id(case.contact_id or "")
    if contact is None:
        raise UserError("case.gone", code=case.code)
    consent = await ctx.tx.cases.request_consent(case, form, ctx.now)
    await ctx.tx.audit.record(f"confidant:{me(ctx).name}", "consent.requested", case.code, form)
    lang = case.language
    await ctx.to_contact(contact, ctx.t(f"consent.ask.{form}", lang=lang, name=me(ctx).name),
                         [[(ctx.t("consent.yes", lang=lang), f"consent:{consent.id}:yes"),
                           (ctx.t("consent.no", lang=lang), f"consent:{consent.id}:no")]],
                         case=case)
    await ctx.reply(ctx.t("consent.sent", code=case.code, form=ctx.t(f"consent.form.{form}")),
                    case=case)


async def consent_answered(ctx: Ctx, consent_id: str, agreed: bool) -> None:
    """The employee's yes or no, recorded with the time; the confidant is told."""
    consent = await ctx.tx.cases.consent(consent_id)
    case = await ctx.tx.cases.by_id(consent.case_id) if consent else None
    if consent is None or case is None or ctx.contact is None or \
            case.contact_id != ctx.contact.id:
        await ctx.reply(ctx.t("button.stale"))
        return
    if consent.answered_at is not None:
        await ctx.reply(ctx.t("consent.already"))
        return
    consent.answered_at = ctx.now
    consent.agreed = agreed
    await ctx.tx.audit.record("employee", "consent.answered", case.code,
                              f"{consent.form}:{'yes' if agreed else 'no'}")
    await ctx.reply(ctx.t("consent.thanks_yes" if agreed else "consent.thanks_no"), case=case)
    if case.confidant_id:
        c = await ctx.tx.confidants.by_id(case.confidant_id)
        if c is not None:
            lang = ctx.confidant_lang(c)
            await ctx.to_confidant(c, ctx.t("consent.answer_yes" if agreed else
                                            "consent.answer_no", lang=lang, code=case.code,
                                            form=ctx.t(f"consent.form.{consent.form}", lang=lang),
                                            when=ctx.when(ctx.now, lang=lang)), case=case)


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
    if case.contact_id:
        contact = await ctx.tx.contacts.by_id(case.contact_id)
        if contact is not None:
            await ctx.to_contact(contact, ctx.t("handover.to_employee", lang=case.language,
                                                name=colleague.name), case=case)


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
    if case.contact_id:
        contact = await ctx.tx.contacts.by_id(case.contact_id)
        if contact is not None:
            await ctx.to_contact(contact, ctx.t("close.to_employee", lang=case.language,
                                                days=ctx.settings.retention_days), case=case)


async def cmd_duty(ctx: Ctx, arg: str = "") -> None:
    await appointments.confidant_duty(ctx, arg)


async def cmd_offer(ctx: Ctx, arg: str = "") -> None:
    code, _ = _code_and_rest(arg)
    case = await my_case(ctx, code)
    await appointments.confidant_offer(ctx, case)


async def cmd_absence(ctx: Ctx, arg: str = "") -> None:
    await appointments.confidant_absence(ctx, arg)


async def cmd_confirmation(ctx: Ctx, arg: str = "") -> None:
    code, _ = _code_and_rest(arg)
    case = await my_case(ctx, code)
    await appointments.confirmation_document(ctx, case)


async def cmd_start(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(ctx.t("welcome.confidant", name=me(ctx).name))


async def _not_for_confidants(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(ctx.t("role.confidant_not_employee"))


Cmd = Callable[[Ctx, str], Awaitable[None]]

COMMANDS: dict[str, Cmd] = {
    "start": cmd_start, "help": cmd_help, "cases": cmd_cases, "claim": cmd_claim,
    "case": cmd_case, "heard": cmd_heard, "note": cmd_note, "notes": cmd_notes,
    "consent": cmd_consent, "handover": cmd_handover, "close": cmd_close, "duty": cmd_duty,
    "offer": cmd_offer, "absence": cmd_absence, "confirmation": cmd_confirmation,
    "talk": _not_for_confidants, "forget": _not_for_confidants,
}

ACTIONS: dict[str, Cmd] = {
    "claim": claim_action,
    "select": select_action,
    "close": close_action,
    "appt": appointments.confidant_action,
}

