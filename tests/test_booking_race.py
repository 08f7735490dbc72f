"""Many people booking the same few slots at once, on SQLite and PostgreSQL:
the unique indexes and the overlap check must let exactly one win each slot."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from store.appointments import SlotTaken
from store.crypto import generate_master_key
from store.db import is_transient
from store.migrate import upgrade
from store.models import Appointment
from store.store import Store

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SLOTS = [NOW + timedelta(days=2, hours=i) for i in range(10)]
BUFFER = timedelta(minutes=15)


async def _attempt(store: Store, case_id: str, confidant_id: str, room_id: str,
                   start: datetime) -> bool:
    """One booking as the core would run it: its own transaction, retried
    while the database is busy (as `Core.handle` does)."""
    delay = 0.01
    for _ in range(200):
        try:
            async with store.tx() as tx:
                case = await tx.cases.by_id(case_id)
                assert case is not None
                await tx.appointments.book(case, confidant_id=confidant_id, room_id=room_id,
                                           starts_at=start,
                                           ends_at=start + timedelta(minutes=45),
                                           buffer=BUFFER, now=NOW)
            return True
        except SlotTaken:
            return False
        except Exception as exc:
            if not is_transient(exc):
                raise
            await asyncio.sleep(delay * random.random())
            delay = min(delay * 2, 0.3)
    raise AssertionError("database stayed busy")


async def test_200_attempts_for_10_slots(store_url: str) -> None:
    await upgrade(store_url)
    store = Store.open(store_url, generate_master_key())
    try:
        async with store.tx() as tx:
            sara = await tx.confidants.add("Sara", bio="", languages=["en"], attested_by="t",
                                           now=NOW)
            tom = await tx.confidants.add("Tom", bio="", languages=["en"], attested_by="t",
                                          now=NOW)
            rooms = [(await tx.rota.add_room(f"Room {i}")).id for i in range(2)]
            case_ids = []
            for i in range(20):
                contact = await tx.contacts.create("memory", f"emp-{i}", f"emp-{i}", "en", NOW)
                case = await tx.cases.create(contact, channel="memory", language="en",
                                             chosen_confidant_id=None, now=NOW,
                                             deadline=NOW + timedelta(days=10))
                case_ids.append(case.id)
            sara_id, tom_id = sara.id, tom.id
        rng = random.Random(6)
        attempts = []
        for n in range(200):
            index = n % 10
            if index < 5:
                # one confidant, any room: the (confidant, start) index decides
                attempts.append((case_ids[n % 20], sara_id, rng.choice(rooms), SLOTS[index]))
            else:
                # one room, any confidant: the (room, start) index decides
                attempts.append((case_ids[n % 20], rng.choice([sara_id, tom_id]), rooms[0],
                                 SLOTS[index]))
        rng.shuffle(attempts)
        results = await asyncio.gather(*(_attempt(store, *a) for a in attempts))
        assert sum(results) == 10
        async with store.tx() as tx:
            booked = (await tx.session.scalars(
                select(Appointment).where(Appointment.status == "booked"))).all()
        assert len(booked) == 10
        assert len({(a.room_id, a.starts_at) for a in booked}) == 10
        assert Counter(a.starts_at for a in booked) == Counter(SLOTS)
        sara_talks = sorted(a.starts_at for a in booked if a.confidant_id == sara_id)
        assert len(set(sara_talks)) == len(sara_talks)
    finally:
        await store.close()


async def test_overlap_and_move_keep_the_old_booking(store_url: str) -> None:
    await upgrade(store_url)
    store = Store.open(store_url, generate_master_key())
    try:
        async with store.tx() as tx:
            sara = await tx.confidants.add("Sara", bio="", languages=["en"], attested_by="t",
                                           now=NOW)
            r1 = await tx.rota.add_room("Room 1")
            r2 = await tx.rota.add_room("Room 2")
            contact = await tx.contacts.create("memory", "emp", "emp", "en", NOW)
            case = await tx.cases.create(contact, channel="memory", language="en",
                                         chosen_confidant_id=None, now=NOW,
                                         deadline=NOW + timedelta(days=10))
            start = SLOTS[0]
            first = await tx.appointments.book(case, confidant_id=sara.id, room_id=r1.id,
                                               starts_at=start,
                                               ends_at=start + timedelta(minutes=45),
                                               buffer=BUFFER, now=NOW)
            # 50 minutes later: inside the confidant's 15-minute buffer, other room
            try:
                await tx.appointments.book(case, confidant_id=sara.id, room_id=r2.id,
                                           starts_at=start + timedelta(minutes=50),
                                           ends_at=start + timedelta(minutes=95),
                                           buffer=BUFFER, now=NOW)
                raise AssertionError("overlap accepted")
            except SlotTaken:
                pass
            second = await tx.appointments.book(case, confidant_id=sara.id, room_id=r2.id,
                                                starts_at=start + timedelta(hours=2),
                                                ends_at=start + timedelta(minutes=165),
                                                buffer=BUFFER, now=NOW)
            # moving the first onto the second's time fails and leaves the first booked
            try:
                await tx.appointments.book(case, confidant_id=sara.id, room_id=r1.id,
                                           starts_at=second.starts_at,
                                           ends_at=second.ends_at, buffer=BUFFER, now=NOW,
                                           replacing=first)
                raise AssertionError("double booking accepted")
            except SlotTaken:
                pass
            assert first.status == "booked"
            moved = await tx.appointments.book(case, confidant_id=sara.id, room_id=r1.id,
                                               starts_at=start + timedelta(hours=4),
                                               ends_at=start + timedelta(minutes=285),
                                               buffer=BUFFER, now=NOW, replacing=first)
            assert first.status == "cancelled" and moved.status == "booked"
        async with store.tx() as tx:
            rows = (await tx.session.scalars(select(Appointment.status))).all()
            assert sorted(rows) == ["booked", "booked", "cancelled"]
    finally:
        await store.close()
