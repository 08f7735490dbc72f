"""Absences as date ranges on a month calendar, and the list of current and
coming ones; recording or removing one goes through the admin service,
which reads the dates (`domain.parsing`) and refuses an end before the start."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from aiohttp import web

from bot.webadmin.kit import Form, Kit, back
from bot.webadmin.pages import View
from domain.parsing import ParseError, monday_of, month_label, parse_month
from handlers.administration.problems import AdminError
from handlers.administration.service import AbsenceInfo

DONE = {"added": "absences.added", "removed": "removed"}


@dataclass
class CalendarDay:
    date: date
    in_month: bool
    today: bool
    away: list[AbsenceInfo] = field(default_factory=list)


def routes(kit: Kit) -> list[web.RouteDef]:
    pages = AbsencePages(kit)
    return [
        web.get("/absences", kit.page(pages.calendar)),
        web.post("/absences", kit.change(pages.add)),
        web.post("/absences/{id}/remove", kit.change(pages.remove)),
    ]


def month_weeks(first: date, today: date, absences: list[AbsenceInfo]) -> list[list[CalendarDay]]:
    """The weeks (Monday first) that hold the month of ``first``, each day
    with the absences that cover it."""
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    day = monday_of(first)
    weeks: list[list[CalendarDay]] = []
    while day < following:
        week = []
        for _ in range(7):
            week.append(CalendarDay(date=day, in_month=day.month == first.month,
                                    today=day == today,
                                    away=[a for a in absences if a.start <= day <= a.end]))
            day += timedelta(days=1)
        weeks.append(week)
    return weeks


class AbsencePages:
    def __init__(self, kit: Kit) -> None:
        self.kit = kit

    async def calendar(self, view: View, sent: Form | None = None, error: str = "",
                       error_field: str = "", status: int = 200) -> web.Response:
        """``?month=2026-07``, else this month."""
        today = self.kit.today()
        try:
            first = parse_month(view.request.query.get("month", "") or month_label(today))
        except ParseError:
            first = today.replace(day=1)
        async with self.kit.service(view) as svc:
            people = await svc.confidants()
            every = await svc.absences(include_past=True)
        coming = [a for a in every if a.end >= today]
        view.show_outcome(DONE, error)
        previous = (first - timedelta(days=1)).replace(day=1)
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        weekdays = [view.day(monday_of(today) + timedelta(days=i), "EEE") for i in range(7)]
        return self.kit.render(
            view, "absences.html", status=status, section="absences", people=people,
            coming=coming, weeks=month_weeks(first, today, every), first=first,
            previous=month_label(previous), following=month_label(following),
            weekdays=weekdays, sent=sent.as_dict() if sent else {}, error_field=error_field)

    async def add(self, view: View, form: Form) -> web.StreamResponse:
        try:
            async with self.kit.service(view) as svc:
                info = await svc.add_absence(form.get("confidant"), form.get("from"),
                                             form.get("to"))
        except AdminError as err:
            return await self.calendar(view, form, self.kit.problem_text(view, err.problem),
                                       err.problem.field, status=400)
        raise back(f"/admin/absences?month={month_label(info.start)}&done=added")

    async def remove(self, view: View, form: Form) -> web.StreamResponse:
        try:
            async with self.kit.service(view) as svc:
                info = await svc.remove_absence(view.request.match_info["id"])
        except AdminError as err:
            return await self.calendar(view, None, self.kit.problem_text(view, err.problem),
                                       status=400)
        raise back(f"/admin/absences?month={month_label(info.start)}&done=removed")
