"""The Matrix channel at scale: Confidant in many encrypted rooms on a real
Synapse (`tests.support.synapse`, 127.0.0.1): CPU its sync loop spends
while nothing happens, time from a restart to its first answer in a DM,
and resident memory.

Seeding is kept practical: accounts come from the shared-secret admin
registration, a helper account creates the rooms concurrently (half DMs
marked ``is_direct``, half group rooms as case rooms are), and the bot is
joined to each through the admin join API while it is stopped, so that no
invite has to travel through its sync.  One real end-to-end encrypted
employee (a matrix-nio client) talks to the bot in its own DM.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.double import BenchDouble
from bench.procstat import cpu_seconds, memory_kib
from bench.relay import CONFIDANT_BASE, Child, _until
from bench.report import MatrixResult
from tests.support.app_runner import make_setup
from tests.support.matrix_app import ENCRYPTION, PASSWORD_ENV, MatrixPeer
from tests.support.synapse import SynapseServer

SEED_CONCURRENCY = 8
SETTLE_SECONDS = 5.0
"""Quiet time after the bot's first sync in all rooms before the idle window."""


async def _seed_rooms(synapse: SynapseServer, bot_id: str, rooms: int) -> None:
    """``rooms`` encrypted rooms with the bot in them (see the module doc)."""
    _, token, _ = await synapse.register("crowd", "pw-crowd-bench", admin=True)
    auth = {"Authorization": f"Bearer {token}"}
    limit = asyncio.Semaphore(SEED_CONCURRENCY)

    async def one(http: aiohttp.ClientSession, i: int) -> None:
        direct = i % 2 == 0
        body: dict[str, Any] = {"preset": "trusted_private_chat" if direct else "private_chat",
                                "is_direct": direct, "initial_state": [ENCRYPTION]}
        if not direct:
            body["name"] = f"Case {i:04d}"
        async with limit:
            async with http.post(f"{synapse.url}/_matrix/client/v3/createRoom", json=body,
                                 headers=auth) as r:
                r.raise_for_status()
                room_id = (await r.json())["room_id"]
            async with http.post(f"{synapse.url}/_synapse/admin/v1/join/{room_id}",
                                 json={"user_id": bot_id}, headers=auth) as r:
                r.raise_for_status()

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(one(http, i) for i in range(rooms)))


async def run_matrix(folder: Path, rooms: int, idle_seconds: float,
                     confidants: int = 2) -> MatrixResult:
    """Seed, settle, measure idle CPU and RSS, then restart and time the first answer."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "synapse").mkdir(exist_ok=True)
    synapse = SynapseServer(folder / "synapse")
    await asyncio.to_thread(synapse.start)
    double = BenchDouble()
    await double.start()
    child: Child | None = None
    peer: MatrixPeer | None = None
    result = MatrixResult(rooms)
    try:
        password = "pw-bench-matrix"
        bot_id, _, _ = await synapse.register("confidant-bench", password)
        setup = await make_setup(
            folder, telegram_base_url=double.base_url, telegram_token=double.token,
            languages=("en", "nl", "fr"), default_language="en",
            extra={"matrix": {"enabled": True, "homeserver": synapse.url, "user_id": bot_id,
                              "password": f"env:{PASSWORD_ENV}",
                              "device_name": "Confidant bench",
                              "store_dir": str(folder / "data" / "matrix-store")}})
        setup.env[PASSWORD_ENV] = password
        for i in range(confidants):
            uid = double.user(CONFIDANT_BASE + i, f"C{i}", started=True).id
            await setup.add_confidant(f"Confidant {i}", telegram=uid, languages=["en"])

        def start() -> Child:
            return Child([sys.executable, "-m", "bench.botproc", str(setup.config_path)],
                         folder / "bot.log", setup.env)

        log = folder / "bot.log"

        async def until_running(c: Child, before: int) -> None:
            await _until(lambda: log.read_text(errors="replace").count("confidant running")
                         > before, 600, "matrix start", c)

        # First start: the bot's device and cross-signing; one employee DM.
        child = start()
        await until_running(child, 0)
        peer = await MatrixPeer.create(synapse, folder / "peers", "employee")
        dm = await peer.dm(bot_id, timeout=60)
        await peer.say(dm, "hello")
        await _until(lambda: bool(peer.texts(dm)), 60, "the bot's first answer", child)
        await child.stop()

        t = time.perf_counter()
        await _seed_rooms(synapse, bot_id, rooms)
        result.seed_seconds = time.perf_counter() - t

        starts = log.read_text(errors="replace").count("confidant running")
        child = start()
        await until_running(child, starts)
        await asyncio.sleep(SETTLE_SECONDS)
        cpu0, t0 = cpu_seconds(child.pid), time.perf_counter()
        await asyncio.sleep(idle_seconds)
        result.idle_cpu_seconds = cpu_seconds(child.pid) - cpu0
        result.idle_seconds = time.perf_counter() - t0
        mem = memory_kib(child.pid)
        result.rss_kib, result.peak_rss_kib = mem.get("VmRSS", 0), mem.get("VmHWM", 0)
        await child.stop()

        # Restart: the employee writes while the bot is down; time to its answer.
        seen = len(peer.texts(dm))
        await peer.say(dm, "hello again")
        t0 = time.perf_counter()
        child = start()
        await _until(lambda: len(peer.texts(dm)) > seen, 600, "the answer after a restart",
                     child)
        result.restart_reply_seconds = time.perf_counter() - t0
        mem = memory_kib(child.pid)
        result.peak_rss_kib = max(result.peak_rss_kib, mem.get("VmHWM", 0))
        return result
    finally:
        if peer is not None:
            await peer.close()
        if child is not None:
            await child.stop()
        await double.stop()
        await asyncio.to_thread(synapse.stop)
