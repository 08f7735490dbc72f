"""Rota: weekly shifts (duty and talk hours), absences and discreet rooms."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocabulary import ShiftKind
from store.models import Absence, Confidant, Room, Shift, new_id

ById = TypeVar("ById", Shift, Absence)


class DutyCache:
    """Each confidant's weekly duty shifts and absences, kept for a moment.

    "Is she on duty?" is asked for every relayed message; the rota changes a
    few times a week.  Writes through `RotaRepo` in this process clear the
    cache at once; a change made by another process (the admin CLI) is seen
    within ``ttl`` seconds.
    """

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, list[tuple[int, time, time]],
                                       list[tuple[date, date]]]] = {}

    def get(self, confidant_id: str
            ) -> tuple[list[tuple[int, time, time]], list[tuple[date, date]]] | None:
        entry = self._entries.get(confidant_id)
        if entry is None or entry[0] < monotonic():
            return None
        return entry[1], entry[2]

    def put(self, confidant_id: str, shifts: list[tuple[int, time, time]],
            absences: list[tuple[date, date]]) -> None:
        self._entries[confidant_id] = (monotonic() + self.ttl, shifts, absences)

    def clear(self) -> None:
        self._entries.clear()


class RotaRepo:
    def __init__(self, session: AsyncSession, duty: DutyCache | None = None) -> None:
        self._s = session
        self._duty = duty if duty is not None else DutyCache(ttl=0.0)

    async def _duty_of(self, confidant_id: str
                       ) -> tuple[list[tuple[int, time, time]], list[tuple[date, date]]]:
        cached = self._duty.get(confidant_id)
        if cached is not None:
            return cached
        shifts = [(s.weekday, s.start, s.end)
                  for s in await self.shifts(confidant_id, ShiftKind.DUTY)]
        absences = [(a.start_date, a.end_date) for a in await self.absences(confidant_id)]
        self._duty.put(confidant_id, shifts, absences)
        return shifts, absences

    async def add_shift(self, confidant: Confidant, weekday: int, start: time, end: time,
                        kind: str = ShiftKind.DUTY) -> Shift:
        """Store a shift as given: whether it makes sense (end after start, no
        overlap) is checked once, in `handlers.administration.validation`."""
        self._duty.clear()
        s = Shift(id=new_id(), confidant_id=confidant.id, weekday=weekday, start=start, end=end,
                  kind=kind)
        self._s.add(s)
        await self._s.flush()
        return s

    async def change_shift(self, shift: Shift, weekday: int, start: time, end: time,
                           kind: str) -> None:
        self._duty.clear()
        shift.weekday, shift.start, shift.end, shift.kind = weekday, start, end, kind
        await self._s.flush()

    async def shifts(self, confidant_id: str | None = None, kind: str | None = None) -> list[Shift]:
        q = select(Shift).order_by(Shift.weekday, Shift.start)
        if confidant_id is not None:
            q = q.where(Shift.confidant_id == confidant_id)
        if kind is not None:
            q = q.where(Shift.kind == kind)
        return list((await self._s.scalars(q)).all())

    async def shift(self, shift_id: str) -> Shift | None:
        return await self._by_id(Shift, shift_id)

    async def remove_shift(self, shift: Shift) -> None:
        self._duty.clear()
        await self._s.delete(shift)

    async def add_absence(self, confidant: Confidant, start: date, end: date) -> Absence:
        self._duty.clear()
        a = Absence(id=new_id(), confidant_id=confidant.id, start_date=start, end_date=end)
        self._s.add(a)
        await self._s.flush()
        return a

    async def absences(self, confidant_id: str | None = None) -> list[Absence]:
        q = select(Absence).order_by(Absence.start_date)
        if confidant_id is not None:
            q = q.where(Absence.confidant_id == confidant_id)
        return list((await self._s.scalars(q)).all())

    async def absence(self, absence_id: str) -> Absence | None:
        return await self._by_id(Absence, absence_id)

    async def _by_id(self, model: type[ById], ref: str) -> ById | None:
        """A row by its id, or by a prefix of 4+ characters that only it starts with
        (what the admin copies from a listing's short ids)."""
        found = await self._s.get(model, ref)
        if found is None and len(ref) >= 4:
            rows = (await self._s.scalars(select(model).where(model.id.startswith(ref)))).all()
            found = rows[0] if len(rows) == 1 else None
        return found

    async def remove_absence(self, absence: Absence) -> None:
        self._duty.clear()
        await self._s.delete(absence)

    async def is_absent(self, confidant_id: str, day: date) -> bool:
        return await self._s.scalar(select(Absence.id).where(
            Absence.confidant_id == confidant_id, Absence.start_date <= day,
            Absence.end_date >= day).limit(1)) is not None

    async def on_duty(self, confidant_id: str, now: datetime, tz: ZoneInfo) -> bool:
        local = now.astimezone(tz)
        shifts, absences = await self._duty_of(confidant_id)
        day = local.date()
        if any(start <= day <= end for start, end in absences):
            return False
        t = local.time().replace(tzinfo=None)
        return any(weekday == local.weekday() and start <= t < end
                   for weekday, start, end in shifts)

    async def next_duty_start(self, confidant_ids: list[str], now: datetime,
                              tz: ZoneInfo) -> datetime | None:
        """Earliest moment in the next 4 weeks when one of them starts (or is on) duty."""
        shifts = [s for cid in confidant_ids for s in await self.shifts(cid, ShiftKind.DUTY)]
        if not shifts:
            return None
        local_now = now.astimezone(tz)
        best: datetime | None = None
        for offset in range(29):
            day = local_now.date() + timedelta(days=offset)
            for s in shifts:
                if s.weekday != day.weekday() or await self.is_absent(s.confidant_id, day):
                    continue
                start = datetime.combine(day, s.start, tzinfo=tz)
                end = datetime.combine(day, s.end, tzinfo=tz)
                if end <= local_now:
                    continue
                candidate = max(start, local_now)
                if best is None or candidate < best:
                    best = candidate
            if best is not None:
                return best
        return best

    async def add_room(self, name: str, site: str = "", notes: str = "") -> Room:
        r = Room(id=new_id(), name=name, site=site, notes=notes, active=True)
        self._s.add(r)
        await self._s.flush()
        return r

    async def rooms(self, active_only: bool = True) -> list[Room]:
        q = select(Room).order_by(Room.name)
        if active_only:
            q = q.where(Room.active.is_(True))
        return list((await self._s.scalars(q)).all())

    async def room_by_name(self, name: str) -> Room | None:
        return await self._s.scalar(select(Room).where(Room.name == name))
