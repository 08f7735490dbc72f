"""The web channel in a real headless Chromium: an employee page and the
confidant console talk through a tiny fake core, quick exit leaves no trace
in the tab, and a resume code reopens the conversation in a fresh browser
context.  Screenshots land in ``test-artifacts/``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from bot.channels.base import MemoryChannelState
from bot.channels.web import WebChannel
from domain.ids import CaseCode, ChannelName
from domain.messages import Button, ChannelAddress, Inbound, Menu, Outbound, OutboundKind

CONFIDANT = "confidant-web-1"
CASE = CaseCode("K7F-3MQ")
TIMEOUT = 15_000


def _web(address: str) -> ChannelAddress:
    return ChannelAddress(ChannelName("web"), address)


@dataclass
class FakeCore:
    """Forwards employee words to the confidant and back, like the real core
    would for one case; records everything it handles, each event's ``keep``
    with it (once), and answers once it is recorded, as the intake and the
    delivery worker do."""

    channel: WebChannel
    employee: str | None = None
    events: list[Inbound] = field(default_factory=list)
    answers: set[asyncio.Task[None]] = field(default_factory=set)

    async def __call__(self, inbound: Inbound) -> None:
        if all(e.event_id != inbound.event_id for e in self.events):
            await self.channel.state.change(dict(inbound.keep))
        self.events.append(inbound)
        task = asyncio.create_task(self._answer(inbound))
        self.answers.add(task)
        task.add_done_callback(self.answers.discard)

    async def _answer(self, inbound: Inbound) -> None:
        key = inbound.event_id
        if inbound.sender == CONFIDANT:
            text = inbound.text or ""
            if text.startswith("/case "):
                await self.channel.send(
                    Outbound(to=_web(CONFIDANT), text=f"Current case: {text[6:]}", case=CASE),
                    key,
                )
            elif self.employee is not None:
                out = Outbound(
                    to=_web(self.employee), text=text, kind=OutboundKind.RELAY, case=CASE
                )
                await self.channel.send(out, key)
            return
        first = self.employee is None
        self.employee = inbound.sender
        if inbound.button == "tok-urgent":
            await self.channel.send(
                Outbound(to=_web(inbound.sender), text="Urgent help: 112", case=CASE), key
            )
            return
        if first:
            menu = Menu(rows=((Button("Urgent help", "tok-urgent"),),))
            welcome = Outbound(
                to=_web(inbound.sender),
                text="Thank you. A confidant will answer here.",
                menu=menu,
                case=CASE,
            )
            await self.channel.send(welcome, key + ":welcome")
        relay = Outbound(
            to=_web(CONFIDANT), text=inbound.text or "", kind=OutboundKind.RELAY, case=CASE
        )
        await self.channel.send(relay, key)


@dataclass
class Site:
    channel: WebChannel
    core: FakeCore
    tokens: dict[str, str]


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    tokens = {"one-time": CONFIDANT}

    async def redeem(token: str) -> str | None:
        return tokens.pop(token, None)

    channel = WebChannel(
        "127.0.0.1:0", None, MemoryChannelState(), redeem, ["nl", "fr", "en"], "nl", "Acme"
    )
    core = FakeCore(channel)
    await channel.start(core)
    yield Site(channel, core, tokens)
    await channel.stop()


async def _page(browser: Browser, locale: str, problems: list[str]) -> tuple[BrowserContext, Page]:
    """A page in its own context that reports script errors and CSP violations."""
    context = await browser.new_context(locale=locale, viewport={"width": 420, "height": 820})
    page = await context.new_page()
    page.on("pageerror", lambda err: problems.append(f"pageerror: {err}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    return context, page


async def _employee_with_case(
    browser: Browser, site: Site, problems: list[str]
) -> tuple[Page, str, str]:
    """Open the chat, send a first message, return the page and its receipt."""
    _, page = await _page(browser, "nl-BE", problems)
    await page.goto(site.channel.url_for_employee())
    await expect(page.locator("#quick-exit")).to_have_text("Snel weg", timeout=TIMEOUT)
    await page.fill("#compose-text", "Mijn chef roept elke dag tegen mij.")
    await page.keyboard.press("Enter")
    await expect(page.locator("li.from-me")).to_contain_text("Mijn chef roept", timeout=TIMEOUT)
    await expect(page.locator("li.from-bot")).to_contain_text("A confidant", timeout=TIMEOUT)
    await expect(page.locator(".receipt")).to_be_visible(timeout=TIMEOUT)
    code = await page.locator(".receipt-code").inner_text()
    passphrase = await page.locator(".receipt-pass").inner_text()
    return page, code, passphrase


async def test_employee_and_console_exchange_messages(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    problems: list[str] = []
    employee, code, passphrase = await _employee_with_case(browser, site, problems)
    assert code == "K7F-3MQ" and len(passphrase) == 24
    assert await employee.evaluate("document.cookie") == ""
    identity = await employee.evaluate("sessionStorage.getItem('confidant.identity')")
    assert identity and site.core.events[0].sender == identity
    assert site.core.events[0].language_hint == "nl"

    _, console = await _page(browser, "en-GB", problems)
    await console.goto(site.channel.url_for_console("one-time"))
    assert console.url.endswith("/console")
    await expect(console.locator("h1")).to_have_text("Confidant console", timeout=TIMEOUT)
    relayed = console.locator("li.from-relay")
    await expect(relayed).to_contain_text("Mijn chef roept", timeout=TIMEOUT)
    await expect(relayed.locator(".case-badge")).to_have_text("K7F-3MQ")

    await console.locator("#case-list button", has_text="K7F-3MQ").click()
    await expect(console.locator("#current-case")).to_have_text("K7F-3MQ")
    await expect(console.locator("li.from-bot").last).to_contain_text(
        "Current case: K7F-3MQ", timeout=TIMEOUT
    )
    await console.fill("#compose-text", "Ik ben er. Wanneer past een gesprek?")
    await console.click("#compose button[type=submit]")
    await expect(employee.locator("li.from-relay")).to_contain_text(
        "Wanneer past een gesprek?", timeout=TIMEOUT
    )
    reply = site.core.events[-1]
    assert reply.sender == CONFIDANT and reply.case_hint == "K7F-3MQ"

    await employee.get_by_role("button", name="Urgent help").click()
    await expect(employee.locator("li.from-bot").last).to_contain_text("112", timeout=TIMEOUT)
    assert site.core.events[-1].button == "tok-urgent"

    await employee.screenshot(path=str(artifacts / "web-employee.png"), full_page=True)
    await console.screenshot(path=str(artifacts / "web-console.png"), full_page=True)
    assert (artifacts / "web-employee.png").stat().st_size > 1000
    assert problems == []


async def test_quick_exit_clears_the_tab(browser: Browser, site: Site, artifacts: Path) -> None:
    problems: list[str] = []
    page, _, _ = await _employee_with_case(browser, site, problems)
    assert await page.evaluate("sessionStorage.length") > 0
    await page.locator("#compose-text").focus()
    await page.keyboard.press("Escape")
    await page.keyboard.press("Escape")
    # The neutral page speaks the reader's language (here Dutch), complete without script.
    await page.wait_for_url(re.compile(r"/weather\?l=nl$"), timeout=TIMEOUT)
    await expect(page.locator("h1")).to_have_text("Het weer")
    assert await page.title() == "Het weer"
    assert await page.evaluate("document.documentElement.lang") == "nl"
    assert await page.evaluate("sessionStorage.length") == 0
    assert await page.evaluate("sessionStorage.getItem('confidant.identity')") is None
    await page.screenshot(path=str(artifacts / "web-quick-exit.png"))
    # The chat page was replaced, not stacked: going back does not return to it.
    await page.go_back()
    assert "/weather" in page.url or page.url == "about:blank"
    assert not page.url.endswith(":" + str(site.channel.port) + "/")

    # The visible button does the same, on the resume page too.
    _, other = await _page(browser, "en-US", problems)
    await other.goto(site.channel.url_for_employee().rstrip("/") + "/resume")
    await expect(other.locator("#quick-exit")).to_have_text("Quick exit", timeout=TIMEOUT)
    await other.click("#quick-exit")
    await other.wait_for_url(re.compile(r"/weather\?l=en$"), timeout=TIMEOUT)
    await expect(other.locator("h1")).to_have_text("Weather")
    assert await other.evaluate("sessionStorage.length") == 0
    assert problems == []


async def test_resume_in_a_fresh_context_shows_the_conversation(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    problems: list[str] = []
    employee, code, passphrase = await _employee_with_case(browser, site, problems)
    await employee.context.close()

    _, page = await _page(browser, "fr-BE", problems)
    await page.goto(site.channel.url_for_employee() + "resume")
    await expect(page.locator("h1")).to_have_text("Reprendre une conversation", timeout=TIMEOUT)
    await page.fill("#code", code.lower())
    await page.fill("#passphrase", "0000-0000-0000-0000-0000")
    await page.click("#resume button[type=submit]")
    await expect(page.locator("#status")).to_contain_text("ne correspondent pas", timeout=TIMEOUT)
    await page.fill("#passphrase", passphrase)
    await page.screenshot(path=str(artifacts / "web-resume.png"))
    await page.click("#resume button[type=submit]")
    await page.wait_for_url(site.channel.url_for_employee(), timeout=TIMEOUT)
    await expect(page.locator("li.from-me")).to_contain_text("Mijn chef roept", timeout=TIMEOUT)
    await expect(page.locator("li.from-bot").first).to_contain_text("A confidant")
    await expect(page.locator(".receipt")).to_have_count(0)

    await page.fill("#compose-text", "Je suis de retour.")
    await page.keyboard.press("Enter")
    await expect(page.locator("li.from-me").last).not_to_have_class("pending", timeout=TIMEOUT)
    assert site.core.events[-1].sender == site.core.events[0].sender
    assert site.core.events[-1].language_hint == "fr"
    await page.screenshot(path=str(artifacts / "web-resumed.png"), full_page=True)
    assert [p for p in problems if "403" not in p] == []
