"""The privacy notice says "end-to-end encrypted" only when the whole route of
that conversation is: the employee on Matrix and every confidant who can
read the case reached on Matrix alone.  The web chat is "encrypted on the
way" only over HTTPS.  Each test reads the notice an employee really gets
from the core (``/start`` or ``/privacy``) for one combination of channels."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.app import core_settings
from bot.config import load_config
from domain.vocabulary import SUPPORTED_LANGUAGES
from handlers.i18n import load_strings
from handlers.privacy_notice import Route, encryption_keys
from tests.support.memory_channel import Harness, Person, make_harness

ROOT = Path(__file__).resolve().parent.parent
EN = load_strings("en")

CLAIMS_E2E = "this conversation is end-to-end encrypted"
DENIES_E2E = "this conversation is not end-to-end encrypted"


async def make(tmp_path: Path, **settings: object) -> Harness:
    return await make_harness(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", tmp_path, **settings)


@pytest_asyncio.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make(tmp_path)
    yield harness
    await harness.store.close()


async def notice(emp: Person) -> str:
    """What /privacy says to this employee now."""
    emp.clear()
    await emp.say("/privacy")
    text = emp.last
    assert text.startswith(EN["privacy.title"]), text
    return text


def says(text: str, *phrases: str) -> None:
    for phrase in phrases:
        assert phrase.lower() in text.lower(), f"{phrase!r} not in:\n{text}"


def never(text: str, *phrases: str) -> None:
    for phrase in phrases:
        assert phrase.lower() not in text.lower(), f"{phrase!r} in:\n{text}"


# ------------------------------------------------------------ Matrix employee


async def test_matrix_employee_with_matrix_only_confidants_is_end_to_end(h: Harness) -> None:
    await h.add_confidant("Sara", "@sara:hs", channels=("matrix",))
    await h.add_confidant("Tom", "@tom:hs", channels=("matrix",))
    emp = h.person("@emp:hs", "en", channel="matrix")
    await emp.say("/start")
    first = emp.texts[1]
    says(first, CLAIMS_E2E, "reads it on Matrix, end-to-end encrypted")
    never(first, DENIES_E2E, "Telegram")
    await emp.say("/talk")
    await emp.press("first available")
    says(await notice(emp), CLAIMS_E2E)


async def test_matrix_employee_with_a_telegram_confidant_is_not_end_to_end(h: Harness) -> None:
    await h.add_confidant("Sara", "@sara:hs", channels=("matrix",))
    await h.add_confidant("Tom", "7001", channels=("telegram",))
    emp = h.person("@emp:hs", "en", channel="matrix")
    await emp.say("/start")
    text = emp.texts[1]
    says(text, DENIES_E2E, "Between you and the bot, Matrix is end-to-end encrypted",
         "uses Telegram", "Telegram's servers can read")
    never(text, CLAIMS_E2E)


async def test_the_notice_follows_the_case_from_waiting_to_claimed(h: Harness) -> None:
    """Before a claim every candidate can read the case; after it only the one
    who claimed it, so the notice changes with the case, and again on handover."""
    sara = await h.add_confidant("Sara", "@sara:hs", channels=("matrix",))
    await h.add_confidant("Tom", "7001", channels=("telegram",))
    emp = h.person("@emp:hs", "en", channel="matrix")
    await emp.say("/talk")
    await emp.press("first available")
    code = next(o.case for o in reversed(emp.inbox) if o.case)
    says(await notice(emp), DENIES_E2E, "uses Telegram")
    await sara.say(f"/claim {code}")
    waiting_done = await notice(emp)
    says(waiting_done, CLAIMS_E2E)
    never(waiting_done, "Telegram")
    await sara.say("/handover Tom")
    says(await notice(emp), DENIES_E2E, "uses Telegram")


async def test_a_confidant_on_matrix_and_telegram_reads_on_both(h: Harness) -> None:
    """Every channel a confidant is registered on gets the case: one Telegram
    address is enough to break end-to-end."""
    await h.add_confidant("Sara", "@sara:hs", channels=("matrix", "telegram"))
    emp = h.person("@emp:hs", "en", channel="matrix")
    await emp.say("/start")
    says(emp.texts[1], DENIES_E2E, "uses Telegram")


async def test_a_channel_the_bot_does_not_run_does_not_count(tmp_path: Path) -> None:
    h = await make(tmp_path, channels=frozenset({"matrix"}))
    try:
        await h.add_confidant("Sara", "@sara:hs", channels=("matrix", "telegram"))
        emp = h.person("@emp:hs", "en", channel="matrix")
        await emp.say("/start")
        says(emp.texts[1], CLAIMS_E2E)
    finally:
        await h.store.close()


async def test_no_confidant_yet_is_no_promise(h: Harness) -> None:
    emp = h.person("@emp:hs", "en", channel="matrix")
    await emp.say("/start")
    says(emp.texts[1], DENIES_E2E, "No confidant can read this conversation yet")


# ------------------------------------------------------------ web employee


async def test_web_over_http_is_not_even_encrypted_on_the_way(h: Harness) -> None:
    await h.add_confidant("Sara", "@sara:hs", channels=("matrix",))
    emp = h.person("web-1", "en", channel="web")
    await emp.say("/start")
    text = emp.texts[1]
    says(text, "not encrypted on the way (no HTTPS)", DENIES_E2E, "run by Acme",
         "IT can see that you visit the web chat", "own phone or computer")
    never(text, "encrypted on the way between", CLAIMS_E2E)


async def test_web_over_https_is_encrypted_on_the_way_not_end_to_end(tmp_path: Path) -> None:
    h = await make(tmp_path, web_https=True)
    try:
        await h.add_confidant("Sara", "@sara:hs", channels=("matrix",))
        emp = h.person("web-1", "en", channel="web")
        await emp.say("/start")
        text = emp.texts[1]
        says(text, "encrypted on the way between your browser and the bot (HTTPS)",
             "not end-to-end encrypted", DENIES_E2E, "run by Acme",
             "keeps your conversation on its server, encrypted, for 90 days")
        never(text, CLAIMS_E2E, "no HTTPS")
    finally:
        await h.store.close()


async def test_web_employee_with_a_telegram_confidant(h: Harness) -> None:
    await h.add_confidant("Tom", "7001", channels=("telegram",))
    emp = h.person("web-1", "en", channel="web")
    await emp.say("/start")
    says(emp.texts[1], DENIES_E2E, "uses Telegram")


async def test_a_confidant_in_the_web_console(h: Harness) -> None:
    await h.add_confidant("Sara", "console-sara", channels=("web",))
    emp = h.person("@emp:hs", "en", channel="matrix")
    await emp.say("/start")
    says(emp.texts[1], DENIES_E2E, "in the web console", "no HTTPS")


# ------------------------------------------------------------ Telegram employee


async def test_telegram_employee_is_told_where_end_to_end_would_be(h: Harness) -> None:
    await h.add_confidant("Sara", "@sara:hs", channels=("matrix",))
    emp = h.person("7002", "en", channel="telegram")
    await emp.say("/start")
    text = emp.texts[1]
    says(text, "Telegram is not end-to-end encrypted for bots", DENIES_E2E,
         "write to the bot on Matrix", "Telegram knows your phone number")
    never(text, CLAIMS_E2E)


async def test_telegram_employee_gets_no_false_hope_of_matrix(h: Harness) -> None:
    await h.add_confidant("Tom", "7001", channels=("telegram",))
    emp = h.person("7002", "en", channel="telegram")
    await emp.say("/start")
    never(emp.texts[1], "write to the bot on Matrix")


# ------------------------------------------------------------ every language, every route

ROUTES = [
    Route("matrix", frozenset({"matrix"}), False, True),
    Route("matrix", frozenset({"matrix", "telegram"}), False, True),
    Route("matrix", frozenset({"web"}), True, True),
    Route("web", frozenset({"matrix"}), True, True),
    Route("web", frozenset({"matrix"}), False, True),
    Route("telegram", frozenset({"matrix"}), False, True),
    Route("telegram", frozenset({"telegram"}), False, True),
    Route("matrix", frozenset(), False, True),
]


def route_id(route: Route) -> str:
    readers = "+".join(sorted(route.readers)) or "none"
    return f"{route.employee}-{readers}-{'https' if route.web_https else 'http'}"


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
def test_exactly_one_verdict_and_it_is_right(route: Route) -> None:
    keys = encryption_keys(route)
    assert ("privacy.e2e_yes" in keys) == (route.employee == "matrix"
                                           and route.readers == frozenset({"matrix"}))
    assert ("privacy.e2e_yes" in keys) != ("privacy.e2e_no" in keys)
    if route.employee == "web":
        assert ("privacy.you.web_https" in keys) == route.web_https
        assert ("privacy.you.web_http" in keys) != route.web_https


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_the_verdicts_say_what_they_mean_in_every_language(lang: str) -> None:
    strings = load_strings(lang)
    negation = {"nl": "niet", "fr": "pas", "en": "not"}[lang]
    assert negation in strings["privacy.e2e_no"].split()
    assert negation not in strings["privacy.e2e_yes"].split()
    assert "https" in strings["privacy.you.web_https"].lower()
    assert negation in strings["privacy.you.web_http"].split()
    assert "{org}" in strings["privacy.operator"]


# ------------------------------------------------------------ from the configuration


@pytest.mark.parametrize(("url", "https"), [("https://confidant.example.org", True),
                                           ("http://confidant.example.org", False),
                                           (None, False)])
def test_settings_read_https_and_channels_from_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str | None, https: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "config.example.toml").read_text("utf-8")
    if url:
        text = re.sub(r'^# public_url = ".*"$', f'public_url = "{url}"', text, flags=re.M)
    (tmp_path / "config.toml").write_text(text, "utf-8")
    settings = core_settings(load_config(Path("config.toml")))
    assert settings.web_https is https
    assert settings.channels == frozenset({"web"})
