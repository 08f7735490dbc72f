"""Commands and their arguments in the reader's own words (``/toestemming``,
``/afsluiten pesten``, ``/consentement conciliation``): the data file is
complete and consistent, the English forms keep working, and the real core
acts on the localised ones exactly as on the English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from domain.vocabulary import CLOSE_THEMES, SUPPORTED_LANGUAGES, ConsentForm
from handlers.aliases import WORD, AliasError, aliases, fold, localise, parse, resolve
from handlers.commands import EMPLOYEE_COMMANDS, command_menu
from handlers.i18n import Translator, load_strings
from handlers.router import CONFIDANT, EMPLOYEE
from store.models import Case, Consent
from tests.support.memory_channel import Harness, open_case

LOCALISED = ("nl", "fr")
ARGUMENT_VALUES = {
    "consent": {str(f) for f in ConsentForm},
    "close": set(CLOSE_THEMES),
    "language": set(SUPPORTED_LANGUAGES),
}


# ------------------------------------------------------------ the data


def test_every_alias_names_a_command_the_bot_has() -> None:
    known = set(EMPLOYEE.commands) | set(CONFIDANT.commands)
    table = aliases()
    assert table.commands, "no aliases read: the file or the loader is broken"
    assert set(table.commands.values()) <= known, set(table.commands.values()) - known
    for lang in LOCALISED:
        assert set(table.shown[lang]) <= known


@pytest.mark.parametrize("lang", LOCALISED)
def test_every_command_people_type_has_a_word_in_each_language(lang: str) -> None:
    """Commands whose English name a Dutch or French reader would not guess."""
    shown = aliases().shown[lang]
    typed = {"talk", "stop", "forget", "language", "help", "emergency", "declare",
             "confirmation", "appointment", "confidants", "consent", "close", "claim",
             "cases", "handover", "heard", "note", "notes", "offer", "duty", "absence", "case"}
    assert typed <= set(shown), typed - set(shown)


@pytest.mark.parametrize("lang", LOCALISED)
def test_every_argument_has_a_word_and_means_a_real_value(lang: str) -> None:
    shown = aliases().shown_arguments[lang]
    for command, values in ARGUMENT_VALUES.items():
        assert set(shown[command]) == values, (lang, command)
    for command, words in aliases().arguments.items():
        assert set(words.values()) <= ARGUMENT_VALUES[command], command


def test_no_alias_hides_an_english_command() -> None:
    """``/stop`` must never come to mean something else in some language."""
    english = set(EMPLOYEE.commands) | set(CONFIDANT.commands)
    for word, command in aliases().commands.items():
        assert word not in english or word == command, (word, command)
        assert WORD.fullmatch(word), word


def test_clashing_words_are_refused_at_load() -> None:
    with pytest.raises(AliasError, match="already means /talk"):
        parse({"nl": {"commands": {"talk": "praten"}}, "fr": {"commands": {"stop": "praten"}}})
    with pytest.raises(AliasError, match="already means 'supervisor'"):
        parse({"nl": {"arguments": {"consent": {"supervisor": "x", "advisor": "x"}}}})
    with pytest.raises(AliasError, match="expected a word"):
        parse({"nl": {"commands": {"talk": "Pra ten"}}})
    with pytest.raises(AliasError, match="unknown table"):
        parse({"nl": {"comands": {}}})


@pytest.mark.parametrize(("typed", "arg", "expected"), [
    ("toestemming", "tussenkomst", ("consent", "supervisor")),
    ("toestemming", "leidinggevende", ("consent", "supervisor")),
    ("consentement", "conciliation", ("consent", "reconcile")),
    ("consent", "verzoening", ("consent", "reconcile")),  # English command, Dutch word
    ("consent", "advisor", ("consent", "advisor")),  # English keeps working
    ("afsluiten", "K7F-3MQ geweld-derden", ("close", "K7F-3MQ violence_third_party")),
    ("clôturer", "Harcèlement_Moral", ("close", "bullying")),
    ("taal", "frans", ("language", "fr")),
    ("langue", "néerlandais", ("language", "nl")),
    ("language", "fr", ("language", "fr")),
    ("overdragen", "Tom", ("handover", "Tom")),  # a name stays as typed
    ("notitie", "pesten op de afdeling", ("note", "pesten op de afdeling")),
    ("claim", "K7F-3MQ", ("claim", "K7F-3MQ")),
    ("unknown", "x", ("unknown", "x")),
])
def test_resolve(typed: str, arg: str, expected: tuple[str, str]) -> None:
    assert resolve(typed, arg) == expected


def test_fold() -> None:
    assert fold("Clôturer") == "cloturer" and fold("DÉCLARER") == "declarer"


# ------------------------------------------------------------ shown to the reader


@pytest.mark.parametrize("lang", LOCALISED)
def test_help_shows_the_readers_own_words(lang: str) -> None:
    strings = load_strings(lang)
    for command in ("talk", "forget", "declare"):
        assert f"/{localise(lang, command)} " in strings["help.employee"], command
        assert f"/{command} " not in strings["help.employee"], command
    for command in ("consent", "close", "claim"):
        assert f"/{localise(lang, command)} " in strings["help.confidant"], command
    consent = aliases().shown_arguments[lang]["consent"]
    assert all(word in strings["consent.usage"] for word in consent.values())
    themes = aliases().shown_arguments[lang]["close"]
    assert all(word in strings["close.usage"] for word in themes.values())


def test_english_help_keeps_the_english_words() -> None:
    strings = load_strings("en")
    assert "/talk " in strings["help.employee"]
    assert "/consent supervisor" in strings["help.confidant"]


def test_telegram_menu_in_the_readers_words() -> None:
    menu = command_menu(Translator())
    assert [name for name, _ in menu["en"]] == list(EMPLOYEE_COMMANDS)
    nl = dict(menu["nl"])
    assert "praten" in nl and "talk" not in nl and "vergeten" in nl
    assert "parler" in dict(menu["fr"])
    for words in menu.values():
        assert all(WORD.fullmatch(name) for name, _ in words)
        assert len({name for name, _ in words}) == len(words)


# ------------------------------------------------------------ through the core


@pytest.mark.parametrize(("typed", "form"), [
    ("/toestemming tussenkomst", "supervisor"),
    ("/consentement conciliation", "reconcile"),
    ("!toestemming preventieadviseur", "advisor"),  # the Matrix habit
    ("/consent supervisor", "supervisor"),
])
async def test_a_confidant_asks_consent_in_their_words(harness: Harness, typed: str,
                                                       form: str) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara", languages="nl")
    emp = harness.person("emp-1", "nl")
    code = await open_case(emp, sara)
    await sara.say(typed)
    assert f"Dossier {code}: de werknemer kreeg de vraag" in sara.last
    harness.clock.current += timedelta(minutes=5)
    await emp.press("Ja, ik ga akkoord")
    async with harness.store.tx() as tx:
        [consent] = (await tx.session.scalars(select(Consent))).all()
    assert consent.form == form and consent.agreed


async def test_a_confidant_closes_in_french_with_accents(harness: Harness) -> None:
    tom = await harness.add_confidant("Tom", "conf-tom", languages="fr")
    emp = harness.person("emp-1", "fr")
    code = await open_case(emp, tom)
    await tom.say("/Clôturer harcèlement_moral")
    assert f"Le dossier {code} est clôturé" in tom.last
    async with harness.store.tx() as tx:
        case = (await tx.session.scalars(select(Case).where(Case.code == code))).one()
    assert case.status == "closed" and case.theme == "bullying"


async def test_a_wrong_localised_argument_gets_the_localised_usage(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara", languages="nl")
    emp = harness.person("emp-1", "nl")
    await open_case(emp, sara)
    await sara.say("/toestemming iedereen")
    assert "/toestemming tussenkomst" in sara.last


async def test_an_employee_talks_and_switches_language_in_their_words(harness: Harness) -> None:
    await harness.add_confidant("Sara", "conf-sara", languages="nl,fr")
    emp = harness.person("emp-1", "nl")
    await emp.say("/start")
    await emp.say("/praten")
    assert emp.last.startswith(Translator().t("nl", "talk.choose"))
    await emp.say("/taal frans")
    assert emp.last == Translator().t("fr", "language.set")
    await emp.say("/aide")
    assert emp.last == load_strings("fr")["help.employee"]
    await emp.say("/help")  # English keeps working
    assert emp.last == load_strings("fr")["help.employee"]
