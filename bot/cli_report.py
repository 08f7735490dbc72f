"""Anonymous statistics and the register export, as printed by the CLI.

The report counts closed or erased cases per month of opening, by theme and
by channel, and how many were heard within the legal 10 days.  It shows
marginal counts only (never theme × channel crossed).  Which counts are
hidden, and behind which mark (``<3``, ``x``, ``?``), is decided in
`handlers.report_privacy`, shared with the report in chat: every count below
3, and as many others as it takes so that no hidden count can be worked out
from the shown ones, since the table adds up (a month's cases = the sum of
its themes = of its channels = of its heard rows; a row's "all" = the sum of
its months).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

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
from handlers.report_privacy import mask as mask
from handlers.report_privacy import months_between as months_between

RULE = (f"Every count below {THRESHOLD} is shown as `{MASK}`. A count shown as "
        f"`{SUPPRESSED}` is {THRESHOLD} or more but hidden too, so that no `{MASK}` "
        f"can be worked out by subtracting the shown counts from a total.")
"""The rule as the reader sees it, in the markdown header and the JSON."""
RULE_BLURRED = (f"A count shown as `{BLURRED}` is hidden and may be any number, "
                f"because here even the marks `{MASK}` and `{SUPPRESSED}` would add up "
                f"to a count.")


@dataclass
class StatRow:
    """One anonymous counter as the store keeps it."""

    month: str
    channel: str
    theme: str
    heard_in_time: bool | None


@dataclass
class Report:
    """Counts per month for each dimension; unmasked until rendered."""

    months: list[str]
    themes: list[str]
    channels: list[str]
    counts: dict[Key, int] = field(default_factory=dict)
    """(month or "all", dimension, value) → count."""
    _hidden: dict[Key, str] | None = field(default=None, init=False, repr=False)

    def cell(self, month: str, dimension: str, value: str) -> Cell:
        """One cell as printed: the count, or how it is hidden.  Every format
        goes through here, so markdown, CSV and JSON hide the same cells."""
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
    themes: list[str] = [*CLOSE_THEMES, Theme.WITHDRAWN]
    themes += sorted({r.theme for r in rows} - set(themes))
    channels = list(CHANNELS) + sorted({r.channel for r in rows} - set(CHANNELS))
    report = Report(months=list(months), themes=themes, channels=channels)
    for r in rows:
        heard = ("not_heard" if r.heard_in_time is None
                 else "within_10_days" if r.heard_in_time else "late")
        for month in (r.month, "all"):
            for key in (("cases", "all"), ("theme", r.theme), ("channel", r.channel),
                        ("heard", heard)):
                report.counts[(month, *key)] = report.counts.get((month, *key), 0) + 1
    return report


_LABELS = {
    ("cases", "all"): "cases",
    ("heard", "within_10_days"): "heard within 10 days",
    ("heard", "late"): "heard after 10 days",
    ("heard", "not_heard"): "not heard (closed or withdrawn first)",
}


def _label(dimension: str, value: str) -> str:
    """Row title in the human-readable table."""
    return _LABELS.get((dimension, value), f"{dimension}: {value}")


def render_markdown(report: Report, start: date, end: date) -> str:
    """A table for people: one row per theme/channel, one column per month."""
    columns = [*report.months, "all"]
    rule = RULE + (" " + RULE_BLURRED if report.blurred() else "")
    lines = [
        f"# Anonymous statistics {start.isoformat()} to {end.isoformat()}",
        "",
        f"Counts of cases by month of first contact. {rule}",
        "",
        "| | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for dimension, value in report.rows():
        cells = [str(report.cell(m, dimension, value)) for m in columns]
        lines.append(f"| {_label(dimension, value)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_csv(report: Report) -> str:
    """Long format for spreadsheets: month, dimension, value, count."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["month", "dimension", "value", "count"])
    for month in [*report.months, "all"]:
        for dimension, value in report.rows():
            writer.writerow([month, dimension, value, report.cell(month, dimension, value)])
    return out.getvalue()


def render_json(report: Report, start: date, end: date) -> str:
    """Nested counts for other programs; hidden cells are the strings
    ``"<3"`` (below the threshold), ``"x"`` (3 or more, hidden to protect a
    ``"<3"``) and, rarely, ``"?"`` (any number)."""
    def block(month: str) -> dict[str, Any]:
        return {
            "cases": report.cell(month, "cases", "all"),
            "themes": {t: report.cell(month, "theme", t) for t in report.themes},
            "channels": {c: report.cell(month, "channel", c) for c in report.channels},
            "heard": {h: report.cell(month, "heard", h) for h in HEARD},
        }

    doc = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "threshold": THRESHOLD,
        "masked_as": MASK,
        "suppressed_as": SUPPRESSED,
        "blurred_as": BLURRED,
        "rule": (RULE + " " + RULE_BLURRED).replace("`", ""),
        "months": {m: block(m) for m in report.months},
        "all": block("all"),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_register(entries: list[dict[str, Any]], fmt: str) -> str:
    """The register of acts by third parties for the inspection: every entry
    with its facts; identity appears only where the worker agreed to it."""
    if fmt == "json":
        return json.dumps(entries, indent=2, ensure_ascii=False, default=str) + "\n"
    columns = ["id", "entered", "identity_agreed"]
    for entry in entries:
        columns += [k for k in entry if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    for entry in entries:
        writer.writerow({k: _flat(v) for k, v in entry.items()})
    return out.getvalue()


def _flat(value: Any) -> str:
    """One CSV cell from a fact value (lists and tables as JSON)."""
    if isinstance(value, str):
        # A leading =, +, - or @ would run as a formula when the file is opened
        # in a spreadsheet; declarations are free text typed by anyone.
        return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return json.dumps(value, ensure_ascii=False, default=str)
