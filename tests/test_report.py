"""``confidant report``: anonymous counts per month, theme and channel, small cells masked."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

from bot.cli_report import (
    MASK,
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
    assert report.cell("2025-01", "cases", "all") == 5
    assert report.cell("2025-01", "theme", "stress") == 4
    assert report.cell("2025-01", "theme", "bullying") == MASK
    assert report.cell("2025-01", "channel", "telegram") == 4
    assert report.cell("2025-01", "channel", "matrix") == MASK
    assert report.cell("2025-01", "heard", "within_10_days") == 4
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
    assert "| cases | 5 | <3 | 7 |" in table
    assert "| theme: stress | 4 | <3 | 6 |" in table
    assert "| heard within 10 days | 4 | <3 | 4 |" in table
    for cell in ("| 1 |", "| 2 |", "| 0 |"):
        assert cell not in table
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    counts = {r["count"] for r in rows}
    assert counts <= {"<3", "3", "4", "5", "6", "7"}
    assert {"month": "2025-01", "dimension": "channel", "value": "telegram", "count": "4"} \
        in rows
    doc = json.loads(render_json(report, date(2025, 1, 1), date(2025, 2, 28)))
    assert doc["months"]["2025-01"]["themes"]["bullying"] == "<3"
    assert doc["months"]["2025-01"]["cases"] == 5
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
    assert "| cases | 5 | <3 | 7 |" in md.out
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
