"""How anonymous counts are hidden, for every place that prints them: the
``confidant report`` CLI and the ``/admin`` report in chat.

Every count below `THRESHOLD`, zero included, is shown as ``<3`` so that no
small group (and so no person) can be singled out.

Hiding the small counts alone is not enough when the printed numbers add up
(a total = the sum of its themes = of its channels …): "4 in all, 3 in
February" gives back the one case in March.  `protect` therefore also hides
counts of 3 or more (printed as ``x``, *secondary suppression*) until no
hidden count can be worked out from what is printed.  It checks this the way
a reader would: every printed relation, the known range of each hidden cell
(``<3`` is 0-2, ``x`` is 3 or more), narrowed again and again across rows
and columns until nothing changes.  That is interval reasoning, not a full
linear-programming audit, but it is stronger than looking at one row or
column at a time, which is what the tests check independently.  In the
sparsest tables even the marks add up ("<3 <3 <3" is at most 6, "x x" at
least 6); there a mark is blurred to ``?``, any number.

The module knows nothing of channels or output formats: a table is its
cells, their counts and the sums a reader of it knows (`Table`), so that the
CLI and the chat hide by the same rule and cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from math import inf
from typing import Protocol

THRESHOLD = 3
MASK = f"<{THRESHOLD}"
SUPPRESSED = "x"
"""A count of `THRESHOLD` or more, hidden so that no `MASK` can be recomputed."""
BLURRED = "?"
"""A hidden count of any size: the last resort when a table is so sparse that
even the ``<3`` and ``x`` marks, added up, would pin a count down."""
CHANNELS = ("telegram", "matrix", "web")
HEARD = ("within_10_days", "late", "not_heard")

Cell = int | str
"""A count, or the mark it is hidden behind: `MASK`, `SUPPRESSED`, `BLURRED`."""
Key = tuple[str, str, str]
"""(month or "all", dimension, value): one cell of the table."""
Bounds = tuple[float, float]
Sum = tuple[Key, list[Key]]
"""A total and the parts a reader knows add up to it."""


class Table(Protocol):
    """What `protect` needs to know of a table: the true counts, every cell
    the reader sees (in reading order: ties go to the first), and every sum
    the reader knows holds between them.  A cell missing from ``counts`` is 0."""

    @property
    def counts(self) -> Mapping[Key, int]: ...

    def keys(self) -> list[Key]: ...

    def sums(self) -> list[Sum]: ...


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


def protect(table: Table) -> dict[Key, str]:
    """Which cells to hide, and how: every count below the threshold
    (`MASK`), then, while some hidden count still follows from the printed
    ones, the smallest shown count next to it (`SUPPRESSED`); and when no
    shown count is left to hide, a mark is blurred (`BLURRED`).  Totals are
    hidden last, as they carry the most for the reader and the least risk."""
    keys = table.keys()
    sums = table.sums()
    hidden = {k: MASK for k in keys if table.counts.get(k, 0) < THRESHOLD}
    while True:
        bounds = reader_bounds(table.counts, hidden, keys, sums)
        exposed = [k for k in keys if k in hidden and bounds[k][0] == bounds[k][1]]
        # One cell at a time, the cheapest over all exposed cells: a cell
        # given away only through another one is often covered once that
        # other one is, so hiding the cheapest first keeps totals visible.
        choices = [c for c in (_next_to_hide(k, table, hidden, bounds, sums) for k in exposed)
                   if c is not None]
        if choices:
            hidden[min(choices)[-1]] = SUPPRESSED
            continue
        # Nothing shown is left around them: then what still gives a count
        # away are the marks themselves ("x" is at least 3, "<3" at most 2).
        # Blur the nearest mark into "any number"; each step blurs one more
        # cell, and a table of blurred cells gives nothing away.
        blur = _next_to_blur(exposed, table, hidden, sums)
        if blur is None:
            return hidden
        hidden[blur] = BLURRED


def reader_bounds(counts: Mapping[Key, int], hidden: Mapping[Key, str], keys: Sequence[Key],
                  sums: Sequence[Sum]) -> dict[Key, Bounds]:
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


def _next_to_hide(exposed: Key, table: Table, hidden: dict[Key, str],
                  bounds: dict[Key, Bounds], sums: Sequence[Sum]) -> Choice | None:
    """The shown cell whose hiding costs least and helps most: from a sum
    that on its own gives ``exposed`` away if there is one, a part before a
    total, the smallest count first.  When every cell around is hidden
    already, look one sum further out."""
    order = {k: i for i, k in enumerate(table.keys())}
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
            candidates += [(not helps, c == total, table.counts.get(c, 0), order[c], c)
                           for c in (total, *parts) if c not in hidden]
        if candidates:
            return min(candidates)
        frontier = {c for t, ps in touching for c in (t, *ps)} - seen
        seen |= frontier
    return None


def _next_to_blur(exposed: Sequence[Key], table: Table, hidden: dict[Key, str],
                  sums: Sequence[Sum]) -> Key | None:
    """The marked cell to turn into `BLURRED`: of the marks in the sums that
    give a count away (or, failing those, the nearest further out), the one
    after which the fewest counts are still given away, an ``x`` before a
    ``<3`` (which says more to the reader), then the first in the table.
    Trying each is slow, but this runs only on the sparsest tables."""
    keys = table.keys()
    order = {k: i for i, k in enumerate(keys)}
    frontier = set(exposed)
    seen = set(frontier)
    while frontier:
        near = frontier | {c for t, ps in sums if frontier & {t, *ps} for c in (t, *ps)}
        marked = [k for k in near if hidden.get(k) in (MASK, SUPPRESSED)]
        if marked:
            def left_exposed(cell: Key) -> tuple[int, bool, int]:
                trial = {**hidden, cell: BLURRED}
                bounds = reader_bounds(table.counts, trial, keys, sums)
                still = sum(1 for k in trial if bounds[k][0] == bounds[k][1])
                return still, hidden[cell] == MASK, order[cell]
            return min(marked, key=left_exposed)
        frontier = near - seen
        seen |= frontier
    return None
