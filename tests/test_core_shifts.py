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
