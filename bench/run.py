"""``python -m bench.run``: the whole benchmark in one command.

Runs, each against a fresh Bot API double on 127.0.0.1:

1. the bare python-telegram-bot echo bot, Confidant, and the durable echo
   (the echo bot plus an outbox, `bench.durable_echo`) at the offered rate
   (default 100 msg/s for 30 s), and again at a lower, sustainable rate;
2. Confidant at the lower rate on a big store (10,000 open and 100,000
   closed cases) with the hot queries explained;
3. Confidant with Telegram, Matrix (a real Synapse) and web channels over
   10,000 open cases, for resident memory.

Writes ``results.md``, ``latency.png`` and ``results.json`` into the output folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.relay import Workload, run_bot, run_echo, run_memory
from bench.report import Report, chart, markdown

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--quick`` shrinks every size to a smoke run."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds, not minutes)")
    p.add_argument("--rate", type=float, help="offered msg/s of the main run (100)")
    p.add_argument("--seconds", type=float, help="length of each measured run (30)")
    p.add_argument("--sustained-rate", type=float,
                   help="offered msg/s of the second run and the scale run (20)")
    p.add_argument("--employees", type=int, help="employees sending (200)")
    p.add_argument("--confidants", type=int, help="confidants receiving (20)")
    p.add_argument("--open-cases", type=int, help="open cases in the big store (10000)")
    p.add_argument("--closed-cases", type=int, help="closed cases in the big store (100000)")
    p.add_argument("--skip-scale", action="store_true")
    p.add_argument("--skip-memory", action="store_true", help="no Synapse run")
    p.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    p.add_argument("--profile", type=Path,
                   help="py-spy raw profile of the bot during the main run (needs py-spy)")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {"rate": 20.0 if quick else 100.0, "seconds": 3.0 if quick else 30.0,
                "sustained_rate": 10.0 if quick else 20.0,
                "employees": 20 if quick else 200, "confidants": 4 if quick else 20,
                "open_cases": 300 if quick else 10_000,
                "closed_cases": 1_000 if quick else 100_000}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


async def run(args: argparse.Namespace, command: str) -> Report:
    """Every scenario in turn; returns what was measured."""
    report = Report(command)
    report.notes.append(
        "The bot runs as `python -m bench.botproc` (= `confidant run` with a relaxed Telegram "
        "rate limiter: 10,000 msg/s overall, 1,000 msg/s per chat), so that Telegram's "
        "30 msg/s overall and 1 msg/s per chat pacing is not what is measured.")
    report.notes.append(
        "Employees each have a case for one confidant (round robin); every confidant claimed "
        "theirs with `/claim CODE` through the double before the measurement; a warm-up "
        "precedes every measured run.")
    with tempfile.TemporaryDirectory(prefix="confidant-bench-") as tmp:
        work = args.work or Path(tmp)
        base = dict(employees=args.employees, confidants=args.confidants,
                    seconds=args.seconds, warmup_seconds=1.0 if args.quick else 3.0)
        for rate in dict.fromkeys((args.rate, args.sustained_rate)):
            wl = Workload(rate=rate, **base)
            print(f"bench: echo bot at {rate:g} msg/s", file=sys.stderr)
            echo = await run_echo(work / f"echo-{rate:g}", wl)
            print(f"bench: Confidant at {rate:g} msg/s", file=sys.stderr)
            profile = args.profile if rate == args.rate else None
            ours = await run_bot(work / f"bot-{rate:g}", wl, profile=profile)
            report.pairs.append((echo, ours))
            print(f"bench: durable echo at {rate:g} msg/s", file=sys.stderr)
            report.floors.append(await run_echo(work / f"durable-{rate:g}", wl, durable=True))
        if not args.skip_scale:
            empty = report.pairs[-1][1]
            wl = Workload(rate=args.sustained_rate, open_cases=args.open_cases,
                          closed_cases=args.closed_cases, **base)
            print("bench: Confidant on the big store", file=sys.stderr)
            big = await run_bot(work / "bot-big", wl, explain=True)
            report.scale = (empty, big)
            report.plans = big.plans
        if not args.skip_memory:
            print("bench: memory with all three channels", file=sys.stderr)
            report.memory = await run_memory(work / "memory", args.open_cases,
                                             confidants=args.confidants,
                                             seconds=min(args.seconds, 10.0))
    return report


def write(report: Report, out: Path) -> Path:
    """results.md, latency.png and results.json (raw numbers) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    chart(report, out / "latency.png")
    md = out / "results.md"
    md.write_text(markdown(report, "latency.png"), encoding="utf-8")
    raw = {
        "runs": [{**asdict(r.workload), "name": r.name, "sent": r.sent,
                  "delivered": r.delivered, "duplicates": r.duplicates,
                  "throughput": r.throughput, "p50_ms": r.pct(50), "p95_ms": r.pct(95),
                  "p99_ms": r.pct(99), "cpu_ms_per_message": r.cpu_ms_per_message,
                  "peak_rss_kib": r.peak_rss_kib} for r in report.runs()],
        "memory": asdict(report.memory) if report.memory else None,
        "full_scans": [p.short_sql for p in report.plans if p.full_scans],
    }
    (out / "results.json").write_text(json.dumps(raw, indent=2), encoding="utf-8")
    return md


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the report."""
    args = parse(argv)
    command = "python -m bench.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    report = asyncio.run(run(args, command.strip()))
    md = write(report, args.out)
    print(md.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
