"""``confidant demo`` as a new user runs it: a separate process in an empty
folder prints three addresses; Chromium opens them, the employee and the demo
confidant talk both ways, and the admin console's link logs the demo admin in
(once); SIGTERM ends it cleanly with exit code 0.

The demo's usual 127.0.0.1:8080 may be taken on a developer's machine, so
the test moves it with ``CONFIDANT_DEMO_LISTEN`` to a free loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from bot.cli_common import admin_settings
from bot.config import ConfigError
from bot.demo import DEMO_ADMIN, DEMO_NAME, LISTEN_ENV, demo_config, prepare_demo
from handlers.administration.service import AdminService
from handlers.i18n import Translator
from store.admin import admin_tx
from store.crypto import load_master_key
from store.store import Store

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 20_000
START_SECONDS = 60.0
tr = Translator("nl", ("nl", "fr", "en"), "Europe/Brussels", "Demo organisation")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command() -> list[str]:
    """``python -m bot demo`` once the CLI exists; until then the same
    coroutine the CLI runs."""
    if (REPO / "bot" / "__main__.py").is_file():
        return [sys.executable, "-m", "bot", "demo"]
    code = (
        "import asyncio; from pathlib import Path; from bot.demo import run_demo; "
        "asyncio.run(run_demo(Path('confidant-data')))"
    )
    return [sys.executable, "-c", code]


@dataclass
class Demo:
    proc: asyncio.subprocess.Process
    folder: Path
    employee_url: str
    console_url: str
    admin_url: str
    stdout: str
    stderr_path: Path

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-3000:]


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    """The demo process in an empty folder, up and printing its three URLs."""
    port = _free_port()
    env = {**os.environ, LISTEN_ENV: f"127.0.0.1:{port}", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(REPO)}
    env.pop("CONFIDANT_CONFIG", None)
    stderr_path = tmp_path / "demo.log"
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *_command(), cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )
    assert proc.stdout is not None
    printed: list[str] = []
    try:
        async with asyncio.timeout(START_SECONDS):
            while not any(line.startswith("Each login link") for line in printed):
                line = await proc.stdout.readline()
                if not line:
                    raise AssertionError(
                        "the demo exited before printing its addresses:\n"
                        + stderr_path.read_text(errors="replace")[-3000:]
                    )
                printed.append(line.decode())
        urls = re.findall(r"http://\S+", "".join(printed))
        assert len(urls) == 3, printed
        employee_url, console_url, admin_url = urls
        yield Demo(proc, tmp_path, employee_url, console_url, admin_url, "".join(printed),
                   stderr_path)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
            await proc.wait()


async def _page(browser: Browser, locale: str, problems: list[str]) -> Page:
    context = await browser.new_context(locale=locale, viewport={"width": 420, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda err: problems.append(f"pageerror: {err}"))
    return page


async def test_demo_runs_the_two_sides_talk_and_the_admin_logs_in(
    demo: Demo, browser: Browser, artifacts: Path
) -> None:
    port = demo.employee_url.split(":")[2].split("/")[0]
    assert demo.employee_url == f"http://127.0.0.1:{port}/"
    assert demo.console_url.startswith(f"http://127.0.0.1:{port}/console/login?token=")
    assert demo.admin_url.startswith(f"http://127.0.0.1:{port}/admin/login?token=")
    assert (demo.folder / "confidant-data" / "confidant.db").is_file()
    key_file = demo.folder / "confidant-data" / "master.key"
    assert key_file.stat().st_mode & 0o077 == 0

    problems: list[str] = []
    employee = await _page(browser, "en-GB", problems)
    await employee.goto(demo.employee_url)
    welcome = tr.t("en", "welcome.first", org="Demo organisation").splitlines()[0]
    await expect(employee.locator("li.from-bot").first).to_contain_text(welcome, timeout=TIMEOUT)
    await employee.get_by_role("button", name=tr.t("en", "menu.talk")).last.click()
    await employee.get_by_role("button", name=tr.t("en", "talk.first_available")).last.click()
    await expect(employee.locator(".receipt")).to_be_visible(timeout=TIMEOUT)
    code = await employee.locator(".receipt-code").inner_text()
    await employee.locator(".receipt button").click()
    await employee.fill("#compose-text", "Hello, I would like to talk about my workload.")
    await employee.keyboard.press("Enter")

    console = await _page(browser, "en-GB", problems)
    await console.goto(demo.console_url)
    await console.get_by_role(
        "button", name=tr.t("en", "notify.claim_button", code=code)
    ).first.click()
    await expect(console.locator("li.from-relay")).to_contain_text(
        "talk about my workload", timeout=TIMEOUT
    )
    await console.fill("#compose-text", "Hello, I am here. Tell me more when you are ready.")
    await console.keyboard.press("Enter")
    await expect(employee.locator("li.from-relay")).to_contain_text(
        f"{DEMO_NAME}: Hello, I am here.", timeout=TIMEOUT
    )
    await employee.fill("#compose-text", "Thank you, that helps already.")
    await employee.keyboard.press("Enter")
    await expect(console.locator("li.from-relay").last).to_contain_text(
        "that helps already", timeout=TIMEOUT
    )
    await employee.screenshot(path=str(artifacts / "demo-employee.png"))
    await console.screenshot(path=str(artifacts / "demo-console.png"))

    # The admin console link: its login page, then the rota with the demo confidant.
    admin = await _page(browser, "en-GB", problems)
    await admin.goto(demo.admin_url)
    await expect(admin.locator("h1")).to_have_text("Log in to the admin console")
    await admin.get_by_role("button", name="Log in").click()
    await expect(admin.locator("h1")).to_have_text("Weekly rota", timeout=TIMEOUT)
    await expect(admin.locator(".who")).to_have_text(f"Signed in as {DEMO_ADMIN}")
    await expect(admin.locator(f'tr[data-name="{DEMO_NAME}"] a.shift').first).to_be_visible()
    await admin.screenshot(path=str(artifacts / "demo-admin.png"))
    # The link worked once; opened again (in a fresh browser) it logs nobody in.
    again = await _page(browser, "en-GB", problems)
    await again.goto(demo.admin_url)
    await again.get_by_role("button", name="Log in").click()
    await expect(again.locator("h1")).to_have_text("This login link does not work")
    assert [p for p in problems if "status of 403" not in p] == []

    demo.proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        code_at_exit = await demo.proc.wait()
    assert code_at_exit == 0, demo.log()
    for words in ("workload", "I am here", "helps already"):
        assert words not in demo.log()


async def test_a_restarted_demo_gives_a_new_admin_link_for_the_same_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LISTEN_ENV, raising=False)
    first = await prepare_demo(tmp_path)
    second = await prepare_demo(tmp_path)
    assert first.admin != second.admin
    assert first.console != second.console
    config = demo_config(tmp_path)
    store = Store.open(config.store.url, load_master_key(config.store.key_file))
    try:
        async with admin_tx(store) as tx:
            service = AdminService(tx, "test", datetime.now(UTC), admin_settings(config))
            assert [a.name for a in await service.admins()] == [DEMO_ADMIN]
            for link in (first.admin, second.admin):  # both unused, both good
                logged_in = await service.login(link.split("token=", 1)[1])
                assert logged_in is not None and logged_in[0].name == DEMO_ADMIN
    finally:
        await store.close()


def test_demo_listens_on_8080_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LISTEN_ENV, raising=False)
    assert demo_config(tmp_path).web.listen == "127.0.0.1:8080"
    monkeypatch.setenv(LISTEN_ENV, "127.0.0.1:8181")
    assert demo_config(tmp_path).web.listen == "127.0.0.1:8181"
    assert demo_config(tmp_path).web.host_port == ("127.0.0.1", 8181)
    monkeypatch.setenv(LISTEN_ENV, "8181")
    with pytest.raises(ConfigError, match=LISTEN_ENV):
        demo_config(tmp_path)


async def test_a_taken_port_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.demo import run_demo

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv(LISTEN_ENV, f"127.0.0.1:{taken.getsockname()[1]}")
        with pytest.raises(ConfigError) as raised:
            await asyncio.wait_for(run_demo(tmp_path), 30)
    [line] = raised.value.problems
    assert line.startswith("web.listen: cannot listen on 127.0.0.1:")
    assert LISTEN_ENV in line
