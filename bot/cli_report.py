"""Anonymous statistics and the register export, as printed by the CLI.

The report's table is built by the admin service
(`handlers.administration.report`); this module prints it.  It counts
closed or erased cases per month of opening, by theme and by channel, and
how many were heard within the legal 10 days.  It shows marginal
counts only (never theme × channel crossed).  Which counts are
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
from datetime import date
from typing import Any

from handlers.administration.report import RULE, RULE_BLURRED, Report, StatRow, build_report
from handlers.administration.report import render_csv as render_csv
from handlers.report_privacy import (
    BLURRED,
    HEARD,
    MASK,
    SUPPRESSED,
    THRESHOLD,
)
from handlers.report_privacy import mask as mask
from handlers.report_privacy import months_between as months_between

__all__ = ["MASK", "SUPPRESSED", "Report", "StatRow", "build_report", "mask", "months_between",
           "render_csv", "render_json", "render_markdown", "render_register"]


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
