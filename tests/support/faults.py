"""Fault-injection helpers for the fault tests: a killable bot process with
test pacing, random Bot API failures on the Telegram double, a SQLite lock
held by another connection, a throw-away PostgreSQL cluster that can be
stopped and started, and the scans of the privacy sweep.

Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from handlers.i18n import Translator
from tests.support.app_runner import REPO, BotProcess, BotSetup
from tests.support.postgres import _Cluster, find_bindir
from tests.support.telegram_double import FakeUser, Injection, TelegramDouble

# ------------------------------------------------------------------ bot process

_PACED_MAIN = (
    "import faulthandler, functools, signal, sys\n"
    "faulthandler.register(signal.SIGUSR1, all_threads=True)\n"
    "import bot.channels.telegram.channel as tg\n"
    "from bot.channels.ratelimit import RateLimiter\n"
    "tg.RateLimiter = functools.partial(RateLimiter, per_chat_rate={chat}, per_chat_burst=5,"
    " overall_rate={overall}, overall_burst=60)\n"
    "from bot.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


class PacedBotProcess(BotProcess):
    """The real ``confidant run`` as a killable child, with Telegram's pacing
    raised for the test (per chat ``chat_rate``/s instead of 1/s).

    The pacing itself is tested in the channel tests; at Telegram's real pace
    a thousand relayed messages would take many minutes.
    """

    def __init__(self, setup: BotSetup, chat_rate: float = 40.0,
                 overall_rate: float = 200.0) -> None:
        super().__init__(setup)
        self.chat_rate = chat_rate
        self.overall_rate = overall_rate
        self.kills = 0
        self.kill_times: list[float] = []
        """Wall-clock time (``time.time()``) of each SIGKILL."""
        self.start_times: list[float] = []

    def start(self) -> None:
        """Launch ``python -c <paced main> run --config …``; stderr goes to ``log_path``."""
        import os

        if self.proc is not None and self.proc.poll() is None:
            raise AssertionError("the bot process is already running")
        env = {**os.environ, **self.setup.env, "PYTHONUNBUFFERED": "1"}
        env.pop("CONFIDANT_CONFIG", None)
        code = _PACED_MAIN.format(chat=self.chat_rate, overall=self.overall_rate)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, "run", "--config", str(self.setup.config_path)],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        self.starts += 1
        self.start_times.append(time.time())

    def dump_stacks(self) -> None:
        """Ask a live process to write every thread's stack to its log (on a hang)."""
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL, remembering when (to tell crash-window duplicates from others)."""
        self.kill_times.append(time.time())
        super().kill()
        self.kills += 1


# ------------------------------------------------------------------ Telegram people

CASE_CODE = re.compile(r"\b[A-Z0-9]{3}-[A-Z0-9]{3}\b")
_TR = Translator("nl", ("nl", "fr", "en"), "Europe/Brussels", "Acme Logistics")


def _t(key: str, **values: object) -> str:
    """The bot's own English string (people in these tests write in English)."""
    return _TR.t("en", key, **values)


@dataclass
class Pair:
    """One employee and the confidant who holds their case."""

    emp: FakeUser
    conf: FakeUser
    name: str
    code: str = ""


async def open_pair(double: TelegramDouble, pair: Pair) -> None:
    """The employee asks for this confidant by name, who claims the case."""
    emp, conf = pair.emp, pair.conf
    n = len(double.sent_to(emp.id))
    await emp.send_command("talk")
    menu = await double.wait_for(emp.id, lambda r: (r.get("text") or "").startswith(
                                     _t("talk.choose")), 30,
                                 start=n)
    await emp.press(f"{pair.name} ({_t('confidants.on_duty')})", menu)
    opened = await double.wait_for(emp.id, lambda r: bool(CASE_CODE.search(r.get("text") or "")),
                                   30, start=n)
    match = CASE_CODE.search(opened["text"])
    assert match is not None
    pair.code = match.group(0)
    note = await double.wait_for(conf.id, lambda r: pair.code in (r.get("text") or "")
                                 and bool(r.get("reply_markup")), 30)
    await conf.press(_t("notify.claim_button", code=pair.code), note)
    await double.wait_for(emp.id, lambda r: r.get("text") == _t("claim.to_employee",
                                                                name=pair.name), 30, start=n)


# ------------------------------------------------------------------ random API failures


@dataclass
class FlakyApi:
    """Makes a share of the double's Bot API calls fail: 429 (with
    retry_after), 5xx, or a dropped connection, chosen by a seeded RNG.

    Install with `install`; failures happen only while `active`.
    """

    double: TelegramDouble
    rate: float = 0.3
    seed: int = 8
    methods: frozenset[str] = frozenset({"getupdates", "sendmessage", "sendphoto",
                                         "answercallbackquery", "getfile"})
    active: bool = False
    injected: Counter[str] = field(default_factory=Counter)
    """Failures produced, by kind ("429", "500", "502", "503", "drop")."""
    calls_seen: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._original = self.double._take_injection

    def install(self) -> None:
        """Route the double's injection lookup through this object."""
        self.double._take_injection = self._take  # type: ignore[method-assign]

    def _take(self, method: str) -> Injection | None:
        """A planned injection first (tests may still add those), else maybe a random one."""
        planned = self._original(method)
        if planned is not None or not self.active or method not in self.methods:
            return planned
        self.calls_seen += 1
        if self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(["429", "500", "502", "503", "drop", "drop"])
        self.injected[kind] += 1
        if kind == "drop":
            return Injection(method, None, None, 1, None, True, 0.0)
        status = int(kind)
        return Injection(method, status, 1 if status == 429 else None, 1, None, False, 0.0)


# ------------------------------------------------------------------ SQLite lock


@asynccontextmanager
async def sqlite_locked(db_path: Path) -> AsyncIterator[threading.Event]:
    """Hold SQLite's write lock from another connection, as a backup tool or a
    stuck admin command would, until the block ends: nobody else can record
    anything (in WAL mode readers still read; a stronger lock is not
    possible while the bot keeps its connections open).

    Yields an event that is set once the lock is held.  The wait for the lock
    must not block the event loop: the bot in this process may be in the
    middle of a transaction that needs the loop to finish.
    """
    held = threading.Event()
    release = threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("CREATE TABLE IF NOT EXISTS fault_lock_probe (x INTEGER)")
            conn.execute("INSERT INTO fault_lock_probe VALUES (1)")
            held.set()
            release.wait(120)
            conn.execute("ROLLBACK")
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
            held.set()
        finally:
            conn.close()

    thread = threading.Thread(target=hold, name="sqlite-lock", daemon=True)
    thread.start()
    if not await asyncio.to_thread(held.wait, 30) or failure:
        release.set()
        raise AssertionError(f"could not take the SQLite lock: {failure!r}")
    try:
        yield held
    finally:
        release.set()
        await asyncio.to_thread(thread.join, 30)


def checkpointed_bytes(db_path: Path) -> bytes:
    """The SQLite file after folding the WAL back in, plus any WAL/journal left."""
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    out = db_path.read_bytes()
    for suffix in ("-wal", "-journal"):
        extra = Path(str(db_path) + suffix)
        if extra.exists():
            out += extra.read_bytes()
    return out


# ------------------------------------------------------------------ PostgreSQL cluster


class RestartableCluster:
    """A throw-away PostgreSQL cluster of this test alone (the session's server
    must not go down under other tests), that can be stopped and started."""

    def __init__(self) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise AssertionError("PostgreSQL binaries (initdb, pg_ctl) are not installed")
        self._cluster = _Cluster(bindir)

    def start_new(self) -> None:
        """initdb and start (first time only)."""
        self._cluster.start()

    @property
    def admin_url(self) -> URL:
        """The ``postgres`` database as superuser, over TCP on 127.0.0.1."""
        return URL.create("postgresql", username="postgres", host="127.0.0.1",
                          port=self._cluster.port, database="postgres")

    def url(self, database: str) -> str:
        """The SQLAlchemy (asyncpg) URL of one database."""
        return self.admin_url.set(drivername="postgresql+asyncpg", database=database) \
            .render_as_string(hide_password=False)

    async def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        import asyncpg

        conn = await asyncpg.connect(self.admin_url.render_as_string(hide_password=False))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown: sessions are cut, the server goes away."""
        c = self._cluster
        result = c._run("pg_ctl", "-D", str(c.data), "-m", "fast", "-w", "stop")
        if result.returncode != 0:
            raise AssertionError(f"pg_ctl stop failed: {result.stderr!r}")

    def start(self) -> None:
        """Start the stopped cluster again on the same data and port."""
        c = self._cluster
        result = c._run("pg_ctl", "-D", str(c.data), "-l", str(c.log), "-w", "-t", "60",
                        "start", timeout=90)
        if result.returncode != 0:
            raise AssertionError(f"pg_ctl start failed: {result.stderr!r}")

    def remove(self) -> None:
        """Stop (if running) and delete everything."""
        self._cluster.stop()


# ------------------------------------------------------------------ privacy scans


def identity_needles(users: Iterable[FakeUser]) -> list[str]:
    """Every identifying string of some Telegram users: id, username, names."""
    out: list[str] = []
    for u in users:
        out.extend(s for s in (str(u.id), u.username, u.first_name, u.last_name) if s)
    return out


def int_encodings(value: int) -> list[bytes]:
    """How an integer platform id could sit in a binary file: 8-byte big- and
    little-endian, and SQLite's 6-byte big-endian record form."""
    out = [struct.pack(">q", value), struct.pack("<q", value)]
    if 0 <= value < 2**47:
        out.append(value.to_bytes(6, "big"))
    return out


def find_needles(blob: bytes, needles: Sequence[str], *, utf16: bool = True) -> list[str]:
    """The needles present in ``blob`` (UTF-8, case-insensitive; also UTF-16
    if asked, as some tools write it)."""
    low = blob.lower()
    found = []
    for needle in needles:
        forms = [needle.lower().encode()]
        if utf16:
            forms += [needle.lower().encode("utf-16-le"), needle.lower().encode("utf-16-be")]
        if any(f in low for f in forms):
            found.append(needle)
    return found


def received_by(double: TelegramDouble, chat_ids: Iterable[int]) -> bytes:
    """Everything some chats got from the bot: every request's parameters and
    uploaded files addressed to them, and every message record (text, caption,
    file names, bytes, keyboards) — one blob to search."""
    ids = set(chat_ids)
    parts: list[bytes] = []
    for req in double.requests:
        if req.params.get("chat_id") in ids:
            parts.append(json.dumps(req.params, ensure_ascii=False, default=str).encode())
    for chat in ids:
        for rec in double.sent_to(chat):
            media = rec.get("media") or b""
            meta = {k: v for k, v in rec.items() if k != "media"}
            parts.append(json.dumps(meta, ensure_ascii=False, default=str).encode())
            parts.append(media)
    return b"\n".join(parts)


async def wait_for(pred: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``pred()`` (sync or async) until truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
