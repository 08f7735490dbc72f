"""Roles are decided on the server: an employee typing confidant commands or
pressing someone else's (or an invented) button, and a confidant acting on
a case that is not theirs, get a polite refusal and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from domain.messages import Inbound
from store.models import Case, CaseMessage, CaseStatistic, Confidant, Consent, Declaration, Note
from tests.support.memory_channel import Harness, Person, code_of, open_case

STATE_TABLES = (Case, Consent, Note, CaseMessage, CaseStatistic, Declaration, Confidant)


async def snapshot(h: Harness) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a refusal must leave untouched, column by column."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with h.store.tx() as tx:
        for model in STATE_TABLES:
            cols = [c.key for c in model.__table__.columns]  # type: ignore[attr-defined]
            rows = (await tx.session.scalars(select(model))).all()
            out[model.__tablename__] = sorted(  # type: ignore[attr-defined]
                tuple(repr(getattr(r, c)) for c in cols) for r in rows)
    return out




@pytest.fixture
async def world(harness: Harness) -> tuple[Harness, Person, Person, Person, Person, str, str]:
    """Sara has Anna's case; Bob's case waits; Tom has nothing."""
    sara = await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom")
    anna, bob = harness.person("emp-anna"), harness.person("emp-bob")
    c_anna = await open_case(anna, sara)
    c_bob = await open_case(bob)
    await sara.say(f"/consent {c_anna} advisor")
    return harness, sara, tom, anna, bob, c_anna, c_bob


@pytest.mark.parametrize("command", [
    "/claim {bob}", "/claim {anna}", "/close bullying", "/close {anna} other", "/heard {anna}",
    "/note {anna} forged", "/consent {anna} supervisor", "/handover Tom", "/case {anna}",
    "/cases", "/duty", "/offer", "/admin",
])
async def test_employee_cannot_use_confidant_commands(world: Any, command: str) -> None:
    h, sara, _tom, _anna, bob, c_anna, c_bob = world
    before = await snapshot(h)
    sara.clear()
    bob.clear()
    await bob.say(command.format(anna=c_anna, bob=c_bob))
    assert "Nothing was changed" in bob.last
    assert await snapshot(h) == before
    assert not sara.inbox
    assert all(c_anna not in t for t in bob.texts)


async def test_employee_cannot_press_another_persons_button(world: Any) -> None:
    h, sara, _tom, anna, bob, _c_anna, c_bob = world
    consent_menu = next(o for o in reversed(anna.inbox) if o.menu and "agree" in o.text)
    yes = consent_menu.menu.rows[0][0].token
    claim = next(o for o in reversed(sara.inbox) if o.menu and c_bob in o.text)
    before = await snapshot(h)
    for token in (yes, claim.menu.rows[0][0].token, "claim:" + c_bob, "x" * 16, "", "A" * 200):
        bob.clear()
        await bob.press_token(token)
        assert "no longer valid. Nothing was changed" in bob.last
    assert await snapshot(h) == before
    # the confidant cannot answer the employee's consent question either
    sara.clear()
    await sara.press_token(yes)
    assert "no longer valid" in sara.last
    assert await snapshot(h) == before
    # while the rightful owner can
    await anna.press_token(yes)
    async with h.store.tx() as tx:
        [consent] = (await tx.session.scalars(select(Consent))).all()
    assert consent.agreed is True


@pytest.mark.parametrize("command", [
    "/close {anna} other", "/heard {anna}", "/note {anna} not mine", "/consent {anna} reconcile",
    "/handover {anna} Tom", "/case {anna}", "/notes {anna}", "/offer {anna}",
    "/confirmation {anna}", "/close {bob} other", "/heard {bob}",
])
async def test_confidant_cannot_act_on_a_case_not_assigned(world: Any, command: str) -> None:
    h, _sara, tom, anna, _bob, c_anna, c_bob = world
    before = await snapshot(h)
    anna.clear()
    await tom.say(command.format(anna=c_anna, bob=c_bob))
    assert "is not assigned to you. Nothing was changed" in tom.last
    assert await snapshot(h) == before
    assert not anna.inbox


async def test_confidant_words_cannot_reach_another_case(world: Any) -> None:
    h, sara, tom, anna, _bob, c_anna, _c_bob = world
    anna.clear()
    before = await snapshot(h)
    # a platform context pointing at Sara's case (e.g. a Matrix room) is refused
    await h.core.handle(Inbound(tom.channel, tom.id, tom.id, "tom:hint", text="hello Anna",
                                case_hint=c_anna))
    await h.worker.drain()
    assert "is not assigned to you" in tom.last
    # a reply to one of Sara's relayed messages is resolved in Tom's own chat only
    relayed = next(o for o in reversed(sara.inbox) if o.case == c_anna)
    await tom.say("hello Anna", reply_to=sara.message_id(relayed))
    assert "no open case" in tom.last
    assert not anna.inbox
    assert await snapshot(h) == before


async def test_claim_of_a_case_chosen_for_someone_else_is_refused(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom")
    emp = harness.person("emp-1")
    await emp.say("/talk")
    await emp.press("Sara")
    code = code_of(emp)
    before = await snapshot(harness)
    await tom.say(f"/claim {code}")
    assert "chose another confidant" in tom.last
    assert await snapshot(harness) == before
    assert sara.inbox and not tom.inbox[:-1]


async def test_removed_confidant_is_an_employee_again(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp)
    async with harness.store.tx() as tx:
        c = await tx.confidants.by_name("Sara")
        assert c is not None
        await tx.confidants.remove(c)
    before = await snapshot(harness)
    await sara.say(f"/claim {code}")
    assert "for confidants only" in sara.last
    assert await snapshot(harness) == before


async def test_admin_from_config_is_not_a_confidant(tmp_path: Any) -> None:
    from tests.support.memory_channel import make_harness

    h = await make_harness(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", tmp_path,
                           admins=frozenset({("memory", "admin-1")}))
    try:
        await h.add_confidant("Sara", "conf-sara")
        admin, emp = h.person("admin-1"), h.person("emp-1")
        code = await open_case(emp)
        before = await snapshot(h)
        await admin.say(f"/claim {code}")
        assert "Nothing was changed" in admin.last
        assert await snapshot(h) == before
        # the same words from an employee who is not in the config's admins
        await emp.say("/admin")
        assert "for administrators only" in emp.last
    finally:
        await h.store.close()
