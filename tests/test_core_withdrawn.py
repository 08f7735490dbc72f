"""A case the employee ends or erases before anyone claimed it: every
confidant who was told of it is told it is gone, and nobody can claim it."""

import pytest

from tests.support.memory_channel import Harness, code_of


@pytest.mark.parametrize("how", ["stop", "forget"])
async def test_unclaimed_case_withdrawn_reaches_every_notified_confidant(
        harness: Harness, how: str) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom")
    emp = harness.person("emp-w", "en")
    await emp.say("/talk")
    await emp.press("first available")
    code = code_of(emp)
    assert code in sara.last and code in tom.last
    if how == "stop":
        await emp.say("/stop")
    else:
        await emp.say("/forget")
        await emp.press("Yes")
    for conf in (sara, tom):
        assert code in conf.last
        assert ("ended" if how == "stop" else "erased") in conf.last
    await tom.say(f"/claim {code}")
    async with harness.store.tx() as tx:
        case = await tx.cases.by_code(code)
    assert case is None or case.confidant_id is None
