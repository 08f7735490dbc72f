"""Confidant's hot path in one process, without any platform: where a relay's
CPU goes.

An employee with a claimed case writes plain text; the real core records it
and the real delivery worker (running, so its fast lane takes the message)
sends it to an in-memory channel and records it as sent.  Relays run one
after the other, so the thread CPU spent inside each wrapped step is that
step's own (inclusive) cost: the split below is what the decisions of issue
#15 were taken on, because on a shared machine CPU time is steadier than
latency.  The total is the process's CPU (every thread, so aiosqlite's
worker counts where it is used); the steps count the event loop's thread.

``python -m bench.hotpath [--n 500] [--db URL]`` prints µs per relay, in
total and per step, and the SQL statements and commits per relay that
SQLAlchemy saw (the plain statements of `store.driver` do not pass it).
Under ``valgrind --tool=callgrind --instr-atstart=no`` with ``--callgrind``
it switches instrumentation on for the measured relays only, so that two
runs with different ``--n`` give instructions per relay by difference;
``--profile FILE`` writes a cProfile of the measured relays.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import functools
import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event

import bot.delivery
import bot.intake
import handlers.context
import handlers.router
import store.contacts
import store.events
import store.outbox
import store.store
from bot.runtime import settle_heap
from domain.messages import Inbound
from tests.support.memory_channel import make_harness, open_case

STEPS: list[tuple[Any, str]] = [
    (bot.intake.Intake, "handle"), (bot.intake.Intake, "_record_event"),
    (handlers.router, "open_context"), (handlers.router, "dispatch"),
    (handlers.context.Ctx, "flush"),
    (store.contacts.ContactRepo, "find"),
    (store.events.EventRepo, "claim"), (store.outbox.OutboxRepo, "enqueue"),
    (store.outbox.OutboxRepo, "mark_sent"), (bot.delivery.DeliveryWorker, "_fast"),
    (bot.delivery.DeliveryWorker, "_record"), (bot.delivery.DeliveryWorker, "_send"),
]
"""The steps timed, where they exist in this tree (they move between releases)."""


class Split:
    """Thread CPU (ns) and calls per step."""

    def __init__(self) -> None:
        self.ns: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()

    def clear(self) -> None:
        self.ns.clear()
        self.calls.clear()

    def wrap(self, owner: Any, name: str) -> None:
        """Time the coroutine function ``owner.name`` (inclusive)."""
        fn = getattr(owner, name, None)
        if fn is None:
            return
        label = f"{getattr(owner, '__name__', owner)}.{name}"

        @functools.wraps(fn)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time_ns()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.ns[label] += time.thread_time_ns() - start
                self.calls[label] += 1

        setattr(owner, name, timed)

    def wrap_tx(self) -> None:
        """Time opening and closing (commit) of `store.store.Store.tx`."""
        tx: Callable[..., Any] = store.store.Store.tx
        split = self

        @contextlib.asynccontextmanager
        async def timed(self: Any) -> AsyncIterator[Any]:
            start = time.thread_time_ns()
            async with tx(self) as t:
                split.ns["Store.tx open"] += time.thread_time_ns() - start
                split.calls["Store.tx open"] += 1
                yield t
                start = time.thread_time_ns()
            split.ns["Store.tx commit and close"] += time.thread_time_ns() - start
            split.calls["Store.tx commit and close"] += 1

        store.store.Store.tx = timed  # type: ignore[method-assign]


async def measure(n: int, db: str | None, callgrind: bool, profile: Path | None = None) -> None:
    """Set up one claimed case, warm up, then time ``n`` relays."""
    split = Split()
    for owner, name in STEPS:
        split.wrap(owner, name)
    split.wrap_tx()
    with tempfile.TemporaryDirectory(prefix="confidant-hotpath-") as tmp:
        url = db or f"sqlite+aiosqlite:///{Path(tmp) / 'hot.db'}"
        h = await make_harness(url, Path(tmp))
        sara = await h.add_confidant("Sara", "conf-sara")
        emp = h.person("emp-1")
        await open_case(emp, sara)
        h.core.lane = h.worker  # as the app attaches it while delivery runs
        settle_heap()  # as `confidant run` does once started (bot/runtime.py)
        worker = asyncio.create_task(h.worker.run())
        statements: collections.Counter[str] = collections.Counter()

        def seen(conn: Any, cursor: Any, sql: str, *rest: Any) -> None:
            statements[sql.split(None, 1)[0].upper()] += 1

        def committed(conn: Any) -> None:
            statements["COMMIT"] += 1

        async def relay(i: int) -> None:
            await h.core.handle(Inbound(emp.channel, emp.id, emp.id, f"hot-{i}",
                                        text=f"Message {i} about my week."))
            while h.worker._fast_tasks:
                await asyncio.wait(set(h.worker._fast_tasks))

        try:
            await asyncio.sleep(0.05)
            for i in range(50):
                await relay(i)
            split.clear()
            sync = h.store.engine.sync_engine
            event.listen(sync, "before_cursor_execute", seen)
            event.listen(sync, "commit", committed)
            if callgrind:
                subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=False,
                               capture_output=True)
            profiler = cProfile.Profile(time.thread_time) if profile else None
            if profiler:
                profiler.enable()
            start = time.process_time_ns()
            for i in range(1000, 1000 + n):
                await relay(i)
            total = time.process_time_ns() - start
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile)
            if callgrind:
                subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=False,
                               capture_output=True)
            event.remove(sync, "before_cursor_execute", seen)
            event.remove(sync, "commit", committed)
        finally:
            h.worker.stop()
            await worker
            await h.store.close()
    assert len(h.channel.received["conf-sara"]) >= n, "not every relay arrived"
    print(f"{total / n / 1000:8.0f} µs  process CPU per relay, all threads "
          f"({n} relays, {url.split(':')[0]}); steps: the event loop thread's CPU")
    for label, ns in split.ns.most_common():
        print(f"{ns / n / 1000:8.0f} µs  {split.calls[label] / n:4.1f}× per relay  {label}")
    per = ", ".join(f"{k} {v / n:.1f}" for k, v in sorted(statements.items()))
    print(f"SQLAlchemy statements per relay: {per or 'none'}")


def main() -> None:
    """Entry point: ``python -m bench.hotpath``."""
    p = argparse.ArgumentParser(prog="python -m bench.hotpath")
    p.add_argument("--n", type=int, default=500, help="relays measured")
    p.add_argument("--db", help="database URL (default: a SQLite file)")
    p.add_argument("--callgrind", action="store_true",
                   help="toggle callgrind instrumentation around the measured relays")
    p.add_argument("--profile", type=Path,
                   help="cProfile the measured relays into this file (pstats format)")
    a = p.parse_args()
    asyncio.run(measure(a.n, a.db, a.callgrind, a.profile))


if __name__ == "__main__":
    main()
