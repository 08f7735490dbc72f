"""Messages that name a case without belonging to it (new-case notices with
their Claim button, "taken by", case lists, refusals) carry the case in
``Outbound.about``, through the real core, store and delivery worker: so a
console history can drop them when the case is erased, while nothing about
where they go changes (no ``case``, no reply routing into that case), and a
copy still waiting for a confidant's shift goes with the erasure."""

from __future__ import annotations

from datetime import UTC, datetime, time

from domain.messages import Outbound
from tests.support.memory_channel import Harness, Person, open_case


def naming(p: Person, code: str) -> list[Outbound]:
    return [o for o in p.inbox if code in o.text]


async def test_notices_that_name_a_case_are_about_it_and_not_of_it(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom")
    emp = harness.person("emp-1")
    code = await open_case(emp)
    [new_case] = naming(tom, code)
    assert new_case.menu is not None and code in new_case.menu.buttons()[0].label
    await emp.say("I don't want to live anymore")  # a crisis word while nobody has claimed
    urgent = tom.inbox[-1]
    await sara.press(f"Claim {code}")
    taken = tom.inbox[-1]
    assert "taken by Sara" in taken.text
    await tom.say(f"/claim {code}")
    refusal = tom.inbox[-1]
    assert "already taken" in refusal.text
    for out in (new_case, urgent, taken, refusal):
        assert code in out.text
        assert out.about == (code,) and out.case is None, out.text


async def test_a_case_list_is_about_every_case_it_names(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    mine = await open_case(harness.person("emp-1"), sara)
    waiting = await open_case(harness.person("emp-2"))
    await sara.say("/cases")
    listing = sara.inbox[-1]
    assert mine in listing.text and waiting in listing.text
    assert set(listing.about) == {mine, waiting} and listing.case is None


async def test_replying_to_a_new_case_notice_routes_as_before(harness: Harness) -> None:
    """The notice is sealed with the case's key, but it is no message of the
    case: a reply to it goes to the current case, as a reply to any notice."""
    sara = await harness.add_confidant("Sara", "conf-sara")
    e1, e2 = harness.person("emp-1"), harness.person("emp-2")
    await open_case(e1, sara)
    other = await open_case(e2)
    [notice] = naming(sara, other)
    await sara.say("still with you", reply_to=sara.message_id(notice))
    assert e1.last == "Sara: still with you"
    assert "still with you" not in " ".join(e2.texts)


async def test_a_notice_waiting_for_a_shift_goes_with_the_erased_case(harness: Harness) -> None:
    """Sara has the new case; Tom is off duty when the employee writes a
    crisis word, so his urgent notice waits for his shift.  The employee
    erases everything first: at the shift Tom is told of the erasure, and no
    notice offers him the gone case to claim."""
    await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom", always_on_duty=False)
    async with harness.store.tx() as tx:
        row = await tx.confidants.by_name("Tom")
        assert row is not None
        await tx.rota.add_shift(row, 3, time(9, 0), time(17, 0))  # Thursdays
    emp = harness.person("emp-1")
    code = await open_case(emp)  # Wednesday 25 November, 11:00 in Brussels
    await emp.say("I don't want to live anymore")
    async with harness.store.tx() as tx:
        assert await tx.outbox.pending_count() == 1  # Tom's, for Thursday
    await emp.say("/forget")
    await emp.press("Yes, erase everything")
    assert tom.inbox == []
    harness.clock.current = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # Thursday 09:00
    await harness.worker.drain()
    assert [o.text for o in naming(tom, code)] == [
        harness.core.tr.t("en", "forget.to_confidant", code=code)]


async def test_colleagues_who_saw_a_claimed_case_are_told_of_its_erasure(
        harness: Harness) -> None:
    """Tom was offered the case and told Sara took it: both lines name the
    code, so when the employee erases everything Tom hears of it too (his
    console drops those lines on that notice), not only Sara."""
    sara = await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom")
    emp = harness.person("emp-1")
    code = await open_case(emp)
    await sara.press(f"Claim {code}")
    assert "taken by Sara" in tom.inbox[-1].text
    await emp.say("/forget")
    await emp.press("Yes, erase everything")
    erased = harness.core.tr.t("en", "forget.to_confidant", code=code)
    assert sara.last == erased
    assert tom.last == erased
