"""In-person talks: booking guarded by unique indexes and an overlap check,
moving, cancelling, and the queries behind reminders and the admin report."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocabulary import AppointmentStatus
from store.models import Appointment, Case, Room, new_id


class SlotTaken(Exception):
    """Someone else got this confidant or room at this time first."""


class AppointmentRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def _lock(self, *keys: str) -> None:
        """On PostgreSQL, serialise bookings per confidant and per room so the
        overlap check cannot race; SQLite already has a single writer."""
        if self._s.get_bind().dialect.name != "postgresql":
            return
        for key in sorted(set(keys)):
            await self._s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                  {"k": f"appt:{key}"})

    async def overlapping(self, *, starts_at: datetime, ends_at: datetime, buffer: timedelta,
                          confidant_id: str | None = None, room_id: str | None = None,
                          ignore_id: str | None = None) -> list[Appointment]:
        """Booked talks of this confidant or in this room that come closer than
        the buffer to [starts_at, ends_at)."""
        who = []
        if confidant_id is not None:
            who.append(Appointment.confidant_id == confidant_id)
        if room_id is not None:
            who.append(Appointment.room_id == room_id)
        q = select(Appointment).where(
            Appointment.status == AppointmentStatus.BOOKED, or_(*who),
            Appointment.starts_at < ends_at + buffer,
            Appointment.ends_at > starts_at - buffer)
        if ignore_id is not None:
            q = q.where(Appointment.id != ignore_id)
        return list((await self._s.scalars(q)).all())

    async def book(self, case: Case, *, confidant_id: str, room_id: str, starts_at: datetime,
                   ends_at: datetime, buffer: timedelta, now: datetime,
                   replacing: Appointment | None = None) -> Appointment:
        """One booking (optionally replacing an earlier one, for a move), all or
        nothing: raises `SlotTaken` and leaves the earlier booking untouched
        when the confidant or the room is no longer free."""
        try:
            async with self._s.begin_nested():
                await self._lock(f"c:{confidant_id}", f"r:{room_id}")
                if replacing is not None:
                    replacing.status = AppointmentStatus.CANCELLED
                    await self._s.flush()
                clash = await self.overlapping(starts_at=starts_at, ends_at=ends_at,
                                               buffer=buffer, confidant_id=confidant_id,
                                               room_id=room_id)
                if clash:
                    raise SlotTaken
                appt = Appointment(id=new_id(), case_id=case.id, confidant_id=confidant_id,
                                   room_id=room_id, starts_at=starts_at, ends_at=ends_at,
                                   status=AppointmentStatus.BOOKED, created_at=now)
                if starts_at - now <= timedelta(days=1):
                    appt.reminded_day_at = now  # the confirmation is the day-before notice
                self._s.add(appt)
                await self._s.flush()
        except IntegrityError as exc:
            if replacing is not None:
                await self._s.refresh(replacing)
            raise SlotTaken from exc
        except SlotTaken:
            if replacing is not None:
                await self._s.refresh(replacing)
            raise
        return appt

    async def room(self, room_id: str) -> Room | None:
        """A talk's room, even one taken out of use since the booking."""
        return await self._s.get(Room, room_id)

    async def by_id(self, appointment_id: str) -> Appointment | None:
        return await self._s.get(Appointment, appointment_id)

    async def for_case(self, case_id: str,
                       status: AppointmentStatus | None = AppointmentStatus.BOOKED
                       ) -> list[Appointment]:
        q = select(Appointment).where(Appointment.case_id == case_id) \
            .order_by(Appointment.starts_at)
        if status is not None:
            q = q.where(Appointment.status == status)
        return list((await self._s.scalars(q)).all())

    async def booked_between(self, start: datetime, end: datetime,
                             confidant_id: str | None = None) -> list[Appointment]:
        """Booked talks that touch [start, end), for slot generation and overviews."""
        q = select(Appointment).where(Appointment.status == AppointmentStatus.BOOKED,
                                      Appointment.starts_at < end, Appointment.ends_at > start)
        if confidant_id is not None:
            q = q.where(Appointment.confidant_id == confidant_id)
        return list((await self._s.scalars(q.order_by(Appointment.starts_at))).all())

    async def cancel(self, appointment: Appointment) -> None:
        appointment.status = AppointmentStatus.CANCELLED
        await self._s.flush()

    async def due_day_reminders(self, now: datetime) -> list[Appointment]:
        return list((await self._s.scalars(select(Appointment).where(
            Appointment.status == AppointmentStatus.BOOKED, Appointment.reminded_day_at.is_(None),
            Appointment.starts_at > now,
            Appointment.starts_at <= now + timedelta(days=1)))).all())

    async def due_hour_reminders(self, now: datetime) -> list[Appointment]:
        return list((await self._s.scalars(select(Appointment).where(
            Appointment.status == AppointmentStatus.BOOKED, Appointment.reminded_hour_at.is_(None),
            Appointment.starts_at > now,
            Appointment.starts_at <= now + timedelta(hours=1)))).all())
