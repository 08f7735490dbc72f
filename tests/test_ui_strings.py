"""Parity checks on the user-facing strings (``handlers/content/ui*.<lang>.toml``).

Every English strings file has a Dutch and a French twin with the same keys,
the same placeholders and the same command names; no string is empty; every
key the handlers ask for exists; dates are shown in Brussels time in every
language, summer and winter alike.
"""

from __future__ import annotations

import ast
import re
import string
import tomllib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import handlers
from domain.vocabulary import CLOSE_THEMES, SUPPORTED_LANGUAGES, ConsentForm, ShiftKind
from handlers.aliases import localise, resolve
from handlers.commands import EMPLOYEE_COMMANDS
from handlers.declare import STEPS
from handlers.i18n import Translator, load_strings

HANDLERS = Path(handlers.__file__).parent
CONTENT = HANDLERS / "content"
OTHER_LANGS = tuple(lang for lang in SUPPORTED_LANGUAGES if lang != "en")
EN_FILES = sorted(p.name for p in CONTENT.glob("ui*.en.toml"))



# Values that keys built with an f-string (``f"theme.{t}"`` → pattern ``theme.{}``)
# can take.  A new f-string key must be added here, so that its keys are checked too.
DYNAMIC_KEYS: dict[str, tuple[str, ...]] = {
    "weekday.{}": tuple(str(i) for i in range(7)),
    "duty.kind.{}": tuple(ShiftKind),
    "consent.ask.{}": tuple(ConsentForm),
    "consent.form.{}": tuple(ConsentForm),
    "theme.{}": CLOSE_THEMES,
    "declare.ask.{}": tuple(dict.fromkeys((*STEPS, "what", "when", "where", "identity", "name"))),
    "commands.{}": EMPLOYEE_COMMANDS,
    "appt.remind_{}_confidant": ("day", "hour"),
    "appt.remind_{}_employee": ("day", "hour"),
}

# Keys whose text is legitimately the same in another language as in English
# (pure placeholders, loanwords).  Anything else identical is an untranslated copy.
SAME_AS_ENGLISH: dict[str, set[str]] = {
    "nl": {"relay.to_confidant", "relay.to_employee", "menu.privacy", "theme.conflict",
           "case.usage", "claim.usage",
           # the admin console's placeholder-only labels
           "webadmin.figures.bar", "webadmin.figures.share", "webadmin.rota.shift_label"},
    "fr": {"relay.to_confidant", "notify.urgent_flag", "relay.urgent",
           "webadmin.figures.share", "webadmin.nav.absences", "webadmin.absences.title",
           "webadmin.confidants.actions", "webadmin.rooms.site"},
}

KEY_SHAPE = re.compile(r"[a-z_]+(?:\.[a-z0-9_]+)+")
COMMAND = re.compile(r"(?<![\w/])/[a-z_]+")


def flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys with their raw values, so that non-string leaves are seen too."""
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            yield from flatten(value, full)
        else:
            yield full, value


def load_file(name: str) -> dict[str, Any]:
    """One strings file as a flat mapping; a TOML syntax error fails the test with its file."""
    try:
        data = tomllib.loads((CONTENT / name).read_text("utf-8"))
    except tomllib.TOMLDecodeError as err:
        pytest.fail(f"{name}: {err}")
    return dict(flatten(data))


def text_of(value: Any) -> str:
    """A value as the Translator sees it (lists of lines are joined)."""
    return "\n".join(value) if isinstance(value, list) else str(value)


def fields(template: str) -> list[str]:
    """The placeholder names of a template, sorted, with repetitions."""
    return sorted(name for _, name, _, _ in string.Formatter().parse(template)
                  if name is not None)


def twin(en_name: str, lang: str) -> str:
    """``ui-area.en.toml`` → ``ui-area.<lang>.toml``."""
    return en_name.removesuffix(".en.toml") + f".{lang}.toml"


def test_english_strings_exist() -> None:
    """Guard: the parametrized tests below would pass vacuously without files."""
    assert "ui.en.toml" in EN_FILES
    assert len(load_strings("en")) > 100


@pytest.mark.parametrize("en_name", EN_FILES)
@pytest.mark.parametrize("lang", OTHER_LANGS)
def test_every_english_file_has_a_translation(en_name: str, lang: str) -> None:
    """A feature area added in English only would show English (or nothing) to others."""
    assert (CONTENT / twin(en_name, lang)).is_file(), \
        f"{twin(en_name, lang)} is missing (translation of {en_name})"


@pytest.mark.parametrize("lang", OTHER_LANGS)
def test_no_translation_without_english(lang: str) -> None:
    """A stray nl/fr file (renamed area) would silently add keys English lacks."""
    en_twins = {twin(name, lang) for name in EN_FILES}
    stray = sorted(p.name for p in CONTENT.glob(f"ui*.{lang}.toml") if p.name not in en_twins)
    assert not stray, f"no English file for {stray}"


@pytest.mark.parametrize("en_name", EN_FILES)
@pytest.mark.parametrize("lang", OTHER_LANGS)
def test_same_keys_as_english(en_name: str, lang: str) -> None:
    """Fallback at run time hides a missing key from the person; this test does not."""
    other = twin(en_name, lang)
    if not (CONTENT / other).is_file():
        pytest.fail(f"{other} is missing")
    en, tr = load_file(en_name), load_file(other)
    missing = sorted(set(en) - set(tr))
    extra = sorted(set(tr) - set(en))
    assert not missing, f"{other}: missing keys {missing}"
    assert not extra, f"{other}: keys not in {en_name}: {extra}"


@pytest.mark.parametrize("en_name", EN_FILES)
@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_values_are_nonempty_strings(en_name: str, lang: str) -> None:
    """An empty or non-text value would send a blank message or be dropped by the loader."""
    name = twin(en_name, lang)
    if not (CONTENT / name).is_file():
        pytest.fail(f"{name} is missing")
    problems = []
    for key, value in load_file(name).items():
        is_lines = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not (isinstance(value, str) or is_lines):
            problems.append(f"{key} is not text")
        elif not text_of(value).strip():
            problems.append(f"{key} is empty")
    assert not problems, f"{name}: {problems}"


@pytest.mark.parametrize("lang", OTHER_LANGS)
def test_placeholders_match_english(lang: str) -> None:
    """A renamed placeholder raises KeyError when the string is sent; a dropped one loses data."""
    en, tr = load_strings("en"), load_strings(lang)
    wrong = [f"{key}: en {fields(en[key])} vs {lang} {fields(tr[key])}"
             for key in en if key in tr and fields(en[key]) != fields(tr[key])]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_every_string_formats(lang: str) -> None:
    """A stray brace in running text breaks str.format for the whole message."""
    broken = []
    for key, template in load_strings(lang).items():
        try:
            template.format(**({"org": "x"} | {name: "x" for name in fields(template)}))
        except (ValueError, KeyError, IndexError) as err:
            broken.append(f"{key}: {err!r}")
    assert not broken, f"{lang}: {broken}"


def commands_meant(text: str) -> set[str]:
    """The English commands the command words in ``text`` stand for."""
    return {resolve(word[1:], "")[0] for word in COMMAND.findall(text)}


@pytest.mark.parametrize("lang", OTHER_LANGS)
def test_command_words_mean_the_same_commands(lang: str) -> None:
    """/talk may read /praten or /parler, but each text must name the same
    commands as its English original, in words the bot understands."""
    en, tr = load_strings("en"), load_strings(lang)
    wrong = [f"{key}: en {sorted(commands_meant(en[key]))} vs {lang} "
             f"{sorted(commands_meant(tr[key]))}"
             for key in en if key in tr and commands_meant(en[key]) != commands_meant(tr[key])]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("lang", OTHER_LANGS)
def test_command_words_are_the_readers_own(lang: str) -> None:
    """Where the reader's language has its own word for a command, the texts use it."""
    english = [f"{key}: {word}" for key, text in load_strings(lang).items()
               for word in COMMAND.findall(text)
               if localise(lang, word[1:]) != word[1:]]
    assert not english, english


@pytest.mark.parametrize("lang", OTHER_LANGS)
def test_translated_not_copied(lang: str) -> None:
    """Copying English into nl/fr makes the parity tests pass while the person reads English."""
    en, tr = load_strings("en"), load_strings(lang)
    copied = sorted(key for key in en
                    if tr.get(key) == en[key] and key not in SAME_AS_ENGLISH[lang])
    assert not copied, f"{lang}: identical to English (translate, or list in SAME_AS_ENGLISH): " \
        f"{copied}"


@pytest.mark.parametrize(("lang", "word"),
                         [("nl", "Nederlands"), ("fr", "français"), ("en", "English")])
def test_language_set_names_its_language(lang: str, word: str) -> None:
    """After /language the confirmation must be in, and name, the chosen language."""
    assert word in load_strings(lang)["language.set"]


NAMED = {"nl": "wie je bent", "fr": "qui vous êtes", "en": "who you are"}
NOT_ANONYMOUS = {"nl": "niet anoniem", "fr": "pas anonyme", "en": "not anonymous"}
SIGNED_NAME = {"nl": "je naam", "fr": "votre nom", "en": "your name"}


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_consent_questions_say_when_the_name_is_given(lang: str) -> None:
    """An intervention or a reconciliation cannot stay anonymous, a formal request is not
    anonymous, and the signed record carries the name: the employee is told before saying yes."""
    strings = load_strings(lang)
    assert NAMED[lang] in strings["consent.ask.supervisor"]
    assert NAMED[lang] in strings["consent.ask.reconcile"]
    assert NOT_ANONYMOUS[lang] in strings["consent.ask.advisor"]
    assert SIGNED_NAME[lang] in strings["consent.thanks_yes"]


CONFIDANT_WORD = {"nl": "vertrouwenspersoon", "fr": "personne de confiance", "en": "confidant"}
FORGET_KEEPS = {"nl": ("register", "5 jaar", "chat-apps", "anonieme tellingen"),
                "fr": ("registre", "5 ans", "applications de chat", "comptages anonymes"),
                "en": ("register", "5 years", "chat apps", "anonymous counters")}
DECLARE_BEFORE = {"nl": ("preventiedienst", "geen klacht", "/vergeten"),
                  "fr": ("service de prévention", "pas une plainte", "/oublier"),
                  "en": ("prevention service", "not a complaint", "/forget")}
USUALLY = {"nl": "meestal", "fr": "en général", "en": "usually"}
AT_THE_LATEST = {"nl": "ten laatste", "fr": "au plus tard", "en": "at the latest"}
IDENTIFIERS = {"nl": ("wat je schrijft", "stem", "taal", "app", ".doc", "rtf"),
               "fr": ("ce que vous écrivez", "voix", "langue", "application", ".doc", "rtf"),
               "en": ("what you write", "voice", "language", "app", ".doc", "rtf")}


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_calendar_entry_is_neutral(lang: str) -> None:
    """A calendar synchronised to a phone or shared with colleagues must not say
    what the appointment is, nor carry the case code."""
    strings = load_strings(lang)
    for key in ("appt.ics.summary", "appt.ics.description"):
        assert "{code}" not in strings[key], key
        assert CONFIDANT_WORD[lang] not in strings[key].lower(), key


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_forget_and_declare_say_what_stays(lang: str) -> None:
    """/forget cannot erase the register, delivered copies or counters, and says so
    before the person confirms; /declare says, before the intake, who reads the
    register, that it is no complaint and that /forget cannot remove it."""
    strings = load_strings(lang)
    for needle in FORGET_KEEPS[lang]:
        assert needle in strings["forget.confirm"], needle
        assert needle in strings["privacy.forget"], needle
    for needle in DECLARE_BEFORE[lang]:
        assert needle in strings["declare.intro"], needle


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_no_promise_of_an_answer_in_time(lang: str) -> None:
    """The bot cannot make a confidant answer: it tells the employee usually, never at
    the latest (the legal deadline confidants are told of is another matter)."""
    strings = load_strings(lang)
    for key in ("case.on_duty", "case.on_duty_chosen", "case.no_rota"):
        assert USUALLY[lang] in strings[key], key
        assert AT_THE_LATEST[lang] not in strings[key], key


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_never_who_you_are_says_what_still_can_tell(lang: str) -> None:
    strings = load_strings(lang)
    for needle in IDENTIFIERS[lang]:
        assert needle in strings["privacy.identify"].lower(), needle


# ------------------------------------------------------------ keys used in code

def _is_lookup(call: ast.Call) -> bool:
    """``t(...)``, ``ctx.t(...)``, ``self.tr.t(...)``, ``UserError(...)``, or the
    admin service's ``AdminError(...)`` and ``Problem(...)``."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else \
        func.attr if isinstance(func, ast.Attribute) else ""
    return name in ("t", "UserError", "AdminError", "Problem")


def _key_args(call: ast.Call) -> list[ast.Constant | ast.JoinedStr]:
    """The argument that carries the key: the first for ``ctx.t``/``UserError``, the
    second for ``Translator.t(lang, key)``."""
    args = list(call.args) + [kw.value for kw in call.keywords if kw.arg == "key"]
    func = call.func
    if isinstance(func, ast.Name) and func.id in ("AdminError", "Problem"):
        args = args[:1]  # the key; then the English reason for the CLI, not a key
    found: list[ast.Constant | ast.JoinedStr] = []
    todo: list[ast.AST] = list(args)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.JoinedStr):
            found.append(node)  # its literal parts are not keys on their own
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if KEY_SHAPE.fullmatch(node.value):
                found.append(node)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return found


def _expand(node: ast.JoinedStr) -> tuple[str, list[str]]:
    """Every key an f-string key can produce, from DYNAMIC_KEYS (none if unknown)."""
    pattern, holes = "", 0
    for part in node.values:
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            pattern += part.value.replace("{", "{{").replace("}", "}}")
        else:
            pattern, holes = pattern + "{}", holes + 1
    if holes != 1:
        return ast.unparse(node), []
    return ast.unparse(node), [pattern.format(value) for value in DYNAMIC_KEYS.get(pattern, ())]


def _plain_args(call: ast.Call) -> Iterator[ast.expr]:
    """String arguments of a call that is not a lookup (``audit.record(…, "case.claimed")``,
    ``getLogger("confidant.core")``): event kinds and names, not message keys."""
    for arg in [*call.args, *(kw.value for kw in call.keywords)]:
        yield from (arg.body, arg.orelse) if isinstance(arg, ast.IfExp) else (arg,)


def used_keys() -> tuple[dict[str, set[str]], list[str]]:
    """Keys looked up in handlers/*.py (key → places), and f-string keys not understood."""
    sections = {key.split(".")[0] for key in load_strings("en")}
    keys: dict[str, set[str]] = {}
    unknown: list[str] = []
    for path in sorted(HANDLERS.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        not_keys = {id(arg) for node in ast.walk(tree)
                    if isinstance(node, ast.Call) and not _is_lookup(node)
                    for arg in _plain_args(node)}
        not_keys |= {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                     for part in node.values}
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and _is_lookup(node):
                for arg in _key_args(node):
                    if isinstance(arg, ast.JoinedStr):
                        source, expanded = _expand(arg)
                        if not expanded:
                            unknown.append(f"{where} {source}")
                        for key in expanded:
                            keys.setdefault(key, set()).add(where)
                    else:
                        keys.setdefault(str(arg.value), set()).add(where)
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and KEY_SHAPE.fullmatch(node.value)
                  and node.value.split(".")[0] in sections and id(node) not in not_keys):
                # keys chosen first and looked up later: ``key = "case.on_duty"``
                keys.setdefault(node.value, set()).add(where)
    return keys, unknown


def test_source_scan_finds_keys() -> None:
    """Guard: a scanner that finds nothing would make the next test pass vacuously."""
    keys, _ = used_keys()
    for expected in ("welcome.first", "case.unknown", "theme.stress", "weekday.6",
                     "declare.ask.name", "consent.form.advisor", "heard.late"):
        assert expected in keys, f"scanner missed {expected}"


def test_every_key_used_in_handlers_exists() -> None:
    """A key typo shows up only when that rare path runs, in front of a person in distress."""
    keys, unknown = used_keys()
    assert not unknown, f"f-string keys with no known values (add to DYNAMIC_KEYS): {unknown}"
    en = load_strings("en")
    missing = sorted(f"{key} (used at {', '.join(sorted(places))})"
                     for key, places in keys.items() if key not in en)
    assert not missing, "keys used in handlers/ but not in ui*.en.toml:\n" + "\n".join(missing)


# ------------------------------------------------------------ dates and times

BRUSSELS_CASES = [
    # summer: CEST, UTC+2
    (datetime(2024, 7, 15, 12, 0, tzinfo=UTC), {
        "nl": ("ma 15 jul, 14:00", "maandag 15 juli 2024, 14:00"),
        "fr": ("lun. 15 juil., 14:00", "lundi 15 juillet 2024, 14:00"),
        "en": ("Mon 15 Jul, 14:00", "Monday 15 July 2024, 14:00"),
    }),
    # winter: CET, UTC+1
    (datetime(2024, 1, 15, 12, 0, tzinfo=UTC), {
        "nl": ("ma 15 jan, 13:00", "maandag 15 januari 2024, 13:00"),
        "fr": ("lun. 15 janv., 13:00", "lundi 15 janvier 2024, 13:00"),
        "en": ("Mon 15 Jan, 13:00", "Monday 15 January 2024, 13:00"),
    }),
    # late evening UTC in summer is already the next day in Brussels
    (datetime(2024, 6, 30, 22, 30, tzinfo=UTC), {
        "nl": ("ma 1 jul, 00:30", "maandag 1 juli 2024, 00:30"),
        "fr": ("lun. 1 juil., 00:30", "lundi 1 juillet 2024, 00:30"),
        "en": ("Mon 1 Jul, 00:30", "Monday 1 July 2024, 00:30"),
    }),
]


@pytest.mark.parametrize(("moment", "expected"), BRUSSELS_CASES,
                         ids=["summer-CEST", "winter-CET", "summer-next-day"])
@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_when_in_brussels_time(lang: str, moment: datetime,
                               expected: dict[str, tuple[str, str]]) -> None:
    """Appointments and deadlines must show the hour people in Brussels live by."""
    tr = Translator(timezone="Europe/Brussels")
    medium, long = expected[lang]
    assert tr.when(lang, moment) == medium
    assert tr.when(lang, moment, style="long") == long


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_when_across_the_spring_change(lang: str) -> None:
    """One UTC minute apart across the DST switch: 01:59 CET, then 03:00 CEST."""
    tr = Translator(timezone="Europe/Brussels")
    before = tr.when(lang, datetime(2024, 3, 31, 0, 59, tzinfo=UTC))
    after = tr.when(lang, datetime(2024, 3, 31, 1, 0, tzinfo=UTC))
    assert before.endswith("01:59") and after.endswith("03:00"), (before, after)
