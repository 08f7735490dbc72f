"""CPU time and memory of a child process, read from /proc (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _tick_seconds(pid: int) -> float:
    """User + system CPU of the whole process from /proc/<pid>/stat, in clock
    ticks (10 ms): includes threads that already exited, but coarse."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; fields after it are fixed.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_seconds(pid: int) -> float:
    """CPU seconds the process has used so far, to the nanosecond: the sum of
    every live thread's ``schedstat`` run time (aiosqlite's worker thread and
    the default executor's threads live as long as the process here).  Falls
    back to the clock-tick count if schedstat is not there."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue  # a thread that just ended
    except FileNotFoundError:
        return _tick_seconds(pid)
    if total == 0:
        return _tick_seconds(pid)
    return total / 1e9


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak resident) in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out
