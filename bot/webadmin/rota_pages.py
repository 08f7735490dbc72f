"""The rota as a week grid: confidants as rows, Monday to Sunday as columns,
duty and talk hours as bars in two colours and two patterns (each bar also
says its kind in words), and the office hours no one covers.

Adding, changing and removing a shift are plain form posts (the keyboard
and no-script way); the grid's script draws a shift by dragging and posts
the same forms, asking for JSON.  Every check (end after start, overlap,
office-hours gaps) is the admin service's: a refusal is shown with the
service's reason, never re-decided here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from aiohttp import web

from bot.webadmin.kit import Form, Kit, back, json_ok, wants_json
from bot.webadmin.pages import View, data_block
from bot.webadmin.week import Day, Week, elapsed_hours, week_of
from domain.parsing import WEEKDAY_KEYS, hhmm
from domain.vocabulary import ShiftKind
from handlers.administration.problems import AdminError
from handlers.administration.service import ConfidantInfo, WeekView

VISIBLE = (7, 20)
"""Hours the grid shows at least; it widens to take in every shift and the office hours."""
DONE = {"added": "rota.added", "changed": "rota.changed", "removed": "rota.removed"}


@dataclass
class Bar:
    """One shift in one cell."""

    id: str
    kind: str
    start: str
    end: str
    absent: bool
    label: str


@dataclass
class Cell:
    day: Day
    absent: bool
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Row:
    confidant: ConfidantInfo
    hours: float
    cells: list[Cell]


@dataclass
class ShiftForm:
    """What the add/change form shows: empty, a cell's defaults, a shift's
    values, or what the admin sent when it was refused."""

    action: str
    confidant: str = ""
    day: str = ""
    start: str = "09:00"
    end: str = "12:00"
    kind: str = ShiftKind.DUTY.value
    shift_id: str = ""
    error: str = ""
    error_field: str = ""


def routes(kit: Kit) -> list[web.RouteDef]:
    pages = RotaPages(kit)
    return [
        web.get("/rota", kit.page(pages.grid)),
        web.post("/rota/shifts", kit.change(pages.add)),
        web.post("/rota/shifts/{id}", kit.change(pages.edit)),
        web.post("/rota/shifts/{id}/remove", kit.change(pages.remove)),
    ]


class RotaPages:
    def __init__(self, kit: Kit) -> None:
        self.kit = kit

    async def grid(self, view: View, form: ShiftForm | None = None, status: int = 200,
                   query: Mapping[str, str] | None = None) -> web.Response:
        """The week asked for (``?week=2026-W13``), else this one."""
        query = view.request.query if query is None else query
        async with self.kit.service(view) as svc:
            try:
                shown = await svc.week(query.get("week") or self.kit.today())
            except AdminError as err:
                view.flash.append(("error", self.kit.problem_text(view, err.problem)))
                shown = await svc.week(self.kit.today())
            confidants = await svc.confidants()
            absences = await svc.absences(include_past=True)
            office = tuple(svc.settings.office_hours)
        week = week_of(shown.monday, self.kit.timezone)
        rows = self._rows(view, week, shown, confidants, absences)
        if form is None:
            form = self._form(view, shown, query)
        if not form.error:
            view.show_outcome(DONE, query=query)
        lo, hi = self._range(shown, office)
        script_data = {
            "week": shown.label, "range": [lo, hi], "csrf": view.admin.csrf if view.admin else "",
        }
        return self.kit.render(
            view, "rota.html", status=status, section="rota", week=week, shown=shown, rows=rows,
            form=form, weekday_keys=WEEKDAY_KEYS, gaps=self._gaps(view, week, shown),
            office_hours=bool(office), hours_range=list(range(lo, hi + 1)),
            data=data_block("rota-data", script_data), done=query.get("done", ""))

    def _range(self, shown: WeekView, office: tuple[tuple[int, time, time], ...]
               ) -> tuple[int, int]:
        """Whole hours from the earliest start to the latest end shown."""
        lo, hi = VISIBLE
        for ws in shown.shifts:
            lo = min(lo, ws.shift.start.hour)
            hi = max(hi, ws.shift.end.hour + (1 if ws.shift.end.minute else 0))
        for _, start, end in office:
            lo, hi = min(lo, start.hour), max(hi, end.hour + (1 if end.minute else 0))
        return lo, min(hi, 24)

    def _rows(self, view: View, week: Week, shown: WeekView,
              confidants: list[ConfidantInfo], absences: list[Any]) -> list[Row]:
        rows = []
        for c in confidants:
            away = [(a.start, a.end) for a in absences if a.confidant_id == c.id]
            cells = [Cell(day=d, absent=any(lo <= d.date <= hi for lo, hi in away))
                     for d in week.days]
            hours = 0.0
            for ws in shown.shifts:
                s = ws.shift
                if s.confidant_id != c.id:
                    continue
                kind_word = view.t("rota." + ("talks" if s.kind == ShiftKind.TALKS else "duty"))
                cells[s.weekday].bars.append(Bar(
                    id=s.id, kind=s.kind, start=hhmm(s.start), end=hhmm(s.end), absent=ws.absent,
                    label=view.t("rota.shift_label", name=c.name,
                                 day=view.day(ws.day, "EEEE d MMMM"), kind=kind_word,
                                 start=hhmm(s.start), end=hhmm(s.end))))
                if s.kind == ShiftKind.DUTY and not ws.absent:
                    hours += elapsed_hours(ws.day, s.start, s.end, self.kit.timezone)
            for cell in cells:
                cell.bars.sort(key=lambda b: (b.start, b.kind))
            rows.append(Row(confidant=c, hours=hours, cells=cells))
        return rows

    def _gaps(self, view: View, week: Week, shown: WeekView
              ) -> list[list[tuple[str, str, str]]]:
        """Per day, the office hours no one covers, as the service words
        them, with their times for the grid to mark."""
        per_day: list[list[tuple[str, str, str]]] = [[] for _ in week.days]
        for gap in shown.gaps:
            per_day[gap.weekday].append((self.kit.problem_text(view, gap.problem()),
                                         hhmm(gap.start), hhmm(gap.end)))
        return per_day

    def _form(self, view: View, shown: WeekView, query: Mapping[str, str]) -> ShiftForm:
        """The add form, pre-filled from a cell's + link or a shift's link."""
        edit = query.get("edit", "")
        for ws in shown.shifts:
            if edit and ws.shift.id == edit:
                s = ws.shift
                return ShiftForm(action=f"/admin/rota/shifts/{s.id}", confidant=s.confidant_id,
                                 day=WEEKDAY_KEYS[s.weekday], start=hhmm(s.start),
                                 end=hhmm(s.end), kind=s.kind, shift_id=s.id)
        day = query.get("day", "")
        return ShiftForm(action="/admin/rota/shifts", confidant=query.get("confidant", ""),
                         day=day if day in WEEKDAY_KEYS else "")

    # ------------------------------------------------------------ changes

    async def add(self, view: View, form: Form) -> web.StreamResponse:
        return await self._apply(view, form, "added", lambda svc: svc.add_shift(
            form.get("confidant"), form.get("day"), form.get("start"), form.get("end"),
            form.get("kind") or ShiftKind.DUTY.value))

    async def edit(self, view: View, form: Form) -> web.StreamResponse:
        shift_id = view.request.match_info["id"]
        return await self._apply(view, form, "changed", lambda svc: svc.edit_shift(
            shift_id, day=form.get("day") or None, start=form.get("start") or None,
            end=form.get("end") or None, kind=form.get("kind") or None))

    async def remove(self, view: View, form: Form) -> web.StreamResponse:
        shift_id = view.request.match_info["id"]
        return await self._apply(view, form, "removed",
                                 lambda svc: svc.remove_shift(shift_id))

    async def _apply(self, view: View, form: Form, done: str, change: Any
                     ) -> web.StreamResponse:
        """Run one change; on refusal say why, in the page or to the script."""
        week = form.get("week")
        try:
            async with self.kit.service(view) as svc:
                result = await change(svc)
                warnings = [self.kit.problem_text(view, w) for w in result.warnings]
        except AdminError as err:
            reason = self.kit.problem_text(view, err.problem)
            if wants_json(view.request):
                return web.json_response({"ok": False, "error": view.t("rota.refused",
                                                                        reason=reason),
                                          "reason": reason, "field": err.problem.field},
                                         status=400)
            view.flash.append(("error", view.t("rota.refused", reason=reason)))
            refused = ShiftForm(
                action=str(view.request.path), confidant=form.get("confidant"),
                day=form.get("day"), start=form.get("start"), end=form.get("end"),
                kind=form.get("kind"), shift_id=view.request.match_info.get("id", ""),
                error=reason, error_field=err.problem.field)
            return await self.grid(view, refused, status=400,
                                   query={"week": week} if week else {})
        if wants_json(view.request):
            return json_ok(message=view.t(DONE[done]), warnings=warnings)
        suffix = f"week={week}&" if week else ""
        raise back(f"/admin/rota?{suffix}done={done}")
