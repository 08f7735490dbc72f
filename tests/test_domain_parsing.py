"""The one set of parsers chat and CLI share: every accepted form, every
refusal, and round trips through the labels the bot itself writes."""

from __future__ import annotations

import string
from datetime import date, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.parsing import (
    WEEKDAY_KEYS,
    ParseError,
    hhmm,
    monday_of,
    month_label,
    parse_date,
    parse_month,
    parse_time,
    parse_week,
    parse_weekday,
    week_label,
)
from domain.vocabulary import SUPPORTED_LANGUAGES
from handlers.i18n import load_strings

# ------------------------------------------------------------------ weekdays

NAMES = {
    0: ("mon", "monday", "ma", "maa", "maandag", "lun", "lundi", "1"),
    1: ("tue", "tues", "tuesday", "di", "din", "dinsdag", "mar", "mardi", "2"),
    2: ("wed", "wednesday", "wo", "woe", "woensdag", "mer", "mercredi", "3"),
    3: ("thu", "thur", "thurs", "thursday", "do", "don", "donderdag", "jeu", "jeudi", "4"),
    4: ("fri", "friday", "vr", "vri", "vrijdag", "ven", "vendredi", "5"),
    5: ("sat", "saturday", "za", "zat", "zaterdag", "sam", "samedi", "6"),
    6: ("sun", "sunday", "zo", "zon", "zondag", "dim", "dimanche", "7"),
}
"""Everything the chat admin (three-letter starts, Dutch and French) or the CLI
(full names, ISO numbers) accepted before they shared one parser."""


@pytest.mark.parametrize(("word", "day"), [(w, d) for d, ws in NAMES.items() for w in ws])
def test_weekday_in_every_language_and_number(word: str, day: int) -> None:
    assert parse_weekday(word) == day
    assert parse_weekday(word.upper()) == day
    assert parse_weekday(f" {word.capitalize()}. ") == day


def test_weekday_accents_and_partial_names() -> None:
    assert parse_weekday("Mércredi") == 2
    assert parse_weekday("donder") == 3
    assert parse_weekday("vendr") == 4


@pytest.mark.parametrize("word", ["", "funday", "m", "mo", "0", "8", "11", "monkey",
                                  "maart", "mondays", "-1"])
def test_weekday_refuses(word: str) -> None:
    with pytest.raises(ParseError, match="unknown weekday") as info:
        parse_weekday(word)
    assert info.value.key == "parse.weekday" and info.value.value == word


def test_three_letter_starts_name_one_day_each() -> None:
    """Why any start of three letters or more may be taken: none is shared."""
    from domain.parsing import _FULL_NAMES

    starts = [name[:3] for names in _FULL_NAMES for name in names]
    assert len(starts) == len(set(starts)) == 21


@given(st.integers(0, 6))
def test_weekday_key_round_trip(day: int) -> None:
    assert parse_weekday(WEEKDAY_KEYS[day]) == day
    assert parse_weekday(str(day + 1)) == day


# ------------------------------------------------------------------ times


@pytest.mark.parametrize(("text", "expected"), [
    ("09:30", time(9, 30)), ("9:30", time(9, 30)), ("9:05", time(9, 5)), ("9", time(9)),
    ("09", time(9)), ("0", time(0)), ("23:59", time(23, 59)), (" 12:00 ", time(12)),
])
def test_time_forms(text: str, expected: time) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["", "24:00", "12:60", "25", "noon", "9h", "9:5",
                                  "09:00:00", "-1", "+9", "9 30", "123"])
def test_time_refuses(text: str) -> None:
    with pytest.raises(ParseError, match="not a time") as info:
        parse_time(text)
    assert info.value.key == "parse.time"


@given(st.times().map(lambda t: t.replace(second=0, microsecond=0)))
def test_time_round_trip(moment: time) -> None:
    assert parse_time(hhmm(moment)) == moment
    assert parse_time(f"{moment.hour}:{moment.minute:02d}") == moment


# ------------------------------------------------------------------ dates


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-01", date(2026, 12, 1)), ("2026-12-1", date(2026, 12, 1)),
    ("1/12/2026", date(2026, 12, 1)), ("01.12.2026", date(2026, 12, 1)),
    ("1-12-2026", date(2026, 12, 1)), ("20261201", date(2026, 12, 1)),
    (" 2026-12-01 ", date(2026, 12, 1)),
])
def test_date_forms(text: str, expected: date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["", "March", "2026-02-30", "31/02/2026", "2026/12/01",
                                  "12-2026", "2026-12-01T10:00", "1/12/26"])
def test_date_refuses(text: str) -> None:
    with pytest.raises(ParseError, match="not a date") as info:
        parse_date(text)
    assert info.value.key == "parse.date"


@given(st.dates(min_value=date(1000, 1, 1)))
def test_date_round_trip(day: date) -> None:
    assert parse_date(day.isoformat()) == day
    assert parse_date(f"{day.day}/{day.month}/{day.year}") == day
    assert parse_date(f"{day.day:02d}.{day.month:02d}.{day.year}") == day


# ------------------------------------------------------------------ weeks and months


def test_week_forms() -> None:
    assert parse_week("2026-W49") == date(2026, 11, 30)
    assert parse_week("2026w49") == date(2026, 11, 30)
    assert parse_week("2026-w1") == date(2025, 12, 29)
    for bad in ("", "2026-W54", "2026-W00", "2025-13", "W49", "2026-49"):
        with pytest.raises(ParseError, match="not a week") as info:
            parse_week(bad)
        assert info.value.key == "parse.week"


@given(st.dates(min_value=date(1000, 1, 8), max_value=date(9999, 12, 20)))
def test_week_round_trip(day: date) -> None:
    monday = parse_week(week_label(day))
    assert monday == monday_of(day)
    assert monday.weekday() == 0 and 0 <= (day - monday).days <= 6


def test_month_forms() -> None:
    assert parse_month("2026-01") == date(2026, 1, 1)
    assert parse_month(" 2026-12 ") == date(2026, 12, 1)
    for bad in ("", "2026-13", "2026-00", "2026-1", "202601", "2026-13x", "Jan 2026"):
        with pytest.raises(ParseError, match="not a month") as info:
            parse_month(bad)
        assert info.value.key == "parse.month"


@given(st.dates(min_value=date(1000, 1, 1)))
def test_month_round_trip(day: date) -> None:
    assert parse_month(month_label(day)) == day.replace(day=1)


# ------------------------------------------------------------------ refusals


PARSERS = (parse_weekday, parse_time, parse_date, parse_week, parse_month)


@given(st.sampled_from(PARSERS), st.text(string.printable + "éàü²٣", max_size=12))
def test_anything_else_is_a_parse_error(parser: object, text: str) -> None:
    """Whatever is typed, the answer is a value or a `ParseError`, never a crash."""
    try:
        parser(text)  # type: ignore[operator]
    except ParseError as err:
        assert err.value == text and str(err)


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("parser", PARSERS)
def test_every_refusal_has_words_in_every_language(lang: str, parser: object) -> None:
    """The key a refusal carries is a sentence a person can be shown."""
    with pytest.raises(ParseError) as info:
        parser("nonsense")  # type: ignore[operator]
    template = load_strings(lang)[info.value.key]
    assert template.format(value="nonsense")
