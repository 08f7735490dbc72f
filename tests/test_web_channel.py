"""HTTP-level tests of the web channel against a real aiohttp server on
127.0.0.1: headers, privacy of logs and state, WebSocket chat both ways,
deduplication, resume receipts with rate limiting, console login, and
cross-origin refusal."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.base import MemoryChannelState
from bot.channels.web import STATIC_DIR, WebChannel
from bot.channels.web.history import LINES_KEEP
from bot.channels.web.receipts import lockout_seconds, normalize_passphrase
from bot.channels.web.security import CSP
from bot.channels.web.sessions import state_key
from domain.ids import CaseCode, ChannelName
from domain.messages import Button, ChannelAddress, Inbound, Menu, Outbound, OutboundKind
from domain.vocabulary import Control, Role

CONFIDANT = "confidant-alice-web"
USER_AGENT = "SecretAgentBrowser/9.9"


@dataclass
class Core:
    """Records every inbound event as `bot.intake.Intake` does (an event's
    ``keep`` written with it, once, and answers sent only after it is
    recorded); can be told to fail or to react."""

    state: MemoryChannelState | None = None
    events: list[Inbound] = field(default_factory=list)
    fail_next: int = 0
    react: Callable[[Inbound], Awaitable[None]] | None = None
    reactions: set[asyncio.Task[None]] = field(default_factory=set)

    async def __call__(self, inbound: Inbound) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("database unavailable")
        if self.state is not None and all(e.event_id != inbound.event_id for e in self.events):
            await self.state.change(dict(inbound.keep))
        self.events.append(inbound)
        if self.react is not None:
            task = asyncio.create_task(self.react(inbound))
            self.reactions.add(task)
            task.add_done_callback(self.reactions.discard)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    channel: WebChannel
    core: Core
    state: MemoryChannelState
    clock: Clock
    tokens: dict[str, str]
    http: aiohttp.ClientSession

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.channel.port}"

    async def employee(self, identity: str | None = None, language: str = "fr") -> Tab:
        ws = await self.http.ws_connect(self.base + "/ws", headers={"Origin": self.base})
        await ws.send_json({"type": "hello", "identity": identity, "language": language})
        ready = await _frame(ws)
        assert ready["type"] == "ready"
        return Tab(ws, ready)

    async def login(self, token: str) -> aiohttp.ClientResponse:
        return await self.http.get(
            self.base + "/console/login", params={"token": token}, allow_redirects=False
        )

    async def console(self, cookie: str) -> Tab:
        ws = await self.http.ws_connect(
            self.base + "/console/ws", headers={"Origin": self.base, "Cookie": cookie}
        )
        await ws.send_json({"type": "hello", "language": "nl"})
        ready = await _frame(ws)
        assert ready["type"] == "ready", ready
        return Tab(ws, ready)


@dataclass
class Tab:
    ws: aiohttp.ClientWebSocketResponse
    ready: dict[str, Any]

    @property
    def identity(self) -> str:
        return str(self.ready["identity"])

    async def say(self, text: str, client_id: str = "c0ffee00-0000-4000-8000-000000000001") -> None:
        await self.ws.send_json({"type": "message", "id": client_id, "text": text})

    async def next(self) -> dict[str, Any]:
        return await _frame(self.ws)


async def _frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def _nothing_more(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Prove silence: a ping must be answered by a pong, with nothing before it."""
    await ws.send_json({"type": "ping"})
    assert (await _frame(ws))["type"] == "pong"


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    state = MemoryChannelState()
    core = Core(state)
    clock = Clock()
    tokens = {"good-token": CONFIDANT}

    async def redeem(token: str) -> str | None:
        return tokens.pop(token, None)

    channel = WebChannel(
        "127.0.0.1:0", None, state, redeem, ["nl", "fr", "en"], "nl", "Acme <NV>", clock=clock
    )
    await channel.start(core)
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as http:
        yield Env(channel, core, state, clock, tokens, http)
    await channel.stop()


def _to(identity: str) -> ChannelAddress:
    return ChannelAddress(ChannelName("web"), identity)


# ------------------------------------------------------------------ headers


EXPECTED_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


async def test_security_headers_on_every_response(env: Env) -> None:
    requests = [
        ("GET", "/"),
        ("GET", "/resume"),
        ("GET", "/console"),
        ("GET", "/weather"),
        ("GET", "/static/common.js"),
        ("GET", "/static/style.css"),
        ("GET", "/static/i18n.json"),
        ("GET", "/static/../web.py"),
        ("GET", "/no-such-page"),
        ("GET", "/console/login?token=nope"),
        ("GET", "/healthz"),
        ("POST", "/api/resume"),
        ("GET", "/ws"),
    ]
    for method, path in requests:
        async with env.http.request(method, env.base + path, allow_redirects=False) as r:
            for name, value in EXPECTED_HEADERS.items():
                assert r.headers.get(name) == value, (path, name)
            assert "camera=()" in r.headers["Permissions-Policy"], path
            assert "Server" not in r.headers, path
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP


async def test_pages_are_html_with_escaped_organisation(env: Env) -> None:
    async with env.http.get(env.base + "/") as r:
        assert r.status == 200
        assert r.content_type == "text/html"
        body = await r.text()
    assert "Acme &lt;NV&gt;" in body and "Acme <NV>" not in body
    assert 'data-languages="nl,fr,en"' in body
    # No inline script: every <script> has a src.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", body) == []
    async with env.http.get(env.base + "/static/../web.py") as r:
        assert r.status == 404


@pytest.mark.parametrize(("query", "accept", "lang", "title"), [
    ("?l=fr", "nl-BE,nl;q=0.9", "fr", "La météo"),  # the tab's language wins
    ("", "nl-BE,nl;q=0.9,en;q=0.8", "nl", "Het weer"),  # else the browser's
    ("", "de-DE,de;q=0.9,en;q=0.5", "en", "Weather"),  # first one offered
    ("?l=de", "", "nl", "Het weer"),  # not offered: the organisation's default
    ("?l=%3Cb%3E", "", "nl", "Het weer"),
])
async def test_quick_exit_page_in_the_readers_language(env: Env, query: str, accept: str,
                                                       lang: str, title: str) -> None:
    """The neutral page is whole without script, in the language the person read."""
    headers = {"Accept-Language": accept} if accept else {}
    async with env.http.get(env.base + "/weather" + query, headers=headers) as r:
        assert r.status == 200 and r.content_type == "text/html"
        body = await r.text()
    assert f'<html lang="{lang}">' in body
    assert f"<title>{title}</title>" in body and f"<h1>{title}</h1>" in body
    assert "{{" not in body and "<script" not in body
    assert "confidant" not in body.lower() and "vertrouwens" not in body.lower()


async def test_no_external_urls_in_served_assets(env: Env) -> None:
    files = sorted(p.name for p in STATIC_DIR.iterdir())
    assert {"index.html", "console.html", "common.js", "style.css", "i18n.json"} <= set(files)
    external = re.compile(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|url\(\s*['\"]?(https?:|//)")
    for name in files:
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert not external.search(text), name
    for path in ("/", "/resume", "/console", "/weather", "/static/chat.js"):
        async with env.http.get(env.base + path) as r:
            assert not re.search(r"(?i)https?://", await r.text()), path


async def test_i18n_has_every_key_in_every_language() -> None:
    strings = json.loads((STATIC_DIR / "i18n.json").read_text(encoding="utf-8"))
    assert set(strings) == {"nl", "fr", "en"}
    assert set(strings["nl"]) == set(strings["fr"]) == set(strings["en"])
    used = set()
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'data-i18n(?:-placeholder|-label)?="([a-z_]+)"', text))
        used |= set(re.findall(r'C\.t\("([a-z_]+)"', text))
        used |= set(re.findall(r'say\("([a-z_]+)"', text))
    assert used, "no string keys found: the scan is broken"
    assert used <= set(strings["en"]), used - set(strings["en"])


# ---------------------------------------------------------------- privacy


async def test_logs_and_state_hold_no_ip_user_agent_text_or_passphrase(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for path in ("/", "/static/common.js", "/no-such-page"):
        async with env.http.get(env.base + path) as r:
            await r.read()
    tab = await env.employee()
    await tab.say("my boss shouts at me")
    assert (await tab.next())["type"] == "ack"
    await env.channel.send(
        Outbound(to=_to(tab.identity), text="we hear you", case=CaseCode("K7F-3MQ")), "k1"
    )
    assert (await tab.next())["type"] == "message"
    receipt = await tab.next()
    assert receipt["type"] == "receipt"
    passphrase = normalize_passphrase(receipt["passphrase"])
    async with env.http.post(
        env.base + "/api/resume",
        json={"code": "K7F-3MQ", "passphrase": "wrong"},
        headers={"Origin": env.base},
    ) as r:
        assert r.status == 403
    await tab.ws.close()
    await asyncio.sleep(0.05)

    logged = caplog.text
    assert caplog.records, "nothing logged at all: capture is not working"
    for secret in ("127.0.0.1", USER_AGENT, "my boss shouts", tab.identity, passphrase):
        assert secret not in logged, secret
    stored = b"".join(env.state._data.values()).decode()
    for secret in ("127.0.0.1", USER_AGENT, passphrase, receipt["passphrase"]):
        assert secret not in stored, secret
    keys = "".join(env.state._data)
    assert tab.identity not in keys and "K7F" not in keys


# -------------------------------------------------------------- websocket


async def test_websocket_round_trip_reaches_core(env: Env) -> None:
    tab = await env.employee(language="fr")
    assert tab.identity and tab.ready["history"] == []
    await tab.say("bonjour", client_id="11111111-2222-4333-8444-555555555555")
    ack = await tab.next()
    assert ack["type"] == "ack" and ack["id"] == "11111111-2222-4333-8444-555555555555"
    [event] = env.core.events
    assert event.channel == "web"
    assert event.sender == tab.identity and event.chat == tab.identity
    assert event.text == "bonjour" and event.button is None
    assert event.language_hint == "fr"
    assert event.event_id and "11111111" not in event.event_id

    await tab.ws.send_json(
        {
            "type": "button",
            "id": "22222222-2222-4333-8444-555555555555",
            "token": "tok-9",
            "label": "Talk",
        }
    )
    assert (await tab.next())["type"] == "ack"
    assert env.core.events[1].button == "tok-9" and env.core.events[1].text is None


async def test_retried_message_keeps_its_event_id(env: Env) -> None:
    tab = await env.employee()
    env.core.fail_next = 1
    await tab.say("first try", client_id="33333333-2222-4333-8444-555555555555")
    error = await tab.next()
    assert error == {"type": "error", "code": "retry", "id": "33333333-2222-4333-8444-555555555555"}
    await tab.say("first try", client_id="33333333-2222-4333-8444-555555555555")
    assert (await tab.next())["type"] == "ack"
    await tab.say("first try", client_id="33333333-2222-4333-8444-555555555555")
    assert (await tab.next())["type"] == "ack"
    assert len({e.event_id for e in env.core.events}) == 1 and len(env.core.events) == 2
    again = await env.employee(tab.identity)
    mine = [i for i in again.ready["history"] if i["from"] == "me"]
    assert [i["text"] for i in mine] == ["first try"]
    await again.say("first try", client_id="33333333-2222-4333-8444-555555555555")
    assert (await again.next())["type"] == "ack"  # its ack was lost: sent once more
    once_more = await env.employee(tab.identity)
    assert [i["text"] for i in once_more.ready["history"] if i["from"] == "me"] == ["first try"]


async def test_same_client_id_from_two_identities_gives_two_event_ids(env: Env) -> None:
    a, b = await env.employee(), await env.employee()
    assert a.identity != b.identity
    for tab in (a, b):
        await tab.say("hi", client_id="44444444-2222-4333-8444-555555555555")
        assert (await tab.next())["type"] == "ack"
    assert env.core.events[0].event_id != env.core.events[1].event_id


async def test_send_reaches_every_tab_and_history(env: Env) -> None:
    tab = await env.employee()
    twin = await env.employee(tab.identity)
    assert twin.identity == tab.identity
    menu = Menu(rows=((Button("Yes", "b-yes"), Button("No", "b-no")),))
    result = await env.channel.send(
        Outbound(to=_to(tab.identity), text="Shall we talk?", menu=menu, kind=OutboundKind.RELAY),
        "key-1",
    )
    assert result.platform_message_id
    for t in (tab, twin):
        frame = await t.next()
        assert frame["type"] == "message"
        assert frame["item"]["text"] == "Shall we talk?"
        assert frame["item"]["from"] == "relay"
        assert frame["item"]["buttons"] == [
            [{"label": "Yes", "token": "b-yes"}, {"label": "No", "token": "b-no"}]
        ]
        assert frame["item"]["id"] == result.platform_message_id
    fresh = await env.employee(tab.identity)
    assert [i["text"] for i in fresh.ready["history"]] == ["Shall we talk?"]
    other = await env.employee()
    assert other.ready["history"] == []


async def test_send_is_deduplicated_by_idempotency_key(env: Env) -> None:
    tab = await env.employee()
    out = Outbound(to=_to(tab.identity), text="only once")
    first = await env.channel.send(out, "same-key")
    second = await env.channel.send(out, "same-key")
    assert first == second
    assert (await tab.next())["item"]["text"] == "only once"
    await _nothing_more(tab.ws)
    third = await env.channel.send(out, "other-key")
    assert third != first
    fresh = await env.employee(tab.identity)
    assert [i["text"] for i in fresh.ready["history"]] == ["only once", "only once"]


async def test_control_messages_are_not_shown(env: Env) -> None:
    tab = await env.employee()
    out = Outbound(to=_to(tab.identity), text="", kind=OutboundKind.CONTROL, control="case-open")
    await env.channel.send(out, "ctl")
    await _nothing_more(tab.ws)


async def test_bad_input_gets_kind_answer_and_changes_nothing(env: Env) -> None:
    tab = await env.employee()
    await tab.ws.send_str("{not json")
    assert await tab.next() == {"type": "error", "code": "invalid"}
    await tab.ws.send_str("[1, 2]")
    assert await tab.next() == {"type": "error", "code": "invalid"}
    await tab.ws.send_json({"type": "message", "id": "x", "text": "bad id"})
    assert (await tab.next())["code"] == "invalid"
    cid = "55555555-2222-4333-8444-555555555555"
    await tab.ws.send_json({"type": "message", "id": cid, "text": "a" * 4001})
    assert await tab.next() == {"type": "error", "code": "too_long", "id": cid}
    await tab.ws.send_json({"type": "message", "id": cid, "text": "   "})
    assert (await tab.next())["code"] == "invalid"
    await tab.ws.send_json({"type": "launch", "id": cid})
    assert (await tab.next())["code"] == "invalid"
    assert env.core.events == []
    fresh = await env.employee(tab.identity)
    assert fresh.ready["history"] == []
    await tab.say("a" * 4000)
    assert (await tab.next())["type"] == "ack"
    assert len(env.core.events) == 1


async def test_unknown_identity_is_replaced_not_adopted(env: Env) -> None:
    console_login = await env.login("good-token")
    assert console_login.status == 303
    tab = await env.employee(identity=CONFIDANT)
    assert tab.identity != CONFIDANT
    await tab.say("pretending")
    await tab.next()
    assert env.core.events[0].sender == tab.identity
    forged = await env.employee(identity="w" + "A" * 43)
    assert forged.identity != "w" + "A" * 43


# ------------------------------------------------------------------ resume


async def _resume(env: Env, code: str, passphrase: str) -> tuple[int, dict[str, Any]]:
    async with env.http.post(
        env.base + "/api/resume",
        json={"code": code, "passphrase": passphrase},
        headers={"Origin": env.base},
    ) as r:
        return r.status, await r.json()


async def _case_with_receipt(env: Env) -> tuple[Tab, str]:
    tab = await env.employee()
    await tab.say("I need help")
    await tab.next()
    await env.channel.send(
        Outbound(to=_to(tab.identity), text="Case opened", case=CaseCode("K7F-3MQ")), "k-open"
    )
    assert (await tab.next())["item"]["text"] == "Case opened"
    receipt = await tab.next()
    assert receipt["type"] == "receipt" and receipt["case"] == "K7F-3MQ"
    assert re.fullmatch(r"([0-9A-Z]{4}-){4}[0-9A-Z]{4}", receipt["passphrase"])
    return tab, str(receipt["passphrase"])


async def test_receipt_is_shown_once_per_case(env: Env) -> None:
    tab, _ = await _case_with_receipt(env)
    await env.channel.send(
        Outbound(to=_to(tab.identity), text="again", case=CaseCode("K7F-3MQ")), "k-2"
    )
    assert (await tab.next())["item"]["text"] == "again"
    await _nothing_more(tab.ws)
    # The confidant's side never gets a receipt.
    await env.login("good-token")
    await env.channel.send(
        Outbound(to=_to(CONFIDANT), text="new case", case=CaseCode("K7F-3MQ")), "k-3"
    )
    assert not [k for k in env.state._data if k.startswith("web:emp:") and CONFIDANT in k]


async def test_resume_with_right_and_wrong_passphrase(env: Env) -> None:
    tab, passphrase = await _case_with_receipt(env)
    status, body = await _resume(env, "K7F-3MQ", "AAAA-AAAA-AAAA-AAAA-AAAA")
    assert (status, body) == (403, {"error": "wrong"})
    status, body = await _resume(env, "NOP-E00", passphrase)
    assert (status, body) == (403, {"error": "wrong"})
    sloppy = passphrase.lower().replace("-", " ")
    status, body = await _resume(env, "k7f3mq", sloppy)
    assert status == 200 and body == {"identity": tab.identity}
    resumed = await env.employee(body["identity"])
    texts = [i["text"] for i in resumed.ready["history"]]
    assert texts == ["I need help", "Case opened"]


async def test_resume_is_rate_limited_after_five_wrong_attempts(env: Env) -> None:
    _, passphrase = await _case_with_receipt(env)
    for _ in range(5):
        status, _body = await _resume(env, "K7F-3MQ", "wrong-guess")
        assert status == 403
    async with env.http.post(
        env.base + "/api/resume",
        json={"code": "K7F-3MQ", "passphrase": passphrase},
        headers={"Origin": env.base},
    ) as r:
        assert r.status == 429
        body = await r.json()
        assert body["error"] == "wait" and body["retry_after"] == 30
        assert r.headers["Retry-After"] == "30"
    env.clock.now += 31
    status, _body = await _resume(env, "K7F-3MQ", "wrong-again")
    assert status == 403
    status, body = await _resume(env, "K7F-3MQ", passphrase)
    assert status == 429 and body["retry_after"] == 60
    env.clock.now += 61
    status, body = await _resume(env, "K7F-3MQ", passphrase)
    assert status == 200
    # A success resets the counter.
    status, _body = await _resume(env, "K7F-3MQ", "wrong")
    assert status == 403


async def test_unknown_codes_are_rate_limited_too(env: Env) -> None:
    for _ in range(5):
        assert (await _resume(env, "ZZZ-999", "x"))[0] == 403
    assert (await _resume(env, "ZZZ-999", "x"))[0] == 429


def test_lockout_grows_and_is_capped() -> None:
    assert [lockout_seconds(n) for n in range(5)] == [0.0] * 5
    assert lockout_seconds(5) == 30 and lockout_seconds(6) == 60
    assert lockout_seconds(40) == 3600


async def test_receipt_waits_for_an_open_tab(env: Env) -> None:
    tab = await env.employee()
    identity = tab.identity
    await tab.ws.close()
    await asyncio.sleep(0.05)
    await env.channel.send(
        Outbound(to=_to(identity), text="while away", case=CaseCode("ABC-123")), "k"
    )
    back = await env.employee(identity)
    assert [i["text"] for i in back.ready["history"]] == ["while away"]
    receipt = await back.next()
    assert receipt["type"] == "receipt" and receipt["case"] == "ABC-123"
    status, body = await _resume(env, "ABC-123", receipt["passphrase"])
    assert status == 200 and body["identity"] == identity


async def test_resume_refuses_bad_json(env: Env) -> None:
    for payload in (b"{oops", b"[]", json.dumps({"code": 1, "passphrase": "x"}).encode()):
        async with env.http.post(
            env.base + "/api/resume",
            data=payload,
            headers={"Origin": env.base, "Content-Type": "application/json"},
        ) as r:
            assert r.status == 400
            assert (await r.json()) == {"error": "invalid"}


async def test_forget_erases_history_and_receipts(env: Env) -> None:
    tab, passphrase = await _case_with_receipt(env)
    await env.channel.forget(tab.identity)
    assert (await tab.next())["type"] == "forgotten"
    assert (await _resume(env, "K7F-3MQ", passphrase))[0] == 403
    left = b"".join(env.state._data.values())  # base, lines and record: all gone
    assert b"I need help" not in left and b"Case opened" not in left
    assert not [k for k in env.state._data if k.startswith(state_key("hist", tab.identity))]
    again = await env.employee(tab.identity)
    assert again.identity != tab.identity and again.ready["history"] == []


# ----------------------------------------------------------------- console


def _cookie_from(response: aiohttp.ClientResponse, name: str) -> tuple[str, str]:
    raw = response.headers.getall("Set-Cookie")
    [line] = [c for c in raw if c.startswith(name + "=")]
    value = line.split(";", 1)[0].split("=", 1)[1]
    return value, line


async def test_console_login_valid_used_and_invalid_token(env: Env) -> None:
    r = await env.login("good-token")
    assert r.status == 303 and r.headers["Location"] == "/console"
    sid, line = _cookie_from(r, env.channel.cookie_name)
    flags = line.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "secure" not in flags
    assert "good-token" not in line
    used = await env.login("good-token")
    assert used.status == 403 and "Set-Cookie" not in used.headers
    assert "not valid" in await used.text()
    bad = await env.login("made-up")
    assert bad.status == 403
    empty = await env.login("")
    assert empty.status == 403

    console = await env.console(f"{env.channel.cookie_name}={sid}")
    assert "identity" not in console.ready
    await console.ws.send_json(
        {
            "type": "message",
            "id": "66666666-2222-4333-8444-555555555555",
            "text": "/claim K7F-3MQ",
            "case": "K7F-3MQ",
        }
    )
    assert (await console.next())["type"] == "ack"
    [event] = env.core.events
    assert event.sender == CONFIDANT and event.chat == CONFIDANT
    assert event.text == "/claim K7F-3MQ" and event.case_hint == "K7F-3MQ"
    await env.channel.send(
        Outbound(
            to=_to(CONFIDANT), text="hello", case=CaseCode("K7F-3MQ"), kind=OutboundKind.RELAY
        ),
        "c1",
    )
    frame = await console.next()
    assert frame["item"]["case"] == "K7F-3MQ" and frame["item"]["from"] == "relay"
    await _nothing_more(console.ws)  # no receipt for a confidant


async def test_console_without_session_is_told_to_log_in(env: Env) -> None:
    for cookie in ("", f"{env.channel.cookie_name}=forged-session"):
        ws = await env.http.ws_connect(
            env.base + "/console/ws", headers={"Origin": env.base, "Cookie": cookie}
        )
        assert await _frame(ws) == {"type": "error", "code": "login"}
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await ws.close()


async def test_console_session_expires_and_logout_ends_it(env: Env) -> None:
    env.tokens["t2"] = CONFIDANT
    sid, _ = _cookie_from(await env.login("good-token"), env.channel.cookie_name)
    cookie = f"{env.channel.cookie_name}={sid}"
    await env.console(cookie)
    async with env.http.post(
        env.base + "/console/logout", headers={"Origin": "http://evil.example", "Cookie": cookie}
    ) as r:
        assert r.status == 403
    await env.console(cookie)
    async with env.http.post(
        env.base + "/console/logout", headers={"Origin": env.base, "Cookie": cookie}
    ) as r:
        assert r.status == 200
    ws = await env.http.ws_connect(
        env.base + "/console/ws", headers={"Origin": env.base, "Cookie": cookie}
    )
    assert (await _frame(ws))["code"] == "login"
    await ws.close()
    sid2, _ = _cookie_from(await env.login("t2"), env.channel.cookie_name)
    env.clock.now += 13 * 3600
    ws = await env.http.ws_connect(
        env.base + "/console/ws",
        headers={"Origin": env.base, "Cookie": f"{env.channel.cookie_name}={sid2}"},
    )
    assert (await _frame(ws))["code"] == "login"
    await ws.close()


async def test_secure_cookie_behind_https_public_url() -> None:
    async def redeem(token: str) -> str | None:
        return CONFIDANT if token == "ok" else None

    channel = WebChannel(
        "127.0.0.1:0",
        "https://chat.example.org/",
        MemoryChannelState(),
        redeem,
        ["nl"],
        "nl",
        "Org",
    )
    await channel.start(Core())
    try:
        assert channel.url_for_employee() == "https://chat.example.org/"
        assert channel.url_for_console() == "https://chat.example.org/console"
        base = f"http://127.0.0.1:{channel.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/console/login?token=ok", allow_redirects=False) as r:
                _sid, line = _cookie_from(r, channel.cookie_name)
            assert channel.cookie_name.startswith("__Host-")
            assert "secure" in line.lower() and "samesite=strict" in line.lower()
            # With a public URL, a page whose origin merely matches its Host
            # (DNS rebinding) is refused; the public origin and loopback are not.
            rebound = f"rebound.example:{channel.port}"
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(
                    base + "/ws", headers={"Origin": "http://" + rebound, "Host": rebound}
                )
            assert err.value.status == 403
            ws = await http.ws_connect(base + "/ws", headers={"Origin": "https://chat.example.org"})
            await ws.send_json({"type": "hello", "identity": None, "language": "nl"})
            assert (await _frame(ws))["type"] == "ready"
            await ws.close()
    finally:
        await channel.stop()


# ------------------------------------------------------------ cross-origin


async def test_cross_origin_post_and_websocket_are_refused(env: Env) -> None:
    _, passphrase = await _case_with_receipt(env)
    body = {"code": "K7F-3MQ", "passphrase": passphrase}
    for headers in ({"Origin": "http://evil.example"}, {}, {"Origin": "null"}):
        async with env.http.post(env.base + "/api/resume", json=body, headers=headers) as r:
            assert r.status == 403
            assert "identity" not in await r.text()
    for path in ("/ws", "/console/ws"):
        for headers in ({"Origin": "http://evil.example"}, {}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await env.http.ws_connect(env.base + path, headers=headers)
            assert err.value.status == 403
    # Without a public URL, a LAN deployment's own host is accepted.
    lan = f"192.0.2.7:{env.channel.port}"
    ws = await env.http.ws_connect(
        env.base + "/ws", headers={"Origin": "http://" + lan, "Host": lan}
    )
    await ws.close()
    # localhost is the same machine and the same port: allowed.
    status, _ = await _resume(env, "K7F-3MQ", passphrase)
    assert status == 200
    ws = await env.http.ws_connect(
        env.base + "/ws", headers={"Origin": f"http://localhost:{env.channel.port}"}
    )
    await ws.close()


async def test_urls_for_the_demo(env: Env) -> None:
    assert env.channel.url_for_employee() == env.base + "/"
    assert env.channel.url_for_console() == env.base + "/console"
    assert env.channel.url_for_console("abc") == env.base + "/console/login?token=abc"
    assert Path(STATIC_DIR / "weather.html").is_file()


async def test_history_older_than_retention_is_not_shown() -> None:
    clock = Clock()
    state = MemoryChannelState()

    async def redeem(token: str) -> str | None:
        return None

    channel = WebChannel(
        "127.0.0.1:0", None, state, redeem, ["en"], "en", "Org", clock=clock, retention_days=2
    )
    await channel.start(Core())
    try:
        await channel.send(Outbound(to=_to("someone"), text="old"), "k-old")
        clock.now += 3 * 86400
        await channel.send(Outbound(to=_to("someone"), text="new"), "k-new")
        history = json.loads(b"".join(state._data.values()))
        assert [i["text"] for i in history["items"]] == ["new"]
    finally:
        await channel.stop()


async def test_a_message_costs_the_store_one_write_and_no_read(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the tab open, the person's words ride in their event's
    transaction (`Inbound.keep`: no call of the channel's own) and a message
    to them is one small write, without reading the history back."""
    tab = await env.employee()
    calls: list[str] = []
    for name in ("get", "get_many", "set", "delete", "change"):
        method = getattr(env.state, name)

        def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            calls.append(_name)
            return _method(*args)

        monkeypatch.setattr(env.state, name, counted)
    for n in range(3):
        await tab.say(f"words {n}", client_id=f"c0ffee00-0000-4000-8000-{n:012d}")
        assert (await tab.next())["type"] == "ack"
    assert calls == ["change"] * 3  # the test core writing each event's keep
    calls.clear()
    await env.channel.send(Outbound(to=_to(tab.identity), text="answer"), "a-1")
    assert (await tab.next())["item"]["text"] == "answer"
    assert calls == ["set"]
    reloaded = await env.employee(tab.identity)
    assert [i["text"] for i in reloaded.ready["history"]] == [
        "words 0", "words 1", "words 2", "answer"]


async def test_a_long_conversation_is_kept_in_order_across_a_restart(env: Env) -> None:
    """Lines are folded into the base now and then and numbered on after a
    restart: nothing is written over, nothing is shown twice or out of order."""
    tab = await env.employee()
    said: list[str] = []
    for n in range(2 * LINES_KEEP + 5):
        if n % 20 == 7:
            await env.channel.send(Outbound(to=_to(tab.identity), text=f"answer {n}"), f"a-{n}")
            assert (await tab.next())["item"]["text"] == f"answer {n}"
            said.append(f"answer {n}")
        await tab.say(f"words {n}", client_id=f"c0ffee00-0000-4000-8000-{n:012d}")
        assert (await tab.next())["type"] == "ack"
        said.append(f"words {n}")
    lines = [k for k in env.state._data if k.count(":") == 3]
    assert 0 < len(lines) < LINES_KEEP
    reloaded = await env.employee(tab.identity)
    assert [i["text"] for i in reloaded.ready["history"]] == said

    await env.channel.stop()  # the process ends; a new one starts on the same state
    core = Core(env.state)
    channel = WebChannel("127.0.0.1:0", None, env.state, env.channel.redeem_login, ["nl"], "nl",
                         "Acme", clock=env.clock)
    await channel.start(core)
    env.channel = channel
    try:
        back = await env.employee(tab.identity)
        assert [i["text"] for i in back.ready["history"]] == said
        await back.say("after the restart", client_id="c0ffee00-0000-4000-8000-ffffffffffff")
        assert (await back.next())["type"] == "ack"
        await channel.send(Outbound(to=_to(tab.identity), text="answered"), "after")
        assert (await back.next())["item"]["text"] == "answered"
        again = await env.employee(tab.identity)
        assert [i["text"] for i in again.ready["history"]] == [
            *said, "after the restart", "answered"]
    finally:
        await channel.stop()


class BrokenState(MemoryChannelState):
    """A store that is down: every read fails."""

    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("database at 10.0.0.5 refused user secret-user")


async def test_failures_are_answered_kindly_and_logged_without_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    async def redeem(token: str) -> str | None:
        return None

    channel = WebChannel("127.0.0.1:0", None, BrokenState(), redeem, ["en"], "en", "Org")
    await channel.start(Core())
    base = f"http://127.0.0.1:{channel.port}"
    try:
        async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as http:
            async with http.post(
                base + "/api/resume",
                json={"code": "K7F-3MQ", "passphrase": "x"},
                headers={"Origin": base},
            ) as r:
                assert r.status == 500
                assert "try again" in await r.text()
                assert r.headers["X-Frame-Options"] == "DENY"
            ws = await http.ws_connect(base + "/ws", headers={"Origin": base})
            await ws.send_json({"type": "hello", "identity": "w123", "language": "en"})
            assert await _frame(ws) == {"type": "error", "code": "unavailable"}
            await ws.close()
    finally:
        await channel.stop()
    assert "ConnectionError" in caplog.text
    for secret in ("127.0.0.1", "10.0.0.5", "secret-user", USER_AGENT):
        assert secret not in caplog.text, secret


# ------------------------------------------------------- console page loads


async def _console_load(env: Env, cookie: str, fresh: bool = True) -> Tab:
    """Open the console as a page load (``fresh``) or a reconnect would."""
    ws = await env.http.ws_connect(
        env.base + "/console/ws", headers={"Origin": env.base, "Cookie": cookie}
    )
    await ws.send_json({"type": "hello", "language": "nl", "fresh": fresh})
    ready = await _frame(ws)
    assert ready["type"] == "ready", ready
    return Tab(ws, ready)


async def test_console_reloads_show_one_fresh_overview_and_keep_the_conversation(
    env: Env,
) -> None:
    env.channel.console_opening = "/cases"
    loads = 0

    async def answer(inbound: Inbound) -> None:
        """Answer /cases the way the core does: where the event's ``chat``
        says, as the confidant's own answer."""
        nonlocal loads
        if inbound.text != "/cases":
            return
        loads += 1
        overview = Outbound(
            to=ChannelAddress(ChannelName("web"), inbound.chat),
            text=f"Your cases (overview {loads})\n• K7F-3MQ — hear by 12 May",
            menu=Menu(rows=((Button("Open K7F-3MQ", f"tok-{loads}"),),)),
            role=Role.CONFIDANT,
        )
        await env.channel.send(overview, f"overview-{loads}")

    env.core.react = answer
    sid, _ = _cookie_from(await env.login("good-token"), env.channel.cookie_name)
    cookie = f"{env.channel.cookie_name}={sid}"
    relayed = Outbound(
        to=_to(CONFIDANT), text="My manager shouts at me.", case=CaseCode("K7F-3MQ"),
        kind=OutboundKind.RELAY,
    )
    await env.channel.send(relayed, "relay-1")

    for load in (1, 2, 3):
        tab = await _console_load(env, cookie)
        frame = await tab.next()
        assert frame["type"] == "message"
        assert frame["item"]["text"].startswith(f"Your cases (overview {load})")
        await tab.ws.close()

    def overviews(history: list[dict[str, Any]]) -> list[str]:
        return [i["text"].splitlines()[0] for i in history if i["text"].startswith("Your cases")]

    # A reconnect (not a page load) shows what is kept: the latest overview
    # once, after the employee's words, which are still there.
    back = await _console_load(env, cookie, fresh=False)
    history = back.ready["history"]
    assert overviews(history) == ["Your cases (overview 3)"]
    assert [i["text"] for i in history if i["from"] == "relay"] == ["My manager shouts at me."]
    assert history[-1]["text"].startswith("Your cases (overview 3)")
    assert history[-1]["buttons"] == [[{"label": "Open K7F-3MQ", "token": "tok-3"}]]
    await _nothing_more(back.ws)

    # /cases asked for by the confidant is an answer like any other: kept.
    await back.say("/cases", "c0ffee00-0000-4000-8000-0000000000c5")
    frames = [await back.next(), await back.next()]
    assert {f["type"] for f in frames} == {"message", "ack"}
    await back.ws.close()
    again = await _console_load(env, cookie)
    assert (await again.next())["item"]["text"].startswith("Your cases (overview 5)")
    await again.ws.close()
    history = (await _console_load(env, cookie, fresh=False)).ready["history"]
    assert overviews(history) == ["Your cases (overview 4)", "Your cases (overview 5)"]
    assert [i["text"] for i in history if i["from"] == "me"] == ["/cases"]
    assert [i["text"] for i in history if i["from"] == "relay"] == ["My manager shouts at me."]


async def test_only_a_confidants_answer_to_a_page_load_replaces_the_last_one(env: Env) -> None:
    """An address that is no confidant's any more is answered as an employee:
    those answers are the conversation and must all stay."""
    env.channel.console_opening = "/cases"
    slots: list[str] = []

    async def remember_chat(inbound: Inbound) -> None:
        slots.append(inbound.chat)

    env.core.react = remember_chat
    sid, _ = _cookie_from(await env.login("good-token"), env.channel.cookie_name)
    cookie = f"{env.channel.cookie_name}={sid}"
    await (await _console_load(env, cookie)).ws.close()
    [slot] = slots
    assert slot != CONFIDANT and slot.startswith(CONFIDANT)
    for n in (1, 2):
        reply = Outbound(to=ChannelAddress(ChannelName("web"), slot), text=f"Welcome {n}",
                         role=Role.EMPLOYEE)
        await env.channel.send(reply, f"employee-{n}")
    tab = await _console_load(env, cookie, fresh=False)
    assert [i["text"] for i in tab.ready["history"]] == ["Welcome 1", "Welcome 2"]


async def test_an_erased_case_leaves_no_overview_naming_it(env: Env) -> None:
    """The page-load overview is a snapshot that names the case: once the case
    is erased, a reconnecting console must not redraw it from the history."""
    env.channel.console_opening = "/cases"

    async def answer(inbound: Inbound) -> None:
        if inbound.text != "/cases":
            return
        overview = Outbound(
            to=ChannelAddress(ChannelName("web"), inbound.chat),
            text="Your cases\n• K7F-3MQ — hear by 12 May\n• Z9Q-2PL — hear by 14 May",
            menu=Menu(rows=((Button("Open K7F-3MQ", "tok-k"), Button("Open Z9Q-2PL", "tok-z")),)),
            role=Role.CONFIDANT,
        )
        await env.channel.send(overview, "overview-1")

    env.core.react = answer
    sid, _ = _cookie_from(await env.login("good-token"), env.channel.cookie_name)
    cookie = f"{env.channel.cookie_name}={sid}"
    for n, code in enumerate(("K7F-3MQ", "Z9Q-2PL")):
        relayed = Outbound(to=_to(CONFIDANT), text=f"Words on {code}.", case=CaseCode(code),
                           kind=OutboundKind.RELAY)
        await env.channel.send(relayed, f"relay-{n}")
    tab = await _console_load(env, cookie)
    assert (await tab.next())["item"]["text"].startswith("Your cases")

    notice = Outbound(to=_to(CONFIDANT), text="Case K7F-3MQ was erased at the employee's request.",
                      case=CaseCode("K7F-3MQ"), kind=OutboundKind.NOTICE,
                      control=Control.CASE_ERASE)
    await env.channel.send(notice, "erase-1")
    # The open tab is told first, so it drops the case and the overview before the notice.
    erased = await tab.next()
    assert (erased["type"], erased["case"]) == ("case-erased", "K7F-3MQ")
    assert (await tab.next())["item"]["text"] == notice.text
    await tab.ws.close()

    history = (await _console_load(env, cookie, fresh=False)).ready["history"]
    assert [i["text"] for i in history if "K7F-3MQ" in json.dumps(i)] == [notice.text]
    assert not any(i.get("opening") for i in history)
    assert [i["text"] for i in history if i["from"] == "relay"] == ["Words on Z9Q-2PL."]


async def test_an_erased_case_leaves_no_line_naming_it(env: Env) -> None:
    """Notices about the case (new case with its Claim button, "taken by", a
    case list, a refusal) and the confidant's own words naming it go with it,
    from the history and from the open tab; the notice of the erasure is
    shown, and gone after the next page load.  The other case stays whole."""
    sid, _ = _cookie_from(await env.login("good-token"), env.channel.cookie_name)
    cookie = f"{env.channel.cookie_name}={sid}"
    gone, other = CaseCode("K7F-3MQ"), CaseCode("Z9Q-2PL")
    sent = [
        Outbound(to=_to(CONFIDANT), text="New case K7F-3MQ (Dutch, web).", about=(gone,),
                 menu=Menu(rows=((Button("Claim K7F-3MQ", "tok-k"),),)), role=Role.CONFIDANT),
        Outbound(to=_to(CONFIDANT), text="New case Z9Q-2PL (Dutch, web).", about=(other,),
                 menu=Menu(rows=((Button("Claim Z9Q-2PL", "tok-z"),),)), role=Role.CONFIDANT),
        Outbound(to=_to(CONFIDANT), text="Case K7F-3MQ was taken by Ann.", about=(gone,),
                 role=Role.CONFIDANT),
        Outbound(to=_to(CONFIDANT), text="Your cases: K7F-3MQ, Z9Q-2PL", about=(gone, other),
                 role=Role.CONFIDANT),
        Outbound(to=_to(CONFIDANT), text="[Z9Q-2PL] Words on Z9Q.", case=other,
                 kind=OutboundKind.RELAY, role=Role.CONFIDANT),
    ]
    for n, out in enumerate(sent):
        await env.channel.send(out, f"sent-{n}")
    tab = await _console_load(env, cookie, fresh=False)
    own = [("/claim k7f3mq", None), ("Claim K7F-3MQ", None), ("about K7F-3MQX", None),
           ("K7F-3MQ is on my mind", "Z9Q-2PL")]
    for n, (text, case) in enumerate(own):
        frame: dict[str, Any] = {"type": "message", "id": f"c0ffee00-0000-4000-8000-00000000010{n}",
                                 "text": text}
        if case:
            frame["case"] = case
        await tab.ws.send_json(frame)
        assert (await tab.next())["type"] == "ack"
    shown = [i["id"] for i in (await _console_load(env, cookie, fresh=False)).ready["history"]]

    notice = Outbound(to=_to(CONFIDANT), text="Case K7F-3MQ was erased.", case=gone,
                      control=Control.CASE_ERASE, role=Role.CONFIDANT)
    await env.channel.send(notice, "erase-1")
    erased = await tab.next()
    assert erased["type"] == "case-erased" and erased["case"] == "K7F-3MQ"
    assert len(erased["drop"]) == 5 and set(erased["drop"]) <= set(shown)
    assert (await tab.next())["item"]["text"] == notice.text
    await tab.ws.close()

    remaining = ["New case Z9Q-2PL (Dutch, web).", "[Z9Q-2PL] Words on Z9Q.", "about K7F-3MQX",
                 "K7F-3MQ is on my mind"]
    # A reconnect still shows the notice (a dropped connection must not lose
    # it); the next page load, after it was seen live, no longer does.
    again = await _console_load(env, cookie, fresh=False)
    assert [i["text"] for i in again.ready["history"]] == [*remaining, notice.text]
    await again.ws.close()
    loaded = await _console_load(env, cookie)
    assert [i["text"] for i in loaded.ready["history"]] == remaining
    await loaded.ws.close()

    # Erased while no tab is open: the next page load shows it, once.
    second = Outbound(to=_to(CONFIDANT), text="Case Z9Q-2PL was erased.", case=other,
                      control=Control.CASE_ERASE, role=Role.CONFIDANT)
    await env.channel.send(second, "erase-2")
    left = ["about K7F-3MQX"]
    for fresh in (False, True):
        tab = await _console_load(env, cookie, fresh=fresh)
        assert [i["text"] for i in tab.ready["history"]] == [*left, second.text]
        await tab.ws.close()
    tab = await _console_load(env, cookie)
    assert [i["text"] for i in tab.ready["history"]] == left
