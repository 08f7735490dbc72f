"""One relay run: a bot in a subprocess polls the Bot API double while
employees send tagged messages at an offered rate; the double stamps each
message when it hands the update out and when the relayed sendMessage comes
back.  Works for the real bot and for the bare python-telegram-bot echo bot.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.double import BenchDouble, tagged
from bench.plans import QueryPlan, hot_query_plans
from bench.procstat import cpu_seconds, memory_kib
from bench.seed import SeedTiming, count_open, seed_employees, seed_history
from store.migrate import upgrade
from tests.support.app_runner import REPO, BotSetup, make_setup

EMPLOYEE_BASE = 6_100_000_000
CONFIDANT_BASE = 7_300_000_000
SETTLE_SECONDS = 30.0
"""How long the warm-up may take to come back."""
STALL_SECONDS = 10.0
"""After the offered load, stop waiting once nothing arrived for this long…"""
DRAIN_CAP_SECONDS = 240.0
"""…or after this long in any case (a saturated bot drains a backlog)."""
BOT_CPUS: set[int] = set()
"""Cores every bot process is pinned to (`pin_cores`); empty: not pinned."""


def pin_cores() -> tuple[set[int], set[int]] | None:
    """Bots on the first allowed core, this process (the double, the load
    generator, and the servers it starts) on the second; returns
    (bot cores, our cores) or None on a single core.  `unpin` undoes it."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    BOT_CPUS.clear()
    BOT_CPUS.add(allowed[0])
    os.sched_setaffinity(0, {allowed[1]})
    return {allowed[0]}, {allowed[1]}


def unpin(previous: set[int]) -> None:
    """Give this process its cores back, stop pinning bots."""
    BOT_CPUS.clear()
    os.sched_setaffinity(0, previous)


@dataclass
class Workload:
    """What is offered: who talks, how fast, for how long."""

    employees: int = 200
    confidants: int = 20
    rate: float = 100.0
    seconds: float = 30.0
    warmup_seconds: float = 3.0
    open_cases: int = 0
    """Extra open cases of other people seeded in the store (scale run)."""
    closed_cases: int = 0

    @property
    def total(self) -> int:
        return int(self.rate * self.seconds)


@dataclass
class RelayResult:
    """Measured numbers of one run (latencies in milliseconds)."""

    name: str
    workload: Workload
    kind: str = "confidant"
    """``bare``, ``durable`` or ``confidant``."""
    backend: str = "sqlite"
    """``none`` (bare echo), ``sqlite`` or ``postgresql``."""
    variant: str = ""
    """The durable echo's `bench.outbox_variants` variant."""
    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    elapsed: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_kib: int = 0
    rss_kib: int = 0
    setup_seconds: float = 0.0
    harness_cpu_share: float = 0.0
    """CPU the benchmark process (double + load generator) used over the
    window, as a share of one core: near 1.0 means the load side, not the
    bot, may have been the limit."""
    plans: list[QueryPlan] = field(default_factory=list)
    saturation: Saturation | None = None
    """The saturation search made on this run's bot right after it, if any."""

    @property
    def throughput(self) -> float:
        return self.delivered / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def cpu_ms_per_message(self) -> float:
        return 1000.0 * self.cpu_seconds / self.delivered if self.delivered else float("nan")

    def pct(self, q: float) -> float:
        """The q-th percentile of latency (nearest rank)."""
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        rank = max(0, min(len(data) - 1, math.ceil(q / 100.0 * len(data)) - 1))
        return data[rank]


class Child:
    """A subprocess whose CPU and memory we read from /proc."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if BOT_CPUS:
            # At once, before the interpreter has started any thread (threads inherit it).
            os.sched_setaffinity(self.proc.pid, BOT_CPUS)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, wait for the graceful exit, SIGKILL if it hangs."""
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)


async def _until(check: Callable[[], Awaitable[bool] | bool], timeout: float, what: str,
                 child: Child | None = None) -> None:
    """Poll ``check`` (bounded); fail with the child's log if it died or time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if child is not None and not child.alive():
            raise RuntimeError(f"{what}: the bot process exited\n{child.log_tail()}")
        if time.monotonic() > deadline:
            tail = child.log_tail() if child else ""
            raise RuntimeError(f"{what}: not done within {timeout:.0f}s\n{tail}")
        await asyncio.sleep(0.05)


async def _offer(double: BenchDouble, users: list[int], first: int, count: int,
                 rate: float) -> float:
    """Send ``count`` tagged messages at ``rate``, round robin over ``users``,
    on an absolute schedule (a late tick catches up instead of drifting).
    Returns the wall time the offering took."""
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        user = double.users[users[(first + i) % len(users)]]
        await user.send_text(tagged(first + i))
    return time.perf_counter() - start


async def _warm(double: BenchDouble, child: Child, users: list[int], wl: Workload) -> int:
    """The warm-up load; returns the first sequence number after it."""
    warm = int(wl.rate * wl.warmup_seconds)
    if warm:
        await _offer(double, users, 0, warm, wl.rate)
        await _until(lambda: all(s in double.received_at for s in range(warm)),
                     SETTLE_SECONDS, "warm-up", child)
    return warm


async def _window(double: BenchDouble, child: Child, users: list[int], first: int,
                  total: int, rate: float, result: RelayResult) -> None:
    """Offer ``total`` messages from sequence ``first`` at ``rate``; fill ``result``."""
    double.forget_history()
    double.duplicates = 0
    cpu0, own0 = cpu_seconds(child.pid), time.process_time()
    t0 = time.perf_counter()
    await _offer(double, users, first, total, rate)
    wanted = range(first, first + total)
    await _drain(double, child, wanted)
    got = [s for s in wanted if s in double.received_at]
    last = max((double.received_at[s] for s in got), default=t0)
    result.cpu_seconds = cpu_seconds(child.pid) - cpu0
    result.harness_cpu_share = (time.process_time() - own0) / max(1e-9, time.perf_counter() - t0)
    mem = memory_kib(child.pid)
    result.peak_rss_kib, result.rss_kib = mem.get("VmHWM", 0), mem.get("VmRSS", 0)
    result.sent = total
    result.delivered = len(got)
    result.duplicates = double.duplicates
    result.elapsed = last - t0
    result.latencies_ms = [1000.0 * (double.received_at[s] - double.delivered_at[s])
                           for s in got if s in double.delivered_at]


async def _measure(double: BenchDouble, child: Child, users: list[int], wl: Workload,
                   result: RelayResult) -> int:
    """Warm up, then offer the measured load and collect the numbers; returns
    the next free sequence number."""
    first = await _warm(double, child, users, wl)
    await _window(double, child, users, first, wl.total, wl.rate, result)
    return first + wl.total


async def _drain(double: BenchDouble, child: Child, wanted: range) -> None:
    """Wait for the backlog: until every message came back, nothing came back
    for `STALL_SECONDS`, or `DRAIN_CAP_SECONDS` passed."""
    cap = time.monotonic() + DRAIN_CAP_SECONDS
    seen, last_progress = -1, time.monotonic()
    while time.monotonic() < cap:
        if not child.alive():
            raise RuntimeError(f"the bot process exited\n{child.log_tail()}")
        got = sum(1 for s in wanted if s in double.received_at)
        if got == len(wanted):
            return
        if got != seen:
            seen, last_progress = got, time.monotonic()
        elif time.monotonic() - last_progress > STALL_SECONDS:
            return
        await asyncio.sleep(0.1)


ECHO_NAME = "bare python-telegram-bot echo"


def durable_name(variant: str) -> str:
    """The report's name of a durable echo run."""
    return f"durable echo: {variant}"


@dataclass
class Running:
    """A bot process polling its own double, ready for load."""

    double: BenchDouble
    child: Child
    users: list[int]
    """Telegram ids of the users whose messages are measured."""
    setup_seconds: float
    setup: BotSetup | None = None
    confidants: list[int] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)


@asynccontextmanager
async def started_echo(folder: Path, wl: Workload, variant: str | None = None,
                       db: str | None = None) -> AsyncIterator[Running]:
    """The bare echo (``variant`` None) or the durable echo with ``variant``,
    on SQLite in ``folder`` or on the PostgreSQL database ``db``."""
    folder.mkdir(parents=True, exist_ok=True)
    double = BenchDouble()
    await double.start()
    child: Child | None = None
    try:
        sink = double.user(CONFIDANT_BASE, "Sink", started=True)
        users = [double.user(EMPLOYEE_BASE + i, f"E{i}", started=True).id
                 for i in range(wl.employees)]
        t = time.perf_counter()
        if variant is None:
            argv = ["-m", "bench.echo", double.base_url, double.token, str(sink.id)]
        else:
            argv = ["-m", "bench.durable_echo", double.base_url, double.token, str(sink.id),
                    db or str(folder / "durable.db"), "--variant", variant,
                    "--key-file", str(folder / "durable.key")]
        child = Child([sys.executable, *argv], folder / "echo.log", {})
        await _until(lambda: bool(double.calls("getUpdates")), 30, "echo start", child)
        yield Running(double, child, users, time.perf_counter() - t)
    finally:
        if child is not None:
            await child.stop()
        await double.stop()


async def run_echo(folder: Path, wl: Workload, durable: bool = False,
                   variant: str = "engine", db: str | None = None,
                   profile: Path | None = None,
                   saturate: dict[str, Any] | None = None) -> RelayResult:
    """The bare python-telegram-bot echo bot under the workload; with
    ``durable``, the same bot paying for an outbox (`bench.durable_echo`)
    the ``variant`` way, on SQLite or the PostgreSQL URL ``db``; with
    ``profile``, sampled by py-spy during the measured part."""
    if durable:
        result = RelayResult(durable_name(variant), wl, kind="durable",
                             backend="postgresql" if db else "sqlite", variant=variant)
    else:
        result = RelayResult(ECHO_NAME, wl, kind="bare", backend="none")
    async with started_echo(folder, wl, variant if durable else None, db) as bot:
        result.setup_seconds = bot.setup_seconds
        await _profiled(bot, wl, result, profile, saturate)
    return result


async def _profiled(bot: Running, wl: Workload, result: RelayResult,
                    profile: Path | None, saturate: dict[str, Any] | None) -> None:
    """`_measure`, with py-spy sampling the bot meanwhile if ``profile`` is
    given; then, with ``saturate`` (`search_saturation`'s options), the
    saturation search on the same running bot (``result.saturation``)."""
    spy = _start_profiler(bot.child.pid, profile) if profile else None
    try:
        seq = await _measure(bot.double, bot.child, bot.users, wl, result)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
    if saturate is not None:
        result.saturation = await search_saturation(bot, result.name, result.kind,
                                                    first_seq=seq, **saturate)


@dataclass
class PgBotSetup(BotSetup):
    """A bot setup whose store is a PostgreSQL database."""

    pg_url: str = ""

    @property
    def db_url(self) -> str:
        return self.pg_url


async def prepare_bot(folder: Path, double: BenchDouble, wl: Workload,
                      extra: dict[str, dict[str, object]] | None = None,
                      db: str | None = None, seeding: SeedTiming | None = None
                      ) -> tuple[BotSetup, list[int], list[int], list[str]]:
    """Config, confidants, employees with cases, and optional history; on
    SQLite in ``folder``, or on the (empty) PostgreSQL database ``db``."""
    setup = await make_setup(folder, telegram_base_url=double.base_url,
                             telegram_token=double.token, languages=("en", "nl", "fr"),
                             default_language="en", extra=extra)
    if db is not None:
        text = setup.config_path.read_text(encoding="utf-8")
        setup.config_path.write_text(text.replace(f'url = "{setup.db_url}"', f'url = "{db}"'),
                                     encoding="utf-8")
        await upgrade(db)
        setup = PgBotSetup(setup.folder, setup.config_path, setup.db_path, setup.key_path,
                           setup.env, pg_url=db)
    conf_users = [double.user(CONFIDANT_BASE + i, f"C{i}", started=True).id
                  for i in range(wl.confidants)]
    conf_ids = [await setup.add_confidant(f"Confidant {i}", telegram=uid, languages=["en"])
                for i, uid in enumerate(conf_users)]
    emp_users = [double.user(EMPLOYEE_BASE + i, f"E{i}", started=True).id
                 for i in range(wl.employees)]
    codes = await seed_employees(setup, emp_users, conf_ids)
    if wl.open_cases or wl.closed_cases:
        t = time.perf_counter()
        await seed_history(setup, wl.open_cases, wl.closed_cases, conf_ids)
        if seeding is not None:
            seeding.seconds = time.perf_counter() - t
            seeding.open_cases, seeding.closed_cases = wl.open_cases, wl.closed_cases
            seeding.db_bytes = setup.db_path.stat().st_size if db is None else 0
    return setup, conf_users, emp_users, codes


@asynccontextmanager
async def started_bot(folder: Path, wl: Workload, db: str | None = None,
                      extra: dict[str, dict[str, object]] | None = None,
                      env: dict[str, str] | None = None,
                      ready: str = "", seeding: SeedTiming | None = None
                      ) -> AsyncIterator[Running]:
    """Confidant (subprocess, relaxed rate limiter) with every employee's case
    claimed by their confidant through the double; ``ready`` a log line to
    wait for besides the first getUpdates."""
    folder.mkdir(parents=True, exist_ok=True)
    double = BenchDouble()
    await double.start()
    child: Child | None = None
    try:
        t = time.perf_counter()
        setup, conf_users, emp_users, codes = await prepare_bot(folder, double, wl, extra, db,
                                                                seeding)
        setup.env.update(env or {})
        child = Child([sys.executable, "-m", "bench.botproc", str(setup.config_path)],
                      folder / "bot.log", setup.env)
        await _until(lambda: bool(double.calls("getUpdates")), 60, "bot start", child)
        if ready:
            await _until(lambda: ready in child.log_tail(), 120, ready, child)
        for i, code in enumerate(codes):
            await double.users[conf_users[i % len(conf_users)]].send_text(f"/claim {code}")
        await _until(lambda: _all_open(setup, codes), 120, "claims", child)
        yield Running(double, child, emp_users, time.perf_counter() - t, setup, conf_users,
                      codes)
    finally:
        if child is not None:
            await child.stop()
        await double.stop()


async def run_bot(folder: Path, wl: Workload, name: str = "Confidant",
                  profile: Path | None = None, explain: bool = False,
                  db: str | None = None, seeding: SeedTiming | None = None,
                  saturate: dict[str, Any] | None = None) -> RelayResult:
    """The real bot (subprocess, relaxed rate limiter) under the workload;
    with ``profile``, py-spy (if installed) samples it during the measured part;
    with ``explain``, the hot queries are explained on the store afterwards
    (SQLite only); on the PostgreSQL URL ``db`` if given."""
    result = RelayResult(name, wl, kind="confidant", backend="postgresql" if db else "sqlite")
    async with started_bot(folder, wl, db, seeding=seeding) as bot:
        result.setup_seconds = bot.setup_seconds
        await _profiled(bot, wl, result, profile, saturate)
        await bot.child.stop()
        if explain and db is None:
            assert bot.setup is not None
            result.plans = await hot_query_plans(bot.setup, bot.users[0], bot.confidants[0],
                                                 bot.codes[0])
    return result


@dataclass
class Probe:
    """One offered rate of a saturation search."""

    rate: float
    sent: int
    delivered: int
    p50_ms: float
    p99_ms: float
    cpu_ms_per_message: float
    harness_cpu_share: float
    ok: bool


@dataclass
class Saturation:
    """The highest offered rate a bot sustained with p99 under the limit."""

    name: str
    kind: str
    sustained: float = 0.0
    """Highest passing rate found (0: not even the lowest one)."""
    capped: bool = False
    """True when the highest rate tried still passed (the real limit is higher)."""
    probes: list[Probe] = field(default_factory=list)


P99_LIMIT_MS = 100.0


async def search_saturation(bot: Running, name: str, kind: str, *, probe_seconds: float,
                            start: float = 50.0, cap: float = 3200.0, steps: int = 3,
                            first_seq: int = 0) -> Saturation:
    """Double the offered rate from ``start`` until a probe fails (a message
    not relayed, or p99 ≥ `P99_LIMIT_MS`), then bisect ``steps`` times
    between the last pass and the first failure.  Each probe offers
    ``probe_seconds`` of load to the same running bot after its backlog
    drained; the warm-up is the first probe's."""
    out = Saturation(name, kind)
    seq = first_seq
    if seq == 0:
        seq = await _warm(bot.double, bot.child, bot.users,
                          Workload(rate=start, seconds=0, warmup_seconds=1.0))

    async def probe(rate: float) -> bool:
        nonlocal seq
        total = max(10, int(rate * probe_seconds))
        r = RelayResult(name, Workload(rate=rate, seconds=probe_seconds), kind=kind)
        await _window(bot.double, bot.child, bot.users, seq, total, rate, r)
        seq += total
        ok = r.delivered == r.sent and r.pct(99) < P99_LIMIT_MS
        out.probes.append(Probe(rate, r.sent, r.delivered, r.pct(50), r.pct(99),
                                r.cpu_ms_per_message, r.harness_cpu_share, ok))
        print(f"bench:   {name} at {rate:.0f} msg/s: p99 {r.pct(99):.1f} ms, "
              f"{r.delivered}/{r.sent} {'ok' if ok else 'over'}", file=sys.stderr)
        await asyncio.sleep(0.5)
        return ok

    lo, hi, rate = 0.0, 0.0, start
    while rate <= cap:
        if not await probe(rate):
            hi = rate
            break
        lo, rate = rate, rate * 2
    if hi == 0.0:
        out.sustained, out.capped = lo, True
        return out
    for _ in range(steps):
        mid = (lo + hi) / 2 if lo else hi / 2
        if await probe(mid):
            lo = mid
        else:
            hi = mid
    out.sustained = lo
    return out


def _start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the bot into a collapsed-stack file (a developer tool,
    not a project dependency: ``pip install py-spy`` into the virtualenv)."""
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--format", "raw",
                             "--rate", "200", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _all_open(setup: BotSetup, codes: list[str]) -> bool:
    await asyncio.sleep(0.2)
    return await count_open(setup, codes) == len(codes)
