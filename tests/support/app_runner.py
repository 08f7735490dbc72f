"""Run the real bot for end-to-end tests: a temporary ``config.toml`` and key
file, a migrated database, registered confidants, and the real `App` either
in this process (`running_app`) or as a separate ``python -m bot run``
process that a test may kill (`BotProcess`).

Everything listens and connects on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from bot.app import App
from bot.config import load_config
from store.crypto import create_key_file, load_master_key
from store.migrate import upgrade
from store.models import Case
from store.store import Store

REPO = Path(__file__).resolve().parents[2]
TOKEN_ENV = "CONFIDANT_TELEGRAM_TOKEN"
SECRET_ENV = "CONFIDANT_TELEGRAM_WEBHOOK_SECRET"


def _toml(value: Any) -> str:
    """A TOML literal for the few value types a test config needs."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


@dataclass
class BotSetup:
    """A bot's files on disk: the config, its database and its key file."""

    folder: Path
    config_path: Path
    db_path: Path
    key_path: Path
    env: dict[str, str] = field(default_factory=dict)
    """Environment the bot needs (secrets given as ``env:NAME`` in the config)."""

    @property
    def db_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.db_path}"

    @asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """A store on the bot's database, for a test to set up or inspect state."""
        store = Store.open(self.db_url, load_master_key(self.key_path))
        try:
            yield store
        finally:
            await store.close()

    async def add_confidant(self, name: str, *, telegram: int | str | None = None,
                            languages: Sequence[str] = ("en",),
                            always_on_duty: bool = True) -> str:
        """Register a confidant (as the admin CLI would) and return their id."""
        async with self.store() as store, store.tx() as tx:
            c = await tx.confidants.add(name, bio="", languages=list(languages),
                                        attested_by="test", now=datetime.now(UTC))
            if telegram is not None:
                await tx.confidants.set_address(c, "telegram", str(telegram))
            if always_on_duty:
                for day in range(7):
                    await tx.rota.add_shift(c, day, dtime(0, 0), dtime(23, 59), "duty")
            return str(c.id)

    async def handled_events(self) -> int:
        """How many platform events the core recorded as handled."""
        async with self.store() as store, store.tx() as tx:
            return await tx.events.count()

    async def case(self, code: str) -> Case | None:
        """A case as stored now (detached; read its plain columns only)."""
        async with self.store() as store, store.tx() as tx:
            return await tx.cases.by_code(code)

    async def cases(self) -> list[Case]:
        """Every case in the database."""
        from sqlalchemy import select

        async with self.store() as store, store.tx() as tx:
            return list((await tx.session.scalars(select(Case))).all())


async def make_setup(
    folder: Path,
    *,
    telegram_base_url: str | None = None,
    telegram_token: str | None = None,
    telegram_mode: str = "polling",
    webhook_url: str | None = None,
    webhook_listen: str | None = None,
    webhook_secret: str | None = None,
    languages: Sequence[str] = ("nl", "fr", "en"),
    default_language: str = "nl",
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> BotSetup:
    """Write config and key file, migrate the database; secrets go in ``env:``.

    ``extra`` adds or overrides keys per section (``{"privacy": {...}}``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    key_path = data / "master.key"
    db_path = data / "confidant.db"
    create_key_file(key_path)
    env: dict[str, str] = {}
    sections: dict[str, dict[str, Any]] = {
        "organisation": {"name": "Acme Logistics", "timezone": "Europe/Brussels",
                         "default_language": default_language, "languages": list(languages)},
        "store": {"url": f"sqlite+aiosqlite:///{db_path}", "key_file": str(key_path)},
        "web": {"enabled": False},
        "telegram": {"enabled": False},
        "logging": {"level": "INFO"},
    }
    if telegram_token is not None:
        env[TOKEN_ENV] = telegram_token
        tg: dict[str, Any] = {"enabled": True, "token": f"env:{TOKEN_ENV}",
                              "base_url": telegram_base_url or "", "mode": telegram_mode}
        if webhook_url:
            tg["webhook_url"] = webhook_url
        if webhook_listen:
            tg["webhook_listen"] = webhook_listen
        if webhook_secret:
            env[SECRET_ENV] = webhook_secret
            tg["webhook_secret"] = f"env:{SECRET_ENV}"
        sections["telegram"] = tg
    for name, values in (extra or {}).items():
        sections.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {_toml(v)}" for k, v in values.items())
        lines.append("")
    config_path = folder / "config.toml"
    config_path.write_text("\n".join(lines), encoding="utf-8")
    await upgrade(f"sqlite+aiosqlite:///{db_path}")
    return BotSetup(folder, config_path, db_path, key_path, env)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Any:
    """Set environment variables for a while (config secrets are read at load)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@asynccontextmanager
async def running_app(setup: BotSetup) -> AsyncIterator[App]:
    """The real `App` on ``setup``'s config, started in this process and
    stopped (gracefully, draining the outbox) afterwards."""
    with _environment(setup.env):
        config = load_config(setup.config_path)
    app = App(config)
    try:
        await app.start()
        yield app
    finally:
        await app.stop()


class BotProcess:
    """``python -m bot run --config …`` as a child process, so a test can
    SIGKILL it mid-conversation and start it again on the same database."""

    def __init__(self, setup: BotSetup) -> None:
        self.setup = setup
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = setup.folder / "bot.log"
        self.starts = 0

    def start(self) -> None:
        """Launch the bot; its stderr (JSON logs) is appended to ``log_path``."""
        if self.proc is not None and self.proc.poll() is None:
            raise AssertionError("the bot process is already running")
        env = {**os.environ, **self.setup.env, "PYTHONUNBUFFERED": "1"}
        env.pop("CONFIDANT_CONFIG", None)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--config", str(self.setup.config_path)],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        self.starts += 1

    async def wait_until(self, ready: Callable[[], Awaitable[bool] | bool],
                         timeout: float = 30.0) -> None:
        """Wait for ``ready()``; fail at once (with the log) if the process died."""
        deadline = time.monotonic() + timeout
        while True:
            result = ready()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"the bot process exited early:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot was not ready in {timeout}s:\n"
                                     f"{self.log()[-3000:]}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or power loss."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    async def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait for the graceful exit; SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        return self.proc.returncode

    def log(self) -> str:
        """Everything the bot process wrote so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
