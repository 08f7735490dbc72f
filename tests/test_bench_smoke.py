"""The benchmark at its smoke size (``python -m bench.run --quick``), so that
it cannot rot, and the durable echo's promise under a SIGKILL between the
commit and the send."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

from PIL import Image

from bench import run
from bench.double import BenchDouble, tagged
from bench.outbox_variants import CHOSEN
from bench.relay import CONFIDANT_BASE, EMPLOYEE_BASE, Child, _until


def test_quick_benchmark_relays_everything_and_reports(tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    affinity = os.sched_getaffinity(0)
    run.main(["--quick", "--out", str(out), "--work", str(work)])
    assert os.sched_getaffinity(0) == affinity, "the benchmark must give the cores back"

    raw = json.loads((out / "results.json").read_text())
    assert len(raw["load_at_start"]) == 3
    runs = raw["runs"]
    kinds = {(r["kind"], r["backend"]) for r in runs}
    assert kinds == {("bare", "none"), ("durable", "sqlite"), ("durable", "postgresql"),
                     ("confidant", "sqlite"), ("confidant", "postgresql")}
    for r in [*runs, raw["big_store"], raw["web"]["relay"]]:
        assert r["sent"] > 0 and r["delivered"] == r["sent"], r["name"]
        assert r["duplicates"] == 0, r["name"]
        assert 0 < r["p50_ms"] <= r["p99_ms"] < 5000, r["name"]
        assert r["cpu_ms_per_message"] > 0, r["name"]
    bare = next(r for r in runs if r["kind"] == "bare")
    ours = next(r for r in runs if r["kind"] == "confidant" and r["backend"] == "sqlite")
    assert ours["cpu_ms_per_message"] > bare["cpu_ms_per_message"]

    floor = {t["name"]: t for t in raw["floor"]}
    chosen = next(n for n in floor if n.split(" (")[0] == f"durable tx: {CHOSEN}")
    for name in ("sqlite3 insert + commit", "AES-256-GCM seal (54 bytes)",
                 "HMAC-SHA256 address hash", chosen):
        assert 0 < floor[name]["median_us"] <= floor[name]["p99_us"], name
    assert {t["backend"] for t in raw["floor"]} == {"sqlite", "crypto", "postgresql"}

    assert {s["kind"] for s in raw["saturation"]} == {"bare", "durable", "confidant"}
    assert all(s["probes"] and s["sustained"] > 0 for s in raw["saturation"])
    assert raw["full_scans"] == []
    assert raw["web"]["tabs"] == 20 and raw["web"]["peak_rss_kib"] > 10_000
    goals = {g["goal"] for g in raw["goals"]}
    assert any(g.startswith("durable echo") for g in goals)
    assert any(g.startswith("saturation") for g in goals)
    assert any(g.startswith("web: relay p99") for g in goals)

    # The durable echo kept its outbox: every message recorded and marked sent, bodies gone.
    with sqlite3.connect(work / f"durable-sqlite-{CHOSEN}" / "durable.db") as db:
        sent, kept = db.execute("select count(*), count(payload) from outbox "
                                "where status = 'sent'").fetchone()
        pending = db.execute("select count(*) from outbox where status != 'sent'").fetchone()
    assert sent > 0 and kept == 0 and pending == (0,)

    text = (out / "results.md").read_text()
    assert "## Goals (issue #15)" in text and "| ratio |" in text
    assert "Load average at start" in text
    with Image.open(out / "latency.png") as img:
        assert img.size == (960, 560)


async def test_durable_echo_loses_nothing_when_killed_between_commit_and_send(
        tmp_path: Path) -> None:
    double = BenchDouble()
    await double.start()
    sink = double.user(CONFIDANT_BASE, "Sink", started=True)
    employee = double.users[double.user(EMPLOYEE_BASE, "E", started=True).id]
    argv = [sys.executable, "-m", "bench.durable_echo", double.base_url, double.token,
            str(sink.id), str(tmp_path / "durable.db"), "--variant", CHOSEN]
    child = None
    try:
        child = Child(argv, tmp_path / "first.log", {"BENCH_KILL_AFTER_COMMIT": "3"})
        for seq in range(2):
            await employee.send_text(tagged(seq))
            await _until(lambda s=seq: s in double.received_at, 30, f"message {seq}", child)
        await employee.send_text(tagged(2))  # committed, then the process dies
        await _until(lambda: not child.alive(), 30, "the kill")
        assert child.proc.returncode == -signal.SIGKILL
        assert 2 not in double.received_at, "the kill came after the send"
        for seq in (3, 4):
            await employee.send_text(tagged(seq))
        await asyncio.sleep(0.3)
        assert not any(s in double.received_at for s in (2, 3, 4))

        child = Child(argv, tmp_path / "second.log", {})
        await _until(lambda: all(s in double.received_at for s in range(5)), 30,
                     "everything after the restart", child)
        await asyncio.sleep(0.5)
        assert double.duplicates == 0
        await child.stop()
        with sqlite3.connect(tmp_path / "durable.db") as db:
            assert db.execute("select count(*) from outbox where status != 'sent'"
                              ).fetchone() == (0,)
            assert db.execute("select count(*) from handled").fetchone() == (5,)
    finally:
        if child is not None:
            await child.stop()
        await double.stop()
