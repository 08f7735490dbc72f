"""Alembic environment: runs migrations on the store's async engine.

`store.migrate` hands in an open connection (``config.attributes["connection"]``);
the ``alembic`` command line (``alembic -c store/alembic.ini …``) instead
takes the URL from ``CONFIDANT_DATABASE_URL`` or ``sqlalchemy.url``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from store.db import create_engine
from store.migrate import configure_options, render_item
from store.models import Base

config = context.config
target_metadata = Base.metadata


def do_run_migrations(connection: Connection) -> None:
    """Apply the pending revisions on an open connection."""
    context.configure(**configure_options(connection))
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    """Open our own engine when run from the alembic command line."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    """Emit SQL for review instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_item=render_item,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    """The database URL for command-line use."""
    url = config.attributes.get("url") or os.environ.get("CONFIDANT_DATABASE_URL")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set CONFIDANT_DATABASE_URL to the store's database URL")
    return str(url)


if context.is_offline_mode():
    run_migrations_offline()
else:
    _connection = config.attributes.get("connection")
    if _connection is None:
        asyncio.run(run_async_migrations(_url()))
    else:
        do_run_migrations(_connection)
