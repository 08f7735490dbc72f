"""The hot statements that skip SQLAlchemy (`store.driver`) keep the promise.

On SQLite the event claim, the outbox insert, the sent mark and the reply
link are plain SQL on the session's own connection.  These tests check what
a person would notice if that went wrong: a message sent before it was
committed (lost in a crash), a row the rest of the store reads differently
(a message never due, never marked), or a half-done event after a failure.
Every test runs on SQLite and on PostgreSQL (where the statements stay
SQLAlchemy Core), so both paths give the same answers.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from domain.messages import ChannelAddress, Inbound, Outbound, SendResult
from store.crypto import create_key_file, load_master_key
from store.db import create_engine
from store.migrate import upgrade
from store.models import Case, Confidant, Contact, HandledEvent, MessageLink, OutboxMessage
from store.store import Store
from tests.support.memory_channel import MEMORY, make_harness, open_case

NOW = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
TO = ChannelAddress(MEMORY, "conf-sara")


async def _store(url: str, tmp_path: Path) -> Store:
    key = tmp_path / "master.key"
    create_key_file(key)
    await upgrade(url)
    return Store.open(url, load_master_key(key))


async def test_rows_written_plainly_read_back_as_the_orm_writes_them(
        store_url: str, tmp_path: Path) -> None:
    store = await _store(store_url, tmp_path)
    try:
        async with store.tx() as tx:
            assert await tx.events.claim("memory", "ev-1", NOW)
            key_id = await tx.system_key()
            ref = await tx.outbox.enqueue(Outbound(to=TO, text="first"), key_id, None, NOW)
            later = await tx.outbox.enqueue(Outbound(to=TO, text="second"), key_id, None, NOW,
                                            not_before=NOW + timedelta(hours=1))
            rows, added = await tx.outbox.fresh_rows(NOW)
            # An ORM-written event beside the plain one: same stored form.
            tx.session.add(HandledEvent(channel="memory", event_key=b"k" * 32, handled_at=NOW))
        assert added == 2 and [out.text for _, out, _ in rows] == ["first"]
        assert rows[0][2] == 0  # nothing older waits for this recipient

        async with store.tx() as tx:
            assert not await tx.events.claim("memory", "ev-1", NOW + timedelta(seconds=1))
            events = (await tx.session.scalars(select(HandledEvent)
                                               .order_by(HandledEvent.event_key))).all()
            assert {e.handled_at for e in events} == {NOW}
            due = await tx.outbox.due(NOW)
            assert [d.ref for d in due] == [ref]  # the held-back one is not due yet
            assert await tx.outbox.next_due_at(exclude={due[0].seq}) == NOW + timedelta(hours=1)
            loaded = await tx.outbox.load(due[0].seq)
            assert loaded is not None and loaded.text == "first" and loaded.to == TO
            await tx.outbox.mark_sent(due[0].seq, NOW + timedelta(seconds=2))
        async with store.tx() as tx:
            first = await tx.session.scalar(select(OutboxMessage)
                                            .where(OutboxMessage.ref == ref))
            second = await tx.session.scalar(select(OutboxMessage)
                                             .where(OutboxMessage.ref == later))
            assert first is not None and second is not None
            assert (first.status, first.sent_at, first.payload_enc, first.recipient_enc) == (
                "sent", NOW + timedelta(seconds=2), None, None)
            assert (second.status, second.created_at, second.next_attempt_at, second.attempts) \
                == ("pending", NOW, NOW + timedelta(hours=1), 0)
            assert await tx.outbox.due(NOW + timedelta(hours=2)) != []
        if store.engine.dialect.name == "sqlite":
            async with store.engine.connect() as conn:
                stored = (await conn.execute(text(
                    "SELECT DISTINCT handled_at FROM handled_events"))).scalars().all()
            assert len(stored) == 1, f"plain and ORM rows store times differently: {stored}"
    finally:
        await store.close()


async def test_reply_links_written_plainly_route_the_reply(store_url: str,
                                                             tmp_path: Path) -> None:
    h = await make_harness(store_url, tmp_path)
    try:
        sara = await h.add_confidant("Sara", "conf-sara")
        emp = h.person("emp-1")
        code = await open_case(emp, sara)
        await emp.say("Is anyone there?")
        relayed = [o for o in sara.inbox if "Is anyone there?" in o.text][-1]
        async with h.store.tx() as tx:
            links = (await tx.session.scalars(select(MessageLink))).all()
        assert links and all(link.created_at.tzinfo is not None for link in links)
        await sara.say("Yes, I am here.", reply_to=sara.message_id(relayed))
        assert any("Yes, I am here." in t for t in emp.texts)
        assert code
    finally:
        await h.store.close()


async def test_plain_statements_see_what_the_session_added(store_url: str,
                                                            tmp_path: Path) -> None:
    """A row the ORM added in the same transaction (a new key) exists before
    a plain statement refers to it: no foreign key error, one commit."""
    store = await _store(store_url, tmp_path)
    try:
        async with store.tx() as tx:
            key_id = await tx.vault.new_key("case")
            await tx.outbox.enqueue(Outbound(to=TO, text="sealed with a new key"), key_id,
                                    None, NOW)
        async with store.tx() as tx:
            assert [m.data_key_id for m in (await tx.session.scalars(
                select(OutboxMessage))).all()] == [key_id]
    finally:
        await store.close()


async def test_a_failed_transaction_leaves_no_plain_row(store_url: str, tmp_path: Path) -> None:
    store = await _store(store_url, tmp_path)
    try:
        with pytest.raises(RuntimeError):
            async with store.tx() as tx:
                assert await tx.events.claim("memory", "ev-lost", NOW)
                await tx.outbox.enqueue(Outbound(to=TO, text="never"), await tx.system_key(),
                                        None, NOW)
                raise RuntimeError("the step failed")
        async with store.tx() as tx:
            assert await tx.outbox.pending_count() == 0
            assert await tx.events.claim("memory", "ev-lost", NOW)  # not seen: handled again
    finally:
        await store.close()


class CommittedCheck:
    """A channel that, at the moment of every send, looks at the database
    through a connection of its own (which sees only committed data) and
    notes whether the message's outbox row was already there."""

    name = MEMORY
    numbered_menus = False
    idempotent_sends = True

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.seen: list[tuple[str, str | None]] = []
        self.sent = asyncio.Event()

    async def start(self, on_inbound: object) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        async with self.engine.connect() as conn:
            status = (await conn.execute(text("SELECT status FROM outbox WHERE ref = :ref"),
                                         {"ref": idempotency_key})).scalar()
        self.seen.append((out.text, status))
        self.sent.set()
        return SendResult(str(len(self.seen)))


async def test_nothing_is_sent_before_its_row_is_committed(store_url: str,
                                                            tmp_path: Path) -> None:
    """Through the fast lane (the worker running, as in production) and
    through a delivery pass: every send finds its row committed, pending."""
    h = await make_harness(store_url, tmp_path)
    check = CommittedCheck(store_url)
    try:
        sara = await h.add_confidant("Sara", "conf-sara")
        emp = h.person("emp-1")
        await open_case(emp, sara)
        h.worker.channels = {name: check for name in h.worker.channels}
        h.core.lane = h.worker  # as the app attaches it while delivery runs
        worker = asyncio.create_task(h.worker.run())
        try:
            for i in range(5):
                check.sent.clear()
                await h.core.handle(Inbound(MEMORY, "emp-1", "emp-1", f"fast-{i}",
                                            text=f"fast lane {i}"))
                await asyncio.wait_for(check.sent.wait(), 10)
        finally:
            h.worker.stop()
            await worker
            h.core.lane = None
        await h.core.handle(Inbound(MEMORY, "emp-1", "emp-1", "pass-1", text="by a pass"))
        await h.worker.drain()
        relayed = [(t, s) for t, s in check.seen if "fast lane" in t or "by a pass" in t]
        assert len(relayed) == 6
        assert all(status == "pending" for _, status in relayed), relayed
    finally:
        await check.engine.dispose()
        await h.store.close()


async def test_the_sender_lookup_loads_what_the_orm_loads(store_url: str,
                                                           tmp_path: Path) -> None:
    """On SQLite the contact, case and confidant come from plain SQL
    (`store.driver.Rows`): every attribute must equal, in value and type,
    what SQLAlchemy loads; a change to them must be written like any other;
    an object the session already holds must stay the one it holds."""
    h = await make_harness(store_url, tmp_path)
    try:
        sara = await h.add_confidant("Sara", "conf-sara")
        emp = h.person("emp-1")
        await open_case(emp, sara)
        lonely = h.person("emp-2")
        await lonely.say("/start")  # a contact without a case
        for person in (emp, lonely):
            async with h.store.tx() as tx:
                found = await tx.contacts.find(person.channel, person.id)
                assert found is not None
                case = await tx.cases.by_id(found.active_case_id) if found.active_case_id else None
                conf = (await tx.confidants.by_id(case.confidant_id)
                        if case is not None and case.confidant_id else None)
                plain = [found, case, conf]
            async with h.store.tx() as tx:
                row = (await tx.session.execute(
                    select(Contact, Case, Confidant)
                    .outerjoin(Case, Case.id == Contact.active_case_id)
                    .outerjoin(Confidant, Confidant.id == Case.confidant_id)
                    .where(Contact.id == found.id))).one()
            for got, orm in zip(plain, row, strict=True):
                assert (got is None) == (orm is None)
                if orm is None:
                    continue
                for col in type(orm).__table__.columns:
                    a, b = getattr(got, col.key), getattr(orm, col.key)
                    assert a == b and type(a) is type(b), col.key
        assert plain[1] is None and emp.id != lonely.id

        async with h.store.tx() as tx:
            contact = await tx.contacts.find(emp.channel, emp.id)
            assert contact is not None and contact.active_case_id
            case = await tx.cases.by_id(contact.active_case_id)
            assert case is not None
            case.theme = "stress"  # changed, then looked up again in the same unit
            again = await tx.contacts.find(emp.channel, emp.id)
            assert again is contact
            assert await tx.cases.by_id(contact.active_case_id) is case
            assert case.theme == "stress"
            contact.language = "fr"
        async with h.store.tx() as tx:
            stored = await tx.session.get(Contact, contact.id)
            stored_case = await tx.session.get(Case, case.id)
            assert stored is not None and stored.language == "fr"
            assert stored_case is not None and stored_case.theme == "stress"
    finally:
        await h.store.close()
