"""``confidant demo``: the embedded default, with nothing to configure.

SQLite and the key file in ./confidant-data, the web chat on
127.0.0.1:8080, a demo confidant who is on duty around the clock, a room for
talks, a demo admin account for the admin console, and fresh one-time login
links (confidant console, admin console) printed at every start.
``CONFIDANT_DEMO_LISTEN=127.0.0.1:8181`` moves the web chat when 8080 is taken.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

from bot.app import run_app
from bot.cli_common import admin_settings
from bot.config import Config, ConfigError, default_config, split_listen
from domain.vocabulary import Language, ShiftKind
from handlers.administration.service import AdminService
from store.admin import admin_tx
from store.crypto import create_key_file, load_master_key
from store.migrate import upgrade
from store.store import Store

DEMO_NAME = "Demo Confidant"
DEMO_ADMIN = "Demo Admin"
DEMO_ACTOR = "admin:demo"
LISTEN_ENV = "CONFIDANT_DEMO_LISTEN"


def demo_config(data_dir: Path) -> Config:
    """The embedded configuration, with the web chat moved when ``LISTEN_ENV``
    says so: port 8080 is often taken on a developer's machine."""
    config = default_config(data_dir)
    listen = os.environ.get(LISTEN_ENV, "").strip()
    if not listen:
        return config
    try:
        split_listen(listen)
    except ValueError:
        raise ConfigError(
            [f'{LISTEN_ENV}: expected "host:port", e.g. "127.0.0.1:8181"']
        ) from None
    web = config.web.model_copy(update={"listen": listen})
    return config.model_copy(update={"web": web})


@dataclass(frozen=True)
class DemoLinks:
    """What the demo prints: the employee page and two one-time login links."""

    employee: str
    console: str
    admin: str


async def prepare_demo(data_dir: Path) -> DemoLinks:
    """Create what the demo needs (idempotent); returns the addresses to print."""
    config = demo_config(data_dir)
    create_key_file(config.store.key_file)
    await upgrade(config.store.url)
    store = Store.open(config.store.url, load_master_key(config.store.key_file))
    now = datetime.now(UTC)
    try:
        async with store.tx() as tx:
            confidant = await tx.confidants.by_name(DEMO_NAME)
            if confidant is None:
                confidant = await tx.confidants.add(
                    DEMO_NAME, bio="A demo confidant: try the conversation from both sides.",
                    languages=[Language.EN, Language.NL, Language.FR], attested_by="demo", now=now)
                await tx.confidants.set_address(confidant, "web", secrets.token_urlsafe(16))
                for day in range(7):
                    await tx.rota.add_shift(confidant, day, time(0, 0), time(23, 59, 59),
                                            ShiftKind.DUTY)
                    await tx.rota.add_shift(confidant, day, time(9, 0), time(17, 0),
                                            ShiftKind.TALKS)
                await tx.rota.add_room("Demo room", site="Head office",
                                       notes="Second floor, away from the open-plan office")
                await tx.audit.record(DEMO_ACTOR, "demo.created", DEMO_NAME)
            token = await tx.confidants.new_login_token(confidant, now)
        # The admin account goes through the admin service, as `confidant
        # admin admin add` and `confidant admin token --admin` would.
        async with admin_tx(store) as atx:
            service = AdminService(atx, DEMO_ACTOR, now, admin_settings(config))
            if all(a.name != DEMO_ADMIN for a in await service.admins()):
                await service.add_admin(DEMO_ADMIN)
            _, admin_token = await service.admin_token(DEMO_ADMIN)
    finally:
        await store.close()
    host, port = config.web.host_port
    base = f"http://{host}:{port}"
    return DemoLinks(employee=f"{base}/", console=f"{base}/console/login?token={token}",
                     admin=f"{base}/admin/login?token={admin_token}")


async def run_demo(data_dir: Path) -> None:
    """Prepare, print the addresses once the web chat listens, run until SIGTERM."""
    links = await prepare_demo(data_dir)
    config = demo_config(data_dir)
    ready = asyncio.Event()

    async def announce() -> None:
        await ready.wait()
        print("Confidant demo is running (Ctrl+C to stop).", flush=True)
        print(f"  Employee chat:      {links.employee}", flush=True)
        print(f"  Confidant console:  {links.console}", flush=True)
        print(f"  Admin console:      {links.admin}", flush=True)
        print("Open the employee chat and the confidant console in two browser tabs and talk "
              "to yourself;", flush=True)
        print(f"the admin console (as {DEMO_ADMIN}) sets up confidants, rota, absences and "
              "rooms.", flush=True)
        print("Each login link works once: restart the demo for new ones.", flush=True)

    waiter = asyncio.create_task(announce())
    try:
        await run_app(config, ready)
    except ConfigError as err:
        if err.problems and err.problems[0].startswith("web.listen"):
            hint = f"{err.problems[0]} Set {LISTEN_ENV}=127.0.0.1:8181 to use another port."
            raise ConfigError([hint]) from None
        raise
    finally:
        waiter.cancel()
