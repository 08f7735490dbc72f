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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.double import BenchDouble, tagged
from bench.plans import QueryPlan, hot_query_plans
from bench.procstat import cpu_seconds, memory_kib
from bench.seed import count_open, seed_employees, seed_history
from tests.support.app_runner import REPO, BotSetup, make_setup

EMPLOYEE_BASE = 6_100_000_000
CONFIDANT_BASE = 7_300_000_000
SETTLE_SECONDS = 30.0
"""How long the warm-up may take to come back."""
STALL_SECONDS = 10.0
"""After the offered load, stop waiting once nothing arrived for this long…"""
DRAIN_CAP_SECONDS = 240.0
"""…or after this long in any case (a saturated bot drains a backlog)."""


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
    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    elapsed: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_kib: int = 0
    rss_kib: int = 0
    setup_seconds: float = 0.0
    plans: list[QueryPlan] = field(default_factory=list)

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


async def _measure(double: BenchDouble, child: Child, users: list[int], wl: Workload,
                   result: RelayResult) -> None:
    """Warm up, then offer the measured load and collect the numbers."""
    warm = int(wl.rate * wl.warmup_seconds)
    if warm:
        await _offer(double, users, 0, warm, wl.rate)
        await _until(lambda: all(s in double.received_at for s in range(warm)),
                     SETTLE_SECONDS, "warm-up", child)
    double.forget_history()
    first, total = warm, wl.total
    cpu0 = cpu_seconds(child.pid)
    t0 = time.perf_counter()
    await _offer(double, users, first, total, wl.rate)
    wanted = range(first, first + total)
    await _drain(double, child, wanted)
    got = [s for s in wanted if s in double.received_at]
    last = max((double.received_at[s] for s in got), default=t0)
    result.cpu_seconds = cpu_seconds(child.pid) - cpu0
    mem = memory_kib(child.pid)
    result.peak_rss_kib, result.rss_kib = mem.get("VmHWM", 0), mem.get("VmRSS", 0)
    result.sent = total
    result.delivered = len(got)
    result.duplicates = double.duplicates
    result.elapsed = last - t0
    result.latencies_ms = [1000.0 * (double.received_at[s] - double.delivered_at[s])
                           for s in got if s in double.delivered_at]


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
DURABLE_NAME = "durable echo (outbox minimum)"


async def run_echo(folder: Path, wl: Workload, durable: bool = False) -> RelayResult:
    """The bare python-telegram-bot echo bot under the workload; with
    ``durable``, the same bot paying for an outbox (`bench.durable_echo`)."""
    folder.mkdir(parents=True, exist_ok=True)
    double = BenchDouble()
    await double.start()
    result = RelayResult(DURABLE_NAME if durable else ECHO_NAME, wl)
    child: Child | None = None
    try:
        sink = double.user(CONFIDANT_BASE, "Sink", started=True)
        users = [double.user(EMPLOYEE_BASE + i, f"E{i}", started=True).id
                 for i in range(wl.employees)]
        t = time.perf_counter()
        module = "bench.durable_echo" if durable else "bench.echo"
        extra = [str(folder / "durable.db")] if durable else []
        child = Child([sys.executable, "-m", module, double.base_url, double.token,
                       str(sink.id), *extra], folder / "echo.log", {})
        await _until(lambda: bool(double.calls("getUpdates")), 30, "echo start", child)
        result.setup_seconds = time.perf_counter() - t
        await _measure(double, child, users, wl, result)
    finally:
        if child is not None:
            await child.stop()
        await double.stop()
    return result


async def prepare_bot(folder: Path, double: BenchDouble, wl: Workload,
                      extra: dict[str, dict[str, object]] | None = None
                      ) -> tuple[BotSetup, list[int], list[int], list[str]]:
    """Config, confidants, employees with cases, and optional history."""
    setup = await make_setup(folder, telegram_base_url=double.base_url,
                             telegram_token=double.token, languages=("en", "nl", "fr"),
                             default_language="en", extra=extra)
    conf_users = [double.user(CONFIDANT_BASE + i, f"C{i}", started=True).id
                  for i in range(wl.confidants)]
    conf_ids = [await setup.add_confidant(f"Confidant {i}", telegram=uid, languages=["en"])
                for i, uid in enumerate(conf_users)]
    emp_users = [double.user(EMPLOYEE_BASE + i, f"E{i}", started=True).id
                 for i in range(wl.employees)]
    codes = await seed_employees(setup, emp_users, conf_ids)
    if wl.open_cases or wl.closed_cases:
        async with setup.store() as store:
            await seed_history(store, wl.open_cases, wl.closed_cases, conf_ids)
    return setup, conf_users, emp_users, codes


async def run_bot(folder: Path, wl: Workload, name: str = "Confidant",
                  profile: Path | None = None, explain: bool = False) -> RelayResult:
    """The real bot (subprocess, relaxed rate limiter) under the workload;
    with ``profile``, py-spy (if installed) samples it during the measured part;
    with ``explain``, the hot queries are explained on the store afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    double = BenchDouble()
    await double.start()
    result = RelayResult(name, wl)
    child: Child | None = None
    try:
        t = time.perf_counter()
        setup, conf_users, emp_users, codes = await prepare_bot(folder, double, wl)
        child = Child([sys.executable, "-m", "bench.botproc", str(setup.config_path)],
                      folder / "bot.log", setup.env)
        await _until(lambda: bool(double.calls("getUpdates")), 60, "bot start", child)
        for i, code in enumerate(codes):
            await double.users[conf_users[i % len(conf_users)]].send_text(f"/claim {code}")
        await _until(lambda: _all_open(setup, codes), 120, "claims", child)
        result.setup_seconds = time.perf_counter() - t
        spy = _start_profiler(child.pid, profile) if profile else None
        try:
            await _measure(double, child, emp_users, wl, result)
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=30)
        await child.stop()
        if explain:
            result.plans = await hot_query_plans(setup, emp_users[0], conf_users[0], codes[0])
    finally:
        if child is not None:
            await child.stop()
        await double.stop()
    return result


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


@dataclass
class MemoryResult:
    """Resident memory of the bot with every channel up and a full store."""

    channels: str
    open_cases: int
    rss_kib: int = 0
    peak_rss_kib: int = 0
    relayed: int = 0


async def run_memory(folder: Path, open_cases: int, confidants: int = 20,
                     rate: float = 20.0, seconds: float = 10.0) -> MemoryResult:
    """Telegram (the double), Matrix (a real Synapse on 127.0.0.1) and the web
    channel (a free loopback port) in one bot process over ``open_cases``
    open cases; after a short relay load, read VmRSS and VmHWM."""
    from tests.support.matrix_app import PASSWORD_ENV
    from tests.support.synapse import SynapseServer
    from tests.support.telegram_double import free_port

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "synapse").mkdir(exist_ok=True)
    synapse = SynapseServer(folder / "synapse")
    await asyncio.to_thread(synapse.start)
    double = BenchDouble()
    await double.start()
    child: Child | None = None
    result = MemoryResult("telegram, matrix, web", open_cases)
    try:
        bot_user, password = "confidant-bench", "pw-bench-" + os.urandom(6).hex()
        user_id, _, _ = await synapse.register(bot_user, password)
        web_port = free_port()
        extra: dict[str, dict[str, object]] = {
            "matrix": {"enabled": True, "homeserver": synapse.url, "user_id": user_id,
                       "password": f"env:{PASSWORD_ENV}", "device_name": "Confidant bench",
                       "store_dir": str(folder / "data" / "matrix-store")},
            "web": {"enabled": True, "listen": f"127.0.0.1:{web_port}",
                    "public_url": f"http://127.0.0.1:{web_port}"},
        }
        wl = Workload(employees=50, confidants=confidants, rate=rate, seconds=seconds,
                      warmup_seconds=1.0, open_cases=open_cases)
        setup, conf_users, emp_users, codes = await prepare_bot(folder, double, wl, extra)
        setup.env[PASSWORD_ENV] = password
        child = Child([sys.executable, "-m", "bench.botproc", str(setup.config_path)],
                      folder / "bot.log", setup.env)
        await _until(lambda: "confidant running" in child.log_tail(), 120, "all channels",
                     child)
        for i, code in enumerate(codes):
            await double.users[conf_users[i % len(conf_users)]].send_text(f"/claim {code}")
        await _until(lambda: _all_open(setup, codes), 120, "claims", child)
        relay = RelayResult("memory", wl)
        await _measure(double, child, emp_users, wl, relay)
        result.relayed = relay.delivered
        result.rss_kib, result.peak_rss_kib = relay.rss_kib, relay.peak_rss_kib
    finally:
        if child is not None:
            await child.stop()
        await double.stop()
        await asyncio.to_thread(synapse.stop)
    return result
