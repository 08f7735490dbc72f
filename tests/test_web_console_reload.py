"""Reloading the confidant console with the REAL core: each page load shows
the overview of the cases once, fresh, without piling up stale copies or
pushing the conversation out of the kept history; a ``/cases`` the
confidant asks for stays like any other answer; an erased case takes the
overview that named it off every open tab."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.test_web_e2e import (  # noqa: F401 - `live` is a fixture used by name
    EMPLOYEE_WORDS,
    TIMEOUT,
    Live,
    _console_claims,
    _employee_opens_case,
    en,
    live,
    nl,
)

pytestmark = pytest.mark.usefixtures("live")


async def _reload_and_wait_for_a_new_overview(console: Page) -> None:
    """Reload, then wait until the overview on screen is this load's own."""
    listing = console.locator("li.from-bot", has_text=en("cases.title"))
    before = await listing.last.get_attribute("data-id")
    await console.reload()
    await expect(listing.last).not_to_have_attribute("data-id", before or "", timeout=TIMEOUT)


async def test_console_reloads_keep_one_overview_and_the_conversation(
    browser: Browser, live: Live  # noqa: F811 - the fixture imported above
) -> None:
    _, code, _ = await _employee_opens_case(browser, live)
    console = await _console_claims(browser, live, code)
    other_tab = await console.context.new_page()
    await other_tab.goto(live.base + "/console")
    listing = console.locator("li.from-bot", has_text=en("cases.title"))
    others = other_tab.locator("li.from-bot", has_text=en("cases.title"))
    await expect(others).to_have_count(1, timeout=TIMEOUT)

    for _ in range(3):
        await _reload_and_wait_for_a_new_overview(console)
    await expect(listing).to_have_count(1)
    await expect(listing).to_contain_text(code)
    await expect(listing).to_contain_text(en("cases.deadline", deadline="").strip())
    await expect(console.locator("li.from-relay")).to_contain_text(EMPLOYEE_WORDS)
    # The tab left open shows the fresh overview in place of its old one.
    await expect(others).to_have_count(1, timeout=TIMEOUT)
    assert await others.get_attribute("data-id") == await listing.get_attribute("data-id")

    # Asked for by hand, the overview is an answer that stays.
    await console.locator("#commands button", has_text="/cases").click()
    await expect(listing).to_have_count(2, timeout=TIMEOUT)
    await _reload_and_wait_for_a_new_overview(console)
    await expect(listing).to_have_count(2)
    await expect(console.locator("li.from-me", has_text="/cases")).to_have_count(1)
    await expect(console.locator("li.from-relay")).to_contain_text(EMPLOYEE_WORDS)
    assert live.problems == []


async def test_an_erased_case_takes_the_overview_naming_it_off_every_tab(
    browser: Browser, live: Live  # noqa: F811 - the fixture imported above
) -> None:
    employee, code, _ = await _employee_opens_case(browser, live)
    console = await _console_claims(browser, live, code)
    await _reload_and_wait_for_a_new_overview(console)
    other_tab = await console.context.new_page()
    await other_tab.goto(live.base + "/console")
    for tab in (console, other_tab):
        listing = tab.locator("li.from-bot", has_text=en("cases.title"))
        await expect(listing).to_have_count(1, timeout=TIMEOUT)
        await expect(listing).to_contain_text(code)

    await employee.fill("#compose-text", "/forget")
    await employee.keyboard.press("Enter")
    await employee.get_by_role("button", name=nl("forget.yes")).last.click()
    # Without a reload, no tab keeps the overview that still named the case.
    for tab in (console, other_tab):
        notice = tab.locator("li.from-bot", has_text=en("forget.to_confidant", code=code))
        await expect(notice).to_have_count(1, timeout=TIMEOUT)
        await expect(tab.locator("li.from-bot", has_text=en("cases.title"))).to_have_count(0)
    assert live.problems == []


async def test_after_an_erasure_no_line_in_the_console_names_the_case(
    browser: Browser, live: Live  # noqa: F811 - the fixture imported above
) -> None:
    """The new-case notice with its Claim button, the confidant's own press
    of it, the case's messages: all go with the erasure, on the open page
    and after a reload; the notice of the erasure is the one line left
    naming the code, and a reload takes it too."""
    employee, code, _ = await _employee_opens_case(browser, live)
    console = await _console_claims(browser, live, code)
    lines = console.locator("#log li")
    await expect(console.locator("li.from-me", has_text=code)).to_have_count(1)

    await employee.fill("#compose-text", "/forget")
    await employee.keyboard.press("Enter")
    await employee.get_by_role("button", name=nl("forget.yes")).last.click()
    erased = en("forget.to_confidant", code=code)
    await expect(lines.filter(has_text=erased)).to_have_count(1, timeout=TIMEOUT)
    await expect(lines.filter(has_text=code)).to_have_count(1)
    await expect(console.locator("#case-list button", has_text=code)).to_have_count(0)

    await console.reload()
    await expect(console.locator("li.from-bot", has_text=en("cases.none"))).to_have_count(
        1, timeout=TIMEOUT)
    await expect(lines.filter(has_text=code)).to_have_count(0)
    assert code not in await console.locator("body").inner_text()
    assert live.problems == []
