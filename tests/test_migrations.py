"""The Alembic migrations build exactly the schema the models declare, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from domain.ids import ChannelName
from domain.messages import ChannelAddress, Outbound
from store.crypto import generate_master_key
from store.db import create_engine
from store.migrate import configure_options, current_revision, head_revision, upgrade
from store.models import Base
from store.store import Store


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
    await upgrade(store_url)
    await _downgrade(store_url, "base")
    assert await _tables(store_url) <= {"alembic_version"}


async def test_cases_waiting_at_the_upgrade_keep_who_hears_taken_by(store_url: str) -> None:
    """0005 records who was told of each case waiting at the upgrade, by
    the rule that held before: everyone, the chosen confidant only, or
    everyone again once escalated; an unannounced or claimed case, nobody."""
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    await upgrade(store_url, "0004")
    store = Store.open(store_url, generate_master_key())
    try:
        async with store.tx() as tx:
            people = {name: await tx.confidants.add(name, bio="", languages=["en"],
                                                    attested_by="t", now=now)
                      for name in ("Ann", "Sara", "Tom")}
            cases = {}
            for label, chosen, announced, escalated in [
                    ("anyone", None, True, False), ("chosen", "Ann", True, False),
                    ("chosen escalated", "Ann", True, True), ("unannounced", None, False, False),
                    ("claimed", None, True, False)]:
                contact = await tx.contacts.create("memory", f"emp-{label}", "chat", "en", now)
                case = await tx.cases.create(
                    contact, channel="memory", language="en",
                    chosen_confidant_id=people[chosen].id if chosen else None, now=now,
                    deadline=now + timedelta(days=10))
                case.announced_at = now if announced else None
                case.escalated_at = now if escalated else None
                cases[label] = case
            await tx.cases.claim(cases["claimed"], people["Tom"].id, now)
            ids = {label: case.id for label, case in cases.items()}
        await upgrade(store_url)
        names = {p.id: name for name, p in people.items()}
        async with store.tx() as tx:
            told = {}
            for label, case_id in ids.items():
                case = await tx.cases.by_id(case_id)
                assert case is not None
                told[label] = sorted(names[c] for c in await tx.cases.announced_to(case))
        assert told == {"anyone": ["Ann", "Sara", "Tom"], "chosen": ["Ann"],
                        "chosen escalated": ["Ann", "Sara", "Tom"], "unannounced": [],
                        "claimed": []}
    finally:
        await store.close()


async def test_who_was_told_is_kept_once_and_goes_with_the_case(store_url: str) -> None:
    """Told twice (an urgent word, then an escalation) is recorded once, on
    both backends; erasing the case takes the record with it."""
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    await upgrade(store_url)
    store = Store.open(store_url, generate_master_key())
    try:
        async with store.tx() as tx:
            ann = await tx.confidants.add("Ann", bio="", languages=["en"], attested_by="t",
                                          now=now)
            tom = await tx.confidants.add("Tom", bio="", languages=["en"], attested_by="t",
                                          now=now)
            contact = await tx.contacts.create("memory", "emp-1", "chat", "en", now)
            case = await tx.cases.create(contact, channel="memory", language="en",
                                         chosen_confidant_id=None, now=now,
                                         deadline=now + timedelta(days=10))
            await tx.cases.record_announced(case, [ann.id])
            await tx.cases.record_announced(case, [ann.id, tom.id, tom.id])
            await tx.cases.record_announced(case, [])
            case_id = case.id
        async with store.tx() as tx:
            case = await tx.cases.by_id(case_id)
            assert case is not None
            assert sorted(await tx.cases.announced_to(case)) == sorted([ann.id, tom.id])
            await tx.cases.erase(case, now)
        engine = create_engine(store_url)
        try:
            async with engine.connect() as conn:
                left = await conn.scalar(text("SELECT count(*) FROM case_announcements"))
        finally:
            await engine.dispose()
        assert left == 0
    finally:
        await store.close()


async def _table_kinds(url: str) -> dict[str, bool]:
    """Whether each table of the SQLite database at ``url`` has a rowid."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            def read(sync: Connection) -> dict[str, bool]:
                found = inspect(sync)
                return {name: found.get_table_options(name).get("sqlite_with_rowid", True)
                        for name in found.get_table_names()}
            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def _downgrade(url: str, revision: str) -> None:
    from alembic import command

    from store.migrate import alembic_config

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:

            def down(sync: Connection) -> None:
                config = alembic_config()
                config.attributes["connection"] = sync
                command.downgrade(config, revision)

            await conn.run_sync(down)
    finally:
        await engine.dispose()


async def test_table_kinds_on_sqlite_are_those_of_the_models(tmp_path: Path) -> None:
    """`compare_metadata` does not look at ``WITHOUT ROWID``: this does."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'kinds.db'}"
    await upgrade(url)
    declared = {name: table.dialect_options["sqlite"]["with_rowid"]
                for name, table in Base.metadata.tables.items()}
    kinds = await _table_kinds(url)
    assert {name: kinds[name] for name in declared} == declared
    assert not declared["handled_events"] and not declared["message_links"]


async def test_events_links_and_outbox_rows_survive_0006(store_url: str) -> None:
    """A store at 0005 with a handled event, a reply link and a pending
    message: after the upgrade (and back) the event is still known as
    handled, a reply still finds its case and the message still goes out."""
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    to = ChannelAddress(ChannelName("memory"), "conf-sara")
    await upgrade(store_url, "0005")
    store = Store.open(store_url, generate_master_key())
    try:
        async with store.tx() as tx:
            assert await tx.events.claim("memory", "event-1", now)
            contact = await tx.contacts.create("memory", "emp-1", "chat", "en", now)
            case = await tx.cases.create(contact, channel="memory", language="en",
                                         chosen_confidant_id=None, now=now,
                                         deadline=now + timedelta(days=10))
            await tx.links.record("memory", "conf-sara", "m-41", case.id)
            await tx.outbox.enqueue(Outbound(to=to, text="Still here?"), case.data_key_id,
                                    case.id, now)
            case_id = case.id

        async def still_there() -> None:
            async with store.tx() as tx:
                assert not await tx.events.claim("memory", "event-1", now)
                assert await tx.links.case_for("memory", "conf-sara", "m-41") == case_id
                (due,) = await tx.outbox.due(now)
                out = await tx.outbox.load(due.seq)
                assert out is not None and out.text == "Still here?" and out.to == to

        sqlite = store_url.startswith("sqlite")
        await upgrade(store_url)
        await still_there()
        if sqlite:
            kinds = await _table_kinds(store_url)
            assert not kinds["handled_events"] and not kinds["message_links"]
        await _downgrade(store_url, "0005")
        await still_there()
        if sqlite:
            kinds = await _table_kinds(store_url)
            assert kinds["handled_events"] and kinds["message_links"]
    finally:
        await store.close()
