"""Wiring: config → store → intake → channels → delivery and timers, on one loop.

Everything runs under our own asyncio loop (python-telegram-bot, matrix-nio
and aiohttp side by side).  Shutdown stops intake first, then drains the
outbox for a bounded time, so nothing already accepted is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime

from bot import metrics
from bot.channels.base import Channel, ChannelError
from bot.cli_common import admin_settings
from bot.config import Config, ConfigError
from bot.delivery import DeliveryWorker
from bot.intake import Intake
from bot.notices import in_every_language
from bot.runtime import settle_heap
from handlers.administration.base import AdminSettings
from handlers.administration.service import AdminService
from handlers.commands import command_menu
from handlers.context import CoreSettings
from handlers.info import InfoLibrary
from store import keyring
from store.admin import admin_tx
from store.crypto import load_master_key
from store.migrate import upgrade
from store.store import Store

log = logging.getLogger("confidant.app")

TICK_SECONDS = 30.0
DRAIN_SECONDS = 10.0


def channel_settings(settings: CoreSettings, channels: Mapping[str, Channel]) -> CoreSettings:
    """``settings`` with what follows from the channels' declared traits
    (`bot.channels.base.Channel`): which of them show numbered menus, and
    over which of them the privacy notice may promise end-to-end encryption."""
    return replace(
        settings,
        numbered_channels=frozenset(
            name for name, channel in channels.items() if channel.numbered_menus),
        end_to_end_channels=frozenset(
            name for name, channel in channels.items() if channel.end_to_end),
    )


def core_settings(config: Config) -> CoreSettings:
    admins: set[tuple[str, str]] = set()
    for entry in config.admins:
        for channel in ("telegram", "matrix", "web"):
            value = getattr(entry, channel, None)
            if value:
                admins.add((channel, str(value)))
    org = config.organisation
    return CoreSettings(
        org_name=org.name, timezone=org.timezone, default_language=org.default_language,
        languages=tuple(org.languages), response_hours=config.support.response_hours,
        escalation_hours=config.support.escalation_hours,
        idle_close_days=config.privacy.idle_close_days,
        retention_days=config.privacy.retention_days, admins=frozenset(admins),
        slot_minutes=config.appointments.slot_minutes,
        buffer_minutes=config.appointments.buffer_minutes,
        days_ahead=config.appointments.days_ahead, office_hours=config.rota.hours,
        channels=frozenset(config.enabled_channels),
        web_https=(config.web.public_url or "").lower().startswith("https://"),
    )


def admin_service_factory(
        store: Store, settings: AdminSettings,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[str], AbstractAsyncContextManager[AdminService]]:
    """Actor → the admin service over one transaction of ``store`` (seen
    through `store.admin.AdminTx` only): what the web admin console gets
    instead of the store, so its pages cannot reach a case."""

    @asynccontextmanager
    async def open_service(actor: str) -> AsyncIterator[AdminService]:
        async with admin_tx(store) as tx:
            yield AdminService(tx, actor, now(), settings)

    return open_service


class App:
    """One running bot."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store: Store | None = None
        self.intake: Intake | None = None
        self.channels: dict[str, Channel] = {}
        self.worker: DeliveryWorker | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.started: set[str] = set()
        self.metrics_server: metrics.MetricsServer | None = None

    async def start(self) -> None:
        cfg = self.config
        master = load_master_key(cfg.store.key_file)
        await upgrade(cfg.store.url)
        store = Store.open(cfg.store.url, master)
        self.store = store
        async with store.tx() as tx:
            await keyring.check_master(tx.session, store.crypto)
        info = InfoLibrary.load(cfg.organisation.content_override,
                                tuple(cfg.organisation.languages))
        settings = core_settings(cfg)
        intake = Intake(store, settings, info)
        self.intake = intake
        self.channels = self._build_channels(store, intake)
        # What the conversation must know of a channel, the channel declares.
        intake.settings = channel_settings(settings, self.channels)
        self.worker = DeliveryWorker(store, self.channels, clock=intake.clock,
                                     wake=intake.outbox_changed,
                                     unreachable=intake.unreachable)
        await self._start_metrics(store)
        for name, channel in self.channels.items():
            try:
                await channel.start(metrics.instrument(intake.handle))
            except ChannelError as err:
                raise ConfigError([str(err)]) from None
            self.started.add(name)
            log.info("channel started channel=%s numbered_menus=%s end_to_end=%s "
                     "idempotent_sends=%s", name, channel.numbered_menus, channel.end_to_end,
                     channel.idempotent_sends)
        # Delivery starts once every channel can send: a pending message is
        # not pushed into a retry (and a growing backoff) by our own start-up.
        # From then on the intake hands fresh messages straight to it.
        intake.lane = self.worker
        self._tasks.append(asyncio.create_task(self.worker.run(), name="delivery"))
        self._tasks.append(asyncio.create_task(self._timers(), name="timers"))

    async def _start_metrics(self, store: Store) -> None:
        """Serve /healthz and /metrics before the channels start, so a probe
        sees 503 until every channel is up."""
        if not self.config.metrics.enabled:
            return
        host, port = self.config.metrics.host_port
        server = metrics.MetricsServer(
            host, port, metrics.app_health(store, self.channels, self.started),
            lambda: metrics.pending_messages(store))
        await server.start()
        self.metrics_server = server

    def _build_channels(self, store: Store, intake: Intake) -> dict[str, Channel]:
        cfg = self.config
        out: dict[str, Channel] = {}
        if cfg.web.enabled:
            from bot.channels.web import WebChannel

            web_channel = WebChannel(
                cfg.web.listen, cfg.web.public_url, store.channel_state("web"),
                self.redeem_login, cfg.organisation.languages, cfg.organisation.default_language,
                cfg.organisation.name, retention_days=cfg.privacy.retention_days,
                greet_new=True, console_opening="/cases")
            from bot.webadmin.console import mount

            org = cfg.organisation
            out["web"] = web_channel
            mount(web_channel, admin_service_factory(store, admin_settings(cfg)),
                  org_name=org.name, languages=org.languages,
                  default_language=org.default_language, timezone=org.timezone)
        if cfg.telegram.enabled:
            from bot.channels.telegram import TelegramChannel

            assert cfg.telegram.token is not None
            base = cfg.telegram.base_url or None
            # Only the trailing "/bot" becomes "/file/bot": a host such as
            # "https://bot.example.org/bot" must keep its name.
            file_base = base[: -len("/bot")] + "/file/bot" if base and base.endswith(
                "/bot") else None
            out["telegram"] = TelegramChannel(
                cfg.telegram.token, base_url=base, base_file_url=file_base,
                mode=cfg.telegram.mode, webhook_url=cfg.telegram.webhook_url,
                webhook_listen=cfg.telegram.webhook_listen,
                secret_token=cfg.telegram.webhook_secret,
                languages=cfg.organisation.languages, commands=command_menu(intake.tr))
        if cfg.matrix.enabled:
            from bot.channels.matrix import MatrixChannel

            assert cfg.matrix.homeserver and cfg.matrix.user_id
            out["matrix"] = MatrixChannel(
                cfg.matrix.homeserver, cfg.matrix.user_id, password=cfg.matrix.password,
                access_token=cfg.matrix.access_token, device_name=cfg.matrix.device_name,
                store_dir=cfg.matrix.store_dir, trust=cfg.matrix.trust,
                pickle_key=store.crypto.derive("matrix-store-pickle").hex(),
                state=store.channel_state("matrix"),
                # Notices to a room whose reader is unknown: every language, default first.
                notices=in_every_language(cfg.organisation.languages,
                                          cfg.organisation.default_language))
        return out

    async def redeem_login(self, token: str) -> str | None:
        """One-time console link → the confidant's web address (or nothing)."""
        assert self.store is not None
        async with self.store.tx() as tx:
            confidant = await tx.confidants.redeem_login_token(token, datetime.now(UTC))
            if confidant is None:
                return None
            await tx.audit.record(f"confidant:{confidant.name}", "console.login")
            for address in await tx.confidants.addresses(confidant):
                if address.channel == "web":
                    return address.address
        return None

    async def _timers(self) -> None:
        assert self.intake is not None
        while True:
            try:
                await self.intake.tick()
            except Exception as exc:
                log.warning("timer pass failed kind=%s", type(exc).__name__)
            await asyncio.sleep(TICK_SECONDS)

    async def stop(self) -> None:
        """Drain what was accepted (bounded), then close channels and the store."""
        if self.worker is not None:
            with contextlib.suppress(Exception):
                await self.worker.drain(DRAIN_SECONDS)
            self.worker.stop()
            if self.intake is not None:
                self.intake.lane = None
        for name, channel in list(self.channels.items())[::-1]:
            self.started.discard(name)
            with contextlib.suppress(Exception):
                await channel.stop()
            log.info("channel stopped channel=%s", name)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        if self.store is not None:
            await self.store.close()


async def run_app(config: Config, ready: asyncio.Event | None = None) -> None:
    """Run until SIGTERM or SIGINT; stop gracefully."""
    app = App(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        settle_heap()
        log.info("confidant running channels=%s", ",".join(app.channels))
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        log.info("confidant stopping")
        await app.stop()
