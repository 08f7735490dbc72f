"""Scenario tests for every confidant command, through the real core, store
and delivery worker: claim, relay, cases, heard, notes, consent, handover,
close, duty, /case and reply routing."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from domain.messages import OutboundKind
from store.models import Case, CaseStatistic, Consent, Note
from tests.support.memory_channel import Harness, Person, open_case

LANGS = ("nl", "fr", "en")



async def case_row(h: Harness, code: str) -> Case:
    async with h.store.tx() as tx:
        case = await tx.cases.by_code(code)
    assert case is not None
    return case



def case_messages(p: Person, code: str) -> list[str]:
    return [o.text for o in p.inbox if o.case == code]


# ------------------------------------------------------------------- claim


async def test_claim_first_wins_and_others_are_told(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom")
    emp = harness.person("emp-1")
    code = await open_case(emp)
    assert "URGENT" not in sara.last and code in sara.last
    await emp.say("held one")
    await sara.press(f"Claim {code}")
    assert f"You have taken case {code}" in sara.texts[-2]
    deadline = harness.core.tr.when("en", harness.clock.now() + timedelta(days=10), "long")
    assert deadline in sara.texts[-2]
    assert sara.last == f"[{code}] held one"
    assert f"Case {code} was taken by Sara" in tom.last
    assert "Sara, a confidant, has joined" in emp.last
    await tom.say(f"/claim {code}")
    assert "already taken by Sara" in tom.last
    await tom.press(f"Claim {code}")
    assert "already taken by Sara" in tom.last
    case = await case_row(harness, code)
    async with harness.store.tx() as tx:
        sara_row = await tx.confidants.by_name("Sara")
    assert sara_row is not None and case.confidant_id == sara_row.id and case.status == "open"
    await sara.say(f"/claim {code}")
    assert "already yours" in sara.last


async def test_claim_unknown_code_and_usage(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    await sara.say("/claim")
    assert "Use: /claim CODE" in sara.last
    await sara.say("/claim zzz-zzz")
    assert "There is no case ZZZ-ZZZ" in sara.last


@pytest.mark.parametrize("lang", LANGS)
async def test_relay_both_ways_with_case_code(harness: Harness, lang: str) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara", languages=lang)
    emp = harness.person(f"emp-{lang}", lang)
    code = await open_case(emp, sara)
    await emp.say("Bonjour / hallo / hello")
    assert code in sara.last and "Bonjour / hallo / hello" in sara.last
    assert sara.inbox[-1].kind is OutboundKind.RELAY and sara.inbox[-1].case == code
    await sara.say("I hear you")
    assert "Sara" in emp.last and "I hear you" in emp.last
    assert emp.inbox[-1].kind is OutboundKind.RELAY
    assert code not in emp.last  # the employee sees words, the confidant sees codes
    tr = harness.core.tr
    assert emp.last == tr.t(lang, "relay.to_employee", name="Sara", text="I hear you")
    joined = tr.t(lang, "claim.to_employee", name="Sara")
    assert joined in emp.texts
    assert (joined != tr.t("en", "claim.to_employee", name="Sara")) is (lang != "en")
    # every message the confidant got about this case names the case code
    about = [o for o in sara.inbox if o.case == code]
    assert about and all(code in o.text for o in about), [o.text for o in about]


async def test_media_relayed_by_reupload_with_neutral_name(harness: Harness) -> None:
    from domain.messages import Media
    from tests.support.documents import NAME, pdf_pages_text, pdf_with_author

    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    payslip = pdf_with_author()
    assert NAME.encode() in payslip
    await emp.say(media=Media("document", payslip, filename="Jan_Peeters_payslip.pdf",
                              mime_type="application/pdf", caption="from Jan Peeters"))
    got = sara.inbox[-1]
    assert got.media is not None
    assert code in got.text
    assert got.media.filename == "document.pdf"
    # the same pages, without the author the PDF named in its metadata
    assert NAME.encode() not in got.media.data
    assert pdf_pages_text(got.media.data) == pdf_pages_text(payslip)
    await emp.say(media=Media("photo", b"jpeg", filename="IMG_Jan.Peeters", mime_type="image/jpeg"))
    assert sara.inbox[-1].media is not None and sara.inbox[-1].media.filename == "photo"


# ------------------------------------------------------------------- cases


async def test_cases_lists_deadlines_and_waiting(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    e1, e2 = harness.person("emp-1"), harness.person("emp-2")
    c1 = await open_case(e1, sara)
    c2 = await open_case(e2)
    await sara.say("/cases")
    text = sara.last
    deadline = harness.core.tr.when("en", harness.clock.now() + timedelta(days=10))
    assert f"• {c1} — hear the employee by {deadline}" in text
    assert "Waiting for a confidant:" in text and c2 in text.split("Waiting")[1]
    labels = [b.label for b in sara.inbox[-1].menu.buttons()]  # type: ignore[union-attr]
    assert f"Write in {c1}" in labels and f"Claim {c2}" in labels
    await sara.say("/heard")
    await sara.say("/cases")
    assert f"• {c1} — first conversation held" in sara.last


async def test_cases_empty(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    await sara.say("/cases")
    assert "no open cases" in sara.last


# --------------------------------------------------------- heard and notes


async def test_heard_in_time_and_late(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    e1, e2 = harness.person("emp-1"), harness.person("emp-2")
    c1 = await open_case(e1, sara)
    await sara.say(f"/heard {c1}")
    assert f"Recorded for case {c1}" in sara.last and "within the 10 days" in sara.last
    case = await case_row(harness, c1)
    assert case.heard_at == harness.clock.now()
    harness.clock.current += timedelta(days=1)
    c2 = await open_case(e2, sara)
    harness.clock.current += timedelta(days=11)
    await sara.say(f"/heard {c2}")
    assert "after the 10-day deadline" in sara.last
    # heard twice keeps the first moment
    before = (await case_row(harness, c1)).heard_at
    await sara.say(f"/heard {c1}")
    assert (await case_row(harness, c1)).heard_at == before


async def test_note_is_private_and_encrypted(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    before = list(emp.texts)
    await sara.say("/note seems exhausted; mentions team leader Bram")
    assert f"Note saved for case {code}" in sara.last
    assert emp.texts == before
    await sara.say(f"/note {code} second note")
    await sara.say("/notes")
    assert "seems exhausted; mentions team leader Bram" in sara.last and "second note" in sara.last
    async with harness.store.tx() as tx:
        notes = (await tx.session.scalars(select(Note))).all()
    assert len(notes) == 2
    assert all(b"Bram" not in n.body_enc and b"second" not in n.body_enc for n in notes)
    await sara.say("/note")
    assert "Use: /note TEXT" in sara.last


# ------------------------------------------------------------------ consent


@pytest.mark.parametrize(("form", "answer"), [("supervisor", "yes"), ("advisor", "no"),
                                              ("reconcile", "yes")])
async def test_consent_recorded_with_time(harness: Harness, form: str, answer: str) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    await sara.say(f"/consent {form}")
    assert f"Case {code}: the employee was asked" in sara.last
    assert "Sara asks your agreement" in emp.last
    harness.clock.current += timedelta(hours=2)
    await emp.press("Yes, I agree" if answer == "yes" else "No")
    async with harness.store.tx() as tx:
        [consent] = (await tx.session.scalars(select(Consent))).all()
    assert consent.form == form and consent.agreed is (answer == "yes")
    assert consent.answered_at == harness.clock.now()
    assert consent.requested_at == harness.clock.now() - timedelta(hours=2)
    word = "AGREES" if answer == "yes" else "does NOT agree"
    assert f"Case {code}: the employee {word}" in sara.last
    assert harness.core.tr.when("en", harness.clock.now()) in sara.last
    # a second press of the same question changes nothing
    await emp.press("Yes, I agree")
    assert "already answered" in emp.last
    async with harness.store.tx() as tx:
        [again] = (await tx.session.scalars(select(Consent))).all()
    assert again.agreed is (answer == "yes")


async def test_consent_usage(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    await open_case(emp, sara)
    await sara.say("/consent everybody")
    assert "Use: /consent supervisor" in sara.last


# ----------------------------------------------------------------- handover


async def test_handover(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    await sara.say("/handover Nobody")
    assert "no confidant called Nobody" in sara.last
    await sara.say("/handover sara")
    assert "already yours" in sara.last
    await sara.say("/handover tom")
    assert f"Case {code} was handed over to Tom" in sara.last
    assert sara.inbox[-1].control == "case-handover-out"
    assert f"Sara handed case {code} over to you" in tom.last
    assert tom.inbox[-1].control == "case-open"
    assert "Another confidant, Tom, is taking over" in emp.last
    case = await case_row(harness, code)
    async with harness.store.tx() as tx:
        tom_row = await tx.confidants.by_name("Tom")
    assert tom_row is not None and case.confidant_id == tom_row.id
    await emp.say("still there?")
    assert tom.last == f"[{code}] still there?"
    assert "still there" not in sara.last
    await sara.say("hello?")
    assert "no open case" in sara.last
    await tom.say("yes, Tom here")
    assert emp.last == "Tom: yes, Tom here"


# -------------------------------------------------------------------- close


@pytest.mark.parametrize("lang", LANGS)
async def test_close_with_theme(harness: Harness, lang: str) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person(f"emp-{lang}", lang)
    code = await open_case(emp, sara)
    await sara.say("/close")
    assert "Close with a theme" in sara.last
    await sara.press("bullying")
    assert f"Case {code} is closed (theme: bullying)" in sara.last
    assert sara.inbox[-1].control == "case-close"
    assert str(harness.core.settings.retention_days) in emp.last
    closed = harness.core.tr.t(lang, "close.to_employee",
                               days=harness.core.settings.retention_days)
    assert emp.last == closed
    assert (closed != harness.core.tr.t("en", "close.to_employee", days=90)) is (lang != "en")
    case = await case_row(harness, code)
    assert case.status == "closed" and case.theme == "bullying"
    async with harness.store.tx() as tx:
        stats = (await tx.session.scalars(select(CaseStatistic))).all()
    assert [(s.theme, s.channel) for s in stats] == [("bullying", "memory")]
    await emp.say("one more thing")
    nudge = emp.inbox[-1]  # "not in a conversation": a menu to talk or read
    assert nudge.menu is not None and len(nudge.menu.buttons()) == 2 and nudge.case is None
    assert "one more thing" not in sara.last


async def test_close_by_command_with_code(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    await sara.say(f"/close {code} violence-third-party")
    case = await case_row(harness, code)
    assert case.theme == "violence_third_party"
    await sara.say(f"/close {code} nonsense")
    assert "Close with a theme" in sara.last


# ------------------------------------------------------------ duty, /case


async def test_duty_lists_shifts(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara", always_on_duty=False)
    async with harness.store.tx() as tx:
        c = await tx.confidants.by_name("Sara")
        assert c is not None
        await tx.rota.add_shift(c, 1, time(9, 0), time(12, 30))
    await sara.say("/duty")
    assert "Tuesday 09:00–12:30 (on duty)" in sara.last


async def test_case_command_and_reply_to_routing(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    e1, e2 = harness.person("emp-1"), harness.person("emp-2")
    c1 = await open_case(e1, sara)
    c2 = await open_case(e2, sara)
    # the latest claim is the current case
    await sara.say("to the second")
    assert e2.last == "Sara: to the second" and "to the second" not in e1.last
    await sara.say(f"/case {c1}")
    assert f"now go to case {c1}" in sara.last
    await sara.say("to the first")
    assert e1.last == "Sara: to the first"
    # replying to a relayed message routes by that message, whatever is current
    await e2.say("question from two")
    relayed = sara.inbox[-1]
    assert relayed.case == c2
    await sara.say("answer for two", reply_to=sara.message_id(relayed))
    assert e2.last == "Sara: answer for two"
    assert "answer for two" not in e1.last
    await sara.say("/case")
    assert "Use: /case CODE" in sara.last
    await sara.say("/case ABC-DEF")
    assert "There is no case ABC-DEF" in sara.last


async def test_two_open_cases_without_current_asks_which(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    e1, e2 = harness.person("emp-1"), harness.person("emp-2")
    await open_case(e1, sara)
    c2 = await open_case(e2, sara)
    await sara.say("/close conflict")
    assert (await case_row(harness, c2)).status == "closed"
    # the current case is gone; one open case remains and is used
    await sara.say("for you")
    assert e1.last == "Sara: for you"


async def test_confidant_help_start_and_unknown(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    await sara.say("/start")
    assert "Hello Sara" in sara.last
    await sara.say("/help")
    assert "/claim CODE" in sara.last and "/close THEME" in sara.last
    await sara.say("/whatever")
    assert "/help lists" in sara.last
    await sara.say("/talk")
    assert "registered as a confidant" in sara.last


async def test_deadline_shown_in_brussels_time(harness: Harness) -> None:
    harness.clock.current = datetime(2026, 3, 20, 23, 30, tzinfo=UTC)  # 00:30 in Brussels
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    # 10 days later crosses the DST change (29 March): shown as 01:30 local
    assert "March 31" in sara.texts[-1] or "31 March" in sara.texts[-1]
    assert "01:30" in sara.texts[-1]
    assert code in sara.texts[-1]


async def test_claim_after_the_employee_stopped_says_closed(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp)
    await emp.say("/stop")
    await sara.press(f"Claim {code}")
    assert f"Case {code}: the employee has ended the conversation" in sara.last
    assert (await case_row(harness, code)).confidant_id is None
