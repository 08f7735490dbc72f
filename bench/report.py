"""The benchmark's outputs: a markdown report (machine, load, versions, the
goals with their ratios, every table) and a PNG chart of the latency
distributions (a CDF on a log time axis), drawn with Pillow."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from bench.floor import Timing
from bench.outbox_variants import CHOSEN, VARIANTS
from bench.plans import QueryPlan
from bench.relay import RelayResult, Saturation
from bench.seed import SeedTiming

DURABLE_GOAL = 1.3
"""Durable echo ÷ bare echo at p50, p99 and CPU per message (issue #15)."""
CONFIDANT_DURABLE_GOAL = 1.25
CONFIDANT_BARE_GOAL = 1.5
SATURATION_GOAL = 0.70
"""Confidant's sustained rate ÷ the bare echo's, at least."""
SCALE_GOAL = 1.2
"""Relay p99 on the big store ÷ on the empty store, at most."""
WEB_P99_GOAL_MS = 100.0
WEB_RSS_GOAL_MB = 250.0
MATRIX_IDLE_CPU_GOAL_S = 1.2
"""CPU seconds per idle minute in 1,000 rooms: 2 % of a core."""
MATRIX_RESTART_GOAL_S = 15.0
MATRIX_RSS_GOAL_MB = 250.0
SEEDING_GOAL_S = 900.0
"""Filling the big store: minutes, not hours."""
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
           (140, 86, 75), (23, 190, 207), (127, 127, 127)]


@dataclass
class WebResult:
    """Confidant with many employee WebSockets open."""

    tabs: int
    relay: RelayResult
    rss_kib: int = 0
    peak_rss_kib: int = 0
    connect_seconds: float = 0.0


@dataclass
class MatrixResult:
    """Confidant in many Matrix rooms on a real Synapse."""

    rooms: int
    seed_seconds: float = 0.0
    """Creating the rooms and joining the bot to them."""
    idle_seconds: float = 0.0
    idle_cpu_seconds: float = 0.0
    restart_reply_seconds: float = 0.0
    """Process start → the bot's answer in a DM, after a restart."""
    rss_kib: int = 0
    peak_rss_kib: int = 0

    @property
    def idle_cpu_per_minute(self) -> float:
        return 60.0 * self.idle_cpu_seconds / self.idle_seconds if self.idle_seconds else math.nan


@dataclass
class Report:
    """Everything one benchmark run measured."""

    command: str
    load_at_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quick: bool = False
    cores: str = ""
    total_seconds: float = 0.0
    floor: list[Timing] = field(default_factory=list)
    relays: list[RelayResult] = field(default_factory=list)
    saturation: list[Saturation] = field(default_factory=list)
    big_store: RelayResult | None = None
    seeding: SeedTiming | None = None
    plans: list[QueryPlan] = field(default_factory=list)
    web: WebResult | None = None
    matrix: MatrixResult | None = None
    notes: list[str] = field(default_factory=list)

    def find(self, kind: str, backend: str | None = None,
             variant: str | None = None) -> RelayResult | None:
        """The relay run of this kind (and backend, variant), if it was made."""
        for r in self.relays:
            if r.kind == kind and (backend is None or r.backend == backend) and (
                    variant is None or r.variant == variant):
                return r
        return None

    def charted(self) -> list[RelayResult]:
        """The runs the chart shows (at most eight)."""
        picks = [self.find("bare"), self.find("durable", "sqlite", "engine"),
                 self.find("durable", "sqlite", CHOSEN), self.find("confidant", "sqlite"),
                 self.find("durable", "postgresql", CHOSEN),
                 self.find("confidant", "postgresql"), self.big_store]
        out: list[RelayResult] = []
        for r in picks:
            if r is not None and r not in out:
                out.append(r)
        return out

    def raw(self) -> dict[str, Any]:
        """Every number, for results.json."""
        def run(r: RelayResult) -> dict[str, Any]:
            return {**asdict(r.workload), "name": r.name, "kind": r.kind, "backend": r.backend,
                    "variant": r.variant, "sent": r.sent, "delivered": r.delivered,
                    "duplicates": r.duplicates, "throughput": r.throughput,
                    "p50_ms": r.pct(50), "p95_ms": r.pct(95), "p99_ms": r.pct(99),
                    "cpu_ms_per_message": r.cpu_ms_per_message, "peak_rss_kib": r.peak_rss_kib,
                    "harness_cpu_share": r.harness_cpu_share}
        return {
            "command": self.command, "load_at_start": list(self.load_at_start),
            "cores": self.cores, "total_seconds": self.total_seconds, "machine": machine(),
            "goals": [asdict(g) for g in goals(self)],
            "floor": [asdict(t) for t in self.floor],
            "runs": [run(r) for r in self.relays],
            "saturation": [asdict(s) for s in self.saturation],
            "big_store": run(self.big_store) if self.big_store else None,
            "seeding": asdict(self.seeding) if self.seeding else None,
            "full_scans": [p.short_sql for p in self.plans if p.full_scans],
            "web": ({"tabs": self.web.tabs, "rss_kib": self.web.rss_kib,
                     "peak_rss_kib": self.web.peak_rss_kib,
                     "connect_seconds": self.web.connect_seconds, "relay": run(self.web.relay)}
                    if self.web else None),
            "matrix": ({**asdict(self.matrix),
                        "idle_cpu_per_minute": self.matrix.idle_cpu_per_minute}
                       if self.matrix else None),
        }


@dataclass
class Goal:
    """One goal of issue #15 and how this run did against it."""

    goal: str
    backend: str
    measured: str
    target: str
    ratio: float
    """Measured ÷ target-basis: ≤ 1 (or ≥ 1 for 'at least' goals) meets it."""
    met: bool


def _ratio(ours: float, base: float) -> float:
    return ours / base if base > 0 and not math.isnan(base) and not math.isnan(ours) \
        else float("nan")


def _relay_goals(report: Report, out: list[Goal]) -> None:
    bare = report.find("bare")
    if bare is None:
        return
    for backend in ("sqlite", "postgresql"):
        durable = report.find("durable", backend, CHOSEN)
        ours = report.find("confidant", backend)
        pairs = [(f"durable echo ({CHOSEN}) ÷ bare echo", durable, bare, DURABLE_GOAL),
                 (f"Confidant ÷ durable echo ({CHOSEN})", ours, durable, CONFIDANT_DURABLE_GOAL),
                 ("Confidant ÷ bare echo", ours, bare, CONFIDANT_BARE_GOAL)]
        for label, a, b, limit in pairs:
            if a is None or b is None:
                continue
            for what, x, y in (("p50", a.pct(50), b.pct(50)), ("p99", a.pct(99), b.pct(99)),
                               ("CPU/msg", a.cpu_ms_per_message, b.cpu_ms_per_message)):
                r = _ratio(x, y)
                unit = "ms"
                out.append(Goal(f"{label}, {what} at {a.workload.rate:g} msg/s", backend,
                                f"{x:.2f} / {y:.2f} {unit}", f"≤ {limit}×", r,
                                r <= limit and a.delivered == a.sent))


def goals(report: Report) -> list[Goal]:
    """Every goal this run has numbers for."""
    out: list[Goal] = []
    _relay_goals(report, out)
    sat = {s.kind: s for s in report.saturation}
    if "bare" in sat and "confidant" in sat:
        r = _ratio(sat["confidant"].sustained, sat["bare"].sustained)
        out.append(Goal("saturation on one core: Confidant ÷ bare echo (p99 < 100 ms)", "sqlite",
                        f"{sat['confidant'].sustained:.0f} / {sat['bare'].sustained:.0f} msg/s",
                        f"≥ {SATURATION_GOAL:.0%}", r, r >= SATURATION_GOAL))
    empty = report.find("confidant", "sqlite")
    if report.big_store and empty:
        big = report.big_store
        r = _ratio(big.pct(99), empty.pct(99))
        out.append(Goal(f"store of {big.workload.open_cases:,} open + "
                        f"{big.workload.closed_cases:,} closed: p99 ÷ empty store", "sqlite",
                        f"{big.pct(99):.2f} / {empty.pct(99):.2f} ms", f"≤ {SCALE_GOAL}×", r,
                        r <= SCALE_GOAL))
    if report.seeding:
        s = report.seeding
        out.append(Goal("seeding the big store", "sqlite", f"{s.seconds:.0f} s",
                        f"≤ {SEEDING_GOAL_S:.0f} s", s.seconds / SEEDING_GOAL_S,
                        s.seconds <= SEEDING_GOAL_S))
    if report.web:
        w = report.web
        p99 = w.relay.pct(99)
        out.append(Goal(f"web: relay p99 with {w.tabs:,} open employee tabs", "sqlite",
                        f"{p99:.1f} ms", f"≤ {WEB_P99_GOAL_MS:.0f} ms", p99 / WEB_P99_GOAL_MS,
                        p99 <= WEB_P99_GOAL_MS and w.relay.delivered == w.relay.sent))
        mb = w.peak_rss_kib / 1024
        out.append(Goal(f"web: peak RSS with {w.tabs:,} open employee tabs", "sqlite",
                        f"{mb:.0f} MB", f"≤ {WEB_RSS_GOAL_MB:.0f} MB", mb / WEB_RSS_GOAL_MB,
                        mb <= WEB_RSS_GOAL_MB))
    if report.matrix:
        m = report.matrix
        idle = m.idle_cpu_per_minute
        out.append(Goal(f"Matrix in {m.rooms:,} rooms: sync CPU per idle minute", "sqlite",
                        f"{idle:.2f} s", f"≤ {MATRIX_IDLE_CPU_GOAL_S} s",
                        idle / MATRIX_IDLE_CPU_GOAL_S, idle <= MATRIX_IDLE_CPU_GOAL_S))
        out.append(Goal(f"Matrix in {m.rooms:,} rooms: first reply after a restart", "sqlite",
                        f"{m.restart_reply_seconds:.1f} s", f"≤ {MATRIX_RESTART_GOAL_S:.0f} s",
                        m.restart_reply_seconds / MATRIX_RESTART_GOAL_S,
                        m.restart_reply_seconds <= MATRIX_RESTART_GOAL_S))
        mb = m.peak_rss_kib / 1024
        out.append(Goal(f"Matrix in {m.rooms:,} rooms: peak RSS", "sqlite", f"{mb:.0f} MB",
                        f"≤ {MATRIX_RSS_GOAL_MB:.0f} MB", mb / MATRIX_RSS_GOAL_MB,
                        mb <= MATRIX_RSS_GOAL_MB))
    return out


def machine() -> dict[str, str]:
    """nproc, CPU model and RAM of this machine; versions of what we measure."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = next(int(line.split()[1]) for line in
                       Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal"))
        ram = f"{mem_kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        ram = "unknown"
    info = {"nproc": str(os.cpu_count()), "CPU": cpu, "RAM": ram,
            "OS": f"{platform.system()} {platform.release()}",
            "Python": platform.python_version()}
    for dist in ("python-telegram-bot", "SQLAlchemy", "aiosqlite", "asyncpg", "matrix-nio",
                 "aiohttp", "httpx", "cryptography"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = "not installed"
    return info


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def _x(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}×"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _relay_table(runs: list[RelayResult]) -> list[str]:
    lines = ["| run | store | offered msg/s | sent | relayed | throughput msg/s | p50 | p95 "
             "| p99 | CPU ms/msg | peak RSS MB | load side CPU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        wl = r.workload
        store = r.backend if r.kind != "bare" else "none"
        if wl.open_cases or wl.closed_cases:
            store += f", {wl.open_cases:,} open + {wl.closed_cases:,} closed"
        lines.append(
            f"| {r.name} | {store} | {wl.rate:g} | {r.sent} | {r.delivered} "
            f"| {r.throughput:.1f} | {_ms(r.pct(50))} | {_ms(r.pct(95))} | {_ms(r.pct(99))} "
            f"| {r.cpu_ms_per_message:.2f} | {r.peak_rss_kib / 1024:.0f} "
            f"| {r.harness_cpu_share:.0%} |")
    return lines


def markdown(report: Report, chart_name: str) -> str:
    """The report as markdown."""
    load = ", ".join(f"{v:.2f}" for v in report.load_at_start)
    lines = ["# Confidant benchmark results", "",
             f"Command: `{report.command}`" + (" (smoke size)" if report.quick else ""), "",
             f"Load average at start (1, 5, 15 min): **{load}** on {os.cpu_count()} cores; "
             f"{report.cores}; whole run {report.total_seconds / 60:.1f} min.", "",
             "## Goals (issue #15)", "",
             "Ratio: measured ÷ its basis (the other bot, the empty store, or the target "
             "itself for absolute goals).", "",
             "| goal | store | measured | target | ratio | |", "|---|---|---|---|---|---|"]
    for g in goals(report):
        lines.append(f"| {g.goal} | {g.backend} | {g.measured} | {g.target} | {_x(g.ratio)} "
                     f"| {_verdict(g.met)} |")
    if report.floor:
        lines += ["", "## Physical floor and the stack's ladder (µs per operation)", "",
                  "Raw `sqlite3` with the bot's pragmas (`store.db`: WAL, synchronous = NORMAL, "
                  "busy timeout, foreign keys, secure_delete) and the store's AES-256-GCM seal "
                  "and HMAC-SHA256; then the durable echo's record + mark-sent through each "
                  "variant (`bench/outbox_variants.py`) from an asyncio loop, in the bots' "
                  "process shape (one process on one core). CPU: all threads of the process.",
                  "", "| operation | store | n | median µs | p99 µs | CPU µs |",
                  "|---|---|---|---|---|---|"]
        for t in report.floor:
            lines.append(f"| {t.name} | {t.backend} | {t.n} | {t.median_us:.1f} "
                         f"| {t.p99_us:.1f} | {t.cpu_us:.1f} |")
    lines += ["", "## Relay latency (update handed out by getUpdates → sendMessage received)",
              "", "Latency in milliseconds; CPU of the bot process only (all its threads, "
              "from /proc schedstat); 'load side CPU': the benchmark process (double and load "
              "generator) as a share of its core — near 100 % the load side may be the limit.",
              "", *_relay_table(report.relays)]
    lines += ["", f"![latency distribution]({chart_name})"]
    bare = report.find("bare")
    if bare and any(r.kind == "durable" for r in report.relays):
        lines += ["", "### Durable echo variants, each ÷ the bare echo", "",
                  "| variant | SQLite p50 | p99 | CPU | PostgreSQL p50 | p99 | CPU |",
                  "|---|---|---|---|---|---|---|"]
        for variant in VARIANTS:
            cells = []
            for backend in ("sqlite", "postgresql"):
                d = report.find("durable", backend, variant)
                if d is None:
                    cells += ["", "", ""]
                else:
                    cells += [_x(_ratio(d.pct(50), bare.pct(50))),
                              _x(_ratio(d.pct(99), bare.pct(99))),
                              _x(_ratio(d.cpu_ms_per_message, bare.cpu_ms_per_message))]
            if any(cells):
                mark = " (chosen)" if variant == CHOSEN else ""
                lines.append(f"| {variant}{mark} | " + " | ".join(cells) + " |")
    if report.saturation:
        lines += ["", "## Saturation on one core", "",
                  "Offered rate doubled from a start until a probe fails (a message not "
                  "relayed, or p99 ≥ 100 ms), then bisected; each probe against the same "
                  "running bot after its backlog drained.", "",
                  "| bot | sustained msg/s | probes (msg/s: p99 ms, CPU ms/msg, load side) |",
                  "|---|---|---|"]
        for s in report.saturation:
            probes = "; ".join(f"{p.rate:.0f}: {_ms(p.p99_ms)}, {p.cpu_ms_per_message:.2f}, "
                               f"{p.harness_cpu_share:.0%}{'' if p.ok else ' ✗'}"
                               for p in s.probes)
            capped = " (cap: still passing)" if s.capped else ""
            lines.append(f"| {s.name} | {s.sustained:.0f}{capped} | {probes} |")
    if report.big_store or report.seeding:
        lines += ["", "## Big store", ""]
        if report.seeding:
            seeded = report.seeding
            lines.append(f"Seeded {seeded.open_cases:,} open and {seeded.closed_cases:,} "
                         "closed cases "
                         "(each with its own wrapped data key, sealed contact, and per closed "
                         "case a delivered outbox row and a reply link) in "
                         f"**{seeded.seconds:.1f} s**; database {seeded.db_bytes / 1e6:.0f} MB.")
        if report.big_store:
            lines += ["", *_relay_table([report.big_store])]
    if report.plans:
        scans = [p for p in report.plans if p.full_scans]
        lines += ["", "### Query plans of the hot path on the big store", "",
                  "Every statement one relay in each direction issues, explained by SQLite. "
                  f"Full scans of a growing table: **{len(scans)}**.", "",
                  "| statement | plan |", "|---|---|"]
        for p in report.plans:
            plan = "<br>".join(p.plan).replace("|", "\\|")
            lines.append(f"| `{p.short_sql.replace('|', '/')}` | {plan} |")
    if report.web:
        w = report.web
        lines += ["", "## Web channel", "",
                  f"{w.tabs:,} employee tabs open on the bot's WebSocket (each with a claimed "
                  f"case, connected in {w.connect_seconds:.1f} s); the measured messages go "
                  "from a tab (time of the WebSocket send) to the Telegram confidant (time the "
                  f"double receives the sendMessage). RSS {w.rss_kib / 1024:.0f} MB, peak "
                  f"{w.peak_rss_kib / 1024:.0f} MB.", "", *_relay_table([w.relay])]
    if report.matrix:
        m = report.matrix
        lines += ["", "## Matrix channel", "",
                  f"The bot in {m.rooms:,} encrypted rooms (half DMs, half group rooms like "
                  f"case rooms) on a real Synapse, created and joined in {m.seed_seconds:.0f} s "
                  f"(shared-secret registration, rooms created concurrently, the bot joined "
                  f"through the admin API). Idle: {m.idle_cpu_seconds:.2f} CPU s over "
                  f"{m.idle_seconds:.0f} s ({m.idle_cpu_per_minute:.2f} s per minute). "
                  f"Restart → first answer in a DM: {m.restart_reply_seconds:.1f} s. "
                  f"RSS {m.rss_kib / 1024:.0f} MB, peak {m.peak_rss_kib / 1024:.0f} MB."]
    lines += ["", "## Machine and versions", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine().items()]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def chart(report: Report, path: Path, width: int = 960, height: int = 560) -> None:
    """CDF of relay latency per charted run, log-scaled milliseconds on the x axis."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 70, width - 20, 40, height - 150
    runs = [r for r in report.charted() if r.latencies_ms]
    all_ms = [v for r in runs for v in r.latencies_ms if v > 0]
    lo = 10 ** math.floor(math.log10(min(all_ms))) if all_ms else 0.1
    hi = 10 ** math.ceil(math.log10(max(all_ms))) if all_ms else 10.0
    if hi <= lo:
        hi = lo * 10

    def x_of(ms: float) -> float:
        return left + (math.log10(max(ms, lo)) - math.log10(lo)) / (
            math.log10(hi) - math.log10(lo)) * (right - left)

    def y_of(frac: float) -> float:
        return bottom - frac * (bottom - top)

    draw.text((left, 12), "Relay latency, cumulative share of messages (x: ms, log scale)",
              fill="black")
    draw.rectangle((left, top, right, bottom), outline="black")
    decade = lo
    while decade <= hi * 1.0001:
        x = x_of(decade)
        draw.line((x, top, x, bottom), fill=(220, 220, 220))
        draw.text((x - 12, bottom + 6), f"{decade:g}", fill="black")
        decade *= 10
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_of(frac)
        draw.line((left, y, right, y), fill=(235, 235, 235))
        draw.text((18, y - 6), f"{frac:.2f}", fill="black")
    for i, r in enumerate(runs):
        colour = COLOURS[i % len(COLOURS)]
        data = sorted(r.latencies_ms)
        n = len(data)
        step = max(1, n // 800)
        points = [(x_of(v), y_of((k + 1) / n)) for k, v in enumerate(data) if k % step == 0]
        points.append((x_of(data[-1]), y_of(1.0)))
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        wl = r.workload
        big = " big store" if wl.open_cases or wl.closed_cases else ""
        label = (f"{r.name} ({r.backend}){big} @ {wl.rate:g} msg/s: p50 {_ms(r.pct(50))} ms, "
                 f"p99 {_ms(r.pct(99))} ms")
        y = bottom + 30 + 16 * i
        draw.line((left, y + 6, left + 30, y + 6), fill=colour, width=3)
        draw.text((left + 40, y), label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
