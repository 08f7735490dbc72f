"""Cases and what hangs on them: who was told, held messages, notes, consents, erasure."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.messages import Media
from domain.vocabulary import ACTIVE_CASE_STATUSES, CaseStatus, ConsentForm, Theme
from store.models import (
    Case,
    CaseAnnouncement,
    CaseMessage,
    CaseStatistic,
    Consent,
    Contact,
    Note,
    new_id,
)
from store.outbox import OutboxRepo
from store.vault import Vault

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
"""No 0/O, 1/I/L: codes are read aloud and typed from paper."""


def new_case_code() -> str:
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
    return f"{chars[:3]}-{chars[3:]}"


def normalise_code(text: str) -> str:
    raw = "".join(ch for ch in text.upper() if ch.isalnum())
    return f"{raw[:3]}-{raw[3:6]}" if len(raw) == 6 else text.strip().upper()


class CaseRepo:
    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self._s = session
        self._v = vault

    async def create(self, contact: Contact, *, channel: str, language: str,
                     chosen_confidant_id: str | None, now: datetime, deadline: datetime) -> Case:
        while True:
            code = new_case_code()
            if await self._s.scalar(select(Case.id).where(Case.code == code)) is None:
                break
        key_id = await self._v.new_key("case")
        case = Case(id=new_id(), code=code, contact_id=contact.id, data_key_id=key_id,
                    status=CaseStatus.WAITING, channel=channel, language=language,
                    chosen_confidant_id=chosen_confidant_id, opened_at=now, deadline_at=deadline,
                    last_activity_at=now)
        self._s.add(case)
        await self._s.flush()
        return case

    async def by_code(self, code: str) -> Case | None:
        return await self._s.scalar(select(Case).where(Case.code == normalise_code(code)))

    async def by_id(self, case_id: str) -> Case | None:
        return await self._s.get(Case, case_id)

    async def for_contact(self, contact_id: str) -> list[Case]:
        return list((await self._s.scalars(
            select(Case).where(Case.contact_id == contact_id).order_by(Case.opened_at))).all())

    async def open_for_confidant(self, confidant_id: str) -> list[Case]:
        return list((await self._s.scalars(
            select(Case).where(Case.confidant_id == confidant_id, Case.status == CaseStatus.OPEN)
            .order_by(Case.deadline_at))).all())

    async def waiting(self) -> list[Case]:
        return list((await self._s.scalars(
            select(Case).where(Case.status == CaseStatus.WAITING).order_by(Case.opened_at))).all())

    async def claim(self, case: Case, confidant_id: str, now: datetime) -> bool:
        """First claim wins: the update only matches while the case still waits."""
        result = await self._s.execute(
            update(Case).where(Case.id == case.id, Case.status == CaseStatus.WAITING)
            .values(status=CaseStatus.OPEN, confidant_id=confidant_id, claimed_at=now,
                    last_activity_at=now)
            .execution_options(synchronize_session=False))
        await self._s.refresh(case)
        return bool(getattr(result, "rowcount", 0))

    async def take_help(self, case: Case, confidant_id: str, now: datetime) -> bool:
        """First colleague to help out wins: the update only matches while the
        case is open, its help window is, and nobody helps yet."""
        result = await self._s.execute(
            update(Case).where(Case.id == case.id, Case.status == CaseStatus.OPEN,
                               Case.helper_id.is_(None), Case.help_until > now)
            .values(helper_id=confidant_id)
            .execution_options(synchronize_session=False))
        await self._s.refresh(case)
        return bool(getattr(result, "rowcount", 0))

    async def record_announced(self, case: Case, confidant_ids: list[str]) -> None:
        """These confidants were sent a notice offering the case to claim.
        Insert-or-ignore: told twice (an urgent word, an escalation) is once,
        also when two events announce the case at the same moment."""
        if not confidant_ids:
            return
        insert = pg_insert if self._s.get_bind().dialect.name == "postgresql" else sqlite_insert
        await self._s.execute(insert(CaseAnnouncement).values(
            [{"case_id": case.id, "confidant_id": cid} for cid in dict.fromkeys(confidant_ids)])
            .on_conflict_do_nothing())

    async def announced_to(self, case: Case) -> list[str]:
        """The confidants ever sent a notice offering the case (`record_announced`)."""
        return list((await self._s.scalars(select(CaseAnnouncement.confidant_id).where(
            CaseAnnouncement.case_id == case.id))).all())

    async def drop_held_messages(self, case: Case) -> None:
        """Held copies nobody will read (a help window that ended unanswered)."""
        await self._s.execute(delete(CaseMessage).where(CaseMessage.case_id == case.id))

    async def hold_message(self, case: Case, text: str, media: Media | None, urgent: bool,
                           now: datetime) -> None:
        """Keep a message (and its file) sealed until the case is claimed, or,
        in an open case, until a colleague helps out (`take_help`)."""
        seq = int(await self._s.scalar(select(func.coalesce(func.max(CaseMessage.seq), 0))
                                       .where(CaseMessage.case_id == case.id)) or 0) + 1
        body: dict[str, str] = {"text": text}
        if media is not None:
            body.update(kind=media.kind, filename=media.filename, mime=media.mime_type,
                        data=base64.b64encode(media.data).decode())
        mid = new_id()
        self._s.add(CaseMessage(id=mid, case_id=case.id, seq=seq, urgent=urgent, created_at=now,
                                body_enc=await self._v.seal(
                                    case.data_key_id, json.dumps(body, ensure_ascii=False),
                                    "case_messages.body_enc", mid)))

    async def take_held_messages(self, case: Case) -> list[tuple[str, Media | None, bool]]:
        """Held messages in order (text, file, urgent), deleted as they are
        handed to the outbox."""
        rows = (await self._s.scalars(select(CaseMessage).where(CaseMessage.case_id == case.id)
                                      .order_by(CaseMessage.seq))).all()
        out: list[tuple[str, Media | None, bool]] = []
        for r in rows:
            body = json.loads(await self._v.open_text(case.data_key_id, r.body_enc,
                                                      "case_messages.body_enc", r.id))
            media = None
            if "data" in body:
                media = Media(kind=body["kind"], data=base64.b64decode(body["data"]),
                              filename=body.get("filename", "file"),
                              mime_type=body.get("mime", "application/octet-stream"))
            out.append((str(body.get("text", "")), media, r.urgent))
            await self._s.delete(r)
        return out

    async def held_count(self, case: Case) -> int:
        return int(await self._s.scalar(select(func.count()).select_from(CaseMessage)
                                        .where(CaseMessage.case_id == case.id)) or 0)

    async def add_note(self, case: Case, confidant_id: str, text: str, now: datetime) -> None:
        nid = new_id()
        self._s.add(Note(id=nid, case_id=case.id, confidant_id=confidant_id, created_at=now,
                         body_enc=await self._v.seal(case.data_key_id, text, "notes.body_enc",
                                                     nid)))

    async def notes(self, case: Case) -> list[tuple[datetime, str]]:
        rows = (await self._s.scalars(select(Note).where(Note.case_id == case.id)
                                      .order_by(Note.created_at))).all()
        return [(r.created_at, await self._v.open_text(case.data_key_id, r.body_enc,
                                                       "notes.body_enc", r.id)) for r in rows]

    async def request_consent(self, case: Case, form: ConsentForm, now: datetime) -> Consent:
        c = Consent(id=new_id(), case_id=case.id, form=form, requested_at=now)
        self._s.add(c)
        await self._s.flush()
        return c

    async def consent(self, consent_id: str) -> Consent | None:
        return await self._s.get(Consent, consent_id)

    def _count(self, case: Case, theme: Theme) -> None:
        heard = None if case.heard_at is None else case.heard_at <= case.deadline_at
        self._s.add(CaseStatistic(month=case.opened_at.strftime("%Y-%m"), channel=case.channel,
                                  theme=theme, heard_in_time=heard))

    async def close(self, case: Case, theme: Theme, now: datetime) -> None:
        case.status = CaseStatus.CLOSED
        case.theme = theme
        case.closed_at = now
        case.last_activity_at = now
        self._count(case, theme)
        await self._s.execute(update(Contact).where(Contact.active_case_id == case.id)
                              .values(active_case_id=None))

    async def erase(self, case: Case, now: datetime, theme: Theme | None = None) -> None:
        """Keep an anonymous counter, then shred the key and delete the case and
        everything hanging on it."""
        if case.status != CaseStatus.CLOSED:  # closed cases were counted when they closed
            self._count(case, theme or Theme.WITHDRAWN)
        await OutboxRepo(self._s, self._v).drop_for_case(case.id)
        await self._s.execute(update(Contact).where(Contact.active_case_id == case.id)
                              .values(active_case_id=None))
        await self._v.shred(case.data_key_id)
        await self._s.execute(delete(Case).where(Case.id == case.id))

    # --- timers: every query below is indexed on (status, time) or its time ----

    async def unclaimed_since(self, cutoff: datetime) -> list[Case]:
        return list((await self._s.scalars(select(Case).where(
            Case.status == CaseStatus.WAITING, Case.announced_at.is_not(None),
            Case.announced_at <= cutoff, Case.escalated_at.is_(None)))).all())

    async def unannounced(self) -> list[Case]:
        return list((await self._s.scalars(select(Case).where(
            Case.status == CaseStatus.WAITING, Case.announced_at.is_(None)))).all())

    async def deadline_soon(self, before: datetime) -> list[Case]:
        return list((await self._s.scalars(select(Case).where(
            Case.status.in_(ACTIVE_CASE_STATUSES), Case.heard_at.is_(None),
            Case.deadline_reminded_at.is_(None), Case.deadline_at <= before))).all())

    async def idle_since(self, cutoff: datetime) -> list[Case]:
        return list((await self._s.scalars(select(Case).where(
            Case.status.in_(ACTIVE_CASE_STATUSES), Case.last_activity_at < cutoff))).all())

    async def help_ending(self, now: datetime) -> list[Case]:
        """Cases whose help window is over (their confidant's shift has started)."""
        return list((await self._s.scalars(select(Case).where(
            Case.help_until.is_not(None), Case.help_until <= now))).all())

    async def closed_before(self, cutoff: datetime) -> list[Case]:
        return list((await self._s.scalars(select(Case).where(
            Case.status == CaseStatus.CLOSED, Case.closed_at < cutoff))).all())
