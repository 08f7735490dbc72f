"""Events that arrive together are recorded together (`bot.intake.Intake.handle`).

A ``getUpdates`` answer, many web tabs or a webhook burst hand the core
several events at once; they are recorded in one transaction, in arrival
order.  What a person would notice if that went wrong: a message lost or
out of order, a refusal that spoils other people's messages, an event
recorded after an earlier one of the same person failed, or a core that
hangs after a cancelled event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

import bot.intake
from domain.messages import Inbound
from handlers.i18n import Translator
from tests.support.memory_channel import Harness, Person, make_harness, open_case

TR = Translator("nl", ("nl", "fr", "en"))


@pytest.fixture
async def harness(store_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """The core on SQLite and on PostgreSQL (groups commit on both)."""
    h = await make_harness(store_url, tmp_path)
    yield h
    await h.store.close()


def inbound(person: Person, text: str) -> Inbound:
    return Inbound(person.channel, person.id, person.id, f"{person.id}:{next(person.events)}",
                   text=text, language_hint=person.language)


def said(confidant: Person) -> list[str]:
    """Which of the employee's words reached the confidant, in order."""
    return [w for t in confidant.texts for w in ("before", "boom", "after") if w in t]


@contextmanager
def commits(h: Harness) -> Iterator[list[int]]:
    """Counts the store's commits while the block runs."""
    seen = [0]

    def committed(conn: Any) -> None:
        seen[0] += 1

    engine = h.store.engine.sync_engine
    event.listen(engine, "commit", committed)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", committed)


async def test_messages_arriving_together_arrive_all_in_order_with_fewer_commits(
        harness: Harness) -> None:
    h = harness
    ann = await h.add_confidant("Ann", "conf-ann")
    emp = h.person("emp-1")
    await open_case(emp, ann)
    ann.clear()
    lines = [f"line {i:02d} of what happened" for i in range(12)]
    with commits(h) as seen:
        await asyncio.gather(*(h.core.handle(inbound(emp, line)) for line in lines))
        events_committed = seen[0]
    await h.worker.drain()
    relayed = [t for t in ann.texts if "of what happened" in t]
    assert len(relayed) == 12
    assert [next(line for line in lines if line in t) for t in relayed] == lines
    assert events_committed <= 3, events_committed  # 12 events, one or two groups


async def test_a_refusal_in_a_group_spoils_nobody_elses_message(harness: Harness) -> None:
    h = harness
    ann = await h.add_confidant("Ann", "conf-ann")
    sara = await h.add_confidant("Sara", "conf-sara")
    emp = h.person("emp-1")
    code = await open_case(emp, ann)
    ann.clear()
    sara.clear()
    await asyncio.gather(
        h.core.handle(inbound(emp, "first words")),
        h.core.handle(inbound(sara, f"/case {code}")),  # not hers: refused
        h.core.handle(inbound(emp, "second words")),
    )
    await h.worker.drain()
    assert [w for t in ann.texts for w in ("first words", "second words") if w in t] == [
        "first words", "second words"]
    assert sara.texts == [TR.t("en", "case.not_yours", code=code)]


async def test_after_a_failed_event_that_persons_later_events_wait_others_do_not(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """An event that cannot be recorded fails to its channel (which delivers
    it again); the same person's later events of the group are not recorded
    before it, other people's are."""
    h = harness
    ann = await h.add_confidant("Ann", "conf-ann")
    emp = h.person("emp-1")
    await open_case(emp, ann)
    other = h.person("emp-2")
    await other.say("/start")
    ann.clear()
    other.clear()
    dispatch = bot.intake.router.dispatch

    async def failing(ctx: Any) -> None:
        if ctx.inbound.text == "boom":
            raise RuntimeError("the step broke")
        await dispatch(ctx)

    monkeypatch.setattr(bot.intake.router, "dispatch", failing)
    results = await asyncio.gather(
        h.core.handle(inbound(emp, "before")),
        h.core.handle(inbound(emp, "boom")),
        h.core.handle(inbound(other, "hello")),
        h.core.handle(inbound(emp, "after")),
        return_exceptions=True)
    await h.worker.drain()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], RuntimeError) and isinstance(results[3], RuntimeError)
    assert said(ann) == ["before"]
    assert other.texts == [TR.t("en", "message.no_case")]

    monkeypatch.setattr(bot.intake.router, "dispatch", dispatch)
    await h.core.handle(inbound(emp, "boom"))  # delivered again: now it goes through
    await h.core.handle(inbound(emp, "after"))
    await h.worker.drain()
    assert said(ann) == ["before", "boom", "after"]


async def test_cancelled_events_leave_the_core_serving(harness: Harness) -> None:
    """A cancelled event (a channel stopping) is not recorded or is recorded
    whole; either way the events after it are recorded and nothing hangs."""
    h = harness
    ann = await h.add_confidant("Ann", "conf-ann")
    emp = h.person("emp-1")
    await open_case(emp, ann)
    ann.clear()
    for cancel_at in range(5):
        tasks = [asyncio.create_task(h.core.handle(inbound(emp, f"round {cancel_at} line {i}")))
                 for i in range(5)]
        for _ in range(cancel_at % 3):
            await asyncio.sleep(0)
        tasks[cancel_at].cancel()
        _, pending = await asyncio.wait(tasks, timeout=20)
        assert not pending, "an event hung after another was cancelled"
        for i, task in enumerate(tasks):
            if i != cancel_at:
                assert task.exception() is None or isinstance(
                    task.exception(), bot.intake.GroupAbandoned)
    await asyncio.wait_for(h.core.handle(inbound(emp, "still here")), 20)
    await h.worker.drain()
    assert any("still here" in t for t in ann.texts)
