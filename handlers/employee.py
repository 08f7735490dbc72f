"""What an employee can do: read, talk anonymously, stop, erase, declare.

Each step is small and answers in the employee's language.  Nothing here
ever puts the employee's platform identity into a message for a
confidant: confidants only ever get the case code and the words typed.
"""

from __future__ import annotations

import logging

from domain.messages import Media
from domain.vocabulary import ACTIVE_CASE_STATUSES, CaseStatus, Control, Role, Theme
from handlers.context import MAX_TEXT, Ctx, legal_deadline, split_command, touch
from handlers.help_out import while_off_shift
from handlers.i18n import LANGUAGE_NAMES
from handlers.notifications import (
    announce_case,
    announce_urgent,
    candidates,
    case_erased,
    cleaned_or_refused,
    employee_stopped,
    relay_to_confidant,
)
from handlers.privacy_notice import privacy_notice
from store.models import Case, Confidant

log = logging.getLogger("confidant.employee")


# ------------------------------------------------------------------ entry


async def arrive(ctx: Ctx) -> None:
    """Every event of an employee: their contact is created on first contact,
    and where they write from now is remembered."""
    inb = ctx.inbound
    if ctx.contact is None:
        ctx.contact = await ctx.tx.contacts.create(inb.channel, inb.sender, inb.chat, ctx.lang,
                                                   ctx.now)
    else:
        await ctx.tx.contacts.update_chat(ctx.contact, inb.chat, ctx.now)


async def greet(ctx: Ctx) -> bool:
    """Someone not welcomed yet is welcomed first; True when that was all
    the event asked for (``/start``, or nothing to read)."""
    assert ctx.contact is not None
    if ctx.contact.welcomed:
        return False
    await welcome(ctx)
    inb = ctx.inbound
    cmd = split_command(inb.text or "")
    # A first message the channel could not pass on still gets its answer
    # ("send it again"), or the person would think it arrived.
    return inb.unsupported is None and (inb.text is None
                                        or (cmd is not None and cmd[0] == "start"))


def main_menu(ctx: Ctx) -> list[list[tuple[str, str]]]:
    t = ctx.t
    return [
        [(t("menu.info"), "info"), (t("menu.talk"), "talk")],
        [(t("menu.confidants"), "confidants"), (t("menu.appointment"), "appointment")],
        [(t("menu.emergency"), "emergency"), (t("menu.declare"), "declare")],
        [(t("menu.language"), "language"), (t("menu.privacy"), "privacy")],
        [(t("menu.forget"), "forget")],
    ]


# -------------------------------------------------------------- the basics


async def welcome(ctx: Ctx) -> None:
    """First contact: who we are, what the confidant sees, what is kept."""
    assert ctx.contact is not None
    ctx.contact.welcomed = True
    await ctx.reply(ctx.t("welcome.first"))
    await ctx.reply(await privacy_text(ctx), main_menu(ctx))


async def privacy_text(ctx: Ctx) -> str:
    """The notice for this employee's conversation as it stands: computed from
    their channel and the channels of the confidants who can read it."""
    return await privacy_notice(ctx, await active_case(ctx))


async def cmd_start(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(ctx.t("welcome.back"), main_menu(ctx))


async def cmd_menu(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(ctx.t("menu.title"), main_menu(ctx))


async def cmd_help(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(ctx.t("help.employee"), main_menu(ctx))


async def cmd_privacy(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(await privacy_text(ctx), main_menu(ctx))


async def cmd_emergency(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(ctx.info.emergency_text(ctx.lang), [[(ctx.t("menu.talk"), "talk")],
                                                       [(ctx.t("menu.back"), "menu")]])


async def cmd_language(ctx: Ctx, arg: str = "") -> None:
    """``/language fr`` switches at once; without an argument, a menu."""
    choice = arg.strip().lower()[:2]
    if choice:
        await set_language(ctx, choice)
        return
    rows = [[(LANGUAGE_NAMES[lang], f"lang:{lang}")] for lang in ctx.settings.languages]
    await ctx.reply(ctx.t("language.choose"), rows)


async def set_language(ctx: Ctx, lang: str) -> None:
    assert ctx.contact is not None
    if lang not in ctx.settings.languages:
        await ctx.reply(ctx.t("language.unknown",
                              languages=", ".join(ctx.settings.languages)))
        return
    ctx.contact.language = lang
    ctx.lang = lang
    for case in await open_cases(ctx):
        case.language = lang
    await ctx.reply(ctx.t("language.set"), main_menu(ctx))


# ------------------------------------------------------------- information


async def cmd_info(ctx: Ctx, arg: str = "") -> None:
    await show_info(ctx, arg.strip() or "")


async def show_info(ctx: Ctx, page_id: str) -> None:
    """A page and its sub-pages; always a way back and a way to talk."""
    lib = ctx.info
    rows: list[list[tuple[str, str]]]
    if not page_id:
        rows = [[(p.title, f"info:{p.id}")] for p in lib.root(ctx.lang)]
        rows.append([(ctx.t("menu.talk"), "talk"), (ctx.t("menu.back"), "menu")])
        await ctx.reply(ctx.t("info.title"), rows)
        return
    page = lib.page(ctx.lang, page_id)
    if page is None:
        await show_info(ctx, "")
        return
    rows = [[(c.title, f"info:{c.id}")] for c in lib.children(ctx.lang, page_id)]
    parent = lib.parent(ctx.lang, page_id) or ""
    rows.append([(ctx.t("menu.back"), f"info:{parent}"), (ctx.t("menu.talk"), "talk")])
    await ctx.reply(f"{page.title}\n\n{page.body}", rows)


async def cmd_confidants(ctx: Ctx, arg: str = "") -> None:
    """Who the confidants are: names, a short bio, languages, on duty or not."""
    confidants = await ctx.tx.confidants.all()
    if not confidants:
        await ctx.reply(ctx.t("confidants.none"), main_menu(ctx))
        return
    lines = [ctx.t("confidants.title")]
    for c in confidants:
        lines.append(await confidant_line(ctx, c))
    await ctx.reply("\n\n".join(lines), [[(ctx.t("menu.talk"), "talk"),
                                          (ctx.t("menu.back"), "menu")]])


async def confidant_line(ctx: Ctx, c: Confidant) -> str:
    duty = await ctx.tx.rota.on_duty(c.id, ctx.now, ctx.settings.tz)
    langs = ", ".join(LANGUAGE_NAMES.get(x, x) for x in c.languages.split(",") if x)
    status = ctx.t("confidants.on_duty") if duty else ctx.t("confidants.off_duty")
    bio = f"\n{c.bio}" if c.bio else ""
    return f"{c.name} — {status} ({langs}){bio}"


# -------------------------------------------------------------------- talk


async def open_cases(ctx: Ctx) -> list[Case]:
    assert ctx.contact is not None
    return [c for c in await ctx.tx.cases.for_contact(ctx.contact.id)
            if c.status in ACTIVE_CASE_STATUSES]


async def active_case(ctx: Ctx) -> Case | None:
    assert ctx.contact is not None
    if ctx.contact.active_case_id is None:
        return None
    case = await ctx.tx.cases.by_id(ctx.contact.active_case_id)
    if case is None or case.status == CaseStatus.CLOSED or case.contact_id != ctx.contact.id:
        return None
    return case


async def cmd_talk(ctx: Ctx, arg: str = "") -> None:
    """Choose a confidant or "first available"; one open conversation at a time."""
    case = await active_case(ctx)
    if case is not None:
        await ctx.reply(ctx.t("talk.already", code=case.code), case=case)
        return
    rows = [[(ctx.t("talk.first_available"), "open:any")]]
    lines = [ctx.t("talk.choose")]
    for c in await ctx.tx.confidants.all():
        duty = await ctx.tx.rota.on_duty(c.id, ctx.now, ctx.settings.tz)
        mark = ctx.t("confidants.on_duty") if duty else ctx.t("confidants.off_duty")
        rows.append([(f"{c.name} ({mark})", f"open:{c.id}")])
        lines.append(await confidant_line(ctx, c))
    rows.append([(ctx.t("menu.back"), "menu")])
    # Name, short bio, languages and duty: enough to choose by trust or affinity.
    await ctx.reply("\n\n".join(lines), rows)


async def open_case(ctx: Ctx, choice: str) -> None:
    """Start the anonymous conversation and tell the right confidants."""
    assert ctx.contact is not None
    if await active_case(ctx) is not None:
        await cmd_talk(ctx)
        return
    chosen: Confidant | None = None
    if choice and choice != "any":
        chosen = await ctx.tx.confidants.by_id(choice)
        if chosen is None or not chosen.active:
            await ctx.reply(ctx.t("talk.unknown_confidant"))
            await cmd_talk(ctx)
            return
    case = await ctx.tx.cases.create(ctx.contact, channel=ctx.inbound.channel, language=ctx.lang,
                                     chosen_confidant_id=chosen.id if chosen else None,
                                     now=ctx.now, deadline=legal_deadline(ctx.now))
    ctx.contact.active_case_id = case.id
    await ctx.tx.audit.record("employee", "case.opened", case.code)
    log.info("case opened case=%s channel=%s", case.code, case.channel)
    await ctx.reply(ctx.t("case.opened", code=case.code), case=case)
    await announce_or_defer(ctx, case, chosen)


async def announce_or_defer(ctx: Ctx, case: Case, chosen: Confidant | None) -> None:
    """Tell the on-duty confidants now, or tell the employee when to expect an
    answer and keep the case for the next shift."""
    targets = await candidates(ctx, case)
    on_duty = [c for c in targets if await ctx.tx.rota.on_duty(c.id, ctx.now, ctx.settings.tz)]
    if on_duty:
        await announce_case(ctx, case, on_duty)
        name = chosen.name if chosen else ""
        key = "case.on_duty_chosen" if chosen else "case.on_duty"
        await ctx.reply(ctx.t(key, name=name, hours=ctx.settings.response_hours), case=case)
        return
    next_start = await ctx.tx.rota.next_duty_start([c.id for c in targets], ctx.now,
                                                   ctx.settings.tz)
    emergency = ctx.info.emergency_text(ctx.lang)
    if next_start is None:
        text = ctx.t("case.no_rota", hours=ctx.settings.response_hours, emergency=emergency)
    else:
        text = ctx.t("case.off_duty", when=ctx.when(next_start, style="long"),
                     emergency=emergency)
    await ctx.reply(text, case=case)


async def message(ctx: Ctx, text: str, media: Media | None) -> None:
    """Plain words from the employee: relayed, held until a claim, or a nudge to /talk."""
    if len(text) > MAX_TEXT:
        await ctx.reply(ctx.t("message.too_long", limit=MAX_TEXT))
        return
    urgent = ctx.info.is_crisis(ctx.lang, text)
    if urgent:
        await ctx.reply(ctx.info.emergency_text(ctx.lang))
    case = await active_case(ctx)
    if case is None:
        if not text and media is None:
            return
        await ctx.reply(ctx.t("message.no_case"), [[(ctx.t("menu.talk"), "talk")],
                                                   [(ctx.t("menu.info"), "info")]])
        return
    if not text and media is None:
        return
    touch(case, ctx.now)
    if urgent and not case.urgent:
        case.urgent = True
        await ctx.tx.audit.record("employee", "case.urgent", case.code)
    if case.status == CaseStatus.OPEN and case.confidant_id:
        confidant = await ctx.tx.confidants.by_id(case.confidant_id)
        if confidant is not None:
            if media is not None:
                # Cleaned once here: a copy may wait for a colleague (help out).
                media = await cleaned_or_refused(ctx, case, media)
                if media is None and not text:
                    return
            if not await while_off_shift(ctx, case, confidant, text, media, urgent):
                await tell_if_off_duty(ctx, case, confidant)
            await relay_to_confidant(ctx, case, confidant, text, media, urgent)
            return
    if media is not None:
        # Cleaned before it is stored: the employee hears now if the file is
        # refused, and the raw file never waits in the database.
        media = await cleaned_or_refused(ctx, case, media)
        if media is None and not text:
            return
    first = await ctx.tx.cases.held_count(case) == 0
    await ctx.tx.cases.hold_message(case, text, media, urgent, ctx.now)
    if urgent and case.announced_at is not None:
        await announce_urgent(ctx, case)
    if first and not urgent:
        await ctx.reply(ctx.t("message.held"), case=case)


async def tell_if_off_duty(ctx: Ctx, case: Case, confidant: Confidant) -> None:
    """The first message that will wait for the confidant's next shift gets
    an honest answer: when they will read it, and where urgent help is."""
    until = await ctx.off_duty_until(confidant)
    if until is None:
        return
    for address in await ctx.tx.confidants.addresses(confidant):
        if await ctx.tx.outbox.held_for(
                ctx.tx.vault.address_hash(address.channel, address.address), ctx.now):
            return
    await ctx.reply(ctx.t("relay.held_for_shift", name=confidant.name,
                          when=ctx.when(until, style="long")), case=case)


async def cmd_stop(ctx: Ctx, arg: str = "") -> None:
    """End the conversation; the confidant is informed."""
    case = await active_case(ctx)
    if case is None:
        await ctx.reply(ctx.t("stop.none"), main_menu(ctx))
        return
    await employee_stopped(ctx, case)
    await ctx.tx.cases.close(case, Theme(case.theme or Theme.UNCLASSIFIED), ctx.now)
    await ctx.tx.audit.record("employee", "case.stopped", case.code)
    await ctx.reply(ctx.t("stop.done", code=case.code,
                          days=ctx.settings.retention_days), main_menu(ctx))


async def cmd_forget(ctx: Ctx, arg: str = "") -> None:
    """Erasure is final, so it asks first."""
    await ctx.reply(ctx.t("forget.confirm"), [[(ctx.t("forget.yes"), "forget:yes"),
                                               (ctx.t("forget.no"), "forget:no")]])


async def forget(ctx: Ctx, answer: str) -> None:
    if answer != "yes":
        if answer == "no":
            await ctx.reply(ctx.t("forget.kept"), main_menu(ctx))
        else:
            await cmd_forget(ctx)
        return
    assert ctx.contact is not None
    here, lang = ctx.here, ctx.lang
    for case in await ctx.tx.cases.for_contact(ctx.contact.id):
        if case.status in ACTIVE_CASE_STATUSES:
            await case_erased(ctx, case)
        await ctx.tx.cases.erase(case, ctx.now)
    await ctx.tx.buttons.forget_owner(ctx.sender_hash)
    await ctx.tx.contacts.erase(ctx.contact)
    await ctx.tx.audit.record("employee", "contact.erased")
    ctx.contact = None
    # Sent under the system key: the person's own keys are gone already.
    # control "forget": channels that keep a history (web) erase it as well.
    await ctx.send(here, ctx.t("forget.done", lang=lang), owner_hash=b"\0" * 32,
                   control=Control.FORGET, role=Role.EMPLOYEE)


async def cmd_confirmation(ctx: Ctx, arg: str = "") -> None:
    """Ask for the document confirming that the conversation took place."""
    case = await active_case(ctx)
    if case is None:
        cases = [c for c in await ctx.tx.cases.for_contact(ctx.contact.id)] if ctx.contact else []
        case = cases[-1] if cases else None
    if case is None:
        await ctx.reply(ctx.t("confirmation.no_case"), main_menu(ctx))
        return
    case.confirmation_requested_at = ctx.now
    await ctx.tx.audit.record("employee", "confirmation.requested", case.code)
    if case.confidant_id:
        confidant = await ctx.tx.confidants.by_id(case.confidant_id)
        if confidant is not None:
            clang = ctx.confidant_lang(confidant)
            await ctx.to_confidant(confidant, ctx.t("confirmation.to_confidant", lang=clang,
                                                    code=case.code), case=case)
    await ctx.reply(ctx.t("confirmation.requested"), case=case)


async def answer_consent(ctx: Ctx, arg: str) -> None:
    consent_id, _, answer = arg.partition(":")
    await consent_answered(ctx, consent_id, answer == "yes")


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


async def not_a_confidant(ctx: Ctx, arg: str = "") -> None:
    """Confidant commands typed by someone who is not one: a polite no."""
    await ctx.reply(ctx.t("role.not_confidant"), main_menu(ctx))


async def not_an_admin(ctx: Ctx, arg: str = "") -> None:
    await ctx.reply(ctx.t("role.not_admin"), main_menu(ctx))
