"""Pages mounted on the web channel by other parts of the bot (the admin
console): served on the channel's own port, with the same security headers
and failure guard as the channel's pages, sessions of their own that a
console session never opens, and the channel's own pages left as they were."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from bot.channels.base import MemoryChannelState
from bot.channels.web import WebChannel, WebSessions
from bot.channels.web.security import SECURITY_HEADERS
from domain.messages import Inbound

ADMIN = "hr-anna"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    channel: WebChannel
    sessions: WebSessions
    clock: Clock
    http: aiohttp.ClientSession

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.channel.port}"


def admin_routes(channel: WebChannel, sessions: WebSessions) -> web.RouteTableDef:
    """A miniature admin console, written only against the public hook."""
    routes = web.RouteTableDef()

    @routes.get("/")
    async def home(request: web.Request) -> web.Response:
        who = await sessions.subject(request)
        if who is None:
            raise web.HTTPSeeOther(location="/admin/login")
        return web.Response(text=f"<p>rota of {who}</p>", content_type="text/html")

    @routes.get("/login")
    async def login(request: web.Request) -> web.StreamResponse:
        if request.query.get("token") != "one-time":
            return web.Response(status=403, text="not valid")
        response = web.HTTPSeeOther(location="/admin/")
        await sessions.begin(response, ADMIN)
        return response

    @routes.post("/shift")
    async def shift(request: web.Request) -> web.Response:
        if not channel.same_origin(request):
            raise web.HTTPForbidden(text="Cross-site request refused.")
        if await sessions.subject(request) is None:
            raise web.HTTPUnauthorized()
        return web.json_response({"ok": True})

    @routes.post("/logout")
    async def logout(request: web.Request) -> web.Response:
        if not channel.same_origin(request):
            raise web.HTTPForbidden()
        response = web.json_response({"ok": True})
        await sessions.end(request, response)
        return response

    @routes.get("/broken")
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("anna@example.org")  # personal data in an error

    return routes


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    clock = Clock()
    tokens = {"console-token": "confidant-alice-web"}

    async def redeem(token: str) -> str | None:
        return tokens.pop(token, None)

    async def core(inbound: Inbound) -> None:
        return None

    channel = WebChannel("127.0.0.1:0", None, MemoryChannelState(), redeem,
                         ["nl", "fr", "en"], "nl", "Acme", clock=clock)
    sessions = channel.sessions("admin", lifetime=3600)
    channel.mount("/admin", admin_routes(channel, sessions))
    await channel.start(core)
    async with aiohttp.ClientSession() as http:
        yield Site(channel, sessions, clock, http)
    await channel.stop()


def assert_secured(response: aiohttp.ClientResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name)
    assert "Server" not in response.headers


async def test_mounted_pages_get_the_security_headers(site: Site) -> None:
    for path, status in (("/admin/", 303), ("/admin/login", 403), ("/admin/nowhere", 404),
                         ("/admin/broken", 500)):
        async with site.http.get(site.base + path, allow_redirects=False) as r:
            assert r.status == status, path
            assert_secured(r)
    async with site.http.post(site.base + "/admin/shift",
                              headers={"Origin": "http://evil.example"}) as r:
        assert r.status == 403
        assert_secured(r)


async def test_a_failing_mounted_page_is_answered_kindly_and_logged_without_data(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with site.http.get(site.base + "/admin/broken") as r:
        assert r.status == 500
        assert "please try again" in await r.text()
    assert "anna@example.org" not in caplog.text
    assert "RuntimeError" in caplog.text


async def test_the_channels_own_pages_are_unaffected(site: Site) -> None:
    for path in ("/", "/console", "/resume", "/healthz", "/static/style.css"):
        async with site.http.get(site.base + path) as r:
            assert r.status == 200, path
            assert_secured(r)
    async with site.http.get(site.base + "/") as r:
        assert "chat.js" in await r.text()
    # The mounted paths exist only under their prefix.
    for path in ("/login", "/shift", "/broken", "/adminx", "/admin-login"):
        async with site.http.get(site.base + path) as r:
            assert r.status == 404, path


async def test_admin_session_is_its_own_and_ends(site: Site) -> None:
    login = await site.http.get(site.base + "/admin/login?token=one-time",
                                allow_redirects=False)
    assert login.status == 303
    [line] = login.headers.getall("Set-Cookie")
    name, _, rest = line.partition("=")
    assert name == site.sessions.cookie_name != site.channel.cookie_name
    assert "httponly" in line.lower() and "samesite=strict" in line.lower()
    cookie = f"{name}={rest.split(';', 1)[0]}"
    async with site.http.get(site.base + "/admin/", headers={"Cookie": cookie}) as r:
        assert f"rota of {ADMIN}" in await r.text()
    async with site.http.post(site.base + "/admin/shift",
                              headers={"Cookie": cookie, "Origin": site.base}) as r:
        assert r.status == 200
    # The admin cookie does not open the confidant console …
    ws = await site.http.ws_connect(site.base + "/console/ws",
                                    headers={"Origin": site.base, "Cookie": cookie})
    assert (await ws.receive_json(timeout=5)) == {"type": "error", "code": "login"}
    await ws.close()
    # … and ends on logout.
    async with site.http.post(site.base + "/admin/logout",
                              headers={"Cookie": cookie, "Origin": site.base}) as r:
        assert r.status == 200
    async with site.http.post(site.base + "/admin/shift",
                              headers={"Cookie": cookie, "Origin": site.base}) as r:
        assert r.status == 401


async def test_console_session_does_not_open_admin_pages_and_sessions_expire(
        site: Site) -> None:
    console = await site.http.get(site.base + "/console/login?token=console-token",
                                  allow_redirects=False)
    [line] = console.headers.getall("Set-Cookie")
    sid = line.split(";", 1)[0].split("=", 1)[1]
    for name in (site.channel.cookie_name, site.sessions.cookie_name):
        async with site.http.get(site.base + "/admin/", allow_redirects=False,
                                 headers={"Cookie": f"{name}={sid}"}) as r:
            assert r.status == 303 and r.headers["Location"] == "/admin/login"
    login = await site.http.get(site.base + "/admin/login?token=one-time",
                                allow_redirects=False)
    cookie = login.headers["Set-Cookie"].split(";", 1)[0]
    site.clock.now += 3601
    async with site.http.post(site.base + "/admin/shift",
                              headers={"Cookie": cookie, "Origin": site.base}) as r:
        assert r.status == 401


async def test_a_sub_application_with_a_websocket_can_be_mounted() -> None:
    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("hi")
        await ws.close()
        return ws

    async def core(inbound: Inbound) -> None:
        return None

    async def redeem(token: str) -> str | None:
        return None

    sub = web.Application()
    sub.router.add_get("/live", ws_handler)
    channel = WebChannel("127.0.0.1:0", "https://chat.example.org/", MemoryChannelState(),
                         redeem, ["en"], "en", "Acme")
    channel.mount("/figures", sub)
    assert channel.sessions("admin", 60).cookie_name == "__Host-confidant-admin"
    assert channel.url_for("/figures/live") == "https://chat.example.org/figures/live"
    await channel.start(core)
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(
                f"http://127.0.0.1:{channel.port}/figures/live") as ws:
            assert (await ws.receive(timeout=5)).data == "hi"
            async with http.get(f"http://127.0.0.1:{channel.port}/figures/live") as r:
                assert r.status == 400  # not an upgrade: refused, yet hardened
                assert_secured(r)
    finally:
        await channel.stop()


async def test_mount_refuses_a_taken_or_bad_prefix_and_a_late_call() -> None:
    async def redeem(token: str) -> str | None:
        return None

    async def core(inbound: Inbound) -> None:
        return None

    channel = WebChannel("127.0.0.1:0", None, MemoryChannelState(), redeem, ["en"], "en", "A")
    channel.mount("/admin", [])
    for prefix in ("/admin", "/console", "/static", "/ws", "/api", "/healthz", "/", "admin",
                   "/a/b", "/Admin"):
        with pytest.raises(ValueError):
            channel.mount(prefix, [])
    with pytest.raises(ValueError):
        channel.sessions("console", 60)
    await channel.start(core)
    try:
        with pytest.raises(RuntimeError):
            channel.mount("/later", [])
    finally:
        await channel.stop()
