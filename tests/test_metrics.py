"""Operations: /healthz, /metrics (counts only, no content or ids) and the
graceful SIGTERM shutdown that drains the outbox before the process exits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.app import DRAIN_SECONDS, App, run_app
from bot.channels.base import InboundHandler
from bot.config import Config, load_config
from domain.ids import ChannelName
from domain.messages import Inbound, Outbound, SendResult, Unreachable
from store.crypto import create_key_file, load_master_key
from store.store import Store

SECRET_TEXT = "my manager shouts at me every morning zq81"
SENDER = "4242424242"


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(tmp: Path, metrics_port: int | None) -> Config:
    """A real config file: SQLite in tmp, metrics as asked; the tests swap the
    configured channels for a `GatedChannel` (see `use_channel`)."""
    key = tmp / "master.key"
    create_key_file(key)
    enabled = "true" if metrics_port else "false"
    listen = f"127.0.0.1:{metrics_port or 9464}"
    path = tmp / "config.toml"
    path.write_text(
        '[organisation]\nname = "Acme"\n'
        f'[store]\nurl = "sqlite+aiosqlite:///{tmp / "bot.db"}"\nkey_file = "{key}"\n'
        f'[web]\nenabled = true\nlisten = "127.0.0.1:{free_port()}"\n'  # replaced below
        f'[metrics]\nenabled = {enabled}\nlisten = "{listen}"\n',
        encoding="utf-8")
    return load_config(path)


class GatedChannel:
    """A channel whose start and sends wait for the test to open a gate;
    records each distinct message once (idempotency key = outbox ref)."""

    name = ChannelName("memory")
    numbered_menus = False
    end_to_end = False
    idempotent_sends = True

    def __init__(self) -> None:
        self.start_gate = asyncio.Event()
        self.send_gate = asyncio.Event()
        self.on_inbound: InboundHandler | None = None
        self.sent: list[tuple[str, str]] = []
        self.keys: set[str] = set()
        self.unreachable: set[str] = set()
        self.attempts = 0

    async def start(self, on_inbound: InboundHandler) -> None:
        await self.start_gate.wait()
        self.on_inbound = on_inbound

    async def stop(self) -> None:
        return None

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        self.attempts += 1
        await self.send_gate.wait()
        if out.to.address in self.unreachable:
            raise Unreachable("blocked")
        if idempotency_key not in self.keys:
            self.keys.add(idempotency_key)
            self.sent.append((out.to.address, out.text))
        return SendResult(str(len(self.keys)))


def use_channel(monkeypatch: pytest.MonkeyPatch, channel: GatedChannel) -> None:
    """Make the app run our gated channel instead of the configured ones."""
    monkeypatch.setattr(App, "_build_channels",
                        lambda self, store, core: {"memory": channel})


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Poll ``check`` until true; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not await check():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


async def pending_rows(config: Config) -> int:
    store = Store.open(config.store.url, load_master_key(config.store.key_file))
    try:
        return await metrics.pending_messages(store)
    finally:
        await store.close()


# --- the endpoint on its own ----------------------------------------------------------


async def test_healthz_follows_the_check_and_metrics_speaks_prometheus() -> None:
    state = {"healthy": False}

    async def health() -> bool:
        return state["healthy"]

    async def pending() -> int:
        return 7

    server = metrics.MetricsServer("127.0.0.1", 0, health, pending)
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        status, ctype, body = await get(f"{base}/healthz")
        assert (status, json.loads(body)) == (503, {"status": "unavailable"})
        assert ctype.startswith("application/json")
        state["healthy"] = True
        status, _, body = await get(f"{base}/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"})

        status, ctype, body = await get(f"{base}/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(body)}
        assert families["confidant_outbox_pending"].samples[0].value == 7
        for name in ("confidant_inbound_events", "confidant_handle_seconds",
                     "confidant_outbox_messages", "confidant_delivery_seconds"):
            assert name in families
        status, _, _ = await get(f"{base}/nothing")
        assert status == 404
    finally:
        await server.stop()


async def test_a_failing_health_check_is_a_503_not_a_crash() -> None:
    async def broken() -> bool:
        raise RuntimeError("boom")

    server = metrics.MetricsServer("127.0.0.1", 0, broken)
    await server.start()
    try:
        status, _, body = await get(f"http://127.0.0.1:{server.port}/healthz")
        assert status == 503 and json.loads(body)["status"] != "ok"
    finally:
        await server.stop()


async def test_store_check_fails_when_the_database_cannot_be_reached(tmp_path: Path) -> None:
    create_key_file(tmp_path / "k")
    master = load_master_key(tmp_path / "k")
    good = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'ok.db'}", master)
    bad = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'x.db'}", master)
    (tmp_path / "gone").rmdir()  # the volume went away after start
    try:
        assert await metrics.store_answers(good) is True
        assert await metrics.store_answers(bad) is False
        health = metrics.app_health(good, {"memory": object()}, set())
        assert await health() is False  # channel configured but not started
        health = metrics.app_health(good, {"memory": object()}, {"memory"})
        assert await health() is True
        assert await metrics.app_health(bad, {}, set())() is False
    finally:
        await good.close()
        await bad.close()


async def test_instrument_counts_errors_and_times_every_event() -> None:
    async def failing(inbound: Inbound) -> None:
        raise RuntimeError("database gone")

    async def fine(inbound: Inbound) -> None:
        return None

    ev = Inbound(ChannelName("web"), "s", "c", "e1", text="x")
    odd = Inbound(ChannelName("carrier-pigeon"), "s", "c", "e2", text="x")
    before = {k: metrics.sample("confidant_inbound_events_total",
                                {"channel": k[0], "outcome": k[1]})
              for k in (("web", "ok"), ("web", "error"), ("other", "ok"))}
    timed = metrics.sample("confidant_handle_seconds_count", {"channel": "web"})
    with pytest.raises(RuntimeError):
        await metrics.instrument(failing)(ev)
    await metrics.instrument(fine)(ev)
    await metrics.instrument(fine)(odd)
    after = {k: metrics.sample("confidant_inbound_events_total",
                               {"channel": k[0], "outcome": k[1]}) for k in before}
    assert {k: after[k] - before[k] for k in before} == {
        ("web", "ok"): 1, ("web", "error"): 1, ("other", "ok"): 1}
    assert metrics.sample("confidant_handle_seconds_count", {"channel": "web"}) == timed + 2
    with pytest.raises(ValueError):
        metrics.count_delivery("web", "maybe")


# --- the running app ------------------------------------------------------------------


async def test_running_app_serves_health_and_anonymous_counters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    config = make_config(tmp_path, port)
    channel = GatedChannel()
    channel.send_gate.set()
    use_channel(monkeypatch, channel)
    base = f"http://127.0.0.1:{port}"
    sent0 = metrics.sample("confidant_outbox_messages_total",
                           {"channel": "memory", "outcome": "sent"})
    retried0 = metrics.sample("confidant_outbox_messages_total",
                              {"channel": "telegram", "outcome": "retried"})
    ok0 = metrics.sample("confidant_inbound_events_total",
                         {"channel": "memory", "outcome": "ok"})
    delivered0 = metrics.sample("confidant_delivery_seconds_count", {"channel": "memory"})

    app = App(config)
    starting = asyncio.create_task(app.start())
    try:
        async def serving() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                await get(f"{base}/healthz")
                return True
            return False

        await until(serving)
        status, _, _ = await get(f"{base}/healthz")
        assert status == 503, "healthy before the channel started"
        channel.start_gate.set()
        await starting
        status, _, body = await get(f"{base}/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"})

        assert channel.on_inbound is not None
        await channel.on_inbound(Inbound(ChannelName("memory"), SENDER, SENDER, "ev-1",
                                         text=SECRET_TEXT))
        # A reply on a channel that is not running stays pending and is retried later.
        await channel.on_inbound(Inbound(ChannelName("telegram"), SENDER + "9", SENDER + "9",
                                         "ev-2", text="/help"))

        async def counted() -> bool:
            return (metrics.sample("confidant_outbox_messages_total",
                                   {"channel": "memory", "outcome": "sent"}) > sent0
                    and metrics.sample("confidant_outbox_messages_total",
                                       {"channel": "telegram", "outcome": "retried"}) > retried0)

        await until(counted)
        assert channel.sent and channel.sent[0][0] == SENDER
        status, _, body = await get(f"{base}/metrics")
        assert status == 200
        families = {f.name: f for f in text_string_to_metric_families(body)}
        assert families["confidant_outbox_pending"].samples[0].value >= 1
        assert metrics.sample("confidant_inbound_events_total",
                              {"channel": "memory", "outcome": "ok"}) == ok0 + 1
        assert metrics.sample("confidant_delivery_seconds_count",
                              {"channel": "memory"}) > delivered0
        # Counts and latencies only: no content, no ids, no case codes as labels.
        assert SECRET_TEXT not in body and SENDER not in body
        labels = {key for f in families.values() for s in f.samples for key in s.labels}
        assert labels <= {"channel", "outcome", "le"}
        values = {s.labels["channel"] for f in families.values() for s in f.samples
                  if "channel" in s.labels}
        assert values <= metrics.KNOWN_CHANNELS | {"other"}
    finally:
        if not starting.done():
            channel.start_gate.set()
            await starting
        await app.stop()
    with pytest.raises(aiohttp.ClientError):
        await get(f"{base}/healthz")


async def test_metrics_server_is_off_unless_enabled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(tmp_path, None)
    channel = GatedChannel()
    channel.start_gate.set()
    use_channel(monkeypatch, channel)
    app = App(config)
    await app.start()
    try:
        assert app.metrics_server is None and app.started == {"memory"}
    finally:
        await app.stop()


async def test_sigterm_delivers_pending_outbox_rows_before_exit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(tmp_path, None)
    channel = GatedChannel()
    channel.start_gate.set()
    use_channel(monkeypatch, channel)
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    running = asyncio.create_task(run_app(config, ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        assert channel.on_inbound is not None
        for n in range(5):  # answers queued for one person go strictly one at a time
            await channel.on_inbound(Inbound(ChannelName("memory"), SENDER, SENDER,
                                             f"ev-{n}", text="/help"))

        async def first_send_in_flight() -> bool:
            return channel.attempts >= 1

        await until(first_send_in_flight)
        queued = await pending_rows(config)
        assert queued >= 5 and channel.sent == []
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.2)
        assert not running.done(), "exited without waiting for the outbox"
        channel.send_gate.set()  # the platform answers again while we shut down
        await asyncio.wait_for(running, 15)
    finally:
        channel.send_gate.set()
        if not running.done():
            os.kill(os.getpid(), signal.SIGTERM)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(running, 15)
        for sig in (signal.SIGTERM, signal.SIGINT):  # give pytest its handlers back
            loop.remove_signal_handler(sig)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert len(channel.sent) == queued and {to for to, _ in channel.sent} == {SENDER}
    assert await pending_rows(config) == 0


# --- the systemd unit -----------------------------------------------------------------


def test_systemd_unit_is_hardened_and_runs_the_documented_command() -> None:
    unit = Path(__file__).resolve().parent.parent / "deploy" / "confidant.service"
    entries: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key}", []).append(value)
    expected = {
        "Service.User": "confidant", "Service.Group": "confidant",
        "Service.ExecStart":
            "/opt/confidant/.venv/bin/confidant run --config /etc/confidant/config.toml",
        "Service.NoNewPrivileges": "yes", "Service.ProtectSystem": "strict",
        "Service.ReadWritePaths": "/var/lib/confidant", "Service.PrivateTmp": "yes",
        "Service.ProtectHome": "yes",
        "Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "Service.UMask": "0077", "Service.KillSignal": "SIGTERM",
        "Service.TimeoutStopSec": "30", "Service.Restart": "on-failure",
        "Service.CapabilityBoundingSet": "", "Service.LimitCORE": "0",
        "Install.WantedBy": "multi-user.target",
    }
    for key, value in expected.items():
        assert entries.get(key) == [value], f"{key}: {entries.get(key)}"
    # the outbox drain must fit inside the stop timeout
    assert DRAIN_SECONDS < int(expected["Service.TimeoutStopSec"])
