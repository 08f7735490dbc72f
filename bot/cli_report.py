"""Anonymous statistics and the register export, as printed by the CLI.

The report counts closed or erased cases per month of opening, by theme and
by channel, and how many were heard within the legal 10 days.  It shows
marginal counts only (never theme × channel crossed), and every count below
`THRESHOLD`, zero included, is printed as ``<3`` so that no small group (and
so no person) can be singled out.

Hiding the small counts alone is not enough: the table's numbers add up
(a month's cases = the sum of its themes = of its channels = of its heard
rows; a row's "all" = the sum of its months), so "4 in all, 3 in February"
gives back the one case in March.  `protect` therefore also hides counts of
3 or more (printed as ``x``, *secondary suppression*) until no hidden count
can be worked out from what is printed.  It checks this the way a reader
would: every printed relation, the known range of each hidden cell (``<3`` is
0-2, ``x`` is 3 or more), narrowed again and again across rows and columns
until nothing changes.  That is interval reasoning, not a full linear-
programming audit, but it is stronger than looking at one row or column at a
time, which is what the tests check independently.  In the sparsest tables
even the marks add up ("<3 <3 <3" is at most 6, "x x" at least 6); there a
mark is blurred to ``?``, any number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from math import inf
from typing import Any

from handlers.confidant import THEMES

THRESHOLD = 3
MASK = f"<{THRESHOLD}"
SUPPRESSED = "x"
"""A count of `THRESHOLD` or more, hidden so that no `MASK` can be recomputed."""
BLURRED = "?"
"""A hidden count of any size: the last resort when a table is so sparse that
even the ``<3`` and ``x`` marks, added up, would pin a count down."""
RULE = (f"Every count below {THRESHOLD} is shown as `{MASK}`. A count shown as "
        f"`{SUPPRESSED}` is {THRESHOLD} or more but hidden too, so that no `{MASK}` "
        f"can be worked out by subtracting the shown counts from a total.")
"""The rule as the reader sees it, in the markdown header and the JSON."""
RULE_BLURRED = (f"A count shown as `{BLURRED}` is hidden and may be any number, "
                f"because here even the marks `{MASK}` and `{SUPPRESSED}` would add up "
                f"to a count.")
CHANNELS = ("telegram", "matrix", "web")
HEARD = ("within_10_days", "late", "not_heard")

Cell = int | str
"""A count, or the mark it is hidden behind: `MASK`, `SUPPRESSED`, `BLURRED`."""
Key = tuple[str, str, str]
"""(month or "all", dimension, value): one cell of the table."""
Bounds = tuple[float, float]


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

    def sums(self) -> list[tuple[Key, list[Key]]]:
        """Every (total, parts) that a reader knows adds up."""
        out: list[tuple[Key, list[Key]]] = []
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


def protect(report: Report) -> dict[Key, str]:
    """Which cells to hide, and how: every count below the threshold
    (`MASK`), then, while some hidden count still follows from the printed
    ones, the smallest shown count next to it (`SUPPRESSED`); and when no
    shown count is left to hide, a mark is blurred (`BLURRED`).  Totals are
    hidden last, as they carry the most for the reader and the least risk."""
    keys = report.keys()
    sums = report.sums()
    hidden = {k: MASK for k in keys if report.counts.get(k, 0) < THRESHOLD}
    while True:
        bounds = reader_bounds(report.counts, hidden, keys, sums)
        exposed = [k for k in keys if k in hidden and bounds[k][0] == bounds[k][1]]
        # One cell at a time, the cheapest over all exposed cells: a cell
        # given away only through another one is often covered once that
        # other one is, so hiding the cheapest first keeps totals visible.
        choices = [c for c in (_next_to_hide(k, report, hidden, bounds, sums) for k in exposed)
                   if c is not None]
        if choices:
            hidden[min(choices)[-1]] = SUPPRESSED
            continue
        # Nothing shown is left around them: then what still gives a count
        # away are the marks themselves ("x" is at least 3, "<3" at most 2).
        # Blur the nearest mark into "any number"; each step blurs one more
        # cell, and a table of blurred cells gives nothing away.
        blur = _next_to_blur(exposed, report, hidden, sums)
        if blur is None:
            return hidden
        hidden[blur] = BLURRED


def reader_bounds(counts: dict[Key, int], hidden: dict[Key, str], keys: Sequence[Key],
                  sums: Sequence[tuple[Key, list[Key]]]) -> dict[Key, Bounds]:
    """What a reader of the printed table can know of each cell: a shown
    count exactly, ``<3`` as 0-2, ``x`` as 3 or more; then every sum narrows
    its total and its parts, round after round until nothing changes."""
    bounds: dict[Key, Bounds] = {}
    for k in keys:
        bounds[k] = _known(hidden[k]) if k in hidden else (counts.get(k, 0),) * 2
    for _ in range(1000):  # narrowing stops long before; the cap only bounds the time
        changed = False
        for total, parts in sums:
            low = sum(bounds[p][0] for p in parts)
            high = _sum_high(bounds[p][1] for p in parts)
            changed |= _narrow(bounds, total, low, high)
            t_low, t_high = bounds[total]
            for p in parts:
                p_low, p_high = bounds[p]
                others_low = low - p_low
                others_high = high - p_high if p_high != inf else _sum_high(
                    bounds[q][1] for q in parts if q != p)
                if _narrow(bounds, p, t_low - others_high, t_high - others_low):
                    changed = True
                    low = sum(bounds[q][0] for q in parts)
                    high = _sum_high(bounds[q][1] for q in parts)
        if not changed:
            break
    return bounds


def _known(mark: str) -> Bounds:
    """What a hidden cell's mark alone tells the reader."""
    return {MASK: (0, THRESHOLD - 1), SUPPRESSED: (THRESHOLD, inf)}.get(mark, (0, inf))


def _sum_high(values: Iterable[float]) -> float:
    """A sum of upper bounds, where one unbounded cell makes it unbounded."""
    total = 0.0
    for v in values:
        if v == inf:
            return inf
        total += v
    return total


def _narrow(bounds: dict[Key, Bounds], key: Key, low: float, high: float) -> bool:
    """Intersect a cell's range with what one sum allows; True if it shrank."""
    old_low, old_high = bounds[key]
    new = (max(old_low, low), min(old_high, high))
    if new == (old_low, old_high):
        return False
    bounds[key] = new
    return True


Choice = tuple[bool, bool, int, int, Key]
"""Preference for hiding a cell: helps directly, is a part, smallest, first."""


def _next_to_hide(exposed: Key, report: Report, hidden: dict[Key, str],
                  bounds: dict[Key, Bounds], sums: Sequence[tuple[Key, list[Key]]]
                  ) -> Choice | None:
    """The shown cell whose hiding costs least and helps most: from a sum
    that on its own gives ``exposed`` away if there is one, a part before a
    total, the smallest count first.  When every cell around is hidden
    already, look one sum further out."""
    order = {k: i for i, k in enumerate(report.keys())}
    known = _known(hidden[exposed])

    def gives_away(total: Key, parts: list[Key]) -> bool:
        others = [p for p in parts if p != exposed]
        low = sum(bounds[p][0] for p in others)
        high = _sum_high(bounds[p][1] for p in others)
        if exposed != total:
            low, high = bounds[total][0] - high, bounds[total][1] - low
        return max(low, known[0]) == min(high, known[1])

    frontier = {exposed}
    seen = {exposed}
    while frontier:
        candidates: list[Choice] = []
        touching = [(t, ps) for t, ps in sums if frontier & {t, *ps}]
        for total, parts in touching:
            helps = exposed in (total, *parts) and gives_away(total, parts)
            candidates += [(not helps, c == total, report.counts.get(c, 0), order[c], c)
                           for c in (total, *parts) if c not in hidden]
        if candidates:
            return min(candidates)
        frontier = {c for t, ps in touching for c in (t, *ps)} - seen
        seen |= frontier
    return None


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


def _next_to_blur(exposed: Sequence[Key], report: Report, hidden: dict[Key, str],
                  sums: Sequence[tuple[Key, list[Key]]]) -> Key | None:
    """The marked cell to turn into `BLURRED`: of the marks in the sums that
    give a count away (or, failing those, the nearest further out), the one
    after which the fewest counts are still given away, an ``x`` before a
    ``<3`` (which says more to the reader), then the first in the table.
    Trying each is slow, but this runs only on the sparsest tables."""
    keys = report.keys()
    order = {k: i for i, k in enumerate(keys)}
    frontier = set(exposed)
    seen = set(frontier)
    while frontier:
        near = frontier | {c for t, ps in sums if frontier & {t, *ps} for c in (t, *ps)}
        marked = [k for k in near if hidden.get(k) in (MASK, SUPPRESSED)]
        if marked:
            def left_exposed(cell: Key) -> tuple[int, bool, int]:
                trial = {**hidden, cell: BLURRED}
                bounds = reader_bounds(report.counts, trial, keys, sums)
                still = sum(1 for k in trial if bounds[k][0] == bounds[k][1])
                return still, hidden[cell] == MASK, order[cell]
            return min(marked, key=left_exposed)
        frontier = near - seen
        seen |= frontier
    return None
