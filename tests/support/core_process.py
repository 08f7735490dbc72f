"""A real bot process for crash tests: the real core and delivery worker with
a channel that records every send in a file and can kill the whole process
(SIGKILL, no cleanup) at a chosen point.

Run as ``python -m tests.support.core_process SPEC_JSON``; the spec names the
database, the key file, the record file, whether sends are idempotent, where
to crash, and which inbound events to handle.  `run_process` is the helper
tests call.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.delivery import DeliveryWorker
from bot.intake import Intake
from domain.ids import ChannelName
from domain.messages import Inbound, Outbound, SendResult
from handlers.context import CoreSettings, Ctx
from handlers.info import InfoLibrary
from store.crypto import load_master_key
from store.store import Store

ROOT = Path(__file__).resolve().parents[2]
MEMORY = ChannelName("memory")

CRASH_POINTS = ("none", "before-commit", "after-record", "after-send")
"""``before-commit``: the event's effects are written but not committed;
``after-record``: committed (outbox row written), nothing sent yet;
``after-send``: the platform has the message, the outbox row is not yet marked sent."""


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class RecordingChannel:
    """Appends one JSON line per accepted send (fsynced, as a platform would
    have it).  With ``idempotent_sends`` a repeated idempotency key is
    accepted and not recorded again, as Matrix does with transaction ids."""

    name = MEMORY
    numbered_menus = False
    end_to_end = False

    def __init__(self, record: Path, idempotent: bool, crash: str) -> None:
        self.record = record
        self.idempotent_sends = idempotent
        self.crash = crash
        self.count = 0

    def _keys(self) -> set[str]:
        if not self.record.exists():
            return set()
        return {json.loads(line)["key"] for line in self.record.read_text().splitlines()}

    async def start(self, on_inbound: object) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        if self.crash == "after-record":
            _die()
        self.count += 1
        if not (self.idempotent_sends and idempotency_key in self._keys()):
            line = json.dumps({"key": idempotency_key, "to": out.to.address, "text": out.text,
                               "case": out.case})
            with self.record.open("a") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        if self.crash == "after-send":
            _die()
        return SendResult(f"pm-{idempotency_key}")


async def main(spec: dict[str, Any]) -> None:
    store = Store.open(spec["db"], load_master_key(Path(spec["key"])))
    core = Intake(store, CoreSettings(org_name="Acme", numbered_channels=frozenset()),
                InfoLibrary.load())
    channel = RecordingChannel(Path(spec["record"]), bool(spec["idempotent"]), spec["crash"])
    worker = DeliveryWorker(store, {MEMORY: channel}, clock=core.clock,
                            wake=core.outbox_changed, unreachable=core.unreachable)
    if spec["crash"] == "before-commit":
        flush = Ctx.flush

        async def flush_then_die(ctx: Any) -> int:
            written = await flush(ctx)
            await ctx.tx.session.flush()
            _die()
            return written

        Ctx.flush = flush_then_die  # type: ignore[method-assign]
    for sender, event_id, text in spec["events"]:
        await core.handle(Inbound(MEMORY, sender, sender, event_id, text=text))
    await worker.drain()
    await store.close()


def run_process(spec: dict[str, Any], timeout: float = 30.0) -> int:
    """Run the bot process once; returns its exit code (-9 when it killed itself)."""
    proc = subprocess.run([sys.executable, "-m", "tests.support.core_process", json.dumps(spec)],
                          cwd=ROOT, timeout=timeout, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"bot process failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.returncode


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
