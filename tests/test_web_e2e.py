"""The web chat and console end to end with the REAL core: the real `App`
(store on SQLite in a temporary folder, delivery worker, timers) serves the
pages on 127.0.0.1, and headless Chromium plays the employee and the
confidant in two browser contexts.  Also checked here with the real core: the
JSON logs hold no address or content, the served pages load nothing from
elsewhere, and the database file holds none of the words typed."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from bot.app import App
from bot.demo import DEMO_NAME, LISTEN_ENV, demo_config, prepare_demo
from bot.logs import QUIET, setup_logging
from handlers.i18n import Translator

TIMEOUT = 20_000
EMPLOYEE_WORDS = "Mijn chef roept elke dag tegen mij, zelfs waar klanten bij zijn."
CONFIDANT_WORDS = "Dank je om te schrijven. Wanneer past een gesprek voor jou?"
LATER_WORDS = "Donderdagmiddag past goed, dank je wel."
ORG = "Demo organisation"

tr = Translator("nl", ("nl", "fr", "en"), "Europe/Brussels", ORG)


def nl(key: str, **values: object) -> str:
    """The employee's string (Dutch), first line only: the page keeps the
    text as sent, and one line is enough to recognise it."""
    return tr.t("nl", key, **values).splitlines()[0]


def en(key: str, **values: object) -> str:
    """The demo confidant's string (English is their first language)."""
    return tr.t("en", key, **values).splitlines()[0]


def upto(text: str, code: str) -> str:
    """The start of a string up to and including the case code: enough to
    find it without repeating the formatting of dates and names."""
    return text[: text.index(code) + len(code)]


def free_port() -> int:
    """An unused loopback port (the config refuses port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Live:
    """The running bot and what a test needs to reach it."""

    app: App
    folder: Path
    employee_url: str
    console_url: str
    logs: io.StringIO
    problems: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def base(self) -> str:
        return self.employee_url.rstrip("/")

    async def stop(self) -> None:
        """Stop the bot (drains the outbox, closes the store); idempotent."""
        if not self.stopped:
            self.stopped = True
            await self.app.stop()

    def db_bytes(self) -> bytes:
        """Every byte SQLite keeps on disk for this bot, journal files included."""
        return b"".join(p.read_bytes() for p in self.folder.glob("confidant.db*"))


@pytest.fixture
async def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Live]:
    """The real App on a free loopback port, with its JSON logs captured."""
    monkeypatch.setenv(LISTEN_ENV, f"127.0.0.1:{free_port()}")
    links = await prepare_demo(tmp_path)
    config = demo_config(tmp_path)

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    quiet = {name: logging.getLogger(name).level for name in QUIET}
    access = logging.getLogger("aiohttp.access")
    access_disabled = access.disabled
    setup_logging("INFO")
    logs = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(logs)

    app = App(config)
    await app.start()
    state = Live(app, tmp_path, links.employee, links.console, logs)
    try:
        yield state
    finally:
        await state.stop()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
        access.disabled = access_disabled


async def _open(browser: Browser, locale: str, problems: list[str]) -> tuple[BrowserContext, Page]:
    """A page in a fresh context that records script errors and CSP violations."""
    context = await browser.new_context(locale=locale, viewport={"width": 420, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda err: problems.append(f"pageerror: {err}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    return context, page


async def _employee_opens_case(browser: Browser, live: Live) -> tuple[Page, str, str]:
    """Open the page, read the welcome, Talk → first available, write once.
    Returns the page, the case code and the resume passphrase."""
    _, page = await _open(browser, "nl-BE", live.problems)
    await page.goto(live.employee_url)
    bot = page.locator("li.from-bot")
    await expect(bot.first).to_contain_text(nl("welcome.first", org=ORG), timeout=TIMEOUT)
    await expect(bot.nth(1)).to_contain_text(nl("privacy.title"), timeout=TIMEOUT)
    # The demo serves plain HTTP and its confidant reads in the console: the
    # notice says so, and promises no end-to-end encryption.
    await expect(bot.nth(1)).to_contain_text(nl("privacy.you.web_http"))
    await expect(bot.nth(1)).to_contain_text(nl("privacy.readers.web_http"))
    await expect(bot.nth(1)).to_contain_text(nl("privacy.e2e_no"))
    await page.get_by_role("button", name=nl("menu.talk")).last.click()
    await page.get_by_role("button", name=nl("talk.first_available")).last.click()
    await expect(page.locator(".receipt")).to_be_visible(timeout=TIMEOUT)
    code = await page.locator(".receipt-code").inner_text()
    passphrase = await page.locator(".receipt-pass").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{3}-[A-Z0-9]{3}", code), code
    await expect(bot.filter(has_text=nl("case.opened", code=code))).to_have_count(1)
    await page.locator(".receipt button").click()
    await page.fill("#compose-text", EMPLOYEE_WORDS)
    await page.keyboard.press("Enter")
    await expect(page.locator("li.from-me").last).not_to_have_class(
        re.compile("pending"), timeout=TIMEOUT
    )
    return page, code, passphrase


async def _console_claims(browser: Browser, live: Live, code: str) -> Page:
    """Log in with the one-time link, claim the case by its button, see the
    employee's held words arrive."""
    _, console = await _open(browser, "en-GB", live.problems)
    await console.goto(live.console_url)
    assert console.url == live.base + "/console"
    new_case = en("notify.new_case", code=code, urgent="", language="", channel="", deadline="")
    notice = console.locator("li.from-bot", has_text=upto(new_case, code))
    await expect(notice).to_have_count(1, timeout=TIMEOUT)
    # /cases on load: the waiting case is listed with its own Claim button.
    await expect(console.locator("li.from-bot", has_text=en("cases.waiting_title"))).to_have_count(
        1, timeout=TIMEOUT
    )
    await notice.get_by_role("button", name=en("notify.claim_button", code=code)).click()
    claimed = console.locator(
        "li.from-bot", has_text=upto(en("claim.done", code=code, language="", deadline=""), code)
    )
    await expect(claimed).to_have_count(1, timeout=TIMEOUT)
    await expect(console.locator("#case-list button", has_text=code)).to_have_count(1)
    await expect(console.locator("li.from-relay")).to_contain_text(EMPLOYEE_WORDS,
                                                                   timeout=TIMEOUT)
    return console


async def test_employee_and_confidant_talk_through_the_real_core(
    browser: Browser, live: Live, artifacts: Path
) -> None:
    employee, code, passphrase = await _employee_opens_case(browser, live)
    identity = await employee.evaluate("sessionStorage.getItem('confidant.identity')")
    assert identity
    console = await _console_claims(browser, live, code)
    await expect(employee.locator("li.from-bot").last).to_contain_text(
        nl("claim.to_employee", name=DEMO_NAME), timeout=TIMEOUT
    )

    # Live both ways.
    await console.fill("#compose-text", CONFIDANT_WORDS)
    await console.keyboard.press("Enter")
    await expect(employee.locator("li.from-relay")).to_contain_text(CONFIDANT_WORDS,
                                                                    timeout=TIMEOUT)
    await employee.fill("#compose-text", LATER_WORDS)
    await employee.keyboard.press("Enter")
    await expect(console.locator("li.from-relay").last).to_contain_text(LATER_WORDS,
                                                                        timeout=TIMEOUT)

    # Deadlines: the console's /cases lists the claimed case with its 10-day date.
    await console.locator("#commands button", has_text="/cases").click()
    listing = console.locator("li.from-bot", has_text=en("cases.title"))
    await expect(listing.last).to_contain_text(code, timeout=TIMEOUT)
    await expect(listing.last).to_contain_text(en("cases.deadline", deadline="").strip())

    await employee.screenshot(path=str(artifacts / "web-e2e-employee.png"), full_page=False)
    await console.screenshot(path=str(artifacts / "web-e2e-console.png"), full_page=False)

    # Close by the theme buttons the core offers.
    await console.fill("#compose-text", "/close")
    await console.keyboard.press("Enter")
    await console.get_by_role("button", name=tr.t("en", "theme.conflict")).last.click()
    await expect(console.locator("li.from-bot").last).to_contain_text(
        en("close.done", code=code, theme=tr.t("en", "theme.conflict")), timeout=TIMEOUT
    )
    await expect(employee.locator("li.from-bot").last).to_contain_text(
        nl("close.to_employee", days=0)[:40], timeout=TIMEOUT
    )
    assert (artifacts / "web-e2e-console.png").stat().st_size > 1000
    assert live.problems == []

    # Nothing readable at rest, nothing personal in the logs.
    await live.stop()
    raw = live.db_bytes()
    assert raw, "the database file is missing"
    for secret in (EMPLOYEE_WORDS, CONFIDANT_WORDS, LATER_WORDS, passphrase, identity):
        assert secret.encode() not in raw, "found plaintext in the database"
    logs = live.logs.getvalue()
    assert "web: console login" in logs and "case claimed" in logs
    for line in logs.splitlines():
        json.loads(line)
    for secret in ("127.0.0.1", EMPLOYEE_WORDS[:20], CONFIDANT_WORDS[:20], LATER_WORDS[:20],
                   passphrase, identity, "HeadlessChrome", "Mozilla"):
        assert secret not in logs, "the logs hold an address or content"


async def test_quick_exit_clears_the_session(browser: Browser, live: Live) -> None:
    employee, code, _ = await _employee_opens_case(browser, live)
    assert await employee.evaluate("sessionStorage.getItem('confidant.identity')")
    await employee.click("#quick-exit")
    await employee.wait_for_url(re.compile(r"/weather\?l=nl$"), timeout=TIMEOUT)
    await expect(employee.locator("h1")).to_have_text("Het weer")
    assert await employee.evaluate("sessionStorage.length") == 0
    # Coming back in the same tab starts afresh: no trace of the conversation.
    await employee.goto(live.employee_url)
    await expect(employee.locator("li.from-bot").first).to_contain_text(
        nl("welcome.first", org=ORG), timeout=TIMEOUT
    )
    await expect(employee.locator("#log")).not_to_contain_text(EMPLOYEE_WORDS)
    await expect(employee.locator("#log")).not_to_contain_text(code)
    assert live.problems == []


async def test_resume_and_slowed_down_guessing(browser: Browser, live: Live,
                                               artifacts: Path) -> None:
    employee, code, passphrase = await _employee_opens_case(browser, live)
    console = await _console_claims(browser, live, code)
    await console.fill("#compose-text", CONFIDANT_WORDS)
    await console.keyboard.press("Enter")
    await expect(employee.locator("li.from-relay")).to_contain_text(CONFIDANT_WORDS,
                                                                    timeout=TIMEOUT)
    await employee.context.close()

    # A fresh context (another device): code + passphrase reopen the conversation.
    _, page = await _open(browser, "nl-BE", live.problems)
    await page.goto(live.base + "/resume")
    await page.fill("#code", code.lower())
    await page.fill("#passphrase", passphrase)
    await page.click("#resume button[type=submit]")
    await page.wait_for_url(live.employee_url, timeout=TIMEOUT)
    await expect(page.locator("li.from-me", has_text=EMPLOYEE_WORDS)).to_have_count(
        1, timeout=TIMEOUT
    )
    await expect(page.locator("li.from-relay")).to_contain_text(CONFIDANT_WORDS)
    await page.fill("#compose-text", LATER_WORDS)
    await page.keyboard.press("Enter")
    await expect(console.locator("li.from-relay").last).to_contain_text(LATER_WORDS,
                                                                        timeout=TIMEOUT)
    await page.screenshot(path=str(artifacts / "web-e2e-resumed.png"), full_page=False)

    # Five wrong guesses are answered as wrong; then even the right one must wait.
    _, guesser = await _open(browser, "nl-BE", [])
    await guesser.goto(live.base + "/resume")
    status = guesser.locator("#status")
    await guesser.fill("#code", code)
    for attempt in range(5):
        await guesser.fill("#passphrase", f"AAAA-BBBB-CCCC-DDDD-{attempt:04d}")
        await guesser.click("#resume button[type=submit]")
        await expect(status).to_contain_text("passen niet", timeout=TIMEOUT)
        await guesser.evaluate("document.getElementById('status').textContent = ''")
    await guesser.fill("#passphrase", passphrase)
    await guesser.click("#resume button[type=submit]")
    await expect(status).to_contain_text("Te veel pogingen", timeout=TIMEOUT)
    assert guesser.url.endswith("/resume")
    assert [p for p in live.problems if "403" not in p] == []


async def test_forget_erases_the_tab_and_the_console_copy(browser: Browser, live: Live) -> None:
    employee, code, passphrase = await _employee_opens_case(browser, live)
    console = await _console_claims(browser, live, code)
    old_identity = await employee.evaluate("sessionStorage.getItem('confidant.identity')")

    await employee.fill("#compose-text", "/forget")
    await employee.keyboard.press("Enter")
    await employee.get_by_role("button", name=nl("forget.yes")).last.click()
    # The farewell stays in view; everything before it is gone; a fresh start follows.
    await expect(employee.locator("li.from-bot").first).to_contain_text(
        nl("forget.done"), timeout=TIMEOUT
    )
    await expect(employee.locator("li.from-bot").nth(1)).to_contain_text(
        nl("welcome.first", org=ORG), timeout=TIMEOUT
    )
    await expect(employee.locator("#log")).not_to_contain_text(EMPLOYEE_WORDS)
    new_identity = await employee.evaluate("sessionStorage.getItem('confidant.identity')")
    assert new_identity and new_identity != old_identity

    # The console drops every item of the erased case and says why.
    await expect(console.locator("li.from-bot").last).to_contain_text(
        en("forget.to_confidant", code=code), timeout=TIMEOUT
    )
    await expect(console.locator("#log")).not_to_contain_text(EMPLOYEE_WORDS)
    await expect(console.locator(f'#log li[data-case="{code}"]')).to_have_count(0)
    await expect(console.locator("#case-list button", has_text=code)).to_have_count(0)
    await console.reload()
    await expect(console.locator("li.from-bot", has_text=en("cases.none"))).to_have_count(
        1, timeout=TIMEOUT
    )
    await expect(console.locator("#log")).not_to_contain_text(EMPLOYEE_WORDS)

    # The old receipt no longer opens anything.
    async with aiohttp.ClientSession() as http:
        async with http.post(live.base + "/api/resume", json={"code": code,
                                                               "passphrase": passphrase},
                             headers={"Origin": live.base}) as resp:
            assert resp.status == 403
    assert live.problems == []


async def test_http_headers_assets_and_quiet_logs(live: Live) -> None:
    """HTTP level with the real core: strict headers, nothing from elsewhere,
    and a whole WebSocket conversation that leaves no address in the logs."""
    pages = ["/", "/resume", "/console", "/weather"]
    async with aiohttp.ClientSession() as http:
        served: list[str] = []
        for path in pages:
            async with http.get(live.base + path) as resp:
                assert resp.status == 200
                csp = resp.headers["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
                assert "script-src 'self'" in csp
                assert resp.headers["Referrer-Policy"] == "no-referrer"
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert "Server" not in resp.headers
                assert "Set-Cookie" not in resp.headers
                served.append(await resp.text())
        for name in re.findall(r'src="(/static/[^"]+)"|href="(/static/[^"]+)"', "".join(served)):
            async with http.get(live.base + (name[0] or name[1])) as resp:
                assert resp.status == 200
                served.append(await resp.text())
        assert len(served) > len(pages) + 2
        for text in served:
            external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I)
            assert external == [], external
            assert "<script>" not in text and " onclick=" not in text

        # One conversation over the raw WebSocket, as a script would hold it.
        async with http.ws_connect(live.base.replace("http", "ws") + "/ws",
                                   headers={"Origin": live.base}) as ws:
            await ws.send_json({"type": "hello", "identity": None, "language": "nl"})
            ready = await ws.receive_json(timeout=10)
            assert ready["type"] == "ready" and ready["identity"]
            welcome = await ws.receive_json(timeout=10)
            assert welcome["type"] == "message"
            assert welcome["item"]["text"].startswith(nl("welcome.first", org=ORG))
            await ws.send_json({"type": "message", "id": "msg-00000001", "text": EMPLOYEE_WORDS})
            seen: list[dict[str, object]] = []
            while not any(f.get("type") == "ack" for f in seen):
                seen.append(await ws.receive_json(timeout=10))
            identity = ready["identity"]

        # A cross-site page may not open the socket.
        async with http.get(live.base + "/ws", headers={
            "Origin": "http://evil.invalid", "Connection": "Upgrade", "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        }) as resp:
            assert resp.status == 403
    logs = live.logs.getvalue()
    assert "web: employee tab opened" in logs
    for secret in ("127.0.0.1", "aiohttp", "Python", identity, EMPLOYEE_WORDS[:20]):
        assert secret not in logs
