"""The admin service: every administration operation, for the chat (`/admin`),
the CLI (``confidant admin``) and the web admin console.

Use
---
Open one `AdminTx` (``store.admin.admin_tx(store)``, or ``AdminTx(tx)``
inside a transaction you already hold) and build
``AdminService(tx, actor, now, settings)``: ``actor`` names the admin in the
audit trail (``admin:web:<name>``, ``admin:cli:<os user>``,
``admin:<channel>``), ``settings`` is an `AdminSettings` (timezone, office
hours, default language).  Everything written in that transaction commits
together.  Inputs are what a person typed (``"mon"``, ``"1"``,
``"maandag"``, ``"9"``, ``"09:30"``, ``"2026-W48"``, ``"1/12/2026"``) or
already parsed values; both go through `domain.parsing`, so the three front
ends accept the same things.

Every change writes an audit event naming the actor (never content).  A
refusal is an `AdminError` whose ``problem`` has a content key and values
(for chat and web, localised with `problems.localised`), an English
``reason`` (for the CLI) and the ``field`` it concerns.  Warnings (office
hours left without anyone on duty) come back as `Problem`\\ s in the result.
``dry_run=True`` checks a change exactly as applying would, and writes
nothing: the chat asks before it applies.

Operations (all ``async``):

- confidants: `confidants`, `confidant`, `add_confidant` (refused without
  ``attest_eligible``; the exclusions are `EXCLUSIONS` / content keys
  `EXCLUSION_KEYS`), `edit_confidant` (bio, languages, addresses),
  `deactivate_confidant`, `console_token`;
- rota: `shifts`, `shift`, `add_shift`, `edit_shift`, `remove_shift`,
  `week` (a `WeekView`: shifts on their dates, absences, booked talks per
  day, office-hours gaps), `office_gaps`;
- absences: `absences`, `add_absence`, `remove_absence`;
- rooms: `rooms`, `add_room`, `edit_room`, `remove_room`;
- the rota file: `import_rota` (text), `export_rota`;
- the anonymous report: `report` (a `ReportData`: cells with a ``hidden``
  flag, hidden exactly as ``confidant report``), `report_csv`, `overview`;
- admin accounts and web logins: `handlers.administration.accounts`.

The service sees the store only through `AdminTx`, which holds no case,
message, note, contact or declaration: it cannot return one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from domain.parsing import ParseError, month_label, parse_month
from handlers.administration.accounts import AccountOps
from handlers.administration.base import AdminSettings, Calendar, day_in
from handlers.administration.people import EXCLUSION_KEYS, EXCLUSIONS, PeopleOps
from handlers.administration.problems import AdminError, Problem, localised, parsed
from handlers.administration.report import (
    Overview,
    Report,
    ReportData,
    StatRow,
    build_report,
    overview,
    report_csv,
    report_data,
)
from handlers.administration.rota import RotaOps
from handlers.administration.rota_file import RotaFileError, apply_rota, export_rota, parse_rota
from handlers.administration.views import (
    AbsenceInfo,
    AdminInfo,
    ConfidantInfo,
    ImportResult,
    RoomInfo,
    ShiftChange,
    ShiftInfo,
    WeekShift,
    WeekView,
)
from handlers.report_privacy import months_between

__all__ = ["EXCLUSIONS", "EXCLUSION_KEYS", "AbsenceInfo", "AdminError", "AdminInfo",
           "AdminService", "AdminSettings", "ConfidantInfo", "ImportResult", "Problem",
           "ReportData", "RoomInfo", "ShiftChange", "ShiftInfo", "WeekShift", "WeekView",
           "localised", "report_csv"]


class AdminService(RotaOps, PeopleOps, AccountOps):
    """Every administration operation over one `AdminTx` (see the module docstring)."""

    # ------------------------------------------------------------ the rota file

    async def import_rota(self, text: str) -> ImportResult:
        """A whole rota file, checked before anything changes (`rota_file`)."""
        try:
            counts = await apply_rota(self.tx, parse_rota(text))
        except RotaFileError as err:
            raise AdminError("adm.error.rota_file", str(err), "file", detail=str(err)) from None
        result = ImportResult(counts)
        await self.audit("rota.imported", "", result.summary())
        return result

    async def export_rota(self) -> str:
        text = await export_rota(self.tx)
        await self.audit("rota.exported")
        return text

    # ------------------------------------------------------------ the report

    async def _stats(self, months: Sequence[str]) -> list[StatRow]:
        return [StatRow(s.month, s.channel, s.theme, s.heard_in_time)
                for s in await self.tx.statistics(months[0], months[-1])]

    async def report_table(self, start: Calendar, end: Calendar, *,
                           audit_kind: str = "report.viewed") -> Report:
        """The anonymous report from the month of ``start`` to that of ``end``
        (dates, or months written ``2026-01``) as the table every rendering
        reads its cells from, hidden as ``confidant report`` hides them."""
        first, last = _report_day(start, "start"), _report_day(end, "end")
        if last < first:
            raise AdminError("adm.rota_error.end-before-start",
                             f"--to {last} is before --from {first}", "end")
        months = months_between(first, last)
        table = build_report(await self._stats(months), months)
        await self.audit(audit_kind, "", f"{months[0]} to {months[-1]}")
        return table

    async def report(self, start: Calendar, end: Calendar) -> ReportData:
        """`report_table` as plain cells with a ``hidden`` flag (for pages and
        charts), with the conversations still open now; `report_csv` writes it."""
        first, last = _report_day(start, "start"), _report_day(end, "end")
        table = await self.report_table(first, last)
        return report_data(table, first, last, await self.tx.open_case_count())

    async def overview(self, month_from: str = "", month_to: str = ""
                       ) -> tuple[Overview, int, str, str]:
        """The chat's one-column report: the twelve months up to this one unless
        given; returns the table, the open conversations, and the months."""
        today = self.today
        last = parsed(parse_month, month_to, "end") if month_to else today.replace(day=1)
        if month_from:
            first = parsed(parse_month, month_from, "start")
        else:
            first = (date(today.year - 1, today.month + 1, 1) if today.month < 12
                     else date(today.year, 1, 1))
        first, last = sorted((first, last))
        months = months_between(first, last)
        table = overview(await self._stats(months), months)
        await self.audit("report.viewed", "", f"{month_label(first)}..{month_label(last)}")
        return table, await self.tx.open_case_count(), month_label(first), month_label(last)


def _report_day(value: Calendar, what: str) -> date:
    """A date, or a month (``YYYY-MM``) meaning its first day (``start``) or
    its last (``end``)."""
    if isinstance(value, date):
        return value
    try:
        first = parse_month(value)
    except ParseError:  # not a month: a date then
        return day_in(value, what)
    if what == "start":
        return first
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


