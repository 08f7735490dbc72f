"""Scenario tests for everything an employee can do, through the real core,
store and delivery worker, with the in-memory channel recording what each
person received."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlalchemy import func, select

from domain.messages import OutboundKind
from store.models import Case, CaseStatistic, Contact, DataKey, Declaration
from tests.support.memory_channel import Harness, Person, code_of

LANGS = ("nl", "fr", "en")



async def case_row(h: Harness, code: str) -> Case | None:
    async with h.store.tx() as tx:
        return await tx.cases.by_code(code)


async def contact_row(h: Harness, p: Person) -> Contact | None:
    async with h.store.tx() as tx:
        return await tx.contacts.find(p.channel, p.id)


async def open_case(h: Harness, emp: Person, confidant: Person | None = None) -> str:
    """/talk → first available; claimed by ``confidant`` when given."""
    await emp.say("/talk")
    await emp.press_token(emp.inbox[-1].menu.rows[0][0].token)  # type: ignore[union-attr]
    code = code_of(emp)
    if confidant is not None:
        await confidant.say(f"/claim {code}")
    return code


# ------------------------------------------------------------ first contact


async def test_welcome_and_privacy_notice_in_english(harness: Harness) -> None:
    emp = harness.person("emp-1", "en-GB")
    await emp.say("/start")
    assert len(emp.texts) == 2, emp.texts
    welcome, notice = emp.texts
    assert "Acme" in welcome and "confidant" in welcome.lower()
    assert "does not" in welcome  # what a confidant is not
    assert "case code, never who you are" in notice
    assert "/forget" in notice
    assert str(harness.core.settings.retention_days) in notice
    assert "end-to-end encrypted:" not in notice  # no promise without a known route
    assert emp.inbox[-1].menu is not None
    contact = await contact_row(harness, emp)
    assert contact is not None and contact.language == "en" and contact.welcomed
    # /start again is a short "welcome back", not the whole notice again
    emp.clear()
    await emp.say("/start")
    assert len(emp.texts) == 1 and "Welcome back" in emp.last


async def test_telegram_privacy_notice_says_not_end_to_end(harness: Harness) -> None:
    tg = harness.person("tg-1", "en", channel="telegram")
    web = harness.person("web-1", "en", channel="web")
    await tg.say("/start")
    await web.say("/start")
    assert "Telegram is not end-to-end encrypted" in tg.texts[1]
    assert "Telegram" not in web.texts[1]
    assert "web chat is not encrypted on the way" in web.texts[1]
    tg.clear()
    await tg.say("/privacy")
    assert "Telegram is not end-to-end encrypted" in tg.last


@pytest.mark.parametrize("lang", LANGS)
async def test_language_from_hint_and_channel_warning_per_language(harness: Harness,
                                                                   lang: str) -> None:
    tg = harness.person(f"tg-{lang}", f"{lang}-BE", channel="telegram")
    web = harness.person(f"web-{lang}", lang, channel="web")
    await tg.say("/start")
    await web.say("/start")
    contact = await contact_row(harness, tg)
    assert contact is not None and contact.language == lang
    # the Telegram notice differs from the web chat's one in every language
    assert tg.texts[1] != web.texts[1]
    assert str(harness.core.settings.retention_days) in tg.texts[1]
    english = harness.person(f"tg-en-{lang}", "en", channel="telegram")
    await english.say("/start")
    assert (english.texts[1] != tg.texts[1]) is (lang != "en")
    assert (english.texts[0] != tg.texts[0]) is (lang != "en")


async def test_unknown_language_hint_falls_back_to_default(harness: Harness) -> None:
    emp = harness.person("emp-de", "de-DE")
    await emp.say("hallo")
    contact = await contact_row(harness, emp)
    assert contact is not None and contact.language == harness.core.settings.default_language


async def test_first_message_without_case_gets_welcome_then_nudge(harness: Harness) -> None:
    emp = harness.person("emp-1")
    await emp.say("hello?")
    assert len(emp.texts) == 3
    assert "not in a conversation" in emp.last
    assert any("Talk" in b.label for b in emp.inbox[-1].menu.buttons())  # type: ignore[union-attr]


# ------------------------------------------------------------- info menus


async def test_info_menu_navigation_back_and_talk(harness: Harness) -> None:
    emp = harness.person("emp-1")
    await emp.say("/start")
    await emp.press("Information")
    root = emp.inbox[-1]
    assert root.menu is not None
    topics = [b.label for b in root.menu.buttons()]
    lib = harness.core.info
    assert [p.title for p in lib.root("en")] == topics[:-2]
    # a topic with sub-pages: open it, open a child, go back twice
    parent = next(p for p in lib.root("en") if lib.children("en", p.id))
    child = lib.children("en", parent.id)[0]
    await emp.press(parent.title)
    assert emp.last.startswith(parent.title) and parent.body.strip()[:40] in emp.last
    await emp.press(child.title)
    assert emp.last.startswith(child.title)
    await emp.press("Back")
    assert emp.last.startswith(parent.title)
    await emp.press("Back")
    assert emp.last == harness.core.tr.t("en", "info.title")
    # and from any page straight to talking
    await emp.press(parent.title)
    await emp.press("Talk to a confidant")
    assert "Who would you like to talk to" in emp.last


async def test_info_command_with_unknown_page_shows_root(harness: Harness) -> None:
    emp = harness.person("emp-1")
    await emp.say("/start")
    await emp.say("/info no-such-page")
    assert emp.last == harness.core.tr.t("en", "info.title")


@pytest.mark.parametrize("lang", LANGS)
async def test_info_root_in_each_language(harness: Harness, lang: str) -> None:
    emp = harness.person(f"emp-{lang}", lang)
    await emp.say("/info")
    titles = [b.label for b in emp.inbox[-1].menu.buttons()]  # type: ignore[union-attr]
    assert [p.title for p in harness.core.info.root(lang)] == titles[:-2]


# ------------------------------------------------------------------- talk


async def test_confidants_list_shows_bio_languages_and_duty(harness: Harness) -> None:
    await harness.add_confidant("Sara", "conf-sara", languages="nl,en", bio="HR, Ghent site")
    await harness.add_confidant("Tom", "conf-tom", always_on_duty=False)
    emp = harness.person("emp-1")
    await emp.say("/confidants")
    text = emp.last
    assert "Sara — available now (Nederlands, English)\nHR, Ghent site" in text
    assert "Tom — not on duty now" in text


async def test_talk_with_chosen_confidant_only_tells_that_one(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom")
    emp = harness.person("emp-1")
    await emp.say("/talk")
    await emp.press("Tom")
    code = code_of(emp)
    assert f"Your case code is {code}" in " ".join(emp.texts)
    assert "Tom is on duty" in emp.last
    assert not sara.inbox
    assert f"New case {code}" in tom.last
    case = await case_row(harness, code)
    assert case is not None and case.status == "waiting"
    # Sara cannot claim a case the employee addressed to Tom
    await sara.say(f"/claim {code}")
    assert "chose another confidant" in sara.last
    case = await case_row(harness, code)
    assert case is not None and case.confidant_id is None
    await tom.press("Claim")
    assert "Tom, a confidant, has joined" in emp.last


async def test_talk_first_available_tells_everyone_on_duty(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom")
    off = await harness.add_confidant("Ann", "conf-ann", always_on_duty=False)
    emp = harness.person("emp-1")
    code = await open_case(harness, emp)
    assert f"New case {code}" in sara.last and f"New case {code}" in tom.last
    assert not off.inbox
    # no content before the claim
    await emp.say("my private words")
    assert "Thank you. Your message is kept safely" in emp.last
    assert not any("my private words" in t for t in sara.texts + tom.texts)
    # a second /talk does not open a second case
    await emp.say("/talk")
    assert f"already in conversation {code}" in emp.last


def _shifts_monday_morning() -> list[tuple[int, time, time]]:
    return [(0, time(9, 0), time(12, 0))]


async def _part_timer(h: Harness, name: str, pid: str) -> Person:
    conf = await h.add_confidant(name, pid, always_on_duty=False)
    async with h.store.tx() as tx:
        c = await tx.confidants.by_name(name)
        assert c is not None
        for day, start, end in _shifts_monday_morning():
            await tx.rota.add_shift(c, day, start, end)
    return conf


@pytest.mark.parametrize(("now", "expected_utc"), [
    # Saturday in winter (UTC+1): Monday 09:00 Brussels = 08:00 UTC
    (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
    # Saturday in summer (UTC+2): Monday 09:00 Brussels = 07:00 UTC
    (datetime(2026, 7, 4, 10, 0, tzinfo=UTC), datetime(2026, 7, 6, 7, 0, tzinfo=UTC)),
])
async def test_off_duty_answer_held_messages_announced_at_shift(
        harness: Harness, now: datetime, expected_utc: datetime) -> None:
    harness.clock.current = now
    sara = await _part_timer(harness, "Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(harness, emp)
    answer = emp.last
    assert "No confidant is on duty right now" in answer
    assert "Monday" in answer and "09:00" in answer  # Brussels time, DST-correct
    assert "112" in answer and "101" in answer
    assert not sara.inbox
    await emp.say("first words")
    await emp.say("second words")
    await harness.tick()
    assert not sara.inbox  # still Saturday
    harness.clock.current = expected_utc.replace(minute=1)
    await harness.tick()
    assert f"New case {code}" in sara.last
    await harness.tick()
    assert len(sara.inbox) == 1  # announced once
    await sara.say(f"/claim {code}")
    assert sara.texts[-2:] == [f"[{code}] first words", f"[{code}] second words"]


async def test_off_duty_shift_boundary(harness: Harness) -> None:
    harness.clock.current = datetime(2026, 11, 30, 7, 59, tzinfo=UTC)  # Monday 08:59 Brussels
    sara = await _part_timer(harness, "Sara", "conf-sara")
    emp = harness.person("emp-1")
    await open_case(harness, emp)
    assert "09:00" in emp.last
    await harness.tick()
    assert not sara.inbox
    harness.clock.current = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    await harness.tick()
    assert "New case" in sara.last


async def test_no_rota_at_all_says_hours_and_numbers(harness: Harness) -> None:
    await harness.add_confidant("Sara", "conf-sara", always_on_duty=False)
    emp = harness.person("emp-1")
    await open_case(harness, emp)
    assert "within 24 hours" in emp.last and "112" in emp.last


@pytest.mark.parametrize("lang", LANGS)
async def test_off_duty_answer_per_language(harness: Harness, lang: str) -> None:
    harness.clock.current = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    await _part_timer(harness, "Sara", "conf-sara")
    emp = harness.person(f"emp-{lang}", lang)
    await open_case(harness, emp)
    answer = emp.last
    assert "09:00" in answer and "112" in answer and "101" in answer
    assert harness.core.tr.when(lang, datetime(2026, 11, 30, 8, 0, tzinfo=UTC), "long") in answer
    assert harness.core.info.emergency_text(lang) in answer
    tr = harness.core.tr
    assert answer.startswith(tr.t(lang, "case.off_duty", when="", emergency="").split("\n")[0][:20])
    if lang != "en":
        assert not answer.startswith(tr.t("en", "case.off_duty", when="", emergency="")[:20])


# -------------------------------------------------------------- emergency


@pytest.mark.parametrize(("lang", "line"), [("nl", "1813"), ("fr", "0800 32 123"),
                                            ("en", "1813")])
async def test_emergency_command_numbers_per_language(harness: Harness, lang: str,
                                                      line: str) -> None:
    emp = harness.person(f"emp-{lang}", lang)
    await emp.say("/start")
    await emp.say("/emergency")
    assert "112" in emp.last and "101" in emp.last and line in emp.last


@pytest.mark.parametrize(("lang", "words", "line"), [
    ("nl", "ik denk aan zelfmoord", "1813"),
    ("fr", "je pense au suicide", "0800 32 123"),
    ("en", "I want to kill myself", "1813"),
])
async def test_crisis_words_answer_at_once_and_relay_urgent(harness: Harness, lang: str,
                                                            words: str, line: str) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara", languages=lang)
    emp = harness.person(f"emp-{lang}", lang)
    code = await open_case(harness, emp, sara)
    emp.clear()
    sara.clear()
    await emp.say(words)
    assert "112" in emp.texts[0] and "101" in emp.texts[0] and line in emp.texts[0]
    relayed = sara.inbox[-1]
    assert relayed.kind is OutboundKind.URGENT
    assert code in relayed.text and words in relayed.text
    case = await case_row(harness, code)
    assert case is not None and case.urgent


async def test_crisis_word_before_claim_alerts_on_duty_confidants(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(harness, emp)
    sara.clear()
    await emp.say("I can't take it anymore")
    assert "112" in emp.last
    assert sara.inbox[-1].kind is OutboundKind.URGENT and code in sara.last
    assert "I can't take it anymore" not in sara.last  # no content before the claim
    await sara.say(f"/claim {code}")
    urgent = [o for o in sara.inbox if "I can't take it anymore" in o.text]
    assert urgent and urgent[0].kind is OutboundKind.URGENT and "URGENT" in urgent[0].text


async def test_crisis_word_without_case_still_answers(harness: Harness) -> None:
    emp = harness.person("emp-1")
    await emp.say("/start")
    await emp.say("I want to end it all")
    assert any("112" in t for t in emp.texts[-2:])


# ------------------------------------------------------------ stop, forget


async def test_stop_ends_conversation_and_tells_confidant(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(harness, emp, sara)
    await emp.say("/stop")
    assert f"conversation {code} has ended" in emp.last
    assert f"Case {code}: the employee has ended" in sara.last
    assert sara.inbox[-1].control == "case-close"
    case = await case_row(harness, code)
    assert case is not None and case.status == "closed"
    await sara.say("are you still there?")
    assert "no open case" in sara.last
    assert "are you still there" not in emp.last
    await emp.say("/stop")
    assert "not in a conversation" in emp.last


async def test_forget_asks_then_shreds_everything(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(harness, emp, sara)
    await emp.say("something personal")
    case = await case_row(harness, code)
    contact = await contact_row(harness, emp)
    assert case is not None and contact is not None
    await emp.say("/forget")
    assert "Are you sure" in emp.last
    await emp.press("No, keep it")
    assert "Nothing was erased" in emp.last
    assert await case_row(harness, code) is not None
    await emp.say("/forget")
    await emp.press("Yes, erase everything")
    assert "Everything has been erased" in emp.last
    assert f"Case {code} was erased" in sara.last
    assert await case_row(harness, code) is None
    assert await contact_row(harness, emp) is None
    async with harness.store.tx() as tx:
        for key_id in (case.data_key_id, contact.data_key_id):
            key = await tx.session.get(DataKey, key_id)
            assert key is not None and key.wrapped is None and key.shredded_at is not None
        stats = (await tx.session.scalars(select(CaseStatistic))).all()
        assert [s.theme for s in stats] == ["withdrawn"]
    # writing again starts afresh with a new welcome
    emp.clear()
    await emp.say("hello")
    assert "welcome" in emp.texts[0].lower()


# --------------------------------------------------------------- language


async def test_language_switch_by_menu_and_argument(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1", "en")
    code = await open_case(harness, emp, sara)
    await emp.say("/language")
    assert [b.label for b in emp.inbox[-1].menu.buttons()] == [  # type: ignore[union-attr]
        "Nederlands", "Français", "English"]
    await emp.press("Français")
    contact = await contact_row(harness, emp)
    case = await case_row(harness, code)
    assert contact is not None and contact.language == "fr"
    assert case is not None and case.language == "fr"
    await emp.say("/language nl")
    contact = await contact_row(harness, emp)
    assert contact is not None and contact.language == "nl"
    await emp.say("/language de")
    assert "nl, fr, en" in emp.last
    contact = await contact_row(harness, emp)
    assert contact is not None and contact.language == "nl"


# ----------------------------------------------------------- confirmation


async def test_confirmation_request_reaches_confidant(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    await emp.say("/confirmation")
    assert "no conversation to confirm" in emp.last
    code = await open_case(harness, emp, sara)
    await emp.say("/confirmation")
    assert "request was passed on" in emp.last
    assert f"Case {code}: the employee asks for the document" in sara.last
    case = await case_row(harness, code)
    assert case is not None and case.confirmation_requested_at == harness.clock.now()


# ---------------------------------------------------------------- declare


async def _declare(emp: Person) -> None:
    await emp.say("/declare")
    assert "register of acts by third parties" in emp.last
    await emp.say("A customer shouted and threw a chair")
    assert "When did it happen" in emp.last
    await emp.say("Monday around 3 pm")
    assert "Where did it happen" in emp.last
    await emp.say("Shop counter, Leuven")
    assert "Should your name be added" in emp.last


async def _entries(h: Harness) -> list[dict[str, object]]:
    async with h.store.tx() as tx:
        return await tx.register.entries()


async def test_declare_anonymous(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    await _declare(emp)
    await emp.press("keep it anonymous")
    assert "added to the register" in emp.last
    [entry] = await _entries(harness)
    assert entry["what"] == "A customer shouted and threw a chair"
    assert entry["when"] == "Monday around 3 pm" and entry["where"] == "Shop counter, Leuven"
    assert entry["identity_agreed"] is False and "identity" not in entry
    assert "new entry was added" in sara.last and "chair" not in sara.last
    # the intake is over: the next words are a normal message again
    await emp.say("thanks")
    assert "not in a conversation" in emp.last


async def test_declare_named(harness: Harness) -> None:
    emp = harness.person("emp-1")
    await _declare(emp)
    await emp.press("add my name")
    await emp.say("Jan Peeters, sales")
    [entry] = await _entries(harness)
    assert entry["identity_agreed"] is True and entry["identity"] == "Jan Peeters, sales"


async def test_declare_cancel_records_nothing(harness: Harness) -> None:
    emp = harness.person("emp-1")
    await emp.say("/declare")
    await emp.say("something")
    await emp.press("Cancel")
    assert "Nothing was recorded" in emp.last
    assert await _entries(harness) == []
    async with harness.store.tx() as tx:
        assert await tx.session.scalar(select(func.count()).select_from(Declaration)) == 0


# ------------------------------------------------------------ odds & ends


async def test_help_menu_unknown_command_and_unsupported_media(harness: Harness) -> None:
    emp = harness.person("emp-1")
    await emp.say("/start")
    await emp.say("/help")
    assert "/forget" in emp.last and "/talk" in emp.last
    await emp.say("/frobnicate")
    assert "don't know that command" in emp.last
    await emp.say(unsupported="location")
    assert "Nothing was sent" in emp.last
    await emp.say("/menu")
    assert emp.inbox[-1].menu is not None


async def test_too_long_message_is_refused_not_truncated(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    await open_case(harness, emp, sara)
    sara.clear()
    await emp.say("x" * 4001)
    assert "too long" in emp.last
    assert not sara.inbox

