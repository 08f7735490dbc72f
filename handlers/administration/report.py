"""The anonymous yearly report's tables, for the CLI, the chat and the web console.

Counts of closed or erased conversations per month of first contact, by
theme, by channel and by whether the worker was heard within the legal 10
days.  Which counts are hidden, and behind which mark, is decided by
`handlers.report_privacy` (every count below 3, and as many others as it
takes so that none can be worked out from the rest).  Two shapes:

- `Report`: months as columns and a column "all", every row in every
  month (``confidant report`` and the web console's figures);
- `Overview`: one column only, the months as rows (the report in chat).

`report_data` turns a `Report` into plain cells, each with a ``hidden``
flag and no count when hidden, so a chart cannot show a hidden count;
`report_csv` writes the same cells for a spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from domain.vocabulary import CLOSE_THEMES, Theme
from handlers.report_privacy import (
    BLURRED,
    CHANNELS,
    HEARD,
    MASK,
    SUPPRESSED,
    THRESHOLD,
    Cell,
    Key,
    Sum,
    protect,
)

RULE = (f"Every count below {THRESHOLD} is shown as `{MASK}`. A count shown as "
        f"`{SUPPRESSED}` is {THRESHOLD} or more but hidden too, so that no `{MASK}` "
        f"can be worked out by subtracting the shown counts from a total.")
"""The rule as the reader sees it, in the markdown header and the JSON."""
RULE_BLURRED = (f"A count shown as `{BLURRED}` is hidden and may be any number, "
                f"because here even the marks `{MASK}` and `{SUPPRESSED}` would add up "
                f"to a count.")
TOTAL: Key = ("all", "cases", "all")


@dataclass
class StatRow:
    """One anonymous counter as the store keeps it."""

    month: str
    channel: str
    theme: str
    heard_in_time: bool | None


def _heard(row: StatRow) -> str:
    return ("not_heard" if row.heard_in_time is None
            else "within_10_days" if row.heard_in_time else "late")


def _dimensions(rows: Sequence[StatRow]) -> tuple[list[str], list[str]]:
    """Every known theme and channel (a missing line would say "none"), and
    any other one the counters hold."""
    themes: list[str] = [*CLOSE_THEMES, Theme.WITHDRAWN]
    themes += sorted({r.theme for r in rows} - set(themes))
    channels = [*CHANNELS, *sorted({r.channel for r in rows} - set(CHANNELS))]
    return themes, channels


@dataclass
class Report:
    """Counts per month for each dimension; unmasked until read through `cell`."""

    months: list[str]
    themes: list[str]
    channels: list[str]
    counts: dict[Key, int] = field(default_factory=dict)
    """(month or "all", dimension, value) → count."""
    _hidden: dict[Key, str] | None = field(default=None, init=False, repr=False)

    def cell(self, month: str, dimension: str, value: str) -> Cell:
        """One cell as printed: the count, or how it is hidden.  Every format
        goes through here, so markdown, CSV, JSON and charts hide the same cells."""
        if self._hidden is None:
            self._hidden = protect(self)
        key = (month, dimension, value)
        return self._hidden.get(key, self.counts.get(key, 0))

    def blurred(self) -> bool:
        """Whether any cell is hidden as "any number", so the reader is told."""
        return any(self.cell(*k) == BLURRED for k in self.keys())

    def keys(self) -> list[Key]:
        """Every cell of the table, month columns then "all"."""
        return [(m, *row) for m in [*self.months, "all"] for row in self.rows()]

    def sums(self) -> list[Sum]:
        """Every (total, parts) that a reader knows adds up."""
        out: list[Sum] = []
        for column in [*self.months, "all"]:
            for dimension, values in (("theme", self.themes), ("channel", self.channels),
                                      ("heard", list(HEARD))):
                out.append(((column, "cases", "all"), [(column, dimension, v) for v in values]))
        for row in self.rows():
            out.append((("all", *row), [(m, *row) for m in self.months]))
        return out

    def rows(self) -> list[tuple[str, str]]:
        """(dimension, value) rows in a stable, readable order."""
        return ([("cases", "all")] + [("theme", t) for t in self.themes]
                + [("channel", c) for c in self.channels] + [("heard", h) for h in HEARD])


def build_report(stats: Iterable[StatRow], months: Sequence[str]) -> Report:
    """Count the rows into marginal tables; every known theme and channel gets
    a row even at zero, so a missing row never reveals a zero."""
    rows = [r for r in stats if r.month in months]
    themes, channels = _dimensions(rows)
    report = Report(months=list(months), themes=themes, channels=channels)
    for r in rows:
        for month in (r.month, "all"):
            for key in (("cases", "all"), ("theme", r.theme), ("channel", r.channel),
                        ("heard", _heard(r))):
                report.counts[(month, *key)] = report.counts.get((month, *key), 0) + 1
    return report


def render_csv(report: Report) -> str:
    """Long format for spreadsheets: month, dimension, value, count."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["month", "dimension", "value", "count"])
    for month in [*report.months, "all"]:
        for dimension, value in report.rows():
            writer.writerow([month, dimension, value, report.cell(month, dimension, value)])
    return out.getvalue()


# ------------------------------------------------------------ plain cells


@dataclass(frozen=True)
class ReportCell:
    """One figure: its count when shown; when hidden no count, only its mark
    (``<3``, ``x`` or ``?``), so nothing downstream can draw it."""

    month: str
    """``YYYY-MM``, or ``all`` for the whole period."""
    dimension: str
    """``cases``, ``theme``, ``channel`` or ``heard``."""
    value: str
    count: int | None
    mark: str = ""

    @property
    def hidden(self) -> bool:
        return self.count is None

    @property
    def shown(self) -> Cell:
        """As printed: the count or the mark."""
        return self.mark if self.count is None else self.count


@dataclass(frozen=True)
class ReportData:
    """The report as the web console and the CSV download use it."""

    start: date
    end: date
    months: list[str]
    rows: list[tuple[str, str]]
    cells: list[ReportCell]
    open_cases: ReportCell
    """Conversations still open now (hidden below the threshold)."""
    blurred: bool
    threshold: int = THRESHOLD

    def cell(self, month: str, dimension: str, value: str) -> ReportCell:
        return next(c for c in self.cells
                    if (c.month, c.dimension, c.value) == (month, dimension, value))

    def rule(self) -> str:
        return (RULE + (" " + RULE_BLURRED if self.blurred else "")).replace("`", "")


def _plain(month: str, dimension: str, value: str, cell: Cell) -> ReportCell:
    if isinstance(cell, int):
        return ReportCell(month, dimension, value, cell)
    return ReportCell(month, dimension, value, None, cell)


def report_data(report: Report, start: date, end: date, open_cases: int) -> ReportData:
    """Every cell of ``report`` as plain data, hidden exactly as the CLI prints it."""
    cells = [_plain(m, d, v, report.cell(m, d, v))
             for m in [*report.months, "all"] for d, v in report.rows()]
    shown_open: Cell = open_cases if open_cases >= THRESHOLD else MASK
    return ReportData(start=start, end=end, months=list(report.months), rows=report.rows(),
                      cells=cells, open_cases=_plain("now", "cases", "open", shown_open),
                      blurred=report.blurred())


def report_csv(data: ReportData) -> str:
    """`render_csv` of the same figures: month, dimension, value, count (or mark)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["month", "dimension", "value", "count"])
    for c in data.cells:
        writer.writerow([c.month, c.dimension, c.value, c.shown])
    return out.getvalue()


# ------------------------------------------------------------ the chat's one column


@dataclass
class Overview:
    """The chat report as a table for `protect`: the conversations in all,
    split by month, by theme, by channel and by heard in time, each split
    adding up to the total.  Every theme, channel and month has its line even
    at zero: a missing line would say "none", and subtracting the shown lines
    from the total would give back a hidden one."""

    months: list[str]
    themes: list[str]
    channels: list[str]
    counts: dict[Key, int] = field(default_factory=dict)
    _hidden: dict[Key, str] | None = field(default=None, init=False, repr=False)

    def cell(self, key: Key) -> Cell:
        """One count as shown: the number, or the mark hiding it."""
        if self._hidden is None:
            self._hidden = protect(self)
        return self._hidden.get(key, self.counts.get(key, 0))

    def blurred(self) -> bool:
        """Whether some count is hidden as "any number", so the legend says so."""
        return any(self.cell(k) == BLURRED for k in self.keys())

    def month_keys(self) -> list[Key]:
        return [(m, "cases", "all") for m in self.months]

    @staticmethod
    def row_keys(dimension: str, values: Iterable[str]) -> list[Key]:
        return [("all", dimension, v) for v in values]

    def keys(self) -> list[Key]:
        """Every printed count, in the order printed."""
        return [TOTAL, *self.row_keys("heard", HEARD), *self.month_keys(),
                *self.row_keys("theme", self.themes), *self.row_keys("channel", self.channels)]

    def sums(self) -> list[Sum]:
        """What the reader knows adds up: each split sums to the total."""
        return [(TOTAL, self.month_keys()), (TOTAL, self.row_keys("theme", self.themes)),
                (TOTAL, self.row_keys("channel", self.channels)),
                (TOTAL, self.row_keys("heard", HEARD))]


def overview(stats: Iterable[StatRow], months: list[str]) -> Overview:
    """Count the anonymous counters into the chat report's table, with the
    same themes and channels as `build_report`."""
    rows = [s for s in stats if s.month in months]
    themes, channels = _dimensions(rows)
    table = Overview(months=months, themes=themes, channels=channels)
    for s in rows:
        for key in (TOTAL, (s.month, "cases", "all"), ("all", "theme", s.theme),
                    ("all", "channel", s.channel), ("all", "heard", _heard(s))):
            table.counts[key] = table.counts.get(key, 0) + 1
    return table
