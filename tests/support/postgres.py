"""A real PostgreSQL server for the store tests, on 127.0.0.1 only.

If ``CONFIDANT_TEST_PG_URL`` names a server (a role allowed to CREATE
DATABASE), it is used; otherwise the session starts a throw-away cluster with
Debian's ``initdb``/``pg_ctl`` on a free loopback port, sockets in its temp
dir, and removes it afterwards.  As root, the binaries run as the
``postgres`` user.  Missing PostgreSQL fails the test loudly, never skips.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

ENV_URL = "CONFIDANT_TEST_PG_URL"
_INSTALL_HINT = (
    "PostgreSQL is needed for the store tests: install it (`apt-get install postgresql`, "
    f"or run .ci/run), or set {ENV_URL}=postgresql://user@127.0.0.1:5432/postgres"
)


def _free_port() -> int:
    """Ask the kernel for a loopback port nobody uses right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin dir (Debian layout), or PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A PostgreSQL server the tests may create databases on."""

    def __init__(self, admin_url: URL, bindir: Path | None) -> None:
        self.admin_url = admin_url
        self.bindir = bindir

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        """SQLAlchemy URL of one database on this server."""
        return self.admin_url.set(drivername=driver, database=database).render_as_string(
            hide_password=False
        )

    def _dsn(self, database: str | None = None) -> str:
        """Plain libpq/asyncpg DSN (no SQLAlchemy driver suffix)."""
        return self.url(database or self.admin_url.database or "postgres", driver="postgresql")

    async def create_database(self) -> str:
        """A fresh, empty database; returns its name."""
        name = "t_" + secrets.token_hex(8)
        conn = await asyncpg.connect(self._dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        """Remove a test database even if a leaked connection still holds it."""
        conn = await asyncpg.connect(self._dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def dump(self, database: str) -> bytes:
        """``pg_dump`` of one database, data included, as bytes."""
        exe = str(self.bindir / "pg_dump") if self.bindir else shutil.which("pg_dump")
        if not exe or not os.path.exists(exe):
            pytest.fail("pg_dump not found: " + _INSTALL_HINT)
        url = self.admin_url
        env = {**os.environ, "PGPASSWORD": url.password or ""} if url.password else dict(os.environ)
        cmd = [
            exe,
            "--no-password",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            "-d",
            database,
        ]
        result = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
        if result.returncode != 0:
            pytest.fail(f"pg_dump failed: {result.stderr.decode(errors='replace')[-2000:]}")
        return result.stdout


class _Cluster:
    """A throw-away cluster in a temp dir, owned by ``postgres`` when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="confidant-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root but there is no 'postgres' user: " + _INSTALL_HINT)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.user = "postgres"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        """Run a PostgreSQL binary, as the ``postgres`` user when we are root."""
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=self.root)

    def _log_tail(self) -> str:
        """The end of the server log, for a failure message."""
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no server log)"

    def start(self) -> None:
        """initdb + pg_ctl start, tuned for throw-away speed (no fsync)."""
        result = self._run(
            "initdb", "-D", str(self.data), "-U", self.user, "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        if result.returncode != 0:
            pytest.fail(f"initdb failed: {result.stderr.decode(errors='replace')[-2000:]}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# confidant test cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 200\n"
            )
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start",
            timeout=90,
        )  # fmt: skip
        if result.returncode != 0:
            pytest.fail(
                "PostgreSQL did not start: "
                f"{result.stderr.decode(errors='replace')[-1000:]}\n{self._log_tail()}"
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        pytest.fail(f"PostgreSQL does not listen on 127.0.0.1:{self.port}\n{self._log_tail()}")

    def stop(self) -> None:
        """Stop the server at once and delete everything it wrote."""
        try:
            if self.data.exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (external via env, or our own cluster)."""
    external = os.environ.get(ENV_URL)
    if external:
        url = make_url(external)
        if url.host not in (None, "127.0.0.1", "localhost", "::1"):
            pytest.fail(f"{ENV_URL} must point at 127.0.0.1, not another host")
        if not url.database:
            url = url.set(database="postgres")
        yield PostgresServer(url, find_bindir())
        return
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(_INSTALL_HINT)
    cluster = _Cluster(bindir)
    try:
        cluster.start()
        admin = URL.create(
            "postgresql", username="postgres", host="127.0.0.1", port=cluster.port,
            database="postgres",
        )  # fmt: skip
        yield PostgresServer(admin, bindir)
    finally:
        cluster.stop()


@pytest.fixture
async def pg_database(
    postgres_server: PostgresServer,
) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Make fresh databases for one test (dropped afterwards); returns their URLs."""
    made: list[str] = []

    async def make() -> str:
        name = await postgres_server.create_database()
        made.append(name)
        return postgres_server.url(name)

    yield make
    for name in made:
        await postgres_server.drop_database(name)


@pytest.fixture
def pg_dump(postgres_server: PostgresServer) -> Callable[[str], bytes]:
    """``pg_dump`` a test database, given its URL, to bytes (for privacy scans)."""

    def dump(url: str) -> bytes:
        database = make_url(url).database
        assert database, "URL names no database"
        return postgres_server.dump(database)

    return dump
