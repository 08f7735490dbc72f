"""``python -m bench.run``: the whole benchmark in one command.

In order, each bot pinned to one core and the double, the load generator
and the servers to the other (when there are two):

1. the physical floor and the stack's ladder (`bench.floor`);
2. at the offered rate (100 msg/s for 30 s): the bare python-telegram-bot
   echo, the durable echo in every `bench.outbox_variants` variant, and
   Confidant, on SQLite and again on PostgreSQL;
3. saturation: the highest offered rate at which the bare echo, the chosen
   durable echo and Confidant keep p99 under 100 ms on their one core;
4. scale rows: Confidant on a big store (100,000 open + 1,000,000 closed
   cases, hot queries explained), with 1,000 open employee WebSockets, and
   in 1,000 Matrix rooms on a real Synapse.

Writes ``results.md``, ``latency.png`` and ``results.json`` into the output folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench import relay
from bench.floor import Timing
from bench.outbox_variants import CHOSEN, VARIANTS
from bench.relay import (
    Workload,
    run_bot,
    run_echo,
)
from bench.report import Report, chart, markdown

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--quick`` shrinks every size to a smoke run."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (well under a minute)")
    p.add_argument("--rate", type=float, help="offered msg/s of the relay runs (100)")
    p.add_argument("--seconds", type=float, help="length of each measured run (30)")
    p.add_argument("--employees", type=int, help="employees sending (200)")
    p.add_argument("--confidants", type=int, help="confidants receiving (20)")
    p.add_argument("--variants", help="durable echo variants, comma-separated (all)")
    p.add_argument("--floor-n", type=int, help="iterations per floor/ladder rung (3000)")
    p.add_argument("--probe-seconds", type=float, help="length of a saturation probe (8)")
    p.add_argument("--open-cases", type=int, help="open cases in the big store (100000)")
    p.add_argument("--closed-cases", type=int, help="closed cases in the big store (1000000)")
    p.add_argument("--web-tabs", type=int, help="open employee WebSockets (1000)")
    p.add_argument("--rooms", type=int, help="Matrix rooms the bot is in (1000)")
    p.add_argument("--idle-seconds", type=float, help="idle window of the Matrix run (60)")
    p.add_argument("--skip-postgres", action="store_true")
    p.add_argument("--skip-saturation", action="store_true")
    p.add_argument("--skip-scale", action="store_true", help="no big store")
    p.add_argument("--skip-web", action="store_true")
    p.add_argument("--skip-matrix", action="store_true",
                   help="no Synapse run (always skipped with --quick unless --with-matrix)")
    p.add_argument("--with-matrix", action="store_true", help="the Synapse run even with --quick")
    p.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    p.add_argument("--profile", type=Path,
                   help="py-spy raw profiles of Confidant and the chosen durable echo "
                        "during their SQLite runs, as FILE and FILE.durable (needs py-spy)")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {"rate": 20.0 if quick else 100.0, "seconds": 2.0 if quick else 30.0,
                "employees": 10 if quick else 200, "confidants": 2 if quick else 20,
                "variants": CHOSEN if quick else ",".join(VARIANTS),
                "floor_n": 200 if quick else 3000,
                "probe_seconds": 1.0 if quick else 8.0,
                "open_cases": 200 if quick else 100_000,
                "closed_cases": 1_000 if quick else 1_000_000,
                "web_tabs": 20 if quick else 1000, "rooms": 6 if quick else 1000,
                "idle_seconds": 3.0 if quick else 60.0}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if quick and not args.with_matrix:
        args.skip_matrix = True
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        p.error(f"unknown variant(s) {', '.join(sorted(unknown))}: choose from "
                f"{', '.join(VARIANTS)}")
    return args


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def run_floor(work: Path, n: int, pg_url: str | None) -> list[Timing]:
    """`bench.floor` in its own process, on the bots' core."""
    out = work / "floor.json"
    argv = [sys.executable, "-m", "bench.floor", "--n", str(n), "--json", str(out),
            "--work", str(work)]
    if pg_url:
        argv += ["--pg", pg_url]
    proc = subprocess.Popen(argv, cwd=relay.REPO, stdout=subprocess.DEVNULL)
    if relay.BOT_CPUS:
        os.sched_setaffinity(proc.pid, relay.BOT_CPUS)
    if proc.wait(timeout=1800) != 0:
        raise RuntimeError("bench.floor failed")
    return [Timing(**t) for t in json.loads(out.read_text())]


async def run(args: argparse.Namespace, command: str) -> Report:
    """Every scenario in turn; returns what was measured."""
    report = Report(command, load_at_start=os.getloadavg(), quick=args.quick)
    before = os.sched_getaffinity(0)
    pinned = relay.pin_cores()
    report.cores = (f"bots on core {sorted(pinned[0])[0]}, double and load on core "
                    f"{sorted(pinned[1])[0]}") if pinned else "not pinned (one core)"
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="confidant-bench-") as tmp:
            work = args.work or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            if args.skip_postgres:
                await _all(args, report, work, None)
            else:
                from bench.pg import fresh_database, postgres
                async with postgres() as server:
                    async def fresh() -> str:
                        return await fresh_database(server)
                    await _all(args, report, work, fresh)
    finally:
        relay.unpin(before)
    report.total_seconds = time.perf_counter() - started
    return report


@contextlib.asynccontextmanager
async def _stage(report: Report, what: str) -> AsyncIterator[None]:
    """A scale stage that fails is a finding, not the end of the run: the
    relays already measured are still written, with the failure in the notes."""
    try:
        yield
    except Exception as exc:
        _say(f"{what} FAILED: {exc!r}")
        report.notes.append(f"**{what}: the stage failed** ({type(exc).__name__}: {exc}); "
                            "its row is missing from this run.")


async def _all(args: argparse.Namespace, report: Report, work: Path, pg) -> None:  # type: ignore[no-untyped-def]
    """The scenarios, with ``pg()`` making a fresh PostgreSQL database (or None)."""
    variants = args.variants.split(",")
    _say("floor and ladder")
    report.floor = run_floor(work, args.floor_n, await pg() if pg else None)
    wl = Workload(rate=args.rate, seconds=args.seconds, employees=args.employees,
                  confidants=args.confidants, warmup_seconds=1.0 if args.quick else 3.0)
    sat = None if args.skip_saturation else dict(
        probe_seconds=args.probe_seconds, steps=0 if args.quick else 3,
        start=args.rate if args.quick else 50.0, cap=args.rate if args.quick else 3200.0)
    _say(f"bare echo at {args.rate:g} msg/s" + (", then its saturation" if sat else ""))
    report.relays.append(await run_echo(work / "echo", wl, saturate=sat))
    backends = ["sqlite", "postgresql"] if pg else ["sqlite"]
    for backend in backends:
        for variant in variants:
            if backend not in VARIANTS[variant].backends:
                continue
            on_sqlite = backend == "sqlite"
            _say(f"durable echo {variant} on {backend}")
            db = None if on_sqlite else await pg()
            profile = (args.profile.with_name(args.profile.name + ".durable")
                       if args.profile and variant == CHOSEN and on_sqlite else None)
            report.relays.append(await run_echo(
                work / f"durable-{backend}-{variant}", wl, durable=True, variant=variant, db=db,
                profile=profile, saturate=sat if variant == CHOSEN and on_sqlite else None))
        _say(f"Confidant on {backend}")
        db = None if backend == "sqlite" else await pg()
        report.relays.append(await run_bot(work / f"bot-{backend}", wl, db=db,
                                           profile=args.profile if db is None else None,
                                           saturate=sat if db is None else None))
    report.saturation = [r.saturation for r in report.relays if r.saturation is not None]
    if not args.skip_scale:
        from bench.seed import SeedTiming
        big = Workload(rate=args.rate, seconds=args.seconds, employees=args.employees,
                       confidants=args.confidants, warmup_seconds=wl.warmup_seconds,
                       open_cases=args.open_cases, closed_cases=args.closed_cases)
        _say(f"Confidant on a store of {args.open_cases:,} open + "
             f"{args.closed_cases:,} closed cases")
        seeding = SeedTiming()
        async with _stage(report, "the big store"):
            result = await run_bot(work / "bot-big", big, explain=True, seeding=seeding)
            report.big_store, report.seeding = result, seeding
            report.plans = result.plans
    if not args.skip_web:
        from bench.web_scale import run_web
        _say(f"web channel with {args.web_tabs} open employee tabs")
        async with _stage(report, f"web channel with {args.web_tabs:,} open tabs"):
            report.web = await run_web(work / "web", args.web_tabs, wl)
    if not args.skip_matrix:
        from bench.matrix_scale import run_matrix
        _say(f"Matrix channel in {args.rooms} rooms")
        async with _stage(report, f"Matrix channel in {args.rooms:,} rooms"):
            report.matrix = await run_matrix(work / "matrix", args.rooms, args.idle_seconds,
                                             confidants=args.confidants)


def write(report: Report, out: Path) -> Path:
    """results.md, latency.png and results.json (raw numbers) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    chart(report, out / "latency.png")
    md = out / "results.md"
    md.write_text(markdown(report, "latency.png"), encoding="utf-8")
    (out / "results.json").write_text(json.dumps(report.raw(), indent=2), encoding="utf-8")
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
