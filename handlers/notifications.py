"""What confidants are told, and the relay of an employee's words to them.

Steps of either role call these: a new case is announced (code, language,
channel, urgency, never content), an employee's words and files reach the
assigned confidant (files cleaned of what could identify their author first),
and whoever knows of a case hears when it ends, is erased or cannot be
reached any more.  Nothing here ever carries the employee's platform
identity: only the case code and the words typed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from domain.messages import Media, Outbound, OutboundKind
from domain.vocabulary import CaseStatus, Control, Role
from handlers.context import Ctx
from handlers.doc_clean import DocumentRejected, clean_document
from handlers.i18n import LANGUAGE_NAMES
from store.models import Case, Confidant

log = logging.getLogger("confidant.notifications")


async def candidates(ctx: Ctx, case: Case) -> list[Confidant]:
    """Who may claim: the chosen confidant, or everyone."""
    if case.chosen_confidant_id:
        chosen = await ctx.tx.confidants.by_id(case.chosen_confidant_id)
        if chosen is not None and chosen.active:
            return [chosen]
    return await ctx.tx.confidants.all()


async def announce_case(ctx: Ctx, case: Case, to: list[Confidant], escalation: bool = False
                        ) -> None:
    """New case: code, language, channel, urgency; no content until claimed.
    Those told are recorded (`announced_to`)."""
    if case.announced_at is None:
        case.announced_at = ctx.now
    await ctx.tx.cases.record_announced(case, [c.id for c in to])
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
    """A crisis word in a case nobody has claimed yet: every candidate hears
    now (or at the start of their shift)."""
    told = await candidates(ctx, case)
    await ctx.tx.cases.record_announced(case, [c.id for c in told])
    for c in told:
        lang = ctx.confidant_lang(c)
        await ctx.to_confidant(c, ctx.t("notify.urgent_waiting", lang=lang, code=case.code),
                               [[(ctx.t("notify.claim_button", lang=lang, code=case.code),
                                  f"claim:{case.id}")]], kind=OutboundKind.URGENT,
                               about=[case])


async def announced_to(ctx: Ctx, case: Case) -> list[Confidant]:
    """The active confidants who were sent a notice offering the case to
    claim: not a colleague who was off duty when it was announced, until an
    urgent word or an escalation offers it to them too."""
    told = set(await ctx.tx.cases.announced_to(case))
    return [c for c in await ctx.tx.confidants.all() if c.id in told]


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
        reason = exc.reason if isinstance(exc, DocumentRejected) else "media.not_cleanable"
        log.info("document not relayed case=%s reason=%s", case.code,
                 "timeout" if isinstance(exc, TimeoutError)
                 else "old format" if reason == "media.old_format" else "not cleanable")
        await _tell_employee(ctx, case, reason)
        return None


async def relay_to_confidant(ctx: Ctx, case: Case, confidant: Confidant, text: str,
                             media: Media | None, urgent: bool, *, helping: bool = False) -> None:
    """The employee's words (or file) for a confidant, marked urgent when
    they are.  A colleague ``helping`` out gets them as a notice about the
    case, not of it: outside its Matrix room, which is the assigned
    confidant's, who must not be woken by what is said there off shift."""
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
    kind = OutboundKind.URGENT if urgent else OutboundKind.RELAY
    if helping:
        await ctx.to_confidant(confidant, body, about=[case], media=media, kind=kind)
        return
    await ctx.to_confidant(confidant, body, case=case, media=media, kind=kind)


async def _tell_employee(ctx: Ctx, case: Case, key: str) -> None:
    if ctx.role == Role.EMPLOYEE and ctx.contact is not None \
            and ctx.contact.id == case.contact_id:
        await ctx.reply(ctx.t(key), case=case)
        return
    await ctx.to_case_employee(case, lambda lang: ctx.t(key, lang=lang))


async def _told_of(ctx: Ctx, case: Case) -> list[Confidant]:
    """Who knows of the case: its confidant and a colleague who helped out
    (`handlers.help_out`), or, while unclaimed, everyone it was announced
    to (so nobody tries to claim a case that is gone)."""
    if case.confidant_id:
        return await case_confidants(ctx, case)
    if case.announced_at is None:
        return []
    return await candidates(ctx, case) if case.escalated_at is None \
        else await ctx.tx.confidants.all()


async def case_confidants(ctx: Ctx, case: Case) -> list[Confidant]:
    """The case's confidant, and the colleague who helped out with it, if any."""
    found = []
    for cid in dict.fromkeys(filter(None, (case.confidant_id, case.helper_id))):
        c = await ctx.tx.confidants.by_id(cid)
        if c is not None:
            found.append(c)
    return found


async def employee_stopped(ctx: Ctx, case: Case) -> None:
    for c in await _told_of(ctx, case):
        await ctx.to_confidant(c, ctx.t("stop.to_confidant", lang=ctx.confidant_lang(c),
                                        code=case.code),
                               case=case if case.confidant_id else None,
                               case_code=None if case.confidant_id else case.code,
                               control=Control.CASE_CLOSE)


async def case_erased(ctx: Ctx, case: Case) -> None:
    """Everyone who holds a line naming the case hears of the erasure, so a
    console can drop those lines: its confidant and helper, and also the
    colleagues it was announced to (their "new case" and "taken by" lines
    name the code even after someone else claimed it)."""
    told = {c.id: c for c in await _told_of(ctx, case)}
    for c in await announced_to(ctx, case):
        told.setdefault(c.id, c)
    for c in told.values():
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
    elif (contact := await ctx.case_contact(case)) is not None:
        await ctx.to_contact(contact, ctx.t("unreachable.confidant", lang=contact.language),
                             case=case)
