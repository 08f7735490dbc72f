"""`AdminTx`: the only part of the store the administration may use.

Administrators (HR, the prevention service) set up confidants, shifts,
absences and rooms, and read anonymous counters; they must never see a
case, a message, a note, a contact or a declaration.  `AdminTx` is the
narrow door for that: built over one `Tx`, it keeps only the repositories
administration needs and offers operations on rota, confidants, rooms,
absences, admin accounts, the audit trail and report aggregates, none of
which returns case content.  `handlers.administration` is typed against
this class alone (the architecture test checks it imports nothing else of
the store), so the service, and every page or command built on it, cannot
ask for what it is not given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocabulary import ACTIVE_CASE_STATUSES, AppointmentStatus
from store.audit import AuditRepo
from store.confidants import ConfidantRepo
from store.models import (
    Absence,
    AdminAccount,
    AdminLoginToken,
    AdminSession,
    Appointment,
    AuditEvent,
    Case,
    CaseStatistic,
    Confidant,
    Room,
    Shift,
    new_id,
)
from store.rota import RotaRepo
from store.tokens import issue_link, new_secret, redeem_link, secret_hash

if TYPE_CHECKING:
    from store.store import Store, Tx

ADMIN_SESSION_LIFETIME = timedelta(hours=8)
"""A web admin console session ends after a working day, whatever happens."""


class AdminTx:
    """Administration's view of one transaction (see the module docstring)."""

    def __init__(self, tx: Tx) -> None:
        self._s: AsyncSession = tx.session
        self._rota: RotaRepo = tx.rota
        self._people: ConfidantRepo = tx.confidants
        self._audit: AuditRepo = tx.audit

    async def flush(self) -> None:
        """Write pending changes so a following read sees them."""
        await self._s.flush()

    # ------------------------------------------------------------ confidants

    async def confidants(self, active_only: bool = True) -> list[Confidant]:
        return await self._people.all(active_only=active_only)

    async def confidant_by_name(self, name: str) -> Confidant | None:
        """Exact name, else a unique case-insensitive match."""
        return await self._people.by_name(name)

    async def confidant_by_id(self, confidant_id: str) -> Confidant | None:
        return await self._people.by_id(confidant_id)

    async def add_confidant(self, name: str, *, bio: str, languages: list[str],
                            attested_by: str, now: datetime) -> Confidant:
        return await self._people.add(name, bio=bio, languages=languages,
                                      attested_by=attested_by, now=now)

    async def channels(self, confidant: Confidant) -> list[str]:
        """The channels a confidant is reached on (names only, never addresses)."""
        return sorted(await self._people.channels(confidant))

    async def address_owner(self, channel: str, address: str) -> Confidant | None:
        """Which active confidant already has this address, to refuse a second one."""
        return await self._people.find_by_address(channel, address)

    async def set_address(self, confidant: Confidant, channel: str, address: str | None) -> None:
        """Give, replace or (None) take away a confidant's address on a channel."""
        await self._people.set_address(confidant, channel, address)

    async def deactivate(self, confidant: Confidant) -> None:
        """No more cases or shifts; closed cases keep their history."""
        await self._people.remove(confidant)

    async def console_token(self, confidant: Confidant, now: datetime) -> str:
        """A one-time confidant console login link's secret."""
        return await self._people.new_login_token(confidant, now)

    # ------------------------------------------------------------ rota

    async def shifts(self, confidant_id: str | None = None) -> list[Shift]:
        return await self._rota.shifts(confidant_id)

    async def shift(self, shift_id: str) -> Shift | None:
        """By id or a unique prefix of 4 or more characters."""
        return await self._rota.shift(shift_id)

    async def add_shift(self, confidant: Confidant, weekday: int, start: time, end: time,
                        kind: str) -> Shift:
        return await self._rota.add_shift(confidant, weekday, start, end, kind)

    async def change_shift(self, shift: Shift, weekday: int, start: time, end: time,
                           kind: str) -> None:
        await self._rota.change_shift(shift, weekday, start, end, kind)

    async def remove_shift(self, shift: Shift) -> None:
        await self._rota.remove_shift(shift)

    async def absences(self, confidant_id: str | None = None) -> list[Absence]:
        return await self._rota.absences(confidant_id)

    async def absence(self, absence_id: str) -> Absence | None:
        """By id or a unique prefix of 4 or more characters."""
        return await self._rota.absence(absence_id)

    async def add_absence(self, confidant: Confidant, start: date, end: date) -> Absence:
        return await self._rota.add_absence(confidant, start, end)

    async def remove_absence(self, absence: Absence) -> None:
        await self._rota.remove_absence(absence)

    async def rooms(self, active_only: bool = True) -> list[Room]:
        return await self._rota.rooms(active_only)

    async def room_by_name(self, name: str) -> Room | None:
        return await self._rota.room_by_name(name)

    async def room_by_id(self, room_id: str) -> Room | None:
        return await self._s.get(Room, room_id)

    async def add_room(self, name: str, site: str = "", notes: str = "") -> Room:
        return await self._rota.add_room(name, site, notes)

    # ------------------------------------------------------------ counts only

    async def talks_per_day(self, start: datetime, end: datetime, tz: ZoneInfo
                            ) -> dict[date, int]:
        """How many talks are booked on each local day of [start, end): a count,
        never which case or when exactly."""
        rows = await self._s.scalars(select(Appointment.starts_at).where(
            Appointment.status == AppointmentStatus.BOOKED,
            Appointment.starts_at >= start, Appointment.starts_at < end))
        out: dict[date, int] = {}
        for at in rows.all():
            day = at.astimezone(tz).date()
            out[day] = out.get(day, 0) + 1
        return out

    async def talks_in_room_after(self, room_id: str, now: datetime) -> int:
        """Booked talks still to come in a room (a room with some cannot go)."""
        return int(await self._s.scalar(select(func.count()).select_from(Appointment).where(
            Appointment.room_id == room_id, Appointment.status == AppointmentStatus.BOOKED,
            Appointment.starts_at > now)) or 0)

    async def open_case_count(self) -> int:
        """Conversations not yet closed, as one number."""
        return int(await self._s.scalar(select(func.count()).select_from(Case).where(
            Case.status.in_(ACTIVE_CASE_STATUSES))) or 0)

    async def statistics(self, month_from: str, month_to: str) -> list[CaseStatistic]:
        """The anonymous counters (month, channel, theme, heard in time), which
        outlive the cases and point at none."""
        return list((await self._s.scalars(select(CaseStatistic).where(
            CaseStatistic.month >= month_from, CaseStatistic.month <= month_to))).all())

    # ------------------------------------------------------------ audit

    async def record(self, actor: str, kind: str, subject: str = "", detail: str = "") -> None:
        """An audit event: who did what to which rota item; never any content."""
        await self._audit.record(actor, kind, subject, detail)

    async def audit_events(self, limit: int = 200) -> list[AuditEvent]:
        """What admins did, newest first; case transitions (which name case
        codes) are not among them."""
        return list((await self._s.scalars(
            select(AuditEvent).where(AuditEvent.actor.startswith("admin:"))
            .order_by(AuditEvent.at.desc()).limit(limit))).all())

    # ------------------------------------------------------------ admin accounts

    async def admins(self) -> list[AdminAccount]:
        return list((await self._s.scalars(select(AdminAccount)
                                           .order_by(AdminAccount.name))).all())

    async def admin_by_name(self, name: str) -> AdminAccount | None:
        """Exact name, else a unique case-insensitive match."""
        found = await self._s.scalar(select(AdminAccount).where(AdminAccount.name == name))
        if found is None:
            matches = [a for a in await self.admins() if a.name.casefold() == name.casefold()]
            found = matches[0] if len(matches) == 1 else None
        return found

    async def add_admin(self, name: str, *, source: str, created_by: str,
                        now: datetime) -> AdminAccount:
        account = AdminAccount(id=new_id(), name=name, source=source, created_by=created_by,
                               created_at=now)
        self._s.add(account)
        await self._s.flush()
        return account

    async def remove_admin(self, account: AdminAccount) -> None:
        """The account goes, and its open links and sessions with it."""
        for model in (AdminLoginToken, AdminSession):
            await self._s.execute(delete(model).where(model.admin_id == account.id))
        await self._s.delete(account)
        await self._s.flush()

    async def admin_token(self, account: AdminAccount, now: datetime) -> str:
        """A one-time web admin console login link's secret (24 hours)."""
        return await issue_link(self._s, AdminLoginToken(admin_id=account.id), now)

    async def redeem_admin_token(self, secret: str, now: datetime) -> AdminAccount | None:
        """The account a login link names, once, before it expires."""
        row = await redeem_link(self._s, AdminLoginToken, secret, now)
        if row is None:
            return None
        return await self._s.get(AdminAccount, row.admin_id)

    async def open_admin_session(self, account: AdminAccount, now: datetime,
                                 lifetime: timedelta = ADMIN_SESSION_LIFETIME) -> str:
        """A session cookie's secret; expired sessions are swept on the way."""
        await self._s.execute(delete(AdminSession).where(AdminSession.expires_at < now))
        secret, hashed = new_secret()
        self._s.add(AdminSession(sid_hash=hashed, admin_id=account.id, created_at=now,
                                 expires_at=now + lifetime))
        await self._s.flush()
        return secret

    async def admin_session(self, secret: str, now: datetime) -> AdminAccount | None:
        """The account of a live session, or nothing once it has expired."""
        row = await self._s.get(AdminSession, secret_hash(secret))
        if row is None or row.expires_at < now:
            return None
        return await self._s.get(AdminAccount, row.admin_id)

    async def end_admin_session(self, secret: str) -> None:
        await self._s.execute(delete(AdminSession).where(
            AdminSession.sid_hash == secret_hash(secret)))


@asynccontextmanager
async def admin_tx(store: Store) -> AsyncIterator[AdminTx]:
    """One transaction of the store, seen through `AdminTx` only."""
    async with store.tx() as tx:
        yield AdminTx(tx)
