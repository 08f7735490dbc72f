"""The benchmark at a tiny size, so that it cannot rot: both bots relay every
tagged message through the Bot API double, the hot queries use indexes, and
the report and chart are written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from PIL import Image

from bench.relay import Workload, run_bot, run_echo
from bench.report import Report, chart, markdown


async def test_tiny_benchmark_relays_everything_and_reports(tmp_path: Path) -> None:
    wl = Workload(employees=4, confidants=2, rate=10.0, seconds=1.0, warmup_seconds=0.5,
                  open_cases=40, closed_cases=120)
    echo = await run_echo(tmp_path / "echo", wl)
    ours = await run_bot(tmp_path / "bot", wl, explain=True)
    floor = await run_echo(tmp_path / "durable", wl, durable=True)

    for result in (echo, ours, floor):
        assert result.sent == 10
        assert result.delivered == 10, result.name
        assert len(result.latencies_ms) == 10
        assert all(0 < ms < 5000 for ms in result.latencies_ms)
        assert result.cpu_seconds > 0
        assert result.peak_rss_kib > 10_000
    assert ours.duplicates == 0
    # The bot did strictly more work per message than a bare echo.
    assert ours.cpu_ms_per_message > echo.cpu_ms_per_message

    assert ours.plans, "no hot statement was captured"
    sql = " ".join(p.sql for p in ours.plans)
    for table in ("contacts", "cases", "outbox", "message_links", "handled_events"):
        assert table in sql
    assert [p.short_sql for p in ours.plans if p.full_scans] == []

    # The durable echo really kept its outbox: every message recorded and marked sent.
    with sqlite3.connect(tmp_path / "durable" / "durable.db") as db:
        sent, kept = db.execute("select count(*), count(payload) from outbox "
                                "where status = 'sent'").fetchone()
        pending = db.execute("select count(*) from outbox where status != 'sent'").fetchone()
    assert sent >= floor.sent and kept == 0 and pending == (0,)
    report = Report("test", pairs=[(echo, ours)], floors=[floor], scale=(ours, ours),
                    plans=ours.plans)
    text = markdown(report, "latency.png")
    assert "| Confidant |" in text and "p99 big store / empty store: 1.00×" in text
    assert "| durable echo (outbox minimum) | outbox only |" in text
    assert "What durability alone costs" in text
    chart(report, tmp_path / "latency.png")
    with Image.open(tmp_path / "latency.png") as img:
        assert img.size == (960, 560)
