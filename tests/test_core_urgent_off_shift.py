"""An urgent (crisis-word) message while the case's confidant is off shift,
through the real core, store and delivery worker.

Ann has the case; her shifts are Wednesday 09:00-12:00 and Thursday
09:00-17:00 (Brussels).  The employee writes a crisis word on Wednesday at
13:00: Ann is off duty until Thursday 09:00.  The colleagues on duty are
asked at once, by code only; one helps out until Ann's shift; Ann finds the
whole exchange when it starts.  Nobody off duty is woken.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlalchemy import select

from domain.messages import Media, Outbound, OutboundKind
from store.models import Case
from tests.support.memory_channel import Harness, Person, open_case

WEDNESDAY_1300 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WEDNESDAY_1800 = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
THURSDAY_0900 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
CRISIS = {"en": "I don't want to live anymore", "nl": "ik zie het niet meer zitten",
          "fr": "je ne veux plus vivre"}
EMPLOYEE_ID = "emp-7301928374615"


async def confidant(h: Harness, name: str, shifts: list[tuple[int, time, time]] | None,
                    languages: str = "en") -> Person:
    """A confidant with these weekly shifts (None: on duty all week)."""
    person = await h.add_confidant(name, f"conf-{name.lower()}", languages=languages,
                                   always_on_duty=shifts is None)
    async with h.store.tx() as tx:
        row = await tx.confidants.by_name(name)
        assert row is not None
        for day, start, end in shifts or []:
            await tx.rota.add_shift(row, day, start, end)
    return person


ANN_SHIFTS = [(2, time(9), time(12)), (3, time(9), time(17))]


async def ann_has_the_case(h: Harness, language: str = "en") -> tuple[Person, Person, str]:
    """Ann claims the employee's case on Wednesday at 11:00, on duty; at
    13:00 her shift is over."""
    ann = await confidant(h, "Ann", ANN_SHIFTS)
    emp = h.person(EMPLOYEE_ID, language)
    code = await open_case(emp, ann)
    h.clock.current = WEDNESDAY_1300
    for p in (ann, emp):
        p.clear()
    return ann, emp, code


def when(h: Harness, lang: str, moment: datetime) -> str:
    return h.core.tr.when(lang, moment, "long")


def t(h: Harness, lang: str, key: str, **values: object) -> str:
    return h.core.tr.t(lang, key, **values)


async def case_row(h: Harness, code: str) -> Case:
    async with h.store.tx() as tx:
        case = await tx.session.scalar(select(Case).where(Case.code == code))
    assert case is not None
    return case


async def test_colleagues_on_duty_are_asked_at_once_by_code_only(harness: Harness) -> None:
    h = harness
    tom = await confidant(h, "Tom", None)  # on duty now
    sara = await confidant(h, "Sara", [(4, time(9), time(17))])  # Fridays: after Ann's shift
    ann, emp, code = await ann_has_the_case(h)
    for p in (tom, sara):
        p.clear()

    await emp.say(CRISIS["en"])

    assert emp.texts == [h.core.info.emergency_text("en"),
                         t(h, "en", "urgent.colleagues_asked", name="Ann",
                           when=when(h, "en", THURSDAY_0900))]
    [ask] = tom.inbox
    assert ask.text == t(h, "en", "urgent.ask", code=code, name="Ann",
                         when=when(h, "en", THURSDAY_0900))
    assert ask.kind == OutboundKind.URGENT and ask.case is None and ask.about == (code,)
    assert ask.menu is not None
    assert [b.label for b in ask.menu.buttons()] == [f"Help out with {code}"]
    assert CRISIS["en"] not in ask.text
    assert ann.inbox == [] and sara.inbox == []  # nobody off duty is woken

    await emp.say("I am scared")  # while nobody has taken it: nothing new for Tom
    assert len(tom.inbox) == 1 and ann.inbox == []


async def test_a_colleague_helps_out_until_the_shift_and_both_see_the_exchange(
        harness: Harness) -> None:
    h = harness
    tom = await confidant(h, "Tom", None)
    ann, emp, code = await ann_has_the_case(h)
    await emp.say(CRISIS["en"])
    await emp.say("please")
    asked = len(tom.inbox)
    emp.clear()

    await tom.press(f"Help out with {code}")
    assert tom.texts[asked:] == [t(h, "en", "urgent.helping", code=code, name="Ann",
                           when=when(h, "en", THURSDAY_0900)),
                         f"[{code}] ⚠️ URGENT — {CRISIS['en']}", f"[{code}] please"]
    assert emp.texts == [t(h, "en", "urgent.helper_to_employee", helper="Tom", name="Ann",
                           when=when(h, "en", THURSDAY_0900))]

    helping_notice = tom.inbox[asked]
    assert helping_notice.case == code  # a console lists it, a reply to it routes to it
    await tom.say(f"/case {code}")
    assert tom.last == t(h, "en", "case.selected", code=code)
    await tom.say("I am here with you. Are you safe right now?",
                  reply_to=tom.message_id(helping_notice))
    assert emp.last == "Tom: I am here with you. Are you safe right now?"
    await emp.say("yes, at home")
    assert tom.last == f"[{code}] yes, at home"
    assert ann.inbox == []

    # Ann's shift starts: she finds the whole exchange, in order; Tom is thanked.
    h.clock.current = THURSDAY_0900
    await h.tick()
    assert ann.texts == [
        f"[{code}] ⚠️ URGENT — {CRISIS['en']}",
        f"[{code}] please",
        t(h, "en", "urgent.helped_for_you", code=code, helper="Tom"),
        t(h, "en", "urgent.copy", code=code, helper="Tom",
          text="I am here with you. Are you safe right now?"),
        f"[{code}] yes, at home",
    ]
    assert tom.last == t(h, "en", "urgent.ended", code=code, name="Ann")

    # The case is Ann's alone again.
    emp.clear()
    await tom.say("still there?")
    assert tom.last == t(h, "en", "urgent.over", code=code)
    assert emp.inbox == []
    tom.clear()
    await emp.say("good morning")
    assert ann.last == f"[{code}] good morning" and tom.inbox == []
    await ann.say("Good morning, I have read everything.")
    assert emp.last == "Ann: Good morning, I have read everything."
    case = await case_row(h, code)
    assert case.help_until is None


async def test_the_assigned_confidant_writing_off_duty_is_seen_by_the_helper_too(
        harness: Harness) -> None:
    """Ann may write in her case while Tom helps out: Tom gets a copy (code
    and her name only), as Ann gets his; the employee's words keep reaching
    both; after the window Tom gets nothing more."""
    h = harness
    tom = await confidant(h, "Tom", None)
    ann, emp, code = await ann_has_the_case(h)
    await emp.say(CRISIS["en"])
    await tom.press(f"Help out with {code}")
    await tom.say("I am here with you.")
    tom.clear()
    emp.clear()

    await ann.say("It is Ann, I saw your message. Tom is with you tonight.")
    assert emp.texts == ["Ann: It is Ann, I saw your message. Tom is with you tonight."]
    [copy] = tom.inbox
    assert copy.text == t(h, "en", "urgent.copy_assigned", code=code, name="Ann",
                          text="It is Ann, I saw your message. Tom is with you tonight.")
    assert copy.about == (code,) and copy.case is None
    assert EMPLOYEE_ID not in copy.text
    # Writing, Ann asked: what waited for her shift is hers now, Tom's answer too.
    assert t(h, "en", "urgent.copy", code=code, helper="Tom",
             text="I am here with you.") in ann.texts

    photo = Media("photo", b"jpeg", filename="photo.jpg", mime_type="image/jpeg")
    await ann.say(media=photo)
    assert tom.last == t(h, "en", "urgent.copy_assigned_media", code=code, name="Ann")
    assert tom.inbox[-1].media is not None and tom.inbox[-1].media.data == b"jpeg"

    ann.clear()
    await emp.say("thank you both")
    assert tom.last == f"[{code}] thank you both"
    assert ann.inbox == []  # off duty again: it waits for her shift
    h.clock.current = THURSDAY_0900
    await h.tick()
    assert f"[{code}] thank you both" in ann.texts

    tom.clear()
    await ann.say("Good morning, I am here now.")
    assert emp.last == "Ann: Good morning, I am here now."
    assert tom.inbox == []


async def test_the_window_ends_at_the_shift_even_before_the_timer_ran(
        harness: Harness) -> None:
    """Past the window's end, Ann's words go to nobody but the employee,
    even while the timer that closes the window has not run yet."""
    h = harness
    tom = await confidant(h, "Tom", None)
    ann, emp, code = await ann_has_the_case(h)
    await emp.say(CRISIS["en"])
    await tom.press(f"Help out with {code}")
    tom.clear()
    h.clock.current = THURSDAY_0900
    await ann.say("Good morning.")
    assert emp.last == "Ann: Good morning."
    assert tom.inbox == []


@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
async def test_nobody_on_duty_the_employee_hears_when_someone_will_be(
        harness: Harness, lang: str) -> None:
    """Tom's shift (Wednesday evening) starts before Ann's: the employee is
    told that time, in their language, and Tom is asked when it starts."""
    h = harness
    tom = await confidant(h, "Tom", [(2, time(18), time(22))])
    sara = await confidant(h, "Sara", [(4, time(9), time(17))])
    ann, emp, code = await ann_has_the_case(h, lang)
    for p in (tom, sara):
        p.clear()

    await emp.say(CRISIS[lang])

    assert emp.texts == [h.core.info.emergency_text(lang),
                         t(h, lang, "urgent.nobody", when=when(h, lang, WEDNESDAY_1800))]
    assert when(h, lang, WEDNESDAY_1800) in emp.last and "18:00" in emp.last
    assert tom.inbox == [] and sara.inbox == [] and ann.inbox == []

    h.clock.current = WEDNESDAY_1800
    await h.tick()
    ask = t(h, "en", "urgent.ask", code=code, name="Ann", when=when(h, "en", THURSDAY_0900))
    assert [o.text for o in tom.inbox if "URGENT" in o.text] == [ask]
    assert [o.text for o in sara.inbox if "URGENT" in o.text] == [] and ann.inbox == []
    await tom.press(f"Help out with {code}")
    assert tom.last == f"[{code}] ⚠️ URGENT — {CRISIS[lang]}"


async def test_nobody_at_all_before_the_shift_names_the_shift(harness: Harness) -> None:
    h = harness
    ann, emp, code = await ann_has_the_case(h)
    await emp.say(CRISIS["en"])
    assert emp.last == t(h, "en", "urgent.nobody", when=when(h, "en", THURSDAY_0900))
    assert ann.inbox == []
    h.clock.current = THURSDAY_0900
    await h.tick()
    assert ann.texts == [f"[{code}] ⚠️ URGENT — {CRISIS['en']}"]


async def test_forged_taken_and_late_help_buttons_change_nothing(harness: Harness) -> None:
    h = harness
    tom = await confidant(h, "Tom", None)
    sara = await confidant(h, "Sara", None)
    ann, emp, code = await ann_has_the_case(h)
    await emp.say(CRISIS["en"])
    tom_token = tom.inbox[-1].menu.buttons()[0].token  # type: ignore[union-attr]
    sara_token = sara.inbox[-1].menu.buttons()[0].token  # type: ignore[union-attr]

    await sara.press_token(tom_token)  # someone else's button
    assert sara.last == t(h, "en", "button.stale")
    await tom.press(f"Help out with {code}")
    emp.clear()
    await sara.press(f"Help out with {code}")  # too late: Tom helps
    assert sara.last == t(h, "en", "urgent.taken", code=code, name="Tom")
    sara.clear()
    await sara.say(f"/case {code}")  # not hers to answer
    assert sara.last == t(h, "en", "case.not_yours", code=code)
    await sara.say("Hello, I am Sara")
    assert sara.last == t(h, "en", "case.none_open") and emp.inbox == []
    case = await case_row(h, code)
    async with h.store.tx() as tx:
        tom_row = await tx.confidants.by_name("Tom")
    assert tom_row is not None and case.helper_id == tom_row.id

    h.clock.current = THURSDAY_0900
    await h.tick()
    await sara.press_token(sara_token)  # Ann's shift has started
    assert sara.last == t(h, "en", "urgent.over", code=code)
    await ann.press_token(tom_token)
    assert ann.last == t(h, "en", "button.stale")
    assert (await case_row(h, code)).help_until is None
    assert emp.inbox == []


async def test_what_colleagues_receive_names_no_one(harness: Harness) -> None:
    """Platform id and chat of the employee appear nowhere in what a
    colleague receives, before or after helping out."""
    h = harness
    tom = await confidant(h, "Tom", None)
    sara = await confidant(h, "Sara", None)
    _, emp, code = await ann_has_the_case(h)
    await emp.say(CRISIS["en"])
    await tom.press(f"Help out with {code}")
    await emp.say("it is my manager again")
    await sara.press(f"Help out with {code}")

    def fields(out: Outbound) -> str:
        labels = [b.label for b in out.menu.buttons()] if out.menu else []
        return " ".join([out.text, *labels, str(out.case), " ".join(out.about),
                         out.media.filename if out.media else ""])

    for person in (tom, sara):
        assert person.inbox
        for out in person.inbox:
            assert EMPLOYEE_ID not in fields(out), out.text
            assert "7301928374615" not in fields(out)
    assert all(CRISIS["en"] not in o.text for o in sara.inbox)


async def test_the_helper_hears_when_the_case_is_erased(harness: Harness) -> None:
    """A helper's console names the case too: the erasure reaches them."""
    h = harness
    tom = await confidant(h, "Tom", None)
    _, emp, code = await ann_has_the_case(h)
    await emp.say(CRISIS["en"])
    await tom.press(f"Help out with {code}")
    await emp.say("/forget")
    await emp.press("Yes, erase everything")
    assert tom.last == t(h, "en", "forget.to_confidant", code=code)
    assert tom.inbox[-1].control == "case-erase"
