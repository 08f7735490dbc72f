"""The benchmark's outputs: a markdown report (machine, versions, tables,
goals met or not) and a PNG chart of the latency distributions (a CDF on a
log time axis), drawn with Pillow."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from PIL import Image, ImageDraw

from bench.plans import QueryPlan
from bench.relay import MemoryResult, RelayResult

P50_P99_GOAL = 1.25
SCALE_GOAL = 1.2
MEMORY_GOAL_MB = 150.0
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
           (140, 86, 75), (23, 190, 207), (127, 127, 127)]
"""One per run of a full benchmark (three bots at two rates, and the big store)."""


@dataclass
class Report:
    """Everything one benchmark run measured."""

    command: str
    pairs: list[tuple[RelayResult, RelayResult]] = field(default_factory=list)
    """(bare echo, Confidant) at the same offered rate."""
    floors: list[RelayResult] = field(default_factory=list)
    """The durable echo (`bench.durable_echo`) at each pair's rate, same order."""
    scale: tuple[RelayResult, RelayResult] | None = None
    """(empty store, big store) at the same offered rate."""
    plans: list[QueryPlan] = field(default_factory=list)
    memory: MemoryResult | None = None
    notes: list[str] = field(default_factory=list)

    def runs(self) -> list[RelayResult]:
        """Every relay run, once, in report order."""
        out: list[RelayResult] = []
        for i, pair in enumerate(self.pairs):
            out.extend(pair)
            if i < len(self.floors):
                out.append(self.floors[i])
        if self.scale:
            out.extend(r for r in self.scale if r not in out)
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
    for dist in ("python-telegram-bot", "SQLAlchemy", "aiosqlite", "matrix-nio", "aiohttp",
                 "httpx", "cryptography"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = "not installed"
    return info


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def _ratio(ours: float, base: float) -> float:
    return ours / base if base > 0 and not math.isnan(base) else float("nan")


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def markdown(report: Report, chart_name: str) -> str:
    """The report as markdown."""
    lines = ["# Confidant benchmark results", "",
             f"Command: `{report.command}`", "", "## Machine and versions", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine().items()]
    lines += ["", "## Relay latency (update handed out by getUpdates → sendMessage received)",
              "", "Latency in milliseconds, CPU of the bot process only (the double and the "
              "load generator run in the benchmark process).", "",
              "| run | store | offered msg/s | sent | relayed | throughput msg/s | p50 | p95 "
              "| p99 | CPU ms/msg | peak RSS MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report.runs():
        wl = r.workload
        store = (f"{wl.open_cases:,} open + {wl.closed_cases:,} closed"
                 if wl.open_cases or wl.closed_cases else "empty")
        if r.name.startswith("bare"):
            store = "none"
        elif r.name.startswith("durable"):
            store = "outbox only"
        lines.append(
            f"| {r.name} | {store} | {wl.rate:g} | {r.sent} | {r.delivered} "
            f"| {r.throughput:.1f} | {_ms(r.pct(50))} | {_ms(r.pct(95))} | {_ms(r.pct(99))} "
            f"| {r.cpu_ms_per_message:.2f} | {r.peak_rss_kib / 1024:.0f} |")
    lines += ["", f"![latency distribution]({chart_name})", "",
              "## Confidant as a ratio to the bare python-telegram-bot echo bot", "",
              f"Goal: ≤ {P50_P99_GOAL}× at p50 and p99 at 100 msg/s offered.", "",
              "| offered msg/s | p50 ratio | p99 ratio | CPU ratio | goal |",
              "|---|---|---|---|---|"]
    for echo, ours in report.pairs:
        p50 = _ratio(ours.pct(50), echo.pct(50))
        p99 = _ratio(ours.pct(99), echo.pct(99))
        cpu = _ratio(ours.cpu_ms_per_message, echo.cpu_ms_per_message)
        ok = p50 <= P50_P99_GOAL and p99 <= P50_P99_GOAL and ours.delivered == ours.sent
        lines.append(f"| {ours.workload.rate:g} | {p50:.1f}× | {p99:.1f}× | {cpu:.1f}× "
                     f"| {_verdict(ok)} |")
    if report.floors:
        lines += ["", "### What durability alone costs", "",
                  "The durable echo is the bare echo bot plus only what DESIGN's outbox "
                  "promise costs: the update recorded as handled and the message sealed into "
                  "an outbox row in one commit before sending, then marked sent "
                  "(`bench/durable_echo.py`, same SQLite engine settings as the bot). Its "
                  "ratio to the bare echo is a floor no relay keeping that promise can go "
                  "under; Confidant's ratio to it is what Confidant's own logic costs.", "",
                  "| offered msg/s | durable ÷ bare p50 | durable ÷ bare p99 "
                  "| Confidant ÷ durable p50 | Confidant ÷ durable p99 |",
                  "|---|---|---|---|---|"]
        for (echo, ours), floor in zip(report.pairs, report.floors, strict=False):
            lines.append(
                f"| {ours.workload.rate:g} | {_ratio(floor.pct(50), echo.pct(50)):.1f}× "
                f"| {_ratio(floor.pct(99), echo.pct(99)):.1f}× "
                f"| {_ratio(ours.pct(50), floor.pct(50)):.1f}× "
                f"| {_ratio(ours.pct(99), floor.pct(99)):.1f}× |")
    if report.scale:
        empty, big = report.scale
        ratio = _ratio(big.pct(99), empty.pct(99))
        lines += ["", "## Scale", "",
                  f"Same relay with {big.workload.open_cases:,} open and "
                  f"{big.workload.closed_cases:,} closed cases seeded (sealed like real rows, "
                  "plus one delivered outbox row and one reply link per closed case), at "
                  f"{big.workload.rate:g} msg/s offered.", "",
                  f"p99 big store / empty store: {ratio:.2f}× "
                  f"(goal ≤ {SCALE_GOAL}×: {_verdict(ratio <= SCALE_GOAL)}); "
                  f"p50 {_ratio(big.pct(50), empty.pct(50)):.2f}×."]
    if report.plans:
        scans = [p for p in report.plans if p.full_scans]
        lines += ["", "### Query plans of the hot path on the big store", "",
                  "Every statement one relay in each direction issues (contact lookup by "
                  "hash, handled-event check, case by id and by code, due outbox, outbox "
                  "load and mark, reply link), explained by SQLite. Full scans of a growing "
                  f"table: **{len(scans)}**.", "", "| statement | plan |", "|---|---|"]
        for p in report.plans:
            plan = "<br>".join(p.plan).replace("|", "\\|")
            lines.append(f"| `{p.short_sql.replace('|', '/')}` | {plan} |")
    if report.memory:
        m = report.memory
        mb = m.rss_kib / 1024
        lines += ["", "## Memory", "",
                  f"Channels {m.channels} in one bot process (Matrix against a real Synapse on "
                  f"127.0.0.1, web on a free loopback port), {m.open_cases:,} open cases, "
                  f"after relaying {m.relayed} messages: RSS {mb:.0f} MB, peak "
                  f"{m.peak_rss_kib / 1024:.0f} MB (goal ≤ {MEMORY_GOAL_MB:.0f} MB: "
                  f"{_verdict(m.peak_rss_kib / 1024 <= MEMORY_GOAL_MB)})."]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def chart(report: Report, path: Path, width: int = 960, height: int = 560) -> None:
    """CDF of relay latency per run, log-scaled milliseconds on the x axis."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 70, width - 20, 40, height - 150
    runs = [r for r in report.runs() if r.latencies_ms]
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
        label = (f"{r.name}{big} @ {wl.rate:g} msg/s: p50 {_ms(r.pct(50))} ms, "
                 f"p99 {_ms(r.pct(99))} ms")
        y = bottom + 30 + 18 * i
        draw.line((left, y + 6, left + 30, y + 6), fill=colour, width=3)
        draw.text((left + 40, y), label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
