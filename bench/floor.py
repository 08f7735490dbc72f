"""The physical floor and the stack's ladder, in microseconds per operation.

* **Floor**: what the outbox promise costs the machine — a raw ``sqlite3``
  insert-and-commit with the bot's own connection pragmas
  (`store.db._on_sqlite_connect`: WAL, ``synchronous = NORMAL``, busy
  timeout, foreign keys, secure_delete), the durable echo's transaction in
  raw ``sqlite3``, one AES-256-GCM seal of a short text with associated
  data (`store.crypto.Crypto.seal`) and one HMAC-SHA256 address hash
  (`Crypto.address_hash`).
* **Ladder**: the durable echo's record + mark sent, per
  `bench.outbox_variants` variant, driven from an asyncio loop as the bots
  do, so the gap between the floor and the relays can be put on the rungs
  (pool checkout, ORM session, statement thread hops, second commit; on
  SQLite the first rungs on aiosqlite, as the store was, the later ones on
  the store's own engine).

Run as a subprocess by `bench.run` (pinned to the bot's core), or alone:
``python -m bench.floor [--n 3000] [--pg URL] [--json OUT]``.
Wall time per operation: median and p99 over ``n``; CPU: process CPU time
(all threads) over the loop, divided by ``n``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.outbox_variants import VARIANTS
from store.crypto import Crypto, generate_master_key
from store.db import _on_sqlite_connect
from store.vault import associated_data

TEXT = "Hello, this is message bm123q about my week at work."


@dataclass
class Timing:
    """One operation's cost (µs)."""

    name: str
    backend: str
    n: int
    median_us: float
    p99_us: float
    cpu_us: float


def _timing(name: str, backend: str, samples_ns: list[int], cpu_s: float) -> Timing:
    data = sorted(samples_ns)
    p99 = data[max(0, min(len(data) - 1, int(0.99 * len(data)) - 1))]
    return Timing(name, backend, len(data), statistics.median(data) / 1000, p99 / 1000,
                  1e6 * cpu_s / len(data))


def _loop(name: str, backend: str, n: int, op: Callable[[int], object]) -> Timing:
    """Time ``op(i)`` for i in range(n) (after a short warm-up)."""
    for i in range(min(50, n)):
        op(-1 - i)
    samples: list[int] = []
    cpu0 = time.process_time()
    for i in range(n):
        t = time.perf_counter_ns()
        op(i)
        samples.append(time.perf_counter_ns() - t)
    return _timing(name, backend, samples, time.process_time() - cpu0)


def sqlite_floor(folder: Path, n: int) -> list[Timing]:
    """Raw sqlite3 with the bot's pragmas: one insert + commit, and the
    durable echo's whole transaction (two inserts + commit), on a file."""
    db = sqlite3.connect(folder / "floor.db")
    _on_sqlite_connect(db, None)
    db.execute("CREATE TABLE IF NOT EXISTS handled (update_id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, update_id INTEGER, "
               "chat INTEGER, payload BLOB, status VARCHAR(8))")
    db.commit()
    payload = bytes(96)
    base = 10_000_000

    def insert_commit(i: int) -> None:
        db.execute("INSERT INTO outbox (update_id, chat, payload, status) "
                   "VALUES (?, ?, ?, 'pending')", (i, 1, payload))
        db.commit()

    def durable_tx(i: int) -> None:
        if db.execute("INSERT INTO handled (update_id) VALUES (?) ON CONFLICT DO NOTHING",
                      (base + i,)).rowcount:
            db.execute("INSERT INTO outbox (update_id, chat, payload, status) "
                       "VALUES (?, ?, ?, 'pending')", (base + i, 1, payload))
        db.commit()

    out = [_loop("sqlite3 insert + commit", "sqlite", n, insert_commit),
           _loop("sqlite3 handled + outbox insert + commit", "sqlite", n, durable_tx)]
    db.close()
    return out


def crypto_floor(n: int) -> list[Timing]:
    """One AES-256-GCM seal of a short text (bound to its row) and one
    HMAC-SHA256 of a platform address, as the store does them."""
    crypto = Crypto(generate_master_key())
    key = Crypto.new_data_key()
    text = TEXT.encode()
    return [
        _loop("AES-256-GCM seal (54 bytes)", "crypto", n,
              lambda i: Crypto.seal(key, text, associated_data("outbox.payload_enc", str(i)))),
        _loop("HMAC-SHA256 address hash", "crypto", n,
              lambda i: crypto.address_hash("telegram", str(6_100_000_000 + i))),
    ]


async def _aloop(name: str, backend: str, n: int,
                 op: Callable[[int], Awaitable[object]]) -> Timing:
    for i in range(min(50, n)):
        await op(-1 - i)
    samples: list[int] = []
    cpu0 = time.process_time()
    for i in range(n):
        t = time.perf_counter_ns()
        await op(i)
        samples.append(time.perf_counter_ns() - t)
    return _timing(name, backend, samples, time.process_time() - cpu0)


async def ladder(url: str, backend: str, n: int) -> list[Timing]:
    """Record + mark sent through every variant, from the event loop."""
    out: list[Timing] = []
    payload = bytes(96)
    for k, (name, make) in enumerate(VARIANTS.items()):
        if backend not in make.backends:
            continue
        outbox = make(url)
        await outbox.open()
        base = (k + 1) * 100_000_000
        try:
            if name == "batch":
                # A getUpdates answer of 10: per message, as a batch would record them.
                async def batch_op(i: int, ob=outbox, b=base) -> None:  # type: ignore[no-untyped-def]
                    seqs = await ob.record_many([(b + 10 * i + j, 1, payload) for j in range(10)])
                    for seq in seqs:
                        assert seq is not None
                        await ob.sent(seq)
                t = await _aloop("durable tx: batch of 10", backend, max(1, n // 10), batch_op)
                t = Timing(f"durable tx: {name} (per message, batches of 10)", backend, n,
                           t.median_us / 10, t.p99_us / 10, t.cpu_us / 10)
            else:
                async def op(i: int, ob=outbox, b=base) -> None:  # type: ignore[no-untyped-def]
                    seq = await ob.record(b + i, 1, payload)
                    assert seq is not None
                    await ob.sent(seq)
                t = await _aloop(f"durable tx: {name}", backend, n, op)
            out.append(t)
        finally:
            await outbox.close()
    return out


def measure(folder: Path, n: int, pg_url: str | None = None) -> list[Timing]:
    """Floor and ladder on SQLite (a file in ``folder``) and, given a URL, PostgreSQL."""
    out = sqlite_floor(folder, n * 2) + crypto_floor(n * 5)
    out += asyncio.run(ladder(f"sqlite+aiosqlite:///{folder / 'ladder.db'}", "sqlite", n))
    if pg_url:
        out += asyncio.run(ladder(pg_url, "postgresql", n))
    return out


def main() -> None:
    """Print the table (and write it as JSON with ``--json``)."""
    p = argparse.ArgumentParser(prog="python -m bench.floor")
    p.add_argument("--n", type=int, default=3000, help="iterations per ladder rung")
    p.add_argument("--pg", help="postgresql+asyncpg:// URL of an empty database")
    p.add_argument("--work", type=Path, help="folder for the SQLite files")
    p.add_argument("--json", type=Path, help="write the timings here")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="confidant-floor-") as tmp:
        timings = measure(a.work or Path(tmp), a.n, a.pg)
    for t in timings:
        print(f"{t.backend:10} {t.name:58} median {t.median_us:8.1f} µs  "
              f"p99 {t.p99_us:8.1f} µs  CPU {t.cpu_us:8.1f} µs")
    if a.json:
        a.json.write_text(json.dumps([asdict(t) for t in timings], indent=2))


if __name__ == "__main__":
    main()
