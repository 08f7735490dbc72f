"""Shifts, weeks, absences and rooms: the rota part of the admin service."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from domain.parsing import monday_of, parse_week, week_label
from domain.vocabulary import ShiftKind
from handlers.administration.base import (
    Calendar,
    Clock,
    Day,
    ServiceBase,
    active_by_ref,
    day_in,
    day_of,
    time_of,
)
from handlers.administration.problems import AdminError, Problem, parsed
from handlers.administration.validation import (
    Gap,
    ShiftSpec,
    check_absence,
    check_name,
    check_shift,
    gaps,
)
from handlers.administration.views import (
    AbsenceInfo,
    RoomInfo,
    ShiftChange,
    ShiftInfo,
    WeekShift,
    WeekView,
)
from store.models import Absence, Confidant, Room, Shift


def shift_info(s: Shift, name: str) -> ShiftInfo:
    return ShiftInfo(s.id, s.confidant_id, name, s.weekday, s.start, s.end, s.kind)


def absence_info(a: Absence, name: str) -> AbsenceInfo:
    return AbsenceInfo(a.id, a.confidant_id, name, a.start_date, a.end_date)


def room_info(r: Room) -> RoomInfo:
    return RoomInfo(r.id, r.name, r.site, r.notes, r.active)


class RotaOps(ServiceBase):
    """Weekly shifts, one week's rota, absences and rooms."""

    async def _shift(self, ref: str) -> Shift:
        s = await self.tx.shift(ref.strip().lower())
        if s is None:
            raise AdminError("adm.unknown_id", f"no single shift has id '{ref}' (see: "
                             "confidant admin rota show)", "id", value=ref[:8])
        return s

    async def shifts(self, confidant: str | None = None) -> list[ShiftInfo]:
        names = {c.id: c.name for c in await self.tx.confidants()}
        only = (await self._confidant(confidant)).id if confidant else None
        return [shift_info(s, names[s.confidant_id]) for s in await self.tx.shifts(only)
                if s.confidant_id in names]

    async def shift(self, shift_id: str) -> ShiftInfo:
        s = await self._shift(shift_id)
        return shift_info(s, (await self._names()).get(s.confidant_id, "?"))

    async def _checked(self, c: Confidant, spec: ShiftSpec, skip: str = "") -> None:
        others = [(s.id, ShiftSpec(s.weekday, s.start, s.end, s.kind))
                  for s in await self.tx.shifts(c.id) if s.id != skip]
        check_shift(spec, others, c.name)

    async def add_shift(self, confidant: str, day: Day, start: Clock, end: Clock,
                        kind: str = ShiftKind.DUTY.value, *, dry_run: bool = False
                        ) -> ShiftChange:
        """A weekly shift, refused if it makes no sense or overlaps another of
        the same kind; warns about office hours still without anyone on duty."""
        spec = ShiftSpec(day_of(day), time_of(start, "start"), time_of(end, "end"),
                         kind.strip().lower())
        c = await self._confidant(confidant)
        await self._checked(c, spec)
        if dry_run:
            info = ShiftInfo("", c.id, c.name, spec.weekday, spec.start, spec.end, spec.kind)
            return ShiftChange(info, tuple(await self._warnings({spec.weekday}, spec)), False)
        s = await self.tx.add_shift(c, spec.weekday, spec.start, spec.end, spec.kind)
        await self.audit("rota.shift_added", c.name, f"{s.id[:8]} {spec.label()}")
        return ShiftChange(shift_info(s, c.name), tuple(await self._warnings({spec.weekday})))

    async def edit_shift(self, shift_id: str, *, day: Day | None = None,
                         start: Clock | None = None, end: Clock | None = None,
                         kind: str | None = None, dry_run: bool = False) -> ShiftChange:
        """Move or resize a shift (what is not given stays), checked like a new one."""
        s = await self._shift(shift_id)
        c = await self._confidant(s.confidant_id)
        before = ShiftSpec(s.weekday, s.start, s.end, s.kind)
        spec = ShiftSpec(before.weekday if day is None else day_of(day),
                         before.start if start is None else time_of(start, "start"),
                         before.end if end is None else time_of(end, "end"),
                         before.kind if kind is None else kind.strip().lower())
        await self._checked(c, spec, skip=s.id)
        touched = {before.weekday, spec.weekday}
        if dry_run:
            info = ShiftInfo(s.id, c.id, c.name, spec.weekday, spec.start, spec.end, spec.kind)
            return ShiftChange(info, tuple(await self._warnings(touched, spec, s.id)), False)
        await self.tx.change_shift(s, spec.weekday, spec.start, spec.end, spec.kind)
        await self.audit("rota.shift_changed", c.name,
                         f"{s.id[:8]} {before.label()} -> {spec.label()}")
        return ShiftChange(shift_info(s, c.name), tuple(await self._warnings(touched)))

    async def remove_shift(self, shift_id: str, *, dry_run: bool = False) -> ShiftChange:
        s = await self._shift(shift_id)
        name = (await self._names()).get(s.confidant_id, "?")
        info = shift_info(s, name)
        if dry_run:
            return ShiftChange(info, tuple(await self._warnings({s.weekday}, None, s.id)), False)
        await self.tx.remove_shift(s)
        await self.tx.flush()
        await self.audit("rota.shift_removed", name, f"{s.id[:8]} {info.label()}")
        return ShiftChange(info, tuple(await self._warnings({info.weekday})))

    async def _duty(self, without: str = "") -> list[tuple[int, time, time]]:
        active = {c.id for c in await self.tx.confidants()}
        return [(s.weekday, s.start, s.end) for s in await self.tx.shifts()
                if s.kind == ShiftKind.DUTY and s.confidant_id in active and s.id != without]

    async def _warnings(self, weekdays: set[int], extra: ShiftSpec | None = None,
                        without: str = "") -> list[Problem]:
        """Office-hours gaps on the weekdays a change touches."""
        duty = await self._duty(without)
        if extra is not None and extra.kind == ShiftKind.DUTY:
            duty.append((extra.weekday, extra.start, extra.end))
        return [g.problem() for g in gaps(self.settings.office_hours, duty)
                if g.weekday in weekdays]

    async def office_gaps(self) -> list[Gap]:
        """Office hours of the weekly pattern with nobody on duty (absences aside)."""
        return gaps(self.settings.office_hours, await self._duty())

    async def week(self, week: str | date | None = None) -> WeekView:
        """One ISO week: every active confidant's shifts on their dates, who is
        away, how many talks are booked each day, and the office-hours gaps."""
        if week is None or week == "":
            monday = monday_of(self.today)
        elif isinstance(week, date):
            monday = monday_of(week)
        else:
            monday = parsed(parse_week, week, "week")
        tz = self.settings.tz
        days = tuple(monday + timedelta(days=i) for i in range(7))
        names = {c.id: c.name for c in await self.tx.confidants()}
        away = [(a.confidant_id, a.start_date, a.end_date) for a in await self.tx.absences()]
        shown: list[WeekShift] = []
        duty: list[tuple[int, time, time]] = []
        for s in await self.tx.shifts():
            if s.confidant_id not in names:
                continue
            day = days[s.weekday]
            absent = any(cid == s.confidant_id and lo <= day <= hi for cid, lo, hi in away)
            shown.append(WeekShift(shift_info(s, names[s.confidant_id]), day,
                                   datetime.combine(day, s.start, tzinfo=tz),
                                   datetime.combine(day, s.end, tzinfo=tz), absent))
            if s.kind == ShiftKind.DUTY and not absent:
                duty.append((s.weekday, s.start, s.end))
        lo = datetime.combine(monday, time(0), tzinfo=tz)
        hi = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz)
        week_gap = timedelta(days=7)
        return WeekView(
            label=week_label(monday), monday=monday, days=days, starts_at=lo, ends_at=hi,
            timezone=self.settings.timezone, shifts=tuple(shown),
            talks_booked=await self.tx.talks_per_day(lo, hi, tz),
            gaps=tuple(gaps(self.settings.office_hours, duty, days)),
            previous=week_label(monday - week_gap), next=week_label(monday + week_gap))

    # ------------------------------------------------------------ absences

    async def absences(self, confidant: str | None = None, include_past: bool = False
                       ) -> list[AbsenceInfo]:
        """Absences of active confidants, current and future unless ``include_past``."""
        names = {c.id: c.name for c in await self.tx.confidants()}
        only = (await self._confidant(confidant)).id if confidant else None
        return [absence_info(a, names[a.confidant_id]) for a in await self.tx.absences(only)
                if a.confidant_id in names and (include_past or a.end_date >= self.today)]

    async def add_absence(self, confidant: str, start: Calendar, end: Calendar, *,
                          dry_run: bool = False) -> AbsenceInfo:
        """Days away, the last one included: no cases or talks for them then."""
        first, last = day_in(start, "start"), day_in(end, "end")
        check_absence(first, last)
        c = await self._confidant(confidant)
        if dry_run:
            return AbsenceInfo("", c.id, c.name, first, last)
        a = await self.tx.add_absence(c, first, last)
        await self.audit("rota.absence_added", c.name, f"{a.id[:8]} {first} to {last}")
        return absence_info(a, c.name)

    async def remove_absence(self, absence_id: str, *, dry_run: bool = False) -> AbsenceInfo:
        a = await self.tx.absence(absence_id.strip().lower())
        if a is None:
            raise AdminError("adm.unknown_id", f"no single absence has id '{absence_id}' "
                             "(see: confidant admin absence list)", "id",
                             value=absence_id[:8])
        info = absence_info(a, (await self._names()).get(a.confidant_id, "?"))
        if not dry_run:
            await self.tx.remove_absence(a)
            await self.audit("rota.absence_removed", info.confidant,
                             f"{a.id[:8]} {info.start} to {info.end}")
        return info

    # ------------------------------------------------------------ rooms

    async def rooms(self) -> list[RoomInfo]:
        return [room_info(r) for r in await self.tx.rooms()]

    async def _room(self, ref: str) -> Room:
        """An active room by id or name."""
        return await active_by_ref(ref, self.tx.room_by_id, self.tx.room_by_name, "room", "name",
                                   "adm.unknown_room")

    async def add_room(self, name: str, site: str = "", notes: str = "", *,
                       dry_run: bool = False) -> RoomInfo:
        """A discreet room for talks (a removed room of that name comes back)."""
        name, site = check_name(name), site.strip()[:80]
        room = await self.tx.room_by_name(name)
        if room is not None and room.active:
            raise AdminError("adm.room_exists", f"room '{name}' already exists", "name",
                             name=name)
        if dry_run:
            return RoomInfo("", name, site, notes)
        if room is not None:
            room.active, room.site, room.notes = True, site, notes
        else:
            room = await self.tx.add_room(name, site, notes)
        await self.audit("room.added", name, site)
        return room_info(room)

    async def edit_room(self, ref: str, *, site: str | None = None,
                        notes: str | None = None) -> RoomInfo:
        room = await self._room(ref)
        if site is not None:
            room.site = site.strip()[:80]
        if notes is not None:
            room.notes = notes
        changed = [k for k, v in (("site", site), ("notes", notes)) if v is not None]
        await self.audit("room.changed", room.name, ",".join(changed))
        return room_info(room)

    async def remove_room(self, ref: str, *, dry_run: bool = False) -> RoomInfo:
        """Stop offering a room; refused while talks are booked in it."""
        room = await self._room(ref)
        busy = await self.tx.talks_in_room_after(room.id, self.now)
        if busy:
            raise AdminError("adm.room_busy", f"room '{room.name}' still has {busy} talk(s) "
                             "booked; move them first", "name", name=room.name, count=busy)
        if not dry_run:
            room.active = False
            await self.audit("room.removed", room.name)
        return room_info(room)

