"""The admin console over HTTP, on a real store with a real case in it: no
admin route answers without a session, a confidant's console session opens
none of them, a change needs the session's token and our own origin, a
session ends (logout, eight hours), and no page or download of the console
holds anything of a case (its code, the employee's words, the confidant's
note).  Also the grid's week: a DST week is drawn with its true day lengths."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pypdf import PdfReader

from bot.app import admin_service_factory
from bot.channels.base import MemoryChannelState
from bot.channels.web import WebChannel
from bot.webadmin.console import AdminConsole, mount
from bot.webadmin.gate import SESSION_SECONDS
from domain.messages import Inbound
from handlers.administration.base import AdminSettings
from store.admin import ADMIN_SESSION_LIFETIME
from store.models import CaseStatistic
from tests.support.memory_channel import Harness, make_harness, open_case

EMPLOYEE_WORDS = "Mijn ploegbaas scheldt me elke ochtend uit waar iedereen bij is"
NOTE_WORDS = "Eerste gesprek gepland, ze wil eerst alleen praten"
CONSOLE_ADDRESS = "console-sara-web"
START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


class Clock:
    """The channel's and the admin service's clock, moved by the tests."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now.timestamp()


@dataclass
class Site:
    harness: Harness
    channel: WebChannel
    console: AdminConsole
    clock: Clock
    http: aiohttp.ClientSession
    token: str
    code: str
    console_token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.channel.port}"

    async def new_token(self, name: str = "Hanne") -> str:
        async with self.console.kit.open_service("admin:cli:test") as svc:
            _, secret = await svc.admin_token(name)
        return str(secret)

    async def login(self, token: str | None = None) -> str:
        """Use a login link; returns the Cookie header of the new session."""
        async with self.http.post(self.base + "/admin/login", data={"token": token or self.token},
                                  headers={"Origin": self.base}, allow_redirects=False) as r:
            assert r.status == 303, await r.text()
            line = r.headers["Set-Cookie"]
        return line.split(";", 1)[0]

    async def csrf(self, cookie: str) -> str:
        async with self.http.get(self.base + "/admin/rota", headers={"Cookie": cookie}) as r:
            assert r.status == 200
            found = re.search(r'name="csrf" value="([0-9a-f]+)"', await r.text())
        assert found
        return found[1]


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    harness = await make_harness(f"sqlite+aiosqlite:///{tmp_path / 'admin.db'}", tmp_path,
                                 now=START)
    sara = await harness.add_confidant("Sara Peeters", "conf-sara")
    emp = harness.person("emp-web-1", "nl")
    await emp.say("/start")
    code = await open_case(emp, sara)
    await emp.say(EMPLOYEE_WORDS)
    await sara.say(f"/note {NOTE_WORDS}")
    async with harness.store.tx() as tx:
        for month, theme in (("2026-10", "stress"), ("2026-10", "stress"), ("2026-10", "stress"),
                             ("2026-11", "bullying")):
            tx.session.add(CaseStatistic(month=month, channel="web", theme=theme,
                                         heard_in_time=True))
    clock = Clock()
    console_tokens = {"console-token": CONSOLE_ADDRESS}

    async def redeem(token: str) -> str | None:
        return console_tokens.pop(token, None)

    async def core(inbound: Inbound) -> None:
        return None

    channel = WebChannel("127.0.0.1:0", None, MemoryChannelState(), redeem, ["nl", "fr", "en"],
                         "nl", "Acme", clock=clock)
    factory = admin_service_factory(harness.store, AdminSettings(timezone="Europe/Brussels"),
                                    now=lambda: clock.now)
    console = mount(channel, factory, org_name="Acme", languages=["nl", "fr", "en"],
                    default_language="nl", timezone="Europe/Brussels", clock=clock)
    async with factory("admin:cli:test") as svc:
        await svc.add_admin("Hanne")
        _, token = await svc.admin_token("Hanne")
    await channel.start(core)
    async with aiohttp.ClientSession() as http:
        yield Site(harness, channel, console, clock, http, token, code, "console-token")
    await channel.stop()
    await harness.store.close()


def admin_routes(console: AdminConsole) -> list[tuple[str, str]]:
    """(method, path) of every console route but the login and the static files."""
    out = []
    for route in console.routes():
        assert isinstance(route, web.RouteDef)
        if route.path in ("/login", "/static/{name}"):
            continue
        out.append((route.method, "/admin" + route.path.replace("{id}", "0123456789abcdef")))
    return out


async def test_every_admin_route_refuses_without_a_session(site: Site) -> None:
    routes = admin_routes(site.console)
    assert len(routes) >= 20 and ("POST", "/admin/rota/shifts") in routes
    for method, path in routes:
        async with site.http.request(method, site.base + path, allow_redirects=False,
                                     headers={"Origin": site.base}) as r:
            body = await r.text()
            assert r.status == 401, (method, path, r.status)
            assert "Sara" not in body and "csrf" not in body, path
            assert "confidant admin token --admin NAME" in body
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    async with site.http.get(site.base + "/admin/rota", headers={"Cookie": "confidant_admin=forged"}
                             ) as r:
        assert r.status == 401


async def test_a_login_link_opens_one_session_once(site: Site) -> None:
    # Opening the link only shows a button: a link preview does not spend it.
    async with site.http.get(site.base + f"/admin/login?token={site.token}") as r:
        assert r.status == 200 and 'name="token"' in await r.text()
    cookie = await site.login()
    name, _, sid = cookie.partition("=")
    assert name == "confidant_admin" and len(sid) > 20
    async with site.http.get(site.base + "/admin/rota", headers={"Cookie": cookie}) as r:
        assert r.status == 200
        page = await r.text()
    assert "Sara Peeters" in page and "Hanne" in page
    async with site.http.post(site.base + "/admin/login", data={"token": site.token},
                              headers={"Origin": site.base}, allow_redirects=False) as r:
        assert r.status == 403  # used
    async with site.http.post(site.base + "/admin/login", data={"token": site.token},
                              headers={"Origin": "http://evil.example"}) as r:
        assert r.status == 403
    other = await site.new_token()
    async with site.http.post(site.base + "/admin/login", data={"token": other},
                              headers={"Origin": "http://evil.example"}) as r:
        assert r.status == 403  # a cross-site login (login CSRF) is refused too


async def test_a_confidant_console_session_opens_no_admin_route(site: Site) -> None:
    async with site.http.get(site.base + "/console/login?token=console-token",
                             allow_redirects=False) as r:
        assert r.status == 303
        name, _, sid = r.headers["Set-Cookie"].split(";", 1)[0].partition("=")
    assert name == site.channel.cookie_name
    for cookie in (f"{name}={sid}", f"confidant_admin={sid}"):
        for method, path in admin_routes(site.console):
            async with site.http.request(method, site.base + path, allow_redirects=False,
                                         headers={"Cookie": cookie, "Origin": site.base}) as r:
                assert r.status == 401, (cookie, method, path)


async def test_changes_need_the_session_token_and_our_origin(site: Site) -> None:
    cookie = await site.login()
    csrf = await site.csrf(cookie)
    async with site.console.kit.open_service("admin:cli:test") as svc:
        [sara] = await svc.confidants()
    shift = {"confidant": sara.id, "day": "tue", "start": "09:00", "end": "12:00",
             "kind": "talks"}
    forged = [({"Cookie": cookie, "Origin": site.base}, {**shift}),
              ({"Cookie": cookie, "Origin": site.base}, {**shift, "csrf": "0" * 40}),
              ({"Cookie": cookie, "Origin": "http://evil.example"}, {**shift, "csrf": csrf}),
              ({"Cookie": cookie}, {**shift, "csrf": csrf})]
    for headers, data in forged:
        async with site.http.post(site.base + "/admin/rota/shifts", data=data, headers=headers,
                                  allow_redirects=False) as r:
            assert r.status == 403, (headers, data)
    async with site.console.kit.open_service("admin:cli:test") as svc:
        assert [s.weekday for s in await svc.shifts()] == list(range(7))  # only the harness's
    async with site.http.post(site.base + "/admin/rota/shifts", data={**shift, "csrf": csrf},
                              headers={"Cookie": cookie, "Origin": site.base,
                                       "Accept": "application/json"}) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["ok"] is True


async def test_an_overlap_is_refused_with_the_services_reason(site: Site) -> None:
    cookie = await site.login()
    csrf = await site.csrf(cookie)
    async with site.console.kit.open_service("admin:cli:test") as svc:
        [sara] = await svc.confidants()
    headers = {"Cookie": cookie, "Origin": site.base, "Accept": "application/json",
               "Accept-Language": "en"}
    data = {"csrf": csrf, "confidant": sara.id, "day": "mon", "start": "10:00", "end": "11:00",
            "kind": "duty"}
    async with site.http.post(site.base + "/admin/rota/shifts", data=data,
                              headers=headers) as r:
        assert r.status == 400
        answer = await r.json()
    assert answer["ok"] is False and answer["field"] == "start"
    assert answer["error"].startswith("Not saved: ") and "overlap" in answer["error"]
    data.update(start="12:00", end="11:00", kind="talks")
    async with site.http.post(site.base + "/admin/rota/shifts", data=data,
                              headers=headers) as r:
        answer = await r.json()
    assert r.status == 400 and answer["field"] == "end"
    # Without a script: the page again, with the reason and the form as sent.
    del headers["Accept"]
    async with site.http.post(site.base + "/admin/rota/shifts", data=data,
                              headers=headers) as r:
        page = await r.text()
    assert r.status == 400 and "Not saved: " in page and 'value="12:00"' in page


async def test_no_admin_route_returns_case_content(site: Site) -> None:
    cookie = await site.login()
    headers = {"Cookie": cookie}
    async with site.console.kit.open_service("admin:cli:test") as svc:
        [sara] = await svc.confidants()
        shift = (await svc.shifts())[0]
    pages = ["/admin/rota", "/admin/rota?week=2026-W48", f"/admin/rota?edit={shift.id}",
             "/admin/confidants", f"/admin/confidants?edit={sara.id}", "/admin/absences",
             "/admin/absences?month=2026-12", "/admin/rooms", "/admin/figures",
             "/admin/figures?from=2026-01&to=2026-12", "/admin/figures.csv",
             "/admin/rota-file", "/admin/rota-file/export"]
    seen = []
    for path in pages:
        async with site.http.get(site.base + path, headers=headers) as r:
            assert r.status == 200, path
            seen.append((path, await r.text()))
    async with site.http.get(site.base + "/admin/figures.pdf", headers=headers) as r:
        assert r.status == 200 and r.content_type == "application/pdf"
        pdf = PdfReader(io.BytesIO(await r.read()))
    assert len(pdf.pages) == 1
    seen.append(("pdf", pdf.pages[0].extract_text()))
    for path, body in seen:
        for secret in (site.code, EMPLOYEE_WORDS[:30], NOTE_WORDS[:30], "emp-web-1",
                       "conf-sara", CONSOLE_ADDRESS):
            assert secret not in body, (path, secret)
    assert "Sara Peeters" in seen[0][1]


async def test_logout_and_eight_hours_end_a_session(site: Site) -> None:
    assert timedelta(seconds=SESSION_SECONDS) == ADMIN_SESSION_LIFETIME
    cookie = await site.login()
    csrf = await site.csrf(cookie)
    async with site.http.post(site.base + "/admin/logout", data={"csrf": csrf},
                              headers={"Cookie": cookie, "Origin": site.base}) as r:
        assert r.status == 200
    async with site.http.get(site.base + "/admin/rota", headers={"Cookie": cookie}) as r:
        assert r.status == 401
    cookie = await site.login(await site.new_token())
    site.clock.now += timedelta(seconds=SESSION_SECONDS - 60)
    async with site.http.get(site.base + "/admin/rota", headers={"Cookie": cookie}) as r:
        assert r.status == 200
    site.clock.now += timedelta(seconds=61)
    async with site.http.get(site.base + "/admin/rota",
                             headers={"Cookie": cookie, "Accept-Language": "en"}) as r:
        assert r.status == 401
        assert "Your session has ended" in await r.text()


async def test_a_dst_week_has_its_true_day_lengths(site: Site) -> None:
    cookie = await site.login()
    async with site.console.kit.open_service("admin:cli:test") as svc:
        for s in await svc.shifts():
            await svc.remove_shift(s.id)
        [sara] = await svc.confidants()
        await svc.add_shift(sara.id, "sun", time(0, 0), time(6, 0))
        await svc.add_shift(sara.id, "mon", time(9, 0), time(12, 0))
    headers = {"Cookie": cookie, "Accept-Language": "en"}
    expected = {"2026-W13": ("Clocks go forward at 02:00 (to 03:00)", "8 h on duty"),
                "2026-W43": ("Clocks go back at 03:00 (to 02:00)", "10 h on duty"),
                "2026-W20": (None, "9 h on duty")}
    for week, (change, hours) in expected.items():
        async with site.http.get(site.base + f"/admin/rota?week={week}", headers=headers) as r:
            page = await r.text()
        assert hours in page, week
        if change:
            assert page.count("this day has") == 2 and change in page, week  # banner, header
        else:
            assert "this day has" not in page
    async with site.http.get(site.base + "/admin/rota?week=2026-W13", headers=headers) as r:
        page = await r.text()
    assert "Mon 23 Mar" in page and "Sun 29 Mar" in page
    assert 'href="/admin/rota?week=2026-W12"' in page and 'href="/admin/rota?week=2026-W14"' in page


async def test_a_confidant_needs_the_attestation_and_can_be_changed_and_deactivated(
        site: Site) -> None:
    cookie = await site.login()
    csrf = await site.csrf(cookie)
    headers = {"Cookie": cookie, "Origin": site.base, "Accept-Language": "en"}
    new = {"csrf": csrf, "name": "Lotte Maes", "languages": ["nl", "fr"], "bio": "Brugge",
           "web": "1"}
    async with site.http.post(site.base + "/admin/confidants", data=new, headers=headers) as r:
        page = await r.text()
    assert r.status == 400 and "Tick the attestation" in page
    assert 'value="Lotte Maes"' in page  # the form keeps what was typed
    async with site.console.kit.open_service("admin:cli:test") as svc:
        assert [c.name for c in await svc.confidants()] == ["Sara Peeters"]
    async with site.http.post(site.base + "/admin/confidants", data={**new, "attest": "1"},
                              headers=headers, allow_redirects=False) as r:
        assert r.status == 303
    async with site.console.kit.open_service("admin:cli:test") as svc:
        lotte = await svc.confidant("Lotte Maes")
    assert lotte.languages == ("nl", "fr") and lotte.channels == ("web",)
    assert lotte.attested_by == "Hanne"
    async with site.http.post(site.base + f"/admin/confidants/{lotte.id}",
                              data={"csrf": csrf, "bio": "Brugge en Oostende", "languages": "nl",
                                    "web": "1"}, headers=headers, allow_redirects=False) as r:
        assert r.status == 303
    async with site.http.post(site.base + f"/admin/confidants/{lotte.id}/link",
                              data={"csrf": csrf}, headers=headers) as r:
        page = await r.text()
    link = re.search(r"http://127\.0\.0\.1:\d+/console/login\?token=[\w-]+", page)
    assert r.status == 200 and link, page
    async with site.http.post(site.base + f"/admin/confidants/{lotte.id}/deactivate",
                              data={"csrf": csrf}, headers=headers, allow_redirects=False) as r:
        assert r.status == 303
    async with site.console.kit.open_service("admin:cli:test") as svc:
        assert [c.name for c in await svc.confidants()] == ["Sara Peeters"]
        [gone] = [c for c in await svc.confidants(include_inactive=True) if not c.active]
        assert gone.bio == "Brugge en Oostende" and gone.languages == ("nl",)
        kinds = [e.kind for e in await svc.tx.audit_events() if e.actor == "admin:web:Hanne"]
    assert {"confidant.added", "confidant.changed", "console.token_issued",
            "confidant.removed"} <= set(kinds)


async def test_absences_rooms_and_the_rota_file(site: Site) -> None:
    cookie = await site.login()
    csrf = await site.csrf(cookie)
    headers = {"Cookie": cookie, "Origin": site.base, "Accept-Language": "fr"}
    async with site.console.kit.open_service("admin:cli:test") as svc:
        [sara] = await svc.confidants()
    async with site.http.post(site.base + "/admin/absences", headers=headers, data={
            "csrf": csrf, "confidant": sara.id, "from": "24/12/2026", "to": "2026-12-20"}) as r:
        assert r.status == 400 and "La fin doit venir après le début." in await r.text()
    async with site.http.post(site.base + "/admin/absences", headers=headers, data={
            "csrf": csrf, "confidant": sara.id, "from": "24/12/2026", "to": "2027-01-02"},
            allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"].startswith("/admin/absences?month=2026-12")
    async with site.http.get(site.base + "/admin/absences?month=2026-12", headers=headers) as r:
        page = await r.text()
    assert page.count('class="away"') == 10  # 24 December to 2 January, in the calendar
    async with site.http.post(site.base + "/admin/rooms", headers=headers, allow_redirects=False,
                              data={"csrf": csrf, "name": "Salle 3", "site": "Namur",
                                    "notes": "Rez-de-chaussée"}) as r:
        assert r.status == 303
    async with site.http.post(site.base + "/admin/rooms", headers=headers,
                              data={"csrf": csrf, "name": "Salle 3"}) as r:
        assert r.status == 400  # a second room of that name
    async with site.http.get(site.base + "/admin/rota-file/export", headers=headers) as r:
        exported = await r.text()
        assert r.headers["Content-Disposition"] == 'attachment; filename="rota.toml"'
    assert 'name = "Sara Peeters"' in exported and "Salle 3" in exported

    async def upload(text: str) -> tuple[int, str]:
        form = aiohttp.FormData()
        form.add_field("csrf", csrf)
        form.add_field("file", text.encode(), filename="rota.toml",
                       content_type="application/toml")
        async with site.http.post(site.base + "/admin/rota-file", data=form,
                                  headers=headers) as r:
            return r.status, await r.text()

    broken = exported.replace('day = "mon"', 'day = "funday"', 1)
    status, page = await upload(broken)
    assert status == 400 and "Non importé, rien n&#39;a été modifié" in page
    async with site.console.kit.open_service("admin:cli:test") as svc:
        assert len(await svc.shifts()) == 7
    fewer = exported.replace('day = "sun"', 'day = "sat"', 1)  # sat then holds two, overlapping
    status, page = await upload(fewer)
    assert status == 400
    one_day = re.sub(r"\[\[confidant\.shift\]\][^\[]*", "", exported)
    one_day = one_day.replace('name = "Sara Peeters"\n',
                              'name = "Sara Peeters"\n\n[[confidant.shift]]\nday = "wo"\n'
                              'start = "9"\nend = "12:30"\n', 1)
    status, page = await upload(one_day)
    assert status == 200 and "Horaire importé : 1 personne(s) de confiance, 1 plage(s)" in page
    async with site.console.kit.open_service("admin:cli:test") as svc:
        [shift] = await svc.shifts()
    assert (shift.weekday, shift.start, shift.end) == (2, time(9), time(12, 30))


async def test_pages_in_each_language(site: Site) -> None:
    cookie = await site.login()
    words = {"nl": ("Weekrooster", "Vertrouwenspersonen", "Anonieme cijfers"),
             "fr": ("Horaire de la semaine", "Personnes de confiance", "Chiffres anonymes"),
             "en": ("Weekly rota", "Confidants", "Anonymous figures")}
    for lang, (rota, people, figures) in words.items():
        for path, word in (("/admin/rota", rota), ("/admin/confidants", people),
                           ("/admin/figures", figures)):
            async with site.http.get(site.base + path + f"?lang={lang}",
                                     headers={"Cookie": cookie}) as r:
                page = await r.text()
            assert r.status == 200 and f'<html lang="{lang}">' in page and word in page
    # The choice sticks (a cookie), and the browser's language is the default.
    async with site.http.get(site.base + "/admin/rota?lang=fr", headers={"Cookie": cookie}) as r:
        lang_cookie = r.cookies["confidant_admin_lang"].value
    assert lang_cookie == "fr"
    async with site.http.get(site.base + "/admin/rooms", headers={
            "Cookie": f"{cookie}; confidant_admin_lang=fr", "Accept-Language": "en"}) as r:
        assert "Locaux discrets" in await r.text()
