"""Where a bot's CPU goes, from py-spy raw (collapsed) stacks written by
``bench.run --profile``: the share of samples under each layer (our own
``bot/``, ``handlers/``, ``store/``; SQLAlchemy; aiosqlite's thread; the
Telegram stack; the event loop) and the heaviest functions of our own code,
inclusive.  Idle samples (a thread waiting in ``select``/``epoll`` or on a
queue) are counted apart, so shares are of busy time.

Usage: ``python -m bench.profile_summary FILE [FILE ...]``
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

LAYERS = (
    ("our handlers/", "(handlers/"),
    ("our store/", "(store/"),
    ("our bot/", "(bot/"),
    ("SQLAlchemy", "sqlalchemy/"),
    ("aiosqlite worker thread", "aiosqlite/core.py"),
    ("asyncpg", "asyncpg/"),
    ("python-telegram-bot", "telegram/"),
    ("httpx / httpcore", "http"),
    ("cryptography", "cryptography/"),
)
IDLE = ("select (selectors.py", "poll (selectors.py", "_worker (concurrent/futures",
        "get (queue.py", "wait (threading.py", "_connection_worker_thread (aiosqlite/core.py")


def _stacks(path: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out.append((stack.split(";"), int(count)))
    return out


def summary(path: Path, top: int = 15) -> str:
    """The layer table and our heaviest functions for one profile."""
    busy, idle = 0, 0
    layers: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for frames, n in _stacks(path):
        if any(mark in frames[-1] for mark in IDLE):
            idle += n
            continue
        busy += n
        joined = ";".join(frames)
        for name, mark in LAYERS:
            if mark in joined:
                layers[name] += n
        seen = set()
        for f in frames:
            if "(handlers/" in f or "(store/" in f or "(bot/" in f:
                func = f.rsplit(":", 1)[0] + ")"  # one row per function, not per line
                if func not in seen:
                    seen.add(func)
                    ours[func] += n
    lines = [f"## {path.name}: {busy} busy samples ({idle} idle)", "",
             "| layer (inclusive) | share of busy |", "|---|---|"]
    lines += [f"| {name} | {layers[name] / busy:.0%} |" for name, _ in LAYERS
              if busy and layers[name]]
    lines += ["", "| our function (inclusive) | share of busy |", "|---|---|"]
    lines += [f"| `{f}` | {n / busy:.0%} |" for f, n in ours.most_common(top) if busy]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Print the summary of every file named."""
    for name in sys.argv[1:]:
        print(summary(Path(name)))


if __name__ == "__main__":
    main()
