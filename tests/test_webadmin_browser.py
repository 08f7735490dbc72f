"""The admin console in a real headless Chromium against the real bot (the
`App` with its web channel, store and admin service on 127.0.0.1), the way
the README tells a new admin to do it: a login link from ``confidant admin
token --admin NAME``, two confidants registered with the attestation, shifts
drawn in the week grid with the mouse and one added with the keyboard alone,
an overlap refused with the service's reason, an absence and a room; an
employee in another browser context then finds a confidant on duty.  The
figures page draws exactly the cells ``confidant report`` hides.  One
browser for the whole module.  Screenshots go to test-artifacts/, or where
``CONFIDANT_SCREENSHOTS`` says: ``CONFIDANT_SCREENSHOTS=docs/screenshots``
refreshes the ones the README shows."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from bot.app import App
from store.models import CaseStatistic
from tests.support.app_runner import BotSetup, make_setup, running_app
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.asyncio(loop_scope="module")

TIMEOUT = 15_000
REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / os.environ.get("CONFIDANT_SCREENSHOTS", "test-artifacts")
BRUSSELS = ZoneInfo("Europe/Brussels")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Live:
    setup: BotSetup
    app: App
    base: str
    browser: Browser

    async def cli(self, *args: str) -> str:
        """``confidant …`` as an admin types it on the server; its stdout."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *args, "--config", str(self.setup.config_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **self.setup.env}, cwd=str(self.setup.folder))
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return out.decode()

    async def page(self, locale: str = "en-GB", width: int = 1400,
                   problems: list[str] | None = None) -> Page:
        context = await self.browser.new_context(locale=locale,
                                                 viewport={"width": width, "height": 900})
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT)
        if problems is not None:
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("console", lambda m: problems.append(f"console: {m.text}")
                    if m.type == "error" else None)
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        return page


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    port = free_port()
    setup = await make_setup(tmp_path_factory.mktemp("webadmin"), extra={
        "web": {"enabled": True, "listen": f"127.0.0.1:{port}"},
        "rota": {"office_hours": "mon-fri 09:00-17:00"}})
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with running_app(setup) as app, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                   headless=True, args=CHROMIUM_ARGS)
        try:
            yield Live(setup, app, f"http://127.0.0.1:{port}", browser)
        finally:
            await browser.close()


async def day_line(page: Page, name: str, day: str) -> tuple[Callable[[str], float], float]:
    """Where a time of day lies on a confidant's day in the grid (x), and its middle (y)."""
    span = await page.evaluate("JSON.parse(document.getElementById('rota-data').textContent).range")
    track = page.locator(f'tr[data-name="{name}"] td[data-day="{day}"] .track')
    box = await track.bounding_box()
    assert box is not None

    def x(clock: str) -> float:
        hours, minutes = map(int, clock.split(":"))
        share = (hours + minutes / 60 - span[0]) / (span[1] - span[0])
        return box["x"] + box["width"] * share

    return x, box["y"] + box["height"] / 2


async def draw(page: Page, name: str, day: str, start: str, end: str) -> None:
    """Drag with the mouse across a confidant's day, from one time to another."""
    x, y = await day_line(page, name, day)
    await page.mouse.move(x(start) + 1, y)
    await page.mouse.down()
    await page.mouse.move((x(start) + x(end)) / 2, y, steps=4)
    await page.mouse.move(x(end) + 1, y, steps=4)
    await page.mouse.up()


async def test_an_admin_sets_up_a_rota_and_an_employee_finds_a_confidant_on_duty(
        live: Live) -> None:
    problems: list[str] = []
    await live.cli("admin", "admin", "add", "Hanne")
    link = (await live.cli("admin", "token", "--admin", "Hanne")).strip()
    assert link.startswith(live.base + "/admin/login?token=")

    admin = await live.page(problems=problems)
    await admin.goto(link)
    await admin.screenshot(path=str(SHOTS / "admin-login.png"))
    await admin.click("#login")
    await expect(admin.locator("h1")).to_have_text("Weekly rota")
    await expect(admin.locator(".who")).to_have_text("Signed in as Hanne")

    # Two confidants, each only with the attestation; its exclusions are listed beside it.
    await admin.click("nav.sections >> text=Confidants")
    exclusions = admin.locator("#exclusions li")
    await expect(exclusions).to_have_count(5)
    await expect(exclusions.nth(0)).to_contain_text("works council")
    await expect(exclusions.nth(4)).to_contain_text("occupational physician")
    for name, languages, bio in (("An Peeters", ("nl", "en"), "HR, Gent"),
                                 ("Bram Claes", ("nl",), "Logistiek, Antwerpen")):
        form = admin.locator("#add-confidant")
        await form.locator("input[name=name]").fill(name)
        for code in languages:
            await form.locator(f"input[name=languages][value={code}]").check()
        await form.locator("textarea[name=bio]").fill(bio)
        await form.locator("#attest").check()
        await form.locator("#register").click()
        await expect(admin.locator(".flash.ok")).to_contain_text("registered")
    await expect(admin.locator("#confidant-list tbody tr")).to_have_count(2)
    await admin.screenshot(path=str(SHOTS / "admin-confidants.png"), full_page=True)

    # Two shifts drawn in the grid, then an overlapping one refused with the reason.
    await admin.click("nav.sections >> text=Rota")
    await draw(admin, "An Peeters", "mon", "09:00", "12:00")
    await expect(admin.locator(".flash.ok")).to_have_text("Shift added.")
    await draw(admin, "An Peeters", "mon", "13:00", "17:00")
    await expect(admin.locator(".flash.ok")).to_have_text("Shift added.")
    bars = admin.locator('tr[data-name="An Peeters"] td[data-day="mon"] a.shift')
    await expect(bars).to_have_count(2)
    await expect(bars.nth(0)).to_have_attribute("data-start", "09:00")
    await expect(bars.nth(0)).to_have_attribute("data-end", "12:00")
    await expect(bars.nth(1)).to_have_attribute("data-start", "13:00")
    await draw(admin, "An Peeters", "mon", "11:00", "14:00")
    alert = admin.locator("#grid-alert")
    await expect(alert).to_contain_text("Not saved:")
    await expect(alert).to_contain_text("overlaps")
    await expect(alert).to_contain_text("09:00")
    await expect(admin.locator(".draft.refused")).to_be_visible()
    await expect(bars).to_have_count(2)
    await admin.screenshot(path=str(SHOTS / "admin-rota-refused.png"))

    # The keyboard alone: Bram on duty all of today, through the + link and the form.
    today = datetime.now(UTC).astimezone(BRUSSELS)
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[today.weekday()]
    plus = admin.locator(f'tr[data-name="Bram Claes"] td[data-day="{weekday}"] a.add')
    await plus.focus()
    await admin.keyboard.press("Enter")
    dialog = admin.locator("#shift-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("select[name=day]")).to_have_value(weekday)
    await admin.keyboard.press("Control+A")  # the dialog puts the focus on the start
    await admin.keyboard.type("0")  # a whole hour is enough
    await admin.keyboard.press("Tab")
    await admin.keyboard.press("Control+A")
    await admin.keyboard.type("23:59")
    await admin.keyboard.press("Enter")  # "Duty" is checked already; Enter submits
    await expect(admin.locator(".flash.ok")).to_have_text("Shift added.")
    bram = admin.locator(f'tr[data-name="Bram Claes"] td[data-day="{weekday}"] a.shift')
    await expect(bram).to_have_attribute("data-end", "23:59")

    # Changing a shift in the dialog: an end before the start is refused, then fixed.
    await bars.nth(1).click()
    await expect(dialog).to_be_visible()
    await dialog.locator("input[name=end]").fill("12:30")
    await dialog.locator("#shift-save").click()
    await expect(admin.locator("#form-error")).to_contain_text("Not saved:")
    await expect(dialog.locator("input[name=end]")).to_have_attribute("aria-invalid", "true")
    await dialog.locator("input[name=end]").fill("16:30")
    await dialog.locator("#shift-save").click()
    await expect(admin.locator(".flash.ok")).to_have_text("Shift changed.")
    await expect(bars.nth(1)).to_have_attribute("data-end", "16:30")
    # … and stretched back to 17:00 by dragging its right end.
    x, _ = await day_line(admin, "An Peeters", "mon")
    box = await bars.nth(1).bounding_box()
    assert box is not None
    grip, y = box["x"] + box["width"] - 2, box["y"] + box["height"] / 2
    await admin.mouse.move(grip, y)
    await admin.mouse.down()
    await admin.mouse.move(grip + x("17:00") - x("16:30"), y, steps=4)  # half an hour on
    await admin.mouse.up()
    await expect(bars.nth(1)).to_have_attribute("data-end", "17:00")
    await expect(bars.nth(1)).to_have_attribute("data-start", "13:00")
    await expect(admin.locator("#coverage-gaps li").first).to_be_visible()
    await admin.screenshot(path=str(SHOTS / "admin-rota.png"), full_page=True)

    # An absence for An (from today) and a discreet room.
    await admin.click("nav.sections >> text=Absences")
    form = admin.locator("#add-absence")
    await form.locator("select[name=confidant]").select_option(label="An Peeters")
    await form.locator("input[name=from]").fill(today.date().isoformat())
    await form.locator("input[name=to]").fill((today.date() + timedelta(days=3)).isoformat())
    await form.locator("button[type=submit]").click()
    await expect(admin.locator(".flash.ok")).to_have_text("Absence recorded.")
    away = admin.locator(f'#calendar td[data-date="{today.date().isoformat()}"] .away')
    await expect(away).to_have_text("An Peeters")
    await admin.screenshot(path=str(SHOTS / "admin-absences.png"), full_page=True)
    await admin.click("nav.sections >> text=Rooms")
    form = admin.locator("#add-room")
    await form.locator("input[name=name]").fill("Room 2.14")
    await form.locator("input[name=site]").fill("Gent")
    await form.locator("textarea[name=notes]").fill("Second floor, no glass wall")
    await form.locator("button[type=submit]").click()
    await expect(admin.locator("#room-list")).to_contain_text("Room 2.14")

    # An employee, in a browser context of their own, finds Bram on duty now.
    employee = await live.page(locale="nl-BE", width=420)
    await employee.goto(live.base + "/")
    await employee.fill("#compose-text", "/confidants")
    await employee.keyboard.press("Enter")
    log = employee.locator("#log")
    await expect(log).to_contain_text("Bram Claes — nu bereikbaar")
    await expect(log).to_contain_text("An Peeters — nu niet van dienst")
    await employee.context.close()

    # Everything the admin did is in the audit trail, under their name.
    async with live.setup.store() as store, store.tx() as tx:
        kinds = {e.kind for e in await tx.audit.recent() if e.actor == "admin:web:Hanne"}
    assert {"admin.login", "confidant.added", "rota.shift_added", "rota.shift_changed",
            "rota.absence_added", "room.added"} <= kinds
    # Refusals come back as 400, which the browser notes; nothing else may go wrong.
    assert [p for p in problems if "status of 400" not in p] == []
    await admin.context.close()


async def test_the_grid_on_a_phone_and_in_a_dst_week(live: Live) -> None:
    await live.cli("admin", "admin", "add", "Ines")
    link = (await live.cli("admin", "token", "--admin", "Ines")).strip()
    phone = await live.page(locale="fr-BE", width=390)
    await phone.goto(link)
    await phone.click("#login")
    await expect(phone.locator("h1")).to_have_text("Horaire de la semaine")
    await phone.goto(live.base + "/admin/rota?week=2026-W13")
    await expect(phone.locator("#week-title")).to_contain_text("2026-W13")
    await expect(phone.locator("#clock-change")).to_contain_text("dimanche 29 mars")
    await expect(phone.locator("#clock-change")).to_contain_text("23 heures")
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, width  # no sideways scrolling on a phone
    await phone.screenshot(path=str(SHOTS / "admin-rota-phone.png"), full_page=True)
    await phone.context.close()


async def test_figures_hide_exactly_what_the_cli_report_hides(live: Live) -> None:
    async with live.setup.store() as store, store.tx() as tx:
        rows = ([("2026-01", "web", "stress", True)] * 7
                + [("2026-01", "telegram", "bullying", True)] * 2
                + [("2026-02", "matrix", "conflict", False)] * 4
                + [("2026-03", "web", "sexual", None)] + [("2026-03", "web", "stress", True)] * 5
                + [("2026-04", "web", "other", True)])
        for month, channel, theme, heard in rows:
            tx.session.add(CaseStatistic(month=month, channel=channel, theme=theme,
                                         heard_in_time=heard))
    printed = await live.cli("report", "--from", "2026-01-01", "--to", "2026-04-30",
                             "--format", "csv")
    expected = {f"{r['month']}|{r['dimension']}|{r['value']}": r["count"]
                for r in csv.DictReader(io.StringIO(printed))}
    assert any(v in ("<3", "x", "?") for v in expected.values())

    await live.cli("admin", "admin", "add", "Jo")
    link = (await live.cli("admin", "token", "--admin", "Jo")).strip()
    page = await live.page()
    await page.goto(link)
    await page.click("#login")
    await page.goto(live.base + "/admin/figures?from=2026-01&to=2026-04")
    await expect(page.locator("#figures-table")).to_be_visible()
    table = await page.eval_on_selector_all(
        "#figures-table td[data-cell]", "cells => cells.map(c => [c.dataset.cell, c.textContent])")
    assert dict(table) == expected
    bars = await page.eval_on_selector_all(
        "svg g.bar", "bars => bars.map(b => [b.dataset.cell, b.dataset.shown, "
        "!!b.dataset.hidden, b.querySelectorAll('rect.bar-shown').length])")
    assert len(bars) == 4 + 9 + 3 + 3  # months, themes, channels, heard
    for key, shown, hidden, drawn in bars:
        assert shown == expected[key], key
        assert hidden == (shown in ("<3", "x", "?")), key
        assert drawn == (0 if hidden else 1), key  # a hidden cell has no bar
    hidden_month = next(k for k, _, h, _ in bars if h and k.endswith("|cases|all"))
    labels = await page.locator(f'svg g.bar[data-cell="{hidden_month}"] text.hidden-label'
                                ).all_text_contents()
    assert sorted(labels) == sorted(["hidden", expected[hidden_month]])
    await page.screenshot(path=str(SHOTS / "admin-figures.png"), full_page=True)
    async with page.expect_download() as download_info:
        await page.click("#download-csv")
    download = await download_info.value
    assert Path(await download.path()).read_text("utf-8") == printed
    async with page.expect_download() as download_info:
        await page.click("#download-pdf")
    pdf = Path(await (await download_info.value).path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    await page.context.close()
    for name in ("admin-login", "admin-confidants", "admin-rota", "admin-rota-refused",
                 "admin-absences", "admin-rota-phone", "admin-figures"):
        assert (SHOTS / f"{name}.png").stat().st_size > 5000, name
