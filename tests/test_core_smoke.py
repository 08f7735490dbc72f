"""First end-to-end walk through the core with the in-memory channel."""

from tests.support.memory_channel import Harness


async def test_employee_and_confidant_talk(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1", "en")
    await emp.say("/start")
    assert "welcome" in emp.texts[0].lower()
    assert "case code" in emp.texts[1]
    await emp.press("Talk")
    await emp.press("first available")
    assert any("case code is" in t for t in emp.texts)
    code = next(o.case for o in emp.inbox if o.case)
    assert "New case" in sara.last
    await emp.say("I feel bullied by my manager")
    await sara.press("Claim")
    assert "I feel bullied by my manager" in sara.last
    await sara.say("I'm here. Tell me more.")
    assert emp.last == "Sara: I'm here. Tell me more."
    await sara.say("/close bullying")
    assert "closed" in emp.last
    assert code
