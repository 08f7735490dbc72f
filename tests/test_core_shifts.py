"""Confidants get nothing outside their shifts unless they ask; the employee
is told honestly when their message will be read."""

from datetime import UTC, datetime, time, timedelta

from tests.support.memory_channel import Harness, Person, open_case

MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Brussels


async def weekday_confidant(h: Harness) -> Person:
    async with h.store.tx() as tx:
        c = await tx.confidants.add("Sara", bio="", languages=["en"], attested_by="test",
                                    now=h.clock.now())
        await tx.confidants.set_address(c, "memory", "conf-sara")
        for day in range(5):
            await tx.rota.add_shift(c, day, time(9, 0), time(17, 0))
    return Person(h, "conf-sara", "en")


async def test_message_waits_for_the_shift_and_the_employee_is_told(harness: Harness) -> None:
    h = harness
    h.clock.current = MONDAY_10
    sara = await weekday_confidant(h)
    emp = h.person("emp-s", "en")
    code = await open_case(emp, sara)
    h.clock.current = MONDAY_10 + timedelta(hours=9)  # 19:00, off duty
    seen = len(sara.inbox)
    await emp.say("I could not sleep again")
    await emp.say("and it is getting worse")
    assert len(sara.inbox) == seen, "nothing reaches a confidant off duty"
    told = [t for t in emp.texts if "not on duty" in t]
    assert len(told) == 1 and "Tuesday 24 November 2026, 09:00" in told[0]
    h.clock.current = datetime(2026, 11, 24, 8, 0, 30, tzinfo=UTC)  # Tuesday 09:00:30
    await h.tick()
    relayed = [o.text for o in sara.inbox[seen:]]
    assert relayed == [f"[{code}] I could not sleep again", f"[{code}] and it is getting worse"]


async def test_a_confidant_who_asks_off_duty_gets_an_answer_and_what_waited(
        harness: Harness) -> None:
    h = harness
    h.clock.current = MONDAY_10
    sara = await weekday_confidant(h)
    emp = h.person("emp-a", "en")
    code = await open_case(emp, sara)
    h.clock.current = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)  # Saturday
    seen = len(sara.inbox)
    await emp.say("are you there?")
    assert len(sara.inbox) == seen
    await sara.say("/cases")
    texts = [o.text for o in sara.inbox[seen:]]
    assert any(code in t and "hear the employee" in t for t in texts), texts
    assert f"[{code}] are you there?" in texts


async def test_confidants_without_any_rota_are_always_reachable(harness: Harness) -> None:
    h = harness
    async with h.store.tx() as tx:
        c = await tx.confidants.add("Tom", bio="", languages=["en"], attested_by="test",
                                    now=h.clock.now())
        await tx.confidants.set_address(c, "memory", "conf-tom")
    tom = Person(h, "conf-tom", "en")
    emp = h.person("emp-r", "en")
    code = await open_case(emp, tom)
    await emp.say("hello")
    assert tom.last == f"[{code}] hello"


FRIDAY_0900 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
CRISIS = "I don't want to live anymore"


async def tom_on_duty_sara_on_fridays(h: Harness) -> tuple[Person, Person]:
    """Wednesday 11:00 (the harness's clock): Tom is on duty, Sara only on Fridays."""
    tom = await h.add_confidant("Tom", "conf-tom")
    sara = await h.add_confidant("Sara", "conf-sara", always_on_duty=False)
    async with h.store.tx() as tx:
        row = await tx.confidants.by_name("Sara")
        assert row is not None
        await tx.rota.add_shift(row, 4, time(9, 0), time(17, 0))
    return tom, sara


async def test_taken_by_reaches_only_those_the_case_was_announced_to(
        harness: Harness) -> None:
    """The new case is announced to Tom, on duty, not to Sara: when Tom
    claims it, Sara is not told, not even at her shift, that a case she
    never heard of was taken."""
    h = harness
    tom, sara = await tom_on_duty_sara_on_fridays(h)
    emp = h.person("emp-t", "en")
    code = await open_case(emp)
    assert [o.about for o in tom.inbox] == [(code,)]
    await tom.press(f"Claim {code}")
    assert tom.last.startswith(f"You have taken case {code}")
    h.clock.current = FRIDAY_0900
    await h.tick()
    assert [t for t in sara.texts if code in t] == []


async def test_taken_by_follows_an_urgent_notice_that_waited_for_the_shift(
        harness: Harness) -> None:
    """A crisis word while the case waits goes to every candidate, Sara's
    copy waiting for her shift: she was told of the case, so she also hears
    that Tom took it, right after."""
    h = harness
    tom, sara = await tom_on_duty_sara_on_fridays(h)
    emp = h.person("emp-u", "en")
    code = await open_case(emp)
    await emp.say(CRISIS)
    await tom.press(f"Claim {code}")
    assert sara.inbox == []
    h.clock.current = FRIDAY_0900
    await h.tick()
    tr = h.core.tr
    assert [t for t in sara.texts if code in t] == [
        tr.t("en", "notify.urgent_waiting", code=code),
        tr.t("en", "claim.taken_by", code=code, name="Tom")]
