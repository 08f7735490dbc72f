"""Checks on the information content (nl/fr/en) and on its loader: complete and
consistent pages, correct help-line numbers, crisis detection, and the
organisation override file."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from domain.messages import Menu
from handlers.info import (
    ContentError,
    InfoLibrary,
    Page,
    available_languages,
    normalize_for_matching,
    walk,
)

LANGS = ("nl", "fr", "en")

# The help lines as ../shared/DOMAIN.md lists them; the source of truth for these tests.
DOMAIN_NUMBERS = {
    "emergency": "112",
    "police": "101",
    "tele-onthaal": "106",
    "zelfmoordlijn": "1813",
    "tele-accueil": "107",
    "cps": "0800 32 123",
    "1712": "1712",
    "caw": "caw.be",
    "igvm": "0800 12 800",
    "unia": "0800 12 800",
    "evc": "0800 30 030",
    "zsg": ("seksueelgeweld.be", "violencessexuelles.be"),
}
# Lines DOMAIN.md does not list and whose number could not be confirmed: the
# shipped table must say they are to be checked by the organisation.
UNCONFIRMED = {"chs": "02 648 40 14"}
TO_BE_CHECKED = {"nl": "na te kijken door de organisatie", "fr": "à vérifier par l'organisation",
                 "en": "to be checked by the organisation"}
FREE_WORD = {"nl": "gratis", "fr": "gratuit", "en": "free"}
NOT_CRISIS_LINE = {"nl": "geen crisislijn", "fr": "pas une ligne de crise",
                   "en": "not a crisis line"}
NOT_CRISIS_LINES = {"nl": "geen crisislijnen", "fr": "pas des lignes de crise",
                    "en": "not crisis lines"}
# Lines that are not there day and night, and what the help page must say about when.
LIMITED_HOURS = {
    "nl": {"1712": "werkdagen", "(keuze 1)": "kantooruren", "(keuze 2)": "werkdagen",
           "tele-onthaal.be": "vaste uren", "zelfmoord1813.be": "'s avonds"},
    "fr": {"1712": "jours ouvrables", "(option 1)": "heures de bureau",
           "(option 2)": "jours ouvrables"},
    "en": {"1712": "working days", "(option 1)": "office hours", "(option 2)": "working days",
           "tele-onthaal.be": "fixed hours", "Zelfmoordlijn": "evening"},
}
OPTION_WORD = {"nl": "keuze", "fr": "option", "en": "option"}

# Topics DESIGN.md asks for, by page id.
REQUIRED_PAGES = {
    "confidant",
    "confidant-secrecy",
    "confidant-informal",
    "confidant-referral",
    "confidant-hearing",
    "stress",
    "bullying",
    "sexual",
    "violence",
    "violence-third-parties",
    "conflicts",
    "formal",
    "formal-request",
    "formal-retaliation",
    "help",
    # Issue #12: pages an expert review found missing.
    "discrimination",
    "sexual-violence",
    "stress-return",
    "confidant-contacts",
    "formal-internal",
}


def raw_content(lang: str) -> dict[str, object]:
    """The shipped file as plain TOML, independent of the loader under test."""
    text = (resources.files("handlers") / "content" / f"{lang}.toml").read_text("utf-8")
    return tomllib.loads(text)


@pytest.fixture(scope="module")
def library() -> InfoLibrary:
    return InfoLibrary.load()


def write(tmp_path: Path, text: str, name: str = "org.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def has_number(text: str, number: str) -> bool:
    """Number present as a whole token (so "1712" does not count for "171")."""
    return re.search(rf"(?<![\d]){re.escape(number)}(?![\d])", text) is not None


# ---------------------------------------------------------------- shipped files


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_has_title_and_body_in_every_language(lang: str) -> None:
    reference = raw_content("nl")["pages"]
    pages = raw_content(lang)["pages"]
    assert isinstance(reference, dict) and isinstance(pages, dict)
    assert set(pages) == set(reference), f"{lang}: page ids differ from nl"
    for page_id in reference:
        page = pages[page_id]
        assert isinstance(page["title"], str) and page["title"].strip(), (lang, page_id)
        assert isinstance(page["body"], str) and page["body"].strip(), (lang, page_id)
        assert page.get("parent", "") == reference[page_id].get("parent", ""), (lang, page_id)


def test_required_topics_exist(library: InfoLibrary) -> None:
    for lang in LANGS:
        ids = {p.id for p in walk(library, lang)}
        assert REQUIRED_PAGES <= ids, REQUIRED_PAGES - ids


def test_shipped_languages_are_discovered() -> None:
    assert {"nl", "fr", "en"} <= set(available_languages())


@pytest.mark.parametrize("lang", LANGS)
def test_tree_depth_and_parents(library: InfoLibrary, lang: str) -> None:
    pages = {p.id: p for p in walk(library, lang)}
    assert set(pages) == set(library.page_ids()), "some page cannot be reached from the root"
    for page in pages.values():
        depth = 1  # the root menu
        current: Page | None = page
        while current is not None:
            depth += 1
            current = pages[current.parent] if current.parent else None
            assert depth <= 3, f"{page.id} is deeper than 3 levels"
        if page.parent:
            assert library.parent(lang, page.id) in pages


def test_root_and_children_in_order(library: InfoLibrary) -> None:
    root = library.root("nl")
    assert root[0].id == "confidant" and root[-1].id == "help"
    assert [p.order for p in root] == sorted(p.order for p in root)
    kids = [p.id for p in library.children("nl", "confidant")]
    assert kids == [
        "confidant-secrecy",
        "confidant-informal",
        "confidant-referral",
        "confidant-hearing",
        "confidant-contacts",
    ]
    assert [p.id for p in library.children("nl", "formal")] == [
        "formal-request", "formal-retaliation", "formal-internal", "formal-outside"]
    assert library.children("nl", "no-such-page") == []
    assert library.page("nl", "no-such-page") is None
    assert library.parent("nl", "confidant") is None
    assert library.parent("fr", "formal-request") == "formal"


def test_unknown_language_falls_back_to_reference(library: InfoLibrary) -> None:
    assert library.root("de") == library.root("nl")
    assert library.emergency_text("de") == library.emergency_text("nl")


def test_menu_builds_one_button_per_page(library: InfoLibrary) -> None:
    menu = library.menu("fr", None, lambda page_id: f"info:{page_id}")
    assert isinstance(menu, Menu)
    labels = [b.label for b in menu.buttons()]
    assert labels == [p.title for p in library.root("fr")]
    assert menu.buttons()[0].token == "info:confidant"
    sub = library.menu("en", "violence", lambda page_id: page_id)
    assert [b.token for b in sub.buttons()] == ["violence-third-parties"]


def number_parts(number: str) -> list[str]:
    """What a table entry's number is made of: "0800 12 800 (option 1)" → the number;
    "a.be / b.be" → both sites."""
    return [re.sub(r"\s*\(.*\)$", "", part).strip() for part in number.split(" / ")]


@pytest.mark.parametrize("lang", LANGS)
def test_help_page_lists_every_help_line(library: InfoLibrary, lang: str) -> None:
    page = library.page(lang, "help")
    assert page is not None
    for line in library.helplines(lang):
        for part in number_parts(line.number):
            assert has_number(page.body, part), f"{lang}: {line.id} {part} missing"
    option = OPTION_WORD[lang]
    assert f"0800 12 800 ({option} 1)" in page.body
    assert f"0800 12 800 ({option} 2)" in page.body


@pytest.mark.parametrize("lang", LANGS)
def test_structured_help_lines_match_domain(library: InfoLibrary, lang: str) -> None:
    lines = {h.id: h for h in library.helplines(lang)}
    assert set(lines) == set(DOMAIN_NUMBERS) | set(UNCONFIRMED)
    for service, expected in (DOMAIN_NUMBERS | UNCONFIRMED).items():
        for number in (expected,) if isinstance(expected, str) else expected:
            assert number in number_parts(lines[service].number), (lang, service, number)
    option = OPTION_WORD[lang]
    assert lines["igvm"].number.endswith(f"({option} 1)")
    assert lines["unia"].number.endswith(f"({option} 2)")


@pytest.mark.parametrize("lang", LANGS)
def test_unconfirmed_lines_are_marked_for_the_organisation(
    library: InfoLibrary, lang: str
) -> None:
    """A number nobody could confirm must not pass as checked: the table says so."""
    lines = {h.id: h for h in library.helplines(lang)}
    for service in UNCONFIRMED:
        assert TO_BE_CHECKED[lang] in lines[service].note, (lang, service)


@pytest.mark.parametrize("lang", LANGS)
def test_limited_hours_and_no_crisis_lines_are_said(library: InfoLibrary, lang: str) -> None:
    """A person should not call a line at night that only answers in office hours, nor
    mistake an equality body for a crisis line."""
    page = library.page(lang, "help")
    assert page is not None
    lines = page.body.splitlines()
    for needle, hours in LIMITED_HOURS[lang].items():
        matching = [line for line in lines if needle in line]
        assert matching, f"{lang}: no line with {needle!r}"
        assert all(hours in line for line in matching), f"{lang}: {needle!r} lacks {hours!r}"
    plural = NOT_CRISIS_LINES[lang]
    equality = [line for line in lines if f"({OPTION_WORD[lang]} 1)" in line]
    heading = lines[lines.index(equality[0]) - 1].lower()
    assert plural in heading, f"{lang}: the equality bodies are not marked as no crisis lines"
    table = {h.id: h for h in library.helplines(lang)}
    for service in ("igvm", "unia", "caw"):
        assert NOT_CRISIS_LINE[lang] in table[service].note, (lang, service)


@pytest.mark.parametrize("lang", LANGS)
def test_free_numbers_say_free(library: InfoLibrary, lang: str) -> None:
    """0800 numbers cost nothing: every paragraph that gives one says so."""
    texts = [p.body for p in walk(library, lang)] + [library.emergency_text(lang)]
    for text in texts:
        for paragraph in text.split("\n\n"):
            if "0800" in paragraph:
                assert FREE_WORD[lang] in paragraph.lower(), f"{lang}: {paragraph!r}"


# Which lines the urgent message must name, by language: the person's own
# language's lines; English names both sets because none of them answers in English.
EMERGENCY_EXPECTED = {
    "nl": {"112", "101", "106", "1813"},
    "fr": {"112", "101", "107", "0800 32 123", "0800 30 030"},
    "en": {"112", "101", "106", "1813", "107", "0800 32 123", "0800 30 030", "02 648 40 14"},
}


@pytest.mark.parametrize("lang", LANGS)
def test_emergency_text_numbers(library: InfoLibrary, lang: str) -> None:
    text = library.emergency_text(lang)
    for number in EMERGENCY_EXPECTED[lang]:
        assert has_number(text, number), f"{lang}: {number} missing from emergency text"
    others = {"106", "1813", "107", "0800 32 123"} - EMERGENCY_EXPECTED[lang]
    for number in others:
        assert not has_number(text, number), f"{lang}: {number} is the other language's line"


PHONE_RE = re.compile(r"(?<![\d/])(0800(?: \d{2,3}){2}|0\d(?: \d{2,3}){3}|1\d{2,3})(?![\d])")


def numbers_not_in_table(library: InfoLibrary, lang: str) -> set[str]:
    """Phone numbers written in the pages or the urgent-help text that the language's
    help-line table does not hold."""
    table = {m for line in library.helplines(lang) for m in PHONE_RE.findall(line.number)}
    texts = [p.body for p in walk(library, lang)] + [library.emergency_text(lang)]
    found = {m for text in texts for m in PHONE_RE.findall(text)}
    assert found, "the pattern found no numbers at all"
    return found - table


@pytest.mark.parametrize("lang", LANGS)
def test_every_number_in_the_pages_is_in_the_table(library: InfoLibrary, lang: str) -> None:
    """A typo in a number ("0800 32 132") would send a person in crisis to a
    wrong line: every number-like token must be one the help-line table holds
    (and the table is checked against DOMAIN.md above)."""
    assert not numbers_not_in_table(library, lang)


def test_a_mistyped_number_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a page with a number the table lacks is reported."""
    lib = InfoLibrary.load(override=write(
        tmp_path, '[en.pages.help]\nbody = "Call the suicide line: 0800 32 132."\n'))
    assert numbers_not_in_table(lib, "en") == {"0800 32 132"}
    assert not numbers_not_in_table(lib, "nl")


@pytest.mark.parametrize(
    ("lang", "page_id", "needles"),
    [
        ("nl", "confidant-hearing", ["10 kalenderdagen", "/bevestiging"]),
        ("fr", "confidant-hearing", ["10 jours calendrier", "/attestation"]),
        ("en", "confidant-hearing", ["10 calendar days", "/confirmation"]),
        ("nl", "confidant-informal", ["1.", "2.", "3.", "informele psychosociale interventie"]),
        ("fr", "confidant-informal", ["1.", "2.", "3.", "intervention psychosociale informelle"]),
        ("en", "confidant-informal", ["1.", "2.", "3.", "informal psychosocial intervention"]),
        ("nl", "violence-third-parties", ["register van feiten van derden", "/melden", "5 jaar"]),
        ("fr", "violence-third-parties", ["registre de faits de tiers", "/declarer", "5 ans"]),
        ("en", "violence-third-parties", ["register of acts by third parties", "/declare"]),
        ("nl", "confidant-secrecy", ["beroepsgeheim"]),
        ("fr", "confidant-secrecy", ["secret professionnel"]),
        ("fr", "formal", ["conseiller en prévention aspects psychosociaux"]),
        ("nl", "formal", ["preventieadviseur psychosociale aspecten"]),
        ("nl", "formal-retaliation", ["12 maanden"]),
        ("fr", "formal-retaliation", ["12 mois"]),
        ("en", "formal-retaliation", ["12 months"]),
        # Since 1 June 2023: two regimes; the anti-discrimination one already
        # covers an informal report to the confidant, witnesses and supporters.
        ("nl", "formal-retaliation", ["1 juni 2023", "twee regelingen", "informeel meldt bij de "
                                      "vertrouwenspersoon", "getuigen en wie je steunt",
                                      "op een andere manier benadelen"]),
        ("fr", "formal-retaliation", ["1er juin 2023", "deux régimes", "de manière informelle à la "
                                      "personne de confiance", "personnes qui vous soutiennent",
                                      "désavantager d'une autre manière"]),
        ("en", "formal-retaliation", ["1 June 2023", "two regimes", "report it informally to the "
                                      "confidant", "people who support you",
                                      "otherwise disadvantage"]),
        # The formal route is not anonymous.
        ("nl", "formal", ["niet anoniem", "niet eerst de informele weg"]),
        ("fr", "formal", ["pas anonyme", "pas d'abord passer par la voie informelle"]),
        ("en", "formal", ["not anonymous", "do not have to try the informal route first"]),
        ("nl", "formal-request", ["niet anoniem", "en door wie"]),
        ("fr", "formal-request", ["pas anonyme", "et par qui"]),
        ("en", "formal-request", ["not anonymous", "and by whom"]),
        # Which informal forms need the name.
        ("nl", "confidant-informal", ["anoniem blijven", "je naam noemen", "draagt je naam"]),
        ("fr", "confidant-informal", ["rester anonymes", "donner votre nom", "porte votre nom"]),
        ("en", "confidant-informal", ["stay anonymous", "give your name", "carries your name"]),
        # The confirmation is a right after a personal interview.
        ("nl", "confidant-hearing", ["na een persoonlijk gesprek heb je recht"]),
        ("fr", "confidant-hearing", ["après un entretien personnel, vous avez droit"]),
        ("en", "confidant-hearing", ["after a personal interview, you have the right"]),
        # Secrecy is not absolute; the parties have no access to the notes.
        ("nl", "confidant-secrecy", ["niet absoluut", "ernstig en dringend gevaar",
                                     "de partijen", "geen toegang"]),
        ("fr", "confidant-secrecy", ["pas absolu", "danger grave et urgent", "les parties",
                                     "n'ont pas accès"]),
        ("en", "confidant-secrecy", ["not absolute", "serious and urgent danger", "the parties",
                                     "no access"]),
        # Five sources of psychosocial risks.
        ("nl", "stress", ["vijf bronnen", "georganiseerd", "inhoudt", "arbeidsvoorwaarden",
                          "arbeidsomstandigheden", "relaties op het werk"]),
        ("fr", "stress", ["cinq sources", "organisation du travail", "contenu du travail",
                          "conditions de travail", "conditions de vie au travail",
                          "relations au travail"]),
        ("en", "stress", ["five sources", "organised", "what the work involves",
                          "working conditions", "living conditions at work", "relations at work"]),
        # The register is kept at the inspection's disposal.
        ("nl", "violence-third-parties", ["ter beschikking van de inspectie"]),
        ("fr", "violence-third-parties", ["à la disposition de l'inspection"]),
        ("en", "violence-third-parties", ["at the disposal of the labour inspection"]),
        # The Institute handles harassment at work, outside the organisation.
        ("nl", "sexual", ["buiten je organisatie", "op het werk, 0800 12 800"]),
        ("fr", "sexual", ["en dehors de votre organisation", "au travail, 0800 12 800"]),
        ("en", "sexual", ["outside your organisation", "at work, 0800 12 800"]),
        # New pages: discrimination, sexual violence, return to work, contacts, other routes.
        ("nl", "discrimination", ["discriminatiegronden", "1 juni 2023", "informele melding",
                                  "unia, 0800 12 800 (keuze 2)", "instituut"]),
        ("fr", "discrimination", ["critères de discrimination", "1er juin 2023",
                                  "signalement informel", "unia, 0800 12 800 (option 2)",
                                  "institut"]),
        ("en", "discrimination", ["discrimination grounds", "1 june 2023", "informal report",
                                  "unia, 0800 12 800 (option 2)", "institute"]),
        ("nl", "sexual", ["keer kan al genoeg zijn"]),
        ("fr", "sexual", ["une seule fois peut suffire"]),
        ("en", "sexual", ["once can be enough"]),
        ("nl", "sexual-violence", ["zorgcentrum na seksueel geweld", "seksueelgeweld.be",
                                   "violencessexuelles.be", "klacht", "politie", "dag en nacht"]),
        ("fr", "sexual-violence", ["cpvs", "violencessexuelles.be", "seksueelgeweld.be",
                                   "porter plainte", "police", "jour et nuit"]),
        ("en", "sexual-violence", ["care centre", "seksueelgeweld.be", "violencessexuelles.be",
                                   "complaint", "police", "day and night"]),
        ("nl", "stress-return", ["arbeidsarts", "vóór je het werk hervat", "aangepast werk"]),
        ("fr", "stress-return", ["médecin du travail", "avant de reprendre", "travail adapté"]),
        ("en", "stress-return", ["occupational physician", "before you go back", "adapted work"]),
        ("nl", "confidant-contacts", ["arbeidsreglement", "intranet",
                                      "geen voorwaarde voor de formele"]),
        ("fr", "confidant-contacts", ["règlement de travail", "intranet",
                                      "pas une condition pour la voie formelle"]),
        ("en", "confidant-contacts", ["work rules", "intranet",
                                      "not a condition for the formal one"]),
        ("nl", "formal-internal", ["leidinggevende", "cpbw", "vakbondsafgevaardigde"]),
        ("fr", "formal-internal", ["responsable", "cppt", "délégué syndical"]),
        ("en", "formal-internal", ["manager", "committee for prevention and protection at work",
                                   "union delegate"]),
    ],
)
def test_key_facts_present(
    library: InfoLibrary, lang: str, page_id: str, needles: list[str]
) -> None:
    page = library.page(lang, page_id)
    assert page is not None
    for needle in needles:
        assert needle.lower() in page.body.lower(), f"{lang}/{page_id}: {needle!r}"


@pytest.mark.parametrize(("lang", "page_id", "wrong"), [
    ("nl", "sexual", "buiten het werk"),
    ("fr", "sexual", "en dehors du travail"),
    ("en", "sexual", "outside work"),
    # Talking to the confidant does protect in the anti-discrimination regime.
    ("nl", "formal-retaliation", "geeft deze bescherming niet (behalve"),
    ("en", "formal-retaliation", "does not give this protection (except"),
    ("fr", "confidant-secrecy", "le violer"),
    ("nl", "confidant-secrecy", "voor niemand anders toegankelijk"),
    ("fr", "confidant-secrecy", "accessibles à personne"),
    ("en", "confidant-secrecy", "not open to anyone"),
])
def test_corrected_claims_are_gone(
    library: InfoLibrary, lang: str, page_id: str, wrong: str
) -> None:
    """Sentences the expert review found false must not come back."""
    page = library.page(lang, page_id)
    assert page is not None
    assert wrong.lower() not in page.body.lower()


FULL_ADVISOR = {
    "nl": ("preventieadviseur", "preventieadviseur psychosociale aspecten"),
    "fr": ("conseiller en prévention", "conseiller en prévention aspects psychosociaux"),
    "en": ("prevention advisor", "prevention advisor for psychosocial aspects"),
}


@pytest.mark.parametrize("lang", LANGS)
def test_prevention_advisor_named_in_full_first(library: InfoLibrary, lang: str) -> None:
    """A page that speaks of the prevention advisor first gives the full title, so a
    person knows which advisor (not the one for safety or health) to look for."""
    short, full = FULL_ADVISOR[lang]
    for page in walk(library, lang):
        body = page.body.lower()
        first = body.find(short)
        if first >= 0:
            assert body.startswith(full, first), f"{lang}/{page.id}: first mention is not in full"


def test_french_uses_belgian_role_names(library: InfoLibrary) -> None:
    text = " ".join(p.body for p in walk(library, "fr"))
    assert "personne de confiance" in text
    assert "vertrouwenspersoon" not in text


# ---------------------------------------------------------------- crisis detection

CRISIS_POSITIVE = [
    ("nl", "Ik kan niet meer."),
    ("nl", "ik kan niet meer"),
    ("nl", "ik kan niet meer, echt"),
    ("nl", "Ik wil dood"),
    ("nl", "soms denk ik eraan mezelf iets aan te doen"),
    ("nl", "HIJ SLAAT ME!!"),
    ("nl", "wat is het nummer van de zelfmoordlijn?"),
    ("nl", "ik heb zelfmoordgedachten"),
    ("nl", "ik voel me suïcidaal"),
    ("nl", "ik wil er een einde aan maken"),
    ("nl", "Ik zie het niet meer zitten"),
    ("nl", "ik zie het echt niet meer zitten..."),
    ("nl", "ik wil er niet meer zijn"),
    ("nl", "ik trek het niet meer."),
    ("nl", "ik zie geen uitweg meer"),
    ("nl", "het hoeft voor mij niet meer"),
    ("nl", "mijn partner slaat me"),
    ("fr", "Je n'en peux plus"),
    ("fr", "je n’en peux plus"),  # typographic apostrophe
    ("fr", "j en peux plus"),
    ("fr", "je pense au suicide"),
    ("fr", "j'ai envie de mourir"),
    ("fr", "il me frappe"),
    ("fr", "je veux en finir."),
    ("fr", "je veux mettre fin a mes jours"),  # no accent typed
    ("fr", "je ne veux plus vivre"),
    ("fr", "je veux plus vivre"),
    ("fr", "j'ai envie de disparaître"),
    ("fr", "je voudrais disparaitre."),  # no accent typed
    ("fr", "je ne vois plus d'issue"),
    ("fr", "je suis au bout du rouleau"),
    ("fr", "mon mari me frappe"),
    ("en", "I want to kill myself"),
    ("en", "I can't go on."),
    ("en", "i cant go on"),
    ("en", "I can’t go on like this"),
    ("en", "he's hitting me"),
    ("en", "I have been self-harming"),
    ("en", "suicidal thoughts"),
    ("en", "I don't want to be here anymore"),
    ("en", "I just want to disappear"),
    ("en", "my partner hits me"),
    ("en", "I see no way out."),
    # A phrase in another language than the chat's still counts.
    ("nl", "je n'en peux plus"),
    ("fr", "I want to die"),
    ("en", "hij slaat me"),
]

CRISIS_NEGATIVE = [
    ("nl", "ik kan niet meer wachten op de trein"),
    ("nl", "Ik ben doodmoe na die vergadering"),
    ("nl", "ik wil doodgewoon een afspraak maken"),
    ("nl", "Hoe maak ik een afspraak?"),
    ("nl", "mijn collega slaat mijn voorstellen altijd af"),
    ("fr", "je veux en finir avec ce dossier avant vendredi"),
    ("fr", "je suis fatiguée"),
    ("fr", "le dossier a disparu de mon bureau"),
    ("fr", "il faut faire disparaître ces taches"),
    ("nl", "ik zie het niet zitten om morgen te vergaderen"),
    ("nl", "ik hou het niet meer vol tot de pauze zonder koffie"),
    ("en", "I don't want to be here on Friday"),
    ("en", "there is no way out of this meeting room"),
    ("en", "I can't go on Friday, can we move the talk?"),
    ("en", "I'm fine, just a question about the register"),
    ("en", "my manager keeps killing my ideas"),
    ("en", ""),
]


@pytest.mark.parametrize(("lang", "text"), CRISIS_POSITIVE)
def test_crisis_detected(library: InfoLibrary, lang: str, text: str) -> None:
    assert library.is_crisis(lang, text)


@pytest.mark.parametrize(("lang", "text"), CRISIS_NEGATIVE)
def test_crisis_not_detected(library: InfoLibrary, lang: str, text: str) -> None:
    assert not library.is_crisis(lang, text)


def test_crisis_ignores_none(library: InfoLibrary) -> None:
    assert not library.is_crisis("nl", None)


@pytest.mark.parametrize("lang", LANGS)
def test_every_crisis_word_matches_itself(library: InfoLibrary, lang: str) -> None:
    """An entry that cannot match its own wording would silently never fire."""
    words = library.crisis_words(lang)
    assert len(words) >= 10
    for word in words:
        assert library.is_crisis(lang, word.rstrip("*$")), word


def test_normalization_folds_case_accents_and_apostrophes() -> None:
    assert normalize_for_matching("Je N’EN peux plus!") == "je n en peux plus |"
    assert normalize_for_matching("suïcidaal") == "suicidaal"
    assert normalize_for_matching("  a\t\nb ") == "a | b"


# ---------------------------------------------------------------- organisation override

GOOD_OVERRIDE = """
[nl.pages.advisor]
title = "Onze preventieadviseur"
body = "Mevrouw Peeters, bereikbaar via de interne preventiedienst."
parent = "formal"
order = 5

[fr.pages.advisor]
title = "Notre conseillère en prévention"
body = "Madame Peeters, joignable via le service interne de prévention."
parent = "formal"
order = 5

[en.pages.advisor]
title = "Our prevention advisor"
body = "Ms Peeters, reachable through the internal prevention service."
parent = "formal"
order = 5

[nl.pages.help]
body = "Bel ons eigen nummer 02 000 00 00 of 112."

[nl.crisis]
words = ["code rood"]

[en.emergency]
text = "Call 112 now."

[[nl.helplines]]
id = "eap"
name = "Employee assistance"
number = "0800 00 000"
"""


def test_override_adds_and_replaces_pages(tmp_path: Path) -> None:
    lib = InfoLibrary.load(override=write(tmp_path, GOOD_OVERRIDE))
    for lang in LANGS:
        kids = lib.children(lang, "formal")
        assert kids[0].id == "advisor", [k.id for k in kids]
        assert lib.parent(lang, "advisor") == "formal"
    help_nl = lib.page("nl", "help")
    assert help_nl is not None
    assert help_nl.body.startswith("Bel ons eigen nummer")
    assert help_nl.title == "Hulp en noodnummers"  # untouched field kept
    help_fr = lib.page("fr", "help")
    assert help_fr is not None and "107" in help_fr.body  # other languages untouched
    assert lib.emergency_text("en") == "Call 112 now."
    assert "1813" in lib.emergency_text("nl")
    assert lib.is_crisis("fr", "het is code rood")
    assert lib.is_crisis("nl", "ik kan niet meer")  # shipped words kept
    assert "eap" in {h.id for h in lib.helplines("nl")}
    assert "eap" not in {h.id for h in lib.helplines("fr")}


def test_override_for_a_subset_of_languages(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[nl.pages.advisor]\ntitle = "A"\nbody = "B"\n'
        '[fr.crisis]\nwords = ["je coule$"]\n',
    )
    lib = InfoLibrary.load(override=path, languages=["nl"])
    assert lib.languages == ("nl",)
    assert [p.id for p in lib.root("nl")][-1] == "advisor"
    # Crisis words of languages not offered still count, shipped and added.
    assert lib.is_crisis("nl", "je n'en peux plus")
    assert lib.is_crisis("nl", "I want to kill myself")
    assert lib.is_crisis("nl", "je coule.")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[nl.pages.advisor]\nbody = "B"\n', "nl.pages.advisor.title"),
        ('[nl.pages.help]\ntitel = "B"\n', "nl.pages.help.titel"),
        ('[nl.pages.help]\nbody = ""\n', "nl.pages.help.body"),
        ('[nl.pages.help]\norder = "first"\n', "nl.pages.help.order"),
        ('[nl.pages.help]\nparent = "nowhere"\n', "nl.pages.help.parent"),
        ('[nl.pages.help]\nparent = "help"\n', "nl.pages.help.parent"),
        ('[nl.pages.help]\nparent = "confidant-secrecy"\n', "nl.pages.help.parent"),
        ('[nl.pages."Bad Id"]\ntitle = "A"\nbody = "B"\n', "nl.pages.Bad Id"),
        ('[nl.pages]\nhelp = "text"\n', "nl.pages.help"),
        ('[nl.crisis]\nwords = "suicide"\n', "nl.crisis.words"),
        ('[nl.crisis]\nwords = ["???"]\n', "nl.crisis.words[0]"),
        ('[nl.crisis]\nwords = ["a*b"]\n', "nl.crisis.words[0]"),
        ("[nl.emergency]\ntext = 3\n", "nl.emergency.text"),
        ('[nl.emergency]\nbody = "x"\n', "nl.emergency.body"),
        ('[[nl.helplines]]\nid = "x"\nname = "X"\n', "nl.helplines[0].number"),
        ('[nl.glossary]\nx = "y"\n', "nl.glossary"),
        ('[de.pages.help]\nbody = "Hilfe"\n', "de"),
        ('nl = "oops"\n', "nl"),
        # Added for one language only while all three are in use:
        ('[nl.pages.advisor]\ntitle = "A"\nbody = "B"\n', "fr.pages.advisor"),
        ("[fr.pages.help]\norder = 1\n", "fr.pages.help"),
        (f'[nl.pages.help]\ntitle = "{"x" * 61}"\n', "nl.pages.help.title"),
    ],
)
def test_malformed_override_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ContentError) as info:
        InfoLibrary.load(override=path)
    assert info.value.file == str(path)
    assert info.value.key == key
    assert str(info.value).startswith(f"{path}: {key}: ")


def test_override_for_unused_language_is_still_checked(tmp_path: Path) -> None:
    path = write(tmp_path, '[fr.pages.help]\nparent = "nowhere"\n')
    with pytest.raises(ContentError, match=r"fr\.pages\.help\.parent"):
        InfoLibrary.load(override=path, languages=["nl"])


def test_override_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[nl.pages.help\nbody = 1\n")
    with pytest.raises(ContentError, match="not valid TOML") as info:
        InfoLibrary.load(override=path)
    assert info.value.file == str(path)


def test_override_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ContentError, match="cannot read") as info:
        InfoLibrary.load(override=path)
    assert info.value.file == str(path)


def test_unknown_language_refused() -> None:
    with pytest.raises(ContentError, match="no content for this language"):
        InfoLibrary.load(languages=["nl", "de"])
    with pytest.raises(ContentError):
        InfoLibrary.load(languages=[])
    with pytest.raises(ContentError, match="not a language code"):
        InfoLibrary.load(languages=["../x"])


def test_broken_shipped_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A translator dropping a page from fr.toml must be told which file and page."""
    import handlers.info as info

    real = info._read_shipped

    def without_conflicts(lang: str) -> tuple[str, dict[str, object]]:
        label, data = real(lang)
        if lang == "fr":
            pages = data["pages"]
            assert isinstance(pages, dict)
            del pages["conflicts"]
        return label, data

    monkeypatch.setattr(info, "_read_shipped", without_conflicts)
    with pytest.raises(ContentError) as err:
        InfoLibrary.load()
    assert err.value.file == "handlers/content/fr.toml"
    assert err.value.key == "pages.conflicts"
    assert "missing" in err.value.problem


# ---------------------------------------------------------------- one word per concept


def every_text(lang: str) -> str:
    """All a reader of ``lang`` can be shown: pages, urgent help and UI strings."""
    from handlers.i18n import load_strings

    lib = InfoLibrary.load()
    parts = [f"{p.title}\n{p.body}" for p in walk(lib, lang)] + [lib.emergency_text(lang)]
    return "\n".join(parts + list(load_strings(lang).values()))


@pytest.mark.parametrize(("lang", "wrong"), [
    ("fr", "comportement sexuel indésirable"),  # the legal term is harcèlement sexuel au travail
    ("fr", "le violer"),  # not said of breaching secrecy
    ("fr", "vous pouvez attendre une réponse"),
    ("nl", "pesterijen"),  # pesten throughout
    ("nl", "verzetten"),  # verplaatsen throughout
    ("nl", "ten laatste binnen"),
    ("en", "at the latest within"),
])
def test_words_the_review_replaced_are_gone(lang: str, wrong: str) -> None:
    assert wrong not in every_text(lang).lower()


def test_one_legal_term_for_sexual_harassment_in_french(library: InfoLibrary) -> None:
    from handlers.i18n import load_strings

    page = library.page("fr", "sexual")
    assert page is not None and page.title == "Harcèlement sexuel au travail"
    assert page.body.startswith("Le harcèlement sexuel au travail")
    assert load_strings("fr")["theme.sexual"] == "harcèlement sexuel au travail"
    assert "vous recevrez une réponse à partir du" in load_strings("fr")["case.off_duty"].lower()


def test_english_names_the_federal_term_once() -> None:
    assert every_text("en").count("confidential counsellor") == 1
