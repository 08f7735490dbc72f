"""The web channel at scale: Confidant with many employee tabs open on its
WebSocket at once, each employee with a case claimed by a confidant on
Telegram (the double); then messages from the tabs to the confidants.

Latency of a message: from the moment its frame is written to the tab's
WebSocket to the moment the double receives the sendMessage carrying it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.double import BenchDouble, tagged
from bench.procstat import cpu_seconds, memory_kib
from bench.relay import CONFIDANT_BASE, Child, RelayResult, Workload, _drain, _until
from bench.report import WebResult
from bench.seed import seed_employees
from bot.channels.web import state_key
from tests.support.app_runner import make_setup
from tests.support.telegram_double import free_port


async def _open_tab(http: aiohttp.ClientSession, base: str, identity: str,
                    frames: list[int]) -> aiohttp.ClientWebSocketResponse:
    """One employee tab: connect, say hello with the issued identity, wait
    until the page is ready; keep reading frames in the background."""
    ws = await http.ws_connect(base + "/ws", headers={"Origin": base}, max_msg_size=0)
    await ws.send_json({"type": "hello", "identity": identity, "language": "en"})
    while True:
        msg = await ws.receive(timeout=60)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"web tab closed before it was ready ({msg.type})")
        if json.loads(msg.data).get("type") == "ready":
            break

    async def read() -> None:
        async for _ in ws:
            frames[0] += 1

    asyncio.get_running_loop().create_task(read())
    return ws


async def run_web(folder: Path, tabs: int, wl: Workload) -> WebResult:
    """``tabs`` employee tabs open, then ``wl``'s load sent from them."""
    folder.mkdir(parents=True, exist_ok=True)
    double = BenchDouble()
    await double.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    child: Child | None = None
    # Each open WebSocket holds a connection: no pool limit (aiohttp caps at 100).
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    try:
        setup = await make_setup(folder, telegram_base_url=double.base_url,
                                 telegram_token=double.token, languages=("en", "nl", "fr"),
                                 default_language="en",
                                 extra={"web": {"enabled": True, "listen": f"127.0.0.1:{port}",
                                                "public_url": base}})
        conf_users = [double.user(CONFIDANT_BASE + i, f"C{i}", started=True).id
                      for i in range(wl.confidants)]
        conf_ids = [await setup.add_confidant(f"Confidant {i}", telegram=uid, languages=["en"])
                    for i, uid in enumerate(conf_users)]
        identities = ["w" + secrets.token_urlsafe(32) for _ in range(tabs)]
        async with setup.store() as store:
            state = store.channel_state("web")
            for identity in identities:  # as the channel issues them (`_new_identity`)
                await state.set(state_key("emp", identity),
                                json.dumps({"receipts": [], "pending": []}).encode())
        await seed_employees(setup, identities, conf_ids, channel="web", claimed=True)
        child = Child([sys.executable, "-m", "bench.botproc", str(setup.config_path)],
                      folder / "bot.log", setup.env)
        await _until(lambda: "confidant running" in child.log_tail(), 120, "web start", child)
        frames = [0]
        limit = asyncio.Semaphore(32)
        t = time.perf_counter()

        async def open_one(identity: str) -> aiohttp.ClientWebSocketResponse:
            async with limit:
                return await _open_tab(http, base, identity, frames)

        sockets = list(await asyncio.gather(*(open_one(i) for i in identities)))
        connect = time.perf_counter() - t
        warm = max(1, int(wl.rate * wl.warmup_seconds))
        await _send(double, sockets, 0, warm, wl.rate)
        await _until(lambda: all(s in double.received_at for s in range(warm)), 60,
                     "web warm-up", child)
        result = RelayResult(f"Confidant, {tabs:,} web tabs", wl, kind="confidant")
        double.forget_history()
        cpu0, t0 = cpu_seconds(child.pid), time.perf_counter()
        own0 = time.process_time()
        await _send(double, sockets, warm, wl.total, wl.rate)
        wanted = range(warm, warm + wl.total)
        await _drain(double, child, wanted)
        got = [s for s in wanted if s in double.received_at]
        result.cpu_seconds = cpu_seconds(child.pid) - cpu0
        result.harness_cpu_share = (time.process_time() - own0) / (time.perf_counter() - t0)
        result.sent, result.delivered = wl.total, len(got)
        result.elapsed = max((double.received_at[s] for s in got), default=t0) - t0
        result.latencies_ms = [1000.0 * (double.received_at[s] - double.delivered_at[s])
                               for s in got]
        mem = memory_kib(child.pid)
        result.peak_rss_kib, result.rss_kib = mem.get("VmHWM", 0), mem.get("VmRSS", 0)
        open_now = sum(1 for ws in sockets if not ws.closed)
        if open_now != tabs:
            raise RuntimeError(f"only {open_now} of {tabs} web tabs stayed open")
        return WebResult(tabs, result, mem.get("VmRSS", 0), mem.get("VmHWM", 0), connect)
    finally:
        for ws in sockets:
            await ws.close()
        await http.close()
        if child is not None:
            await child.stop()
        await double.stop()


async def _send(double: BenchDouble, sockets: list[Any], first: int, count: int,
                rate: float) -> None:
    """``count`` tagged messages at ``rate``, round robin over the tabs, each
    stamped (as `BenchDouble.delivered_at`) when its frame is written."""
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        seq = first + i
        ws = sockets[seq % len(sockets)]
        double.delivered_at[seq] = time.perf_counter()
        await ws.send_json({"type": "message", "id": f"bench-{seq:08d}", "text": tagged(seq)})
