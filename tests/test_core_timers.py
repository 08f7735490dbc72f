"""Timed duties with a settable clock (no sleeping): escalation, the 10-day
deadline reminder, idle close and erasure after the retention period, each
also across a restart (a new Core on the same database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from domain.messages import OutboundKind
from handlers.context import CoreSettings
from store.crypto import load_master_key
from store.models import CaseStatistic, DataKey
from store.store import Store
from tests.support.memory_channel import (
    FakeClock,
    Harness,
    Person,
    make_harness,
    open_case,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


class Restartable:
    """A harness that can be thrown away and rebuilt on the same database and
    key file, as a process restart would."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url = f"sqlite+aiosqlite:///{tmp / 'timers.db'}"
        self.h: Harness | None = None

    async def start(self) -> Harness:
        self.h = await make_harness(self.url, self.tmp)
        return self.h

    async def restart(self) -> Harness:
        assert self.h is not None
        clock, settings = self.h.clock, self.h.core.settings
        await self.h.store.close()
        store = Store.open(self.url, load_master_key(self.tmp / "master.key"))
        self.h = Harness(store, FakeClock(clock.now()), settings)
        return self.h

    async def close(self) -> None:
        if self.h is not None:
            await self.h.store.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Restartable]:
    r = Restartable(tmp_path)
    await r.start()
    yield r
    await r.close()




def again(h: Harness, person: Person) -> Person:
    """The same person, seen from a restarted harness."""
    return h.person(person.id, person.language)


@pytest.mark.parametrize("restart", [False, True])
async def test_escalation_after_escalation_hours(rig: Restartable, restart: bool) -> None:
    h = rig.h
    assert h is not None
    sara = await h.add_confidant("Sara", "conf-sara")
    ann = await h.add_confidant("Ann", "conf-ann", always_on_duty=False)
    emp = h.person("emp-1")
    code = await open_case(emp)
    await emp.say("words only for whoever claims")
    assert not ann.inbox
    hours = h.core.settings.escalation_hours
    h.clock.current += hours * HOUR - MINUTE
    await h.tick()
    assert len(sara.inbox) == 1
    if restart:
        h = await rig.restart()
        sara, ann = again(h, sara), again(h, ann)
    h.clock.current += MINUTE
    await h.tick()
    for c in (sara, ann):
        assert c.inbox and f"Still waiting: case {code}" in c.last
        assert all("words only" not in t for t in c.texts)
    await h.tick()
    assert len(ann.inbox) == 1  # once
    async with h.store.tx() as tx:
        case = await tx.cases.by_code(code)
    assert case is not None and case.escalated_at == h.clock.now()


@pytest.mark.parametrize("restart", [False, True])
async def test_deadline_reminder_two_days_before(rig: Restartable, restart: bool) -> None:
    h = rig.h
    assert h is not None
    sara = await h.add_confidant("Sara", "conf-sara")
    emp = h.person("emp-1")
    code = await open_case(emp, sara)
    opened = h.clock.now()
    if restart:
        h = await rig.restart()
        sara = again(h, sara)
    h.clock.current = opened + 8 * DAY - MINUTE
    await h.tick()
    assert not any("Reminder" in t for t in sara.texts)
    h.clock.current = opened + 8 * DAY
    await h.tick()
    reminder = sara.inbox[-1]
    assert f"Reminder: case {code} must be heard by" in reminder.text
    assert h.core.tr.when("en", opened + 10 * DAY, "long") in reminder.text
    assert reminder.kind is OutboundKind.URGENT and reminder.case == code
    await h.tick()
    assert sum("Reminder" in t for t in sara.texts) == 1


async def test_no_deadline_reminder_once_heard(rig: Restartable) -> None:
    h = rig.h
    assert h is not None
    sara = await h.add_confidant("Sara", "conf-sara")
    emp = h.person("emp-1")
    await open_case(emp, sara)
    await sara.say("/heard")
    h.clock.current += 9 * DAY
    await h.tick()
    assert not any("Reminder" in t for t in sara.texts)


@pytest.mark.parametrize("restart", [False, True])
async def test_idle_close_after_idle_close_days(rig: Restartable, restart: bool) -> None:
    h = rig.h
    assert h is not None
    sara = await h.add_confidant("Sara", "conf-sara")
    emp = h.person("emp-1")
    code = await open_case(emp, sara)
    days = h.core.settings.idle_close_days
    h.clock.current += 10 * DAY
    await emp.say("still thinking")  # activity moves the idle clock
    last = h.clock.now()
    if restart:
        h = await rig.restart()
        sara, emp = again(h, sara), again(h, emp)
    h.clock.current = last + days * DAY - MINUTE
    await h.tick()
    async with h.store.tx() as tx:
        case = await tx.cases.by_code(code)
    assert case is not None and case.status == "open"
    h.clock.current = last + days * DAY + MINUTE
    await h.tick()
    async with h.store.tx() as tx:
        case = await tx.cases.by_code(code)
    assert case is not None and case.status == "closed"
    assert f"Case {code} was closed after {days} days" in sara.last
    assert sara.inbox[-1].control == "case-close"
    assert f"closed after {days} days" in emp.last


@pytest.mark.parametrize("restart", [False, True])
async def test_erasure_after_retention_days(rig: Restartable, restart: bool) -> None:
    h = rig.h
    assert h is not None
    sara = await h.add_confidant("Sara", "conf-sara")
    emp = h.person("emp-1")
    code = await open_case(emp, sara)
    await emp.say("something sensitive")
    await sara.say("/note private")
    await sara.say("/close conflict")
    closed = h.clock.now()
    async with h.store.tx() as tx:
        case = await tx.cases.by_code(code)
    assert case is not None
    key_id = case.data_key_id
    if restart:
        h = await rig.restart()
    days = h.core.settings.retention_days
    h.clock.current = closed + days * DAY - MINUTE
    await h.tick()
    async with h.store.tx() as tx:
        assert await tx.cases.by_code(code) is not None
    h.clock.current = closed + days * DAY + MINUTE
    await h.tick()
    async with h.store.tx() as tx:
        assert await tx.cases.by_code(code) is None
        key = await tx.session.get(DataKey, key_id)
        assert key is not None and key.wrapped is None
        stats = (await tx.session.scalars(select(CaseStatistic))).all()
        assert [(s.theme, s.month) for s in stats] == [("conflict", closed.strftime("%Y-%m"))]


async def test_waiting_case_announced_after_restart(rig: Restartable) -> None:
    """A case opened off duty is announced by the next process once a shift starts."""
    from datetime import time

    h = rig.h
    assert h is not None
    sara = await h.add_confidant("Sara", "conf-sara", always_on_duty=False)
    local = h.clock.now().astimezone(h.core.settings.tz)
    async with h.store.tx() as tx:
        c = await tx.confidants.by_name("Sara")
        assert c is not None
        await tx.rota.add_shift(c, local.weekday(), time(local.hour + 2, 0), time(23, 0))
    emp = h.person("emp-1")
    code = await open_case(emp)
    assert not sara.inbox
    h = await rig.restart()
    sara = again(h, sara)
    h.clock.current += 2 * HOUR
    await h.tick()
    assert f"New case {code}" in sara.last


async def test_settings_are_honoured(tmp_path: Path) -> None:
    h = await make_harness(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", tmp_path,
                           escalation_hours=1, idle_close_days=2, retention_days=3)
    try:
        assert isinstance(h.core.settings, CoreSettings)
        sara = await h.add_confidant("Sara", "conf-sara")
        await h.add_confidant("Tom", "conf-tom")
        e1, e2 = h.person("emp-1"), h.person("emp-2")
        waiting = await open_case(e1)
        claimed = await open_case(e2, sara)
        h.clock.current += HOUR
        await h.tick()
        assert f"Still waiting: case {waiting}" in sara.last
        h.clock.current += 2 * DAY
        await h.tick()
        async with h.store.tx() as tx:
            for code in (waiting, claimed):
                case = await tx.cases.by_code(code)
                assert case is not None and case.status == "closed"
        h.clock.current += 3 * DAY + MINUTE
        await h.tick()
        async with h.store.tx() as tx:
            assert await tx.cases.by_code(waiting) is None
            assert await tx.cases.by_code(claimed) is None
    finally:
        await h.store.close()
