"""The Alembic migrations build exactly the schema the models declare, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from store.db import create_engine
from store.migrate import configure_options, current_revision, head_revision, upgrade
from store.models import Base


async def _diff(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def compare(sync: Connection) -> list[Any]:
                options = configure_options(sync)
                options.pop("connection")
                options.pop("target_metadata")
                context = MigrationContext.configure(sync, opts=options)
                return list(compare_metadata(context, Base.metadata))

            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_reaches_head(store_url: str) -> None:
    assert await current_revision(store_url) is None
    await upgrade(store_url)
    head = head_revision()
    assert head is not None
    assert await current_revision(store_url) == head
    assert set(Base.metadata.tables) <= await _tables(store_url)


async def test_upgrade_twice_is_a_no_op(store_url: str) -> None:
    await upgrade(store_url)
    before = await _tables(store_url)
    await upgrade(store_url)
    assert await current_revision(store_url) == head_revision()
    assert await _tables(store_url) == before


async def test_models_and_migrations_agree(store_url: str) -> None:
    """A model change without a migration shows up here as a pending diff."""
    await upgrade(store_url)
    assert await _diff(store_url) == []


async def test_diff_detects_a_missing_migration(store_url: str) -> None:
    """The comparison above can fail: on an empty database it reports every table."""
    diff = await _diff(store_url)
    added = {d[1].name for d in diff if isinstance(d, tuple) and d[0] == "add_table"}
    assert set(Base.metadata.tables) <= added


async def test_downgrade_to_base_removes_everything(store_url: str) -> None:
    from alembic import command

    from store.migrate import alembic_config

    await upgrade(store_url)
    engine = create_engine(store_url)
    try:
        async with engine.begin() as conn:

            def down(sync: Connection) -> None:
                config = alembic_config()
                config.attributes["connection"] = sync
                command.downgrade(config, "base")

            await conn.run_sync(down)
    finally:
        await engine.dispose()
    assert await _tables(store_url) <= {"alembic_version"}
