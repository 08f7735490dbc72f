"""Anonymous statistics and the register export, as printed by the CLI.

The report counts closed or erased cases per month of opening, by theme and
by channel, and how many were heard within the legal 10 days.  It shows
marginal counts only (never theme × channel crossed), and every count below
`THRESHOLD`, zero included, is printed as ``<3`` so that no small group (and
so no person) can be singled out.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from handlers.confidant import THEMES

THRESHOLD = 3
MASK = f"<{THRESHOLD}"
CHANNELS = ("telegram", "matrix", "web")
HEARD = ("within_10_days", "late", "not_heard")

Cell = int | str
"""A count, or `MASK` when it is too small to show."""


def mask(count: int) -> Cell:
    """Hide small counts: a cell of 1 or 2 could point at a person."""
    return count if count >= THRESHOLD else MASK


def months_between(start: date, end: date) -> list[str]:
    """Every ``YYYY-MM`` from the month of ``start`` to that of ``end``, so
    empty months show as masked cells rather than disappearing."""
    out = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


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
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(month or "all", dimension, value) → count."""

    def cell(self, month: str, dimension: str, value: str) -> Cell:
        """The masked count for one cell."""
        return mask(self.counts.get((month, dimension, value), 0))

    def rows(self) -> list[tuple[str, str]]:
        """(dimension, value) rows in a stable, readable order."""
        return ([("cases", "all")] + [("theme", t) for t in self.themes]
                + [("channel", c) for c in self.channels] + [("heard", h) for h in HEARD])


def build_report(stats: Iterable[StatRow], months: Sequence[str]) -> Report:
    """Count the rows into marginal tables; every known theme and channel gets
    a row even at zero, so a missing row never reveals a zero."""
    rows = [r for r in stats if r.month in months]
    themes = [*THEMES, "withdrawn"]
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
    lines = [
        f"# Anonymous statistics {start.isoformat()} to {end.isoformat()}",
        "",
        f"Counts of cases by month of first contact; every count below {THRESHOLD} "
        f"is shown as `{MASK}`.",
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
    """Nested counts for other programs; masked cells are the string ``"<3"``."""
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
