"""``confidant report``: anonymous counts per month, theme and channel, small cells masked."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli_report import (
    MASK,
    SUPPRESSED,
    StatRow,
    build_report,
    mask,
    months_between,
    render_csv,
    render_json,
    render_markdown,
)
from store.models import CaseStatistic
from store.store import Tx
from tests.test_cli import CliEnv, cli_env

__all__ = ["cli_env"]


def test_mask_threshold() -> None:
    assert [mask(n) for n in range(6)] == [MASK, MASK, MASK, 3, 4, 5]
    assert MASK == "<3"


def test_months_between_crosses_years() -> None:
    assert months_between(date(2024, 11, 30), date(2025, 2, 1)) == [
        "2024-11", "2024-12", "2025-01", "2025-02"]
    assert months_between(date(2025, 3, 1), date(2025, 3, 31)) == ["2025-03"]


def _rows() -> list[StatRow]:
    rows = [StatRow("2025-01", "telegram", "stress", True) for _ in range(4)]
    rows += [StatRow("2025-01", "matrix", "bullying", False)]
    rows += [StatRow("2025-02", "web", "stress", None) for _ in range(2)]
    rows += [StatRow("2024-12", "web", "stress", True) for _ in range(9)]  # outside
    return rows


def test_build_report_counts_and_masks() -> None:
    report = build_report(_rows(), ["2025-01", "2025-02"])
    assert report.counts[("2025-01", "cases", "all")] == 5
    assert report.counts[("2025-01", "theme", "stress")] == 4
    # January's 5 cases would give away February's 2 (7 − 5), and likewise
    # 4 stress (6 − 4 = 2), 4 by Telegram and 4 heard in time (4 − 4 = 0):
    # hidden too, as "x".
    assert report.cell("2025-01", "cases", "all") == SUPPRESSED
    assert report.cell("2025-01", "theme", "stress") == SUPPRESSED
    assert report.cell("2025-01", "theme", "bullying") == MASK
    assert report.cell("2025-01", "channel", "telegram") == SUPPRESSED
    assert report.cell("2025-01", "channel", "matrix") == MASK
    assert report.cell("2025-01", "heard", "within_10_days") == SUPPRESSED
    assert report.cell("2025-01", "heard", "late") == MASK
    assert report.cell("2025-02", "cases", "all") == MASK
    assert report.cell("all", "cases", "all") == 7
    assert report.cell("all", "theme", "stress") == 6
    assert report.cell("all", "channel", "web") == MASK
    # A theme nobody had still has its row, masked, so no row's absence says "zero".
    assert report.cell("all", "theme", "sexual") == MASK
    assert ("theme", "sexual") in report.rows()


def test_renderings_never_show_small_numbers() -> None:
    report = build_report(_rows(), ["2025-01", "2025-02"])
    table = render_markdown(report, date(2025, 1, 1), date(2025, 2, 28))
    # January is hidden ("x") wherever it would give February away by subtraction.
    assert "| cases | x | <3 | 7 |" in table
    assert "| theme: stress | x | <3 | 6 |" in table
    assert "| heard within 10 days | x | <3 | 4 |" in table
    for cell in ("| 1 |", "| 2 |", "| 0 |"):
        assert cell not in table
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    counts = {r["count"] for r in rows}
    assert counts <= {"<3", "x", "3", "4", "5", "6", "7"}
    assert {"month": "all", "dimension": "channel", "value": "telegram", "count": "4"} in rows
    assert {"month": "2025-01", "dimension": "channel", "value": "telegram", "count": "x"} \
        in rows
    doc = json.loads(render_json(report, date(2025, 1, 1), date(2025, 2, 28)))
    assert doc["months"]["2025-01"]["themes"]["bullying"] == "<3"
    assert doc["months"]["2025-01"]["cases"] == "x"
    assert doc["all"]["cases"] == 7
    assert doc["all"]["channels"]["telegram"] == 4
    assert doc["threshold"] == 3


def _seed(env: CliEnv) -> None:
    async def add(tx: Tx) -> None:
        for row in _rows():
            tx.session.add(CaseStatistic(month=row.month, channel=row.channel, theme=row.theme,
                                         heard_in_time=row.heard_in_time))

    env.with_store(add)


def test_report_command_formats(cli_env: CliEnv) -> None:
    _seed(cli_env)
    md = cli_env("report", "--from", "2025-01-01", "--to", "2025-02-28")
    assert md.rc == 0, md.err
    assert "| cases | x | <3 | 7 |" in md.out
    assert "2024-12" not in md.out
    as_json = cli_env("report", "--from", "2025-01", "--to", "2025-02", "--format", "json")
    doc = json.loads(as_json.out)
    assert list(doc["months"]) == ["2025-01", "2025-02"]
    assert doc["to"] == "2025-02-28"
    assert doc["all"]["heard"] == {"within_10_days": 4, "late": "<3", "not_heard": "<3"}
    as_csv = cli_env("report", "--from", "2024-12-01", "--to", "2025-01-31", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.out)))
    total = next(r for r in rows if r["month"] == "all" and r["dimension"] == "cases")
    assert total["count"] == "14"
    kinds = cli_env.with_store(lambda tx: tx.audit.recent())
    assert any(e.kind == "report.printed" and e.actor == "admin:cli:hr-anna" for e in kinds)


def test_report_refuses_bad_dates(cli_env: CliEnv) -> None:
    assert "is before" in cli_env("report", "--from", "2025-03-01", "--to", "2025-01-01") \
        .one_line_error()
    assert "not a date" in cli_env("report", "--from", "March", "--to", "2025-01-01") \
        .one_line_error()


# ------------------------------------------------ complementary (secondary) suppression
#
# Hiding a small count is not enough when a total is shown: 4 − 3 = 1 gives the
# hidden count back.  The checks below play the reader who subtracts.  They
# read only what is printed, so they hold whatever way the report decides
# what to hide.

Key = tuple[str, str, str]
"""(month or "all", dimension, value), as the JSON output nests it."""

_DIMENSIONS = {"themes": "theme", "channels": "channel", "heard": "heard"}


def _printed(doc: dict[str, Any]) -> dict[Key, int | str]:
    """Every printed cell of a JSON report, keyed like the table."""
    cells: dict[Key, int | str] = {}
    for column, block in [*doc["months"].items(), ("all", doc["all"])]:
        cells[(column, "cases", "all")] = block["cases"]
        for name, dimension in _DIMENSIONS.items():
            for value, cell in block[name].items():
                cells[(column, dimension, value)] = cell
    return cells


def _equations(doc: dict[str, Any]) -> list[list[tuple[Key, int]]]:
    """What a reader knows adds up: in each month column, cases = Σ themes =
    Σ channels = Σ heard (also when the cases cell itself is hidden); along
    each row, the "all" column = Σ months.  Each as Σ coefficient × cell = 0."""
    cells = _printed(doc)
    columns = [*doc["months"], "all"]
    out: list[list[tuple[Key, int]]] = []
    for column in columns:
        groups = [[k for k in cells if k[0] == column and k[1] == d]
                  for d in _DIMENSIONS.values()]
        total = [((column, "cases", "all"), 1)]
        for i, group in enumerate(groups):
            out.append(total + [(k, -1) for k in group])
            for other in groups[i + 1:]:
                out.append([(k, 1) for k in group] + [(k, -1) for k in other])
    for row in {k[1:] for k in cells}:
        out.append([(("all", *row), 1)] + [((m, *row), -1) for m in doc["months"]])
    return out


def _bounds(cell: int | str, doc: dict[str, Any]) -> tuple[float, float]:
    """What a reader knows of one printed cell: a number exactly; ``<3`` is
    0, 1 or 2; the "suppressed" mark is 3 or more; any other mark, anything."""
    if isinstance(cell, int):
        return (cell, cell)
    if cell == "<3":
        return (0, 2)
    return (3, math.inf) if cell == doc["suppressed_as"] else (0, math.inf)


def _possible(equation: list[tuple[Key, int]], target: Key, cells: dict[Key, int | str],
              doc: dict[str, Any]) -> tuple[float, float]:
    """Every value ``target`` can take given this one equation and the other
    cells' printed bounds.  Exact for one equation: a sum of whole-number
    ranges is itself a whole range."""
    low = high = 0.0
    coefficient = 0
    for key, c in equation:
        if key == target:
            coefficient = c
            continue
        a, b = (c * x for x in _bounds(cells[key], doc))
        low, high = low + min(a, b), high + max(a, b)
    # coefficient × target = −(the rest)
    lo, hi = (-high, -low) if coefficient == 1 else (low, high)
    own_lo, own_hi = _bounds(cells[target], doc)
    return max(lo, own_lo), min(hi, own_hi)


def _derivable(doc: dict[str, Any]) -> list[str]:
    """Hidden cells whose count one row or one column gives away."""
    cells = _printed(doc)
    found = []
    for equation in _equations(doc):
        for key, _ in equation:
            if isinstance(cells[key], int):
                continue
            lo, hi = _possible(equation, key, cells, doc)
            if lo == hi:
                found.append(f"{key} = {lo:g} from {[k for k, _ in equation]}")
    return found


def _lonely_masks(doc: dict[str, Any]) -> list[str]:
    """Groups with a printed total and exactly one hidden cell."""
    cells = _printed(doc)
    lonely = []
    for column in [*doc["months"], "all"]:
        if not isinstance(cells[(column, "cases", "all")], int):
            continue
        for dimension in _DIMENSIONS.values():
            hidden = [k for k in cells if k[:2] == (column, dimension)
                      and not isinstance(cells[k], int)]
            if len(hidden) == 1:
                lonely.append(f"{hidden[0]} in column {column}")
    for row in {k[1:] for k in cells}:
        if isinstance(cells[("all", *row)], int):
            hidden = [m for m in doc["months"] if not isinstance(cells[(m, *row)], int)]
            if len(hidden) == 1:
                lonely.append(f"{(hidden[0], *row)} in its row")
    return lonely


def _one_sexual_case_in_march() -> list[StatRow]:
    """A small workplace: three cases of unwanted sexual behaviour in
    February, then one in March among four about stress."""
    rows = [StatRow("2025-02", "telegram", "sexual", True) for _ in range(3)]
    rows += [StatRow("2025-03", "telegram", "sexual", True)]
    rows += [StatRow("2025-03", "telegram", "stress", True) for _ in range(4)]
    return rows


def test_a_hidden_count_cannot_be_worked_out_from_a_total() -> None:
    report = build_report(_one_sexual_case_in_march(), ["2025-02", "2025-03"])
    start, end = date(2025, 2, 1), date(2025, 3, 31)
    table = render_markdown(report, start, end)
    doc = json.loads(render_json(report, start, end))
    printed = _printed(doc)
    # Before: "| theme: sexual | 3 | <3 | 4 |", and 4 − 3 = the one case in March.
    assert "| theme: sexual | 3 | <3 | 4 |" not in table
    march = doc["months"]["2025-03"]["themes"]["sexual"]
    assert march == "<3"
    assert _derivable(doc) == []
    assert _lonely_masks(doc) == []
    # The grand total stays: hiding it protects nobody here.
    assert doc["all"]["cases"] == 8
    # The reader is told why a count of 3 or more can be hidden too.
    hidden_marks = {c for c in printed.values() if isinstance(c, str)}
    assert hidden_marks == {"<3", doc["suppressed_as"]}
    assert f"`{doc['suppressed_as']}`" in table and "total" in table
    # Markdown, CSV and JSON hide exactly the same cells.
    by_csv = {(r["month"], r["dimension"], r["value"]): r["count"]
              for r in csv.DictReader(io.StringIO(render_csv(report)))}
    assert by_csv == {k: str(v) for k, v in printed.items()}
    labels = {"cases": ("cases", "all"), "heard within 10 days": ("heard", "within_10_days"),
              "theme: sexual": ("theme", "sexual"), "channel: telegram": ("channel", "telegram")}
    for line in table.splitlines():
        title, *cells = [c.strip() for c in line.strip("|").split("|")]
        if title in labels:
            row = labels[title]
            assert cells == [str(printed[(m, *row)]) for m in ["2025-02", "2025-03", "all"]]


_MONTHS = ["2025-01", "2025-02", "2025-03"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.builds(StatRow,
                       month=st.sampled_from(_MONTHS),
                       channel=st.sampled_from(["telegram", "matrix", "web"]),
                       theme=st.sampled_from(["stress", "bullying", "sexual", "conflict",
                                              "withdrawn"]),
                       heard_in_time=st.sampled_from([True, False, None])),
             max_size=40),
    st.integers(min_value=1, max_value=3),
)
def test_no_hidden_count_follows_from_its_row_or_column(rows: list[StatRow], n: int) -> None:
    months = _MONTHS[:n]
    report = build_report(rows, months)
    doc = json.loads(render_json(report, date(2025, 1, 1), date(2025, n, 28)))
    assert _lonely_masks(doc) == []
    assert _derivable(doc) == []
    # Still never a small number in sight, and what is shown is the true count.
    truth = build_report(rows, months).counts
    for key, cell in _printed(doc).items():
        if isinstance(cell, int):
            assert cell >= 3 and cell == truth.get(key, 0)
        elif cell == "<3":
            assert truth.get(key, 0) < 3
        elif cell == doc["suppressed_as"]:
            assert truth.get(key, 0) >= 3
        else:
            assert cell == doc["blurred_as"]


def test_when_the_marks_themselves_add_up_a_cell_becomes_any_number() -> None:
    """Six cases in one month, two per channel: "<3 <3 <3" caps the month at
    6, and two heard rows of 3 ("x", so at least 3 each) floor it at 6, which
    would give away every channel as exactly 2.  Some mark must say less."""
    spec = [("telegram", "private", False), ("telegram", "private", None),
            ("matrix", "private", False), ("matrix", "violence_internal", None),
            ("web", "violence_internal", False), ("web", "other", None)]
    report = build_report([StatRow("2025-05", c, t, h) for c, t, h in spec], ["2025-05"])
    start, end = date(2025, 5, 1), date(2025, 5, 31)
    doc = json.loads(render_json(report, start, end))
    assert _derivable(doc) == []
    assert _lonely_masks(doc) == []
    assert doc["blurred_as"] in _printed(doc).values()
    # The small counts keep their "<3": that is what the reader most needs.
    assert doc["months"]["2025-05"]["channels"] == {"telegram": "<3", "matrix": "<3", "web": "<3"}
    table = render_markdown(report, start, end)
    assert f"`{doc['blurred_as']}` is hidden and may be any number" in table
    # A table that needs no "?" does not mention it.
    plain = render_markdown(build_report(_rows(), ["2025-01", "2025-02"]), start, end)
    assert f"`{doc['blurred_as']}`" not in plain
