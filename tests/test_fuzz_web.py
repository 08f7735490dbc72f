"""Hypothesis over the web channel's inbound surface: WebSocket frames and
HTTP requests against the real `App` (web channel, core, store, delivery
worker) listening on 127.0.0.1.

The world holds one open case: an employee tab (the victim) and Sara's
console.  The fuzzer opens employee and console tabs of its own, presents
forged identities and session cookies, sends random JSON, wrong types, huge
strings, unknown frame kinds, forged and stolen button tokens and binary
frames, and sends HTTP requests with junk bodies, wrong methods, junk login
tokens and missing or foreign ``Origin`` headers.  After every example: no
answer was a server error, nothing was logged as a failure, the server still
serves, the case is as before, and neither the victim nor Sara got anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.app import App
from bot.channels.web import WebChannel
from handlers.i18n import Translator
from tests.support.app_runner import BotSetup, make_setup, running_app

CODE = re.compile(r"\b[A-Z0-9]{3}-[A-Z0-9]{3}\b")
TR = Translator("en", ("nl", "fr", "en"), "Europe/Brussels", "Acme Logistics")
SECRET = "something only Sara may read"
TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@dataclass
class World:
    app: App
    setup: BotSetup
    web: WebChannel
    http: aiohttp.ClientSession
    base: str
    code: str
    victim: str
    sara_address: str
    sara_cookie: str
    stolen: list[str]
    records: list[logging.LogRecord]
    statuses: list[int] = field(default_factory=list)


async def _frame(ws: aiohttp.ClientWebSocketResponse, pred: Any) -> dict[str, Any]:
    """The next frame matching ``pred`` (others are skipped)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + TIMEOUT
    while True:
        msg = await ws.receive(timeout=max(0.1, end - loop.time()))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        if pred(data):
            return data


def _text(frame: dict[str, Any]) -> str:
    return str((frame.get("item") or {}).get("text") or "")


def _tokens(frame: dict[str, Any]) -> list[str]:
    return [b["token"] for row in (frame.get("item") or {}).get("buttons") or [] for b in row]


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    setup = await make_setup(tmp_path, default_language="en",
                             extra={"web": {"enabled": True, "listen": f"127.0.0.1:{port}"}})
    sara_address = secrets.token_urlsafe(16)
    async with setup.store() as store, store.tx() as tx:
        sara = await tx.confidants.add("Sara", bio="", languages=["en"], attested_by="test",
                                       now=datetime.now(UTC))
        await tx.confidants.set_address(sara, "web", sara_address)
        for day in range(7):
            await tx.rota.add_shift(sara, day, dtime(0, 0), dtime(23, 59), "duty")
        token = await tx.confidants.new_login_token(sara, datetime.now(UTC))
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    watched = [logging.getLogger(n) for n in ("bot", "handlers", "store", "confidant")]
    saved = [(lg, lg.level) for lg in watched]
    for lg in watched:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    origin = {"Origin": base}
    try:
        async with running_app(setup) as app, aiohttp.ClientSession() as http:
            web = app.channels["web"]
            assert isinstance(web, WebChannel)
            victim_ws = await http.ws_connect(base + "/ws", headers=origin)
            await victim_ws.send_json({"type": "hello", "language": "en"})
            ready = await _frame(victim_ws, lambda f: f.get("type") == "ready")
            victim = str(ready["identity"])
            await victim_ws.send_json({"type": "message", "id": "c0ffee00-0001", "text": "/talk"})
            first = TR.t("en", "talk.first_available")
            menu = await _frame(victim_ws, lambda f: any(
                b["label"] == first for row in (f.get("item") or {}).get("buttons") or []
                for b in row))
            choice = next(b["token"] for row in menu["item"]["buttons"] for b in row
                          if b["label"] == first)
            await victim_ws.send_json({"type": "button", "id": "c0ffee00-0002", "token": choice,
                                       "label": first})
            opened = await _frame(victim_ws, lambda f: bool(CODE.search(_text(f))))
            match = CODE.search(_text(opened))
            assert match is not None
            code = match.group(0)

            login = await http.get(base + "/console/login", params={"token": token},
                                   allow_redirects=False)
            assert login.status == 303
            morsel = login.cookies[web.cookie_name]
            cookie = f"{web.cookie_name}={morsel.value}"
            console = await http.ws_connect(base + "/console/ws",
                                            headers={**origin, "Cookie": cookie})
            await console.send_json({"type": "hello", "language": "en"})
            await _frame(console, lambda f: f.get("type") == "ready")
            await console.send_json({"type": "message", "id": "c0ffee00-0003",
                                     "text": f"/claim {code}"})
            await _frame(victim_ws, lambda f: "Sara" in _text(f))
            await victim_ws.send_json({"type": "message", "id": "c0ffee00-0004",
                                       "text": SECRET})
            await _frame(console, lambda f: SECRET in _text(f))
            assert app.worker is not None
            await app.worker.drain()
            history = [*(await web.histories.load(victim))["items"],
                       *(await web.histories.load(sara_address))["items"]]
            stolen = sorted({b["token"] for i in history for row in i.get("buttons") or []
                             for b in row})
            assert stolen
            await victim_ws.close()
            await console.close()
            yield World(app, setup, web, http, base, code, victim, sara_address, cookie, stolen,
                        records)
    finally:
        for lg, level in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)


# --- strategies -----------------------------------------------------------------------

CONTROL = "".join(chr(c) for c in (*range(0, 32), 127, *range(0x80, 0xA0)))
TRICKY = ("\u202e", "\u2066", "\u200f", "\ufeff", "\x00", "\x1b[2J", "\r\n", "🙂", "\ud7ff",
          "‮/claim ", "<script>alert(1)</script>", "{{7*7}}", "%s%n")

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=30))
junk = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=10)
texts = st.one_of(
    st.text(max_size=300),
    st.text(st.sampled_from(CONTROL + "ab /!"), max_size=100),
    st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=6)), max_size=10).map("".join),
    st.builds(lambda u, n: (u * n)[:100_000], st.sampled_from(["a", "é", "\u202e", "🙂", "\n"]),
              st.integers(3_990, 100_000)),
    st.sampled_from(["/claim {code}", "/close {code} conflict", "/note {code} x", "/cases",
                     "/handover Sara", "/consent advisor", "/admin", "/forget", "/heard",
                     "!claim {code}", "/start", "/talk", "1", "2", "0", "-1"]),
)
client_ids = st.one_of(st.uuids().map(str), st.uuids().map(str), st.uuids().map(str),
                       st.text(max_size=70), junk,
                       st.just("c0ffee00-0004"))  # the victim's own client id


@st.composite
def frame(draw: st.DrawFn, w: World) -> Any:
    """One thing a page (or anyone with a WebSocket) could send."""
    kind = draw(st.sampled_from(["message"] * 4 + ["button"] * 4 + [
        "junk", "ping", "hello", "unknown", "binary", "huge", "text"]))
    if kind == "binary":
        return draw(st.binary(max_size=2048))
    if kind == "junk":
        return json.dumps(draw(junk))
    if kind == "text":
        return draw(st.one_of(st.text(max_size=200), st.just("{"), st.just("null")))
    if kind == "huge":
        return json.dumps({"type": "message", "id": "c0ffee00-9999",
                           "text": "x" * draw(st.integers(60_000, 120_000))})
    out: dict[str, Any] = {"type": draw(st.sampled_from(
        ["message", "button", "ping", "hello", "typing", "MESSAGE", "", "admin"]))
        if kind == "unknown" else kind}
    if kind == "message":
        out["text"] = draw(st.one_of(texts.map(lambda t: t.replace("{code}", w.code)), junk))
    if kind == "button":
        out["token"] = draw(st.one_of(
            st.sampled_from(w.stolen), st.sampled_from(w.stolen).map(lambda t: t + "x"),
            st.sampled_from(w.stolen).map(lambda t: t[:-1]), st.sampled_from(w.stolen).map(
                str.upper), st.text(max_size=300), junk, st.just("a" * 257)))
        out["label"] = draw(st.one_of(st.text(max_size=300), junk))
    if kind == "hello":
        out["identity"] = draw(st.sampled_from([w.victim, w.sara_address]))
    out["id"] = draw(client_ids)
    if draw(st.booleans()):
        out["case"] = draw(st.one_of(st.just(w.code), st.just(w.code.lower()), junk))
    for key, value in draw(st.dictionaries(st.sampled_from(
            ["identity", "sender", "role", "from", "chat", "language", "event_id"]),
            st.one_of(st.just(w.victim), st.just(w.sara_address), st.just("console"), junk),
            max_size=2)).items():
        out[key] = value
    return json.dumps(out)


@st.composite
def tab(draw: st.DrawFn, w: World) -> tuple[str, dict[str, str], Any, list[Any]]:
    """A tab: which endpoint, which headers, which hello, which frames."""
    path = draw(st.sampled_from(["/ws", "/ws", "/ws", "/console/ws"]))
    headers: dict[str, str] = {}
    origin = draw(st.sampled_from(["ours"] * 8 + ["none", "evil", "null"]))
    if origin == "ours":
        headers["Origin"] = w.base
    elif origin == "evil":
        headers["Origin"] = "http://127.0.0.2:1"
    elif origin == "null":
        headers["Origin"] = "null"
    if path == "/console/ws":
        cookie = draw(st.sampled_from(["none", "junk", "mangled", "long"]))
        name = w.web.cookie_name
        value = {"junk": secrets.token_urlsafe(32), "long": "x" * 300,
                 "mangled": w.sara_cookie.split("=", 1)[1][:-2] + "AA"}.get(cookie)
        if value is not None:
            headers["Cookie"] = f"{name}={value}"
    good_hello = st.fixed_dictionaries({"type": st.just("hello"), "language": st.just("en")})
    hello = draw(st.one_of(
        good_hello.map(json.dumps), good_hello.map(json.dumps), good_hello.map(json.dumps),
        st.fixed_dictionaries({"type": st.just("hello")}, optional={
            "identity": st.one_of(
                st.sampled_from([w.victim + "x", w.victim[:-1], w.victim.upper(),
                                 w.sara_address, w.sara_address + "x", "", "x" * 99,
                                 "x" * 100_000]),
                st.text(max_size=40), junk),
            "language": st.one_of(st.sampled_from(["en", "nl", "fr", "de", "EN", "e"]), junk),
            "fresh": st.one_of(st.booleans(), junk)}).map(json.dumps),
        frame(w)))
    frames = draw(st.lists(frame(w), min_size=1, max_size=5))
    return path, headers, hello, frames


# --- checks ---------------------------------------------------------------------------

async def _protected(w: World) -> tuple[Any, ...]:
    case = await w.setup.case(w.code)
    assert case is not None
    victim = (await w.web.histories.load(w.victim))["items"]
    sara = (await w.web.histories.load(w.sara_address))["items"]
    return ((case.status, case.confidant_id, case.closed_at, case.theme, case.heard_at,
             case.urgent), len(victim), len(sara), len(await w.setup.cases()))


HUNG_UP = "web: push to a tab failed"
"""Logged when an answer reaches a tab the fuzzing client already closed:
`_run_tab` hangs up after its pong, and an answer that travels through the
core and the outbox may come later.  The answer stays in the tab's history,
so this is the client leaving, not a frame failing."""


def _failures(w: World, start: int) -> list[str]:
    return [r.getMessage() for r in w.records[start:] if r.levelno >= logging.ERROR
            or ("failed" in r.getMessage() and r.getMessage() != HUNG_UP)]


async def _still_serving(w: World) -> None:
    async with w.http.get(w.base + "/healthz") as resp:
        assert resp.status == 200


async def _run_tab(w: World, path: str, headers: dict[str, str], hello: Any,
                   frames: list[Any]) -> list[dict[str, Any]]:
    """Open a tab, send everything, read what comes back until the server goes
    quiet (or closes the tab, as it may for an oversized frame)."""
    got: list[dict[str, Any]] = []
    try:
        ws = await w.http.ws_connect(w.base + path, headers=headers, max_msg_size=0)
    except aiohttp.WSServerHandshakeError as err:
        w.statuses.append(err.status)
        return got
    w.statuses.append(101)
    try:
        for item in [hello, *frames]:
            if ws.closed:
                break
            if isinstance(item, bytes):
                await ws.send_bytes(item)
            else:
                await ws.send_str(item)
        if not ws.closed:
            await ws.send_json({"type": "ping"})
        while True:
            msg = await ws.receive(timeout=2.0)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            got.append(data)
            if data.get("type") == "pong" and len(got) > len(frames):
                # Frames are handled in order: the pong answers after every frame.
                break
    except (TimeoutError, ConnectionError):
        pass
    finally:
        await ws.close()
    return got


FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                phases=(Phase.explicit, Phase.generate),
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])


@FUZZ
@given(data=st.data())
async def test_websocket_frames_never_fail_or_reach_the_case(
    world: World, data: st.DataObject
) -> None:
    w = world
    before = await _protected(w)
    logs = len(w.records)
    path, headers, hello, frames = data.draw(tab(w))
    got = await _run_tab(w, path, headers, hello, frames)
    assert w.app.worker is not None
    await w.app.worker.drain()
    assert not _failures(w, logs), _failures(w, logs)
    assert all(f.get("code") not in ("retry", "unavailable") for f in got), got
    for f in got:
        item = f.get("item") if isinstance(f.get("item"), dict) else {}
        if item.get("from") == "me":
            continue  # the stranger's own words echoed back (they may type the code)
        assert w.code not in json.dumps(f), "a stranger's tab saw the protected case"
        assert SECRET not in json.dumps(f)
    assert await _protected(w) == before
    await _still_serving(w)


PATHS = ["/", "/resume", "/console", "/weather", "/static/chat.js", "/static/../../etc/passwd",
         "/static/%2e%2e%2fconfig.toml", "/ws", "/console/ws", "/console/login",
         "/console/logout", "/api/resume", "/healthz", "/metrics", "/admin", "/nope",
         "//", "/%00", "/static/"]
ROUTES = [("GET", "/"), ("GET", "/resume"), ("GET", "/console"), ("GET", "/weather"),
          ("GET", "/static/chat.js"), ("GET", "/static/nope.js"), ("GET", "/console/login"),
          ("GET", "/console/login"), ("POST", "/console/logout"), ("POST", "/api/resume"),
          ("POST", "/api/resume"), ("POST", "/api/resume"), ("GET", "/healthz"),
          ("GET", "/ws"), ("GET", "/console/ws")]


@st.composite
def request(draw: st.DrawFn, w: World) -> tuple[str, str, dict[str, str], dict[str, str], bytes]:
    if draw(st.integers(0, 3)) > 0:
        method, path = draw(st.sampled_from(ROUTES))
    else:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                                       "HEAD"]))
        path = draw(st.sampled_from(PATHS))
    params: dict[str, str] = {}
    if draw(st.booleans()):
        params["token"] = draw(st.one_of(st.text(max_size=250), st.just("x" * 201),
                                         st.sampled_from(w.stolen)))
    headers: dict[str, str] = {}
    origin = draw(st.sampled_from(["ours", "none", "evil", "null", "host"]))
    if origin == "ours":
        headers["Origin"] = w.base
    elif origin == "evil":
        headers["Origin"] = "https://evil.invalid"
    elif origin == "null":
        headers["Origin"] = "null"
    elif origin == "host":
        headers["Origin"] = "http://127.0.0.1"
    if draw(st.booleans()):
        headers["Cookie"] = draw(st.sampled_from([
            w.sara_cookie + "x", f"{w.web.cookie_name}=", f"{w.web.cookie_name}={'y' * 500}",
            "a=b; c", "\u00e9=\u00e9".encode().decode("latin-1")]))
    kind = draw(st.sampled_from(["none", "json", "junk", "huge", "form"]))
    body = b""
    if kind == "json":
        value = draw(st.one_of(junk, st.fixed_dictionaries({
            "code": st.one_of(st.just(w.code), st.text(max_size=40), junk),
            "passphrase": st.one_of(st.text(max_size=200), junk)})))
        body = json.dumps(value).encode()
        headers["Content-Type"] = draw(st.sampled_from(["application/json", "text/plain",
                                                        "application/x-www-form-urlencoded"]))
    elif kind == "junk":
        body = draw(st.binary(max_size=4096))
        headers["Content-Type"] = draw(st.sampled_from(["application/json", "", "multipart/"
                                                        "form-data; boundary=x"]))
    elif kind == "huge":
        body = b"{" + b'"a":' * draw(st.integers(20_000, 300_000))
        headers["Content-Type"] = "application/json"
    elif kind == "form":
        body = b"code=" + draw(st.binary(max_size=100)) + b"&passphrase=x"
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return method, path, params, headers, body


@FUZZ
@given(data=st.data())
async def test_http_requests_never_get_a_server_error(world: World, data: st.DataObject) -> None:
    w = world
    before = await _protected(w)
    logs = len(w.records)
    for method, path, params, headers, body in data.draw(st.lists(request(w), min_size=1,
                                                                  max_size=3)):
        try:
            async with w.http.request(method, w.base + path, params=params, headers=headers,
                                      data=body or None, allow_redirects=False) as resp:
                await resp.read()
                w.statuses.append(resp.status)
                assert resp.status < 500, (method, path, resp.status)
                if resp.status == 303:  # a session was handed out: only a real token may
                    raise AssertionError("a junk login token opened a console session")
        except aiohttp.ClientPayloadError:
            pass  # the server closed an oversized upload: refused, not failed
    assert not _failures(w, logs), _failures(w, logs)
    assert await _protected(w) == before
    await _still_serving(w)
