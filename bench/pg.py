"""A throw-away PostgreSQL cluster for the PostgreSQL column of the relay
runs: the test suite's own (`tests.support.postgres`: initdb on a free
loopback port, ``fsync = off``, ``synchronous_commit = off``), or the server
named by ``CONFIDANT_TEST_PG_URL``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import URL, make_url

from tests.support.postgres import ENV_URL, PostgresServer, _Cluster, find_bindir


@asynccontextmanager
async def postgres() -> AsyncIterator[PostgresServer]:
    """A server the benchmark may create databases on, for the whole run."""
    external = os.environ.get(ENV_URL)
    if external:
        url = make_url(external)
        if url.host not in (None, "127.0.0.1", "localhost", "::1"):
            raise RuntimeError(f"{ENV_URL} must point at 127.0.0.1")
        yield PostgresServer(url.set(database=url.database or "postgres"), find_bindir())
        return
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (initdb not found); "
                           "use --skip-postgres or install it")
    cluster = _Cluster(bindir)
    try:
        cluster.start()
        yield PostgresServer(URL.create("postgresql", username="postgres", host="127.0.0.1",
                                        port=cluster.port, database="postgres"), bindir)
    finally:
        cluster.stop()


async def fresh_database(server: PostgresServer) -> str:
    """An empty database on ``server``; its ``postgresql+asyncpg://`` URL."""
    return server.url(await server.create_database())
