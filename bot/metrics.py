"""Operational counters and the ``/healthz`` + ``/metrics`` HTTP endpoint.

Only counts and latencies leave the process: labels are a channel name from
a fixed list and an outcome word, never text, ids or case codes.  The
endpoint runs on its own aiohttp server, bound to localhost by default, so
that it never shares a port (or an access log) with the public web chat.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.channels.base import InboundHandler
from domain.messages import Inbound
from store.store import Store

log = logging.getLogger("confidant.metrics")

KNOWN_CHANNELS = frozenset({"telegram", "matrix", "web", "memory"})
"""Channel label values; anything else is counted as ``other`` so a bad
caller can never blow up the label space."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)

REGISTRY = CollectorRegistry(auto_describe=True)
"""Our own registry: no process/platform collectors of other libraries, and
tests can read it without touching the global default."""

INBOUND_EVENTS = Counter(
    "confidant_inbound_events", "Platform events handed to the core, by outcome.",
    ("channel", "outcome"), registry=REGISTRY)
HANDLE_SECONDS = Histogram(
    "confidant_handle_seconds", "Time for the core to record one event and its effects.",
    ("channel",), buckets=LATENCY_BUCKETS, registry=REGISTRY)
OUTBOX_MESSAGES = Counter(
    "confidant_outbox_messages", "Outbox delivery attempts, by outcome (sent, retried, failed).",
    ("channel", "outcome"), registry=REGISTRY)
DELIVERY_SECONDS = Histogram(
    "confidant_delivery_seconds",
    "Time a channel took to deliver one outbox message (successful sends).",
    ("channel",), buckets=LATENCY_BUCKETS, registry=REGISTRY)
OUTBOX_PENDING = Gauge(
    "confidant_outbox_pending", "Outbox messages waiting for delivery (read at scrape time).",
    registry=REGISTRY)

INBOUND_OUTCOMES = ("ok", "error")
DELIVERY_OUTCOMES = ("sent", "retried", "failed")


def channel_label(name: str) -> str:
    """Bound the label space: only known channel names become label values."""
    return name if name in KNOWN_CHANNELS else "other"


def instrument(handler: InboundHandler) -> InboundHandler:
    """Wrap ``Intake.handle`` so every inbound event is counted and timed,
    without the channel-neutral core knowing about Prometheus."""

    async def counted(inbound: Inbound) -> None:
        label = channel_label(inbound.channel)
        started = time.perf_counter()
        try:
            await handler(inbound)
        except Exception:
            INBOUND_EVENTS.labels(label, "error").inc()
            raise
        finally:
            HANDLE_SECONDS.labels(label).observe(time.perf_counter() - started)
        INBOUND_EVENTS.labels(label, "ok").inc()

    return counted


def count_delivery(channel: str, outcome: str, seconds: float | None = None) -> None:
    """One delivery attempt's result, called by the delivery worker."""
    if outcome not in DELIVERY_OUTCOMES:
        raise ValueError(f"unknown delivery outcome {outcome!r}")
    label = channel_label(channel)
    OUTBOX_MESSAGES.labels(label, outcome).inc()
    if seconds is not None:
        DELIVERY_SECONDS.labels(label).observe(seconds)


def sample(name: str, labels: Mapping[str, str] | None = None) -> float:
    """Current value of one series (0 when never touched): for tests and
    diagnostics, so callers need not know prometheus-client's API."""
    value = REGISTRY.get_sample_value(name, dict(labels or {}))
    return float(value) if value is not None else 0.0


async def store_answers(store: Store) -> bool:
    """The health probe's database check: one trivial query, no data read."""
    ok = await store.healthy()
    if not ok:
        log.warning("health check: store unavailable")
    return ok


async def pending_messages(store: Store) -> int:
    """Outbox rows still waiting, for the gauge."""
    async with store.tx() as tx:
        return await tx.outbox.pending_count()


HealthCheck = Callable[[], Awaitable[bool]]
PendingCount = Callable[[], Awaitable[int]]


def app_health(store: Store, channels: Collection[str], started: Collection[str]) -> HealthCheck:
    """Healthy = the store answers and every configured channel has started
    (``started`` is a live set the app updates as channels come and go)."""

    async def check() -> bool:
        if not set(channels) <= set(started):
            return False
        return await store_answers(store)

    return check


class MetricsServer:
    """The small HTTP server for ``/healthz`` and ``/metrics``."""

    def __init__(self, host: str, port: int, health: HealthCheck,
                 pending: PendingCount | None = None) -> None:
        self.host = host
        self.port = port
        self._health = health
        self._pending = pending
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        """The aiohttp application (separate from `start` so tests can mount it)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        """Bind and serve; with port 0 the chosen port is stored in ``port``."""
        # access_log=None: even a localhost scraper's address stays out of the logs.
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        addresses = runner.addresses
        if self.port == 0 and addresses:
            self.port = int(addresses[0][1])
        log.info("metrics server started")

    async def stop(self) -> None:
        """Close the listener; scrapes in flight are cut short (they are cheap)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            ok = await self._health()
        except Exception as exc:
            log.warning("health check failed kind=%s", type(exc).__name__)
            ok = False
        body = json.dumps({"status": "ok" if ok else "unavailable"})
        return web.Response(status=200 if ok else 503, text=body,
                            content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._pending is not None:
            try:
                OUTBOX_PENDING.set(await self._pending())
            except Exception as exc:  # a scrape during an outage still answers
                log.warning("outbox gauge not refreshed kind=%s", type(exc).__name__)
        payload = generate_latest(REGISTRY)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})
