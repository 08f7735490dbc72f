"""What the core answers when a channel hands it something it could not pass
on (``Inbound.unsupported``): the answer that fits the reason, in the
language the person chose, once per event."""

from __future__ import annotations

import pytest

from handlers.i18n import Translator
from tests.support.memory_channel import Harness, open_case

TR = Translator("nl", ("nl", "fr", "en"))


@pytest.mark.parametrize(("kind", "key"), [
    ("undecryptable", "message.undecryptable"),
    ("unavailable", "media.unavailable"),
    ("too_large", "media.too_large"),
    ("edit", "message.edited"),
    ("m.location", "media.unsupported"),
])
async def test_refusal_fits_the_reason_in_the_employees_language(
    harness: Harness, kind: str, key: str
) -> None:
    emp = harness.person("emp-nl", language="nl")
    await emp.say("/start")
    emp.clear()
    await emp.say(unsupported=kind, event_id="$lost#unreadable")
    assert emp.texts == [TR.t("nl", key)]
    await emp.say(unsupported=kind, event_id="$lost#unreadable")  # a channel's replay
    assert emp.texts == [TR.t("nl", key)]


async def test_unreadable_message_from_a_confidant_is_asked_again_in_theirs(
    harness: Harness,
) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara", languages="fr")
    emp = harness.person("emp-1", language="nl")
    await open_case(emp, sara)
    sara.clear()
    emp.clear()
    await sara.say(unsupported="undecryptable")
    assert sara.texts == [TR.t("fr", "message.undecryptable")]
    assert emp.texts == []


async def test_a_first_message_that_could_not_be_passed_on_is_answered_after_the_welcome(
    harness: Harness,
) -> None:
    emp = harness.person("emp-first", language="nl")
    await emp.say(unsupported="undecryptable", event_id="$first#unreadable")
    assert len(emp.texts) >= 2, emp.texts  # the welcome, then the answer
    assert emp.texts[-1] == TR.t("nl", "message.undecryptable")
