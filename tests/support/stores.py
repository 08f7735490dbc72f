"""Store fixtures: every store test runs once on SQLite and once on PostgreSQL.

``store_url`` gives a fresh, empty database per test; ``store`` gives it
migrated, with an engine, a session factory and a master key;
``raw_database_bytes`` gives what an attacker holding a copy of the database
would see (the SQLite file after a WAL checkpoint, or a ``pg_dump``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store.crypto import Crypto, generate_master_key
from store.db import create_engine, session_factory
from store.migrate import upgrade
from tests.support.postgres import PostgresServer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh empty database URL, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store' / 'confidant.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = await server.create_database()
    try:
        yield server.url(name)
    finally:
        await server.drop_database(name)


def sqlite_file(url: str) -> Path:
    """The database file of a SQLite URL."""
    database = make_url(url).database
    assert database, "not a SQLite file URL"
    return Path(database)


def sqlite_raw_bytes(url: str) -> bytes:
    """Everything on disk for a SQLite database: the main file after folding
    the WAL back into it, plus whatever the WAL and journal still hold."""
    path = sqlite_file(url)
    conn = sqlite3.connect(path, timeout=10)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "WAL checkpoint blocked: close the engine first"
    finally:
        conn.close()
    data = path.read_bytes()
    for suffix in ("-wal", "-journal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            data += extra.read_bytes()
    return data


@pytest.fixture
def raw_database_bytes(request: pytest.FixtureRequest) -> Callable[[str], bytes]:
    """What a stolen copy of the database holds, for privacy scans."""

    def raw(url: str) -> bytes:
        if make_url(url).get_backend_name() == "sqlite":
            return sqlite_raw_bytes(url)
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database = make_url(url).database
        assert database
        return server.dump(database)

    return raw


@dataclass
class Store:
    """A migrated test database ready to use."""

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    crypto: Crypto

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A migrated database (both backends) with a fresh master key."""
    await upgrade(store_url)
    engine = create_engine(store_url)
    try:
        yield Store(store_url, engine, session_factory(engine), Crypto(generate_master_key()))
    finally:
        await engine.dispose()
