"""MatrixChannel loses no employee message to a homeserver hiccup or a late
room key, against the session's real Synapse:

* paging over a cut-off (``limited``) timeline fails for a while: the gap is
  kept (also across a restart) and filled on later syncs, in order, once;
* an encrypted message arrives before its Megolm key (the employee's real
  nio client withholds the to-device key and sends it later): the message
  waits, reaches the core once the key is there, and the employee never gets
  the "could not read your message" notice; only when the key never comes is
  the employee asked, after a bounded wait, to send it again: by the core,
  in the language the employee chose (the real app answers a French-speaking
  employee in French).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest
from aiohttp import web

from bot.channels.base import MemoryChannelState
from bot.channels.matrix import MatrixChannel
from bot.channels.matrix import backfill as matrix_backfill
from bot.channels.matrix import held as matrix_held
from bot.notices import in_every_language
from domain.vocabulary import SUPPORTED_LANGUAGES
from handlers.i18n import Translator
from tests.support.app_runner import running_app
from tests.support.matrix_app import MatrixPeer, Recorder, eventually, matrix_setup, state_changes
from tests.support.synapse import SynapseServer

TR = Translator("nl", ("nl", "fr", "en"))

TIMELINE_LIMIT = 5
MISSED = 12

NOTICES = in_every_language(SUPPORTED_LANGUAGES)
"""What the app gives the channel: its own notices in nl, fr and en."""


class FaultyProxy:
    """A reverse proxy on 127.0.0.1 in front of the real Synapse that answers
    the next ``fail_messages`` ``/messages`` requests with a 502, as an
    overloaded homeserver behind a load balancer does; everything else passes."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail_messages = 0
        self.failed = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/messages") and self.fail_messages > 0:
            self.fail_messages -= 1
            self.failed += 1
            return web.json_response(
                {"errcode": "M_UNKNOWN", "error": "injected fault"}, status=502
            )
        assert self._http is not None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type")
        }
        async with self._http.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
        ) as upstream:
            body = await upstream.read()
            return web.Response(
                status=upstream.status,
                body=body,
                content_type=upstream.content_type,
            )

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()


@pytest.fixture
async def employee(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[MatrixPeer]:
    peer = await MatrixPeer.create(synapse, tmp_path / "peers", "emp")
    yield peer
    await peer.close()


@pytest.fixture
async def proxy(synapse: SynapseServer) -> AsyncIterator[FaultyProxy]:
    p = FaultyProxy(synapse.url)
    await p.start()
    yield p
    await p.close()


class Bot:
    """Starts (and restarts) the channel on one state and one encryption store."""

    def __init__(self, synapse: SynapseServer, homeserver: str, tmp_path: Path) -> None:
        self.synapse = synapse
        self.homeserver = homeserver
        self.tmp_path = tmp_path
        self.state = MemoryChannelState()
        self.core = Recorder()
        self.channels: list[MatrixChannel] = []
        self.user_id = ""
        self._password = ""

    async def register(self) -> str:
        name = "bot-" + secrets.token_hex(3)
        self._password = "pw-" + name
        self.user_id, _, _ = await self.synapse.register(name, self._password)
        return self.user_id

    async def start(self) -> MatrixChannel:
        ch = MatrixChannel(
            self.homeserver,
            self.user_id,
            password=self._password,
            store_dir=self.tmp_path / "bot-store",
            pickle_key="test-pickle-key",
            state=self.state,
            notices=NOTICES,
            sync_timeout_ms=1000,
            timeline_limit=TIMELINE_LIMIT,
        )
        await ch.start(self.core)
        self.channels.append(ch)
        return ch

    async def stop_all(self) -> None:
        for channel in self.channels:
            await channel.stop()


@pytest.fixture
async def bot(
    synapse: SynapseServer, proxy: FaultyProxy, tmp_path: Path
) -> AsyncIterator[Bot]:
    b = Bot(synapse, proxy.url, tmp_path)
    await b.register()
    yield b
    await b.stop_all()


async def _missed_while_down(bot: Bot, employee: MatrixPeer) -> tuple[str, list[str]]:
    """The employee opens a DM, is heard, then writes more messages than one
    sync carries while the bot is down.  Returns the DM and every text sent."""
    ch = await bot.start()
    dm = await employee.dm(bot.user_id)
    before = await bot.state.get("since")
    first = "before the outage " + secrets.token_hex(3)
    await employee.say(dm, first)
    await eventually(lambda: first in bot.core.texts(), what="first message handled")
    await state_changes(bot.state, "since", before)
    await ch.stop()
    missed = [f"missed {i:02d} {secrets.token_hex(3)}" for i in range(1, MISSED + 1)]
    for text in missed:
        await employee.say(dm, text)
    return dm, [first, *missed]


async def _all_handled_once(bot: Bot, expected: list[str], timeout: float = 30.0) -> None:
    await eventually(
        lambda: len(bot.core.inbound) >= len(expected), timeout, what="all messages handled"
    )
    await asyncio.sleep(1.5)  # a duplicate (from a later sync) would show up by now
    assert bot.core.texts() == expected
    assert len({i.event_id for i in bot.core.inbound}) == len(expected)


async def test_failed_backfill_is_retried_while_running(
    bot: Bot,
    employee: MatrixPeer,
    proxy: FaultyProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(matrix_backfill, "_BACKFILL_PAGE", 3)
    dm, expected = await _missed_while_down(bot, employee)
    # More failures than one sync's tries: only a later sync can fill the gap.
    proxy.fail_messages = matrix_backfill._BACKFILL_ATTEMPTS + 2
    caplog.set_level(logging.DEBUG, logger="bot.channels.matrix")
    await bot.start()
    # While the gap is open, the newer messages of the room wait behind it.
    await asyncio.sleep(0.3)
    assert bot.core.texts() == expected[:1]
    await _all_handled_once(bot, expected)
    assert proxy.failed == matrix_backfill._BACKFILL_ATTEMPTS + 2
    assert len(bot.channels) == 2  # one restart before the outage, none after
    assert not await bot.state.get("gaps") or await bot.state.get("gaps") == b"{}"
    logged = [r.getMessage() for r in caplog.records
              if r.name.startswith("bot.channels.matrix")]
    assert any("gap kept" in m for m in logged), logged
    for message in logged:  # kinds and counts only: no text, room or user ids
        assert dm not in message and employee.user_id not in message
        assert not any(text in message for text in expected)


async def test_unfilled_gap_survives_a_restart(
    bot: Bot, employee: MatrixPeer, proxy: FaultyProxy
) -> None:
    dm, expected = await _missed_while_down(bot, employee)
    proxy.fail_messages = 10_000  # the homeserver keeps failing /messages
    saved = await bot.state.get("since")
    ch = await bot.start()
    await state_changes(bot.state, "since", saved)  # the position moved past the gap
    gaps = await bot.state.get("gaps")
    assert gaps is not None and dm.encode() in gaps
    await ch.stop()  # a crash: nothing more is written
    assert bot.core.texts() == expected[:1]
    proxy.fail_messages = 0
    await bot.start()
    await _all_handled_once(bot, expected)


# -- late keys -------------------------------------------------------------


class WithheldKey:
    """The employee's client starts a new Megolm session for the DM and encrypts
    with it, but holds back the to-device message that carries its key to the
    bot's device (as a slow or lost to-device delivery does) until `deliver`."""

    def __init__(self, employee: MatrixPeer, room_id: str) -> None:
        self.employee = employee
        self.room_id = room_id
        self._to_device: list[dict[str, Any]] = []

    def withhold(self) -> None:
        client = self.employee.client
        olm = client.olm
        assert olm is not None
        olm.create_outbound_group_session(self.room_id)
        room = client.rooms[self.room_id]
        # The real Olm-encrypted m.room_key messages for this session, made now
        # (the key at message index 0) but not sent.
        for _, to_device in olm.share_group_session_parallel(
            self.room_id, list(room.users), ignore_unverified_devices=True
        ):
            self._to_device.append(to_device)
        assert self._to_device, "no device to share the key with"
        olm.outbound_group_sessions[self.room_id].shared = True

    async def deliver(self) -> None:
        client = self.employee.client
        async with aiohttp.ClientSession() as http:
            for body in self._to_device:
                url = (
                    f"{client.homeserver}/_matrix/client/v3/sendToDevice/"
                    f"m.room.encrypted/{uuid4().hex}"
                )
                async with http.put(
                    url, json=body, headers={"Authorization": f"Bearer {client.access_token}"}
                ) as r:
                    assert r.status == 200, await r.text()


async def _hello(bot: Bot, employee: MatrixPeer) -> str:
    """A DM in which one message was read (so Olm sessions exist both ways)."""
    await bot.start()
    dm = await employee.dm(bot.user_id)
    hello = "hello " + secrets.token_hex(3)
    await employee.say(dm, hello)
    await eventually(lambda: hello in bot.core.texts(), what="first message handled")
    return dm


async def test_message_waits_for_its_late_key(bot: Bot, employee: MatrixPeer) -> None:
    dm = await _hello(bot, employee)
    withheld = WithheldKey(employee, dm)
    withheld.withhold()
    text = "the key comes later " + secrets.token_hex(3)
    await employee.say(dm, text)
    await asyncio.sleep(2.5)  # a couple of syncs without the key
    assert not bot.core.unreadable()
    assert text not in bot.core.texts()
    held = await bot.state.get("held")  # the bot has it, unreadable, and kept it
    assert held is not None and held != b"[]" and text.encode() not in held
    await withheld.deliver()
    await eventually(lambda: text in bot.core.texts(), what="message handled after its key")
    await asyncio.sleep(1.5)
    assert bot.core.texts().count(text) == 1
    assert not bot.core.unreadable()
    assert employee.texts(dm) == []  # the channel itself said nothing either
    assert await bot.state.get("held") == b"[]"


async def test_waiting_message_survives_a_restart(bot: Bot, employee: MatrixPeer) -> None:
    dm = await _hello(bot, employee)
    withheld = WithheldKey(employee, dm)
    withheld.withhold()
    text = "waiting over a restart " + secrets.token_hex(3)
    since = await bot.state.get("since")
    await employee.say(dm, text)
    saved = await state_changes(bot.state, "held", None)
    assert text.encode() not in saved  # ciphertext only
    await state_changes(bot.state, "since", since)  # the position moved past the event
    await bot.channels[-1].stop()
    await bot.start()
    await withheld.deliver()
    await eventually(lambda: text in bot.core.texts(), what="message handled after restart")
    await asyncio.sleep(1.5)
    assert bot.core.texts().count(text) == 1
    assert not bot.core.unreadable()
    assert employee.texts(dm) == []


async def test_key_that_never_comes_asks_to_send_again(
    bot: Bot, employee: MatrixPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The channel does not answer itself (it cannot know the employee's
    language): it hands the core one "unreadable" event from the employee,
    named after the lost message, and the core answers it."""
    monkeypatch.setattr(matrix_held, "_UNDECRYPTABLE_WAIT", 3.0)
    dm = await _hello(bot, employee)
    WithheldKey(employee, dm).withhold()
    text = "never readable " + secrets.token_hex(3)
    event_id = await employee.say(dm, text)
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await eventually(bot.core.unreadable, what="the unreadable message handed to the core")
    assert loop.time() - sent >= 2.5  # not at once: the key had its chance
    await asyncio.sleep(1.5)
    [asked] = bot.core.unreadable()
    assert (asked.sender, asked.chat) == (employee.user_id, dm)
    assert asked.text is None and asked.media is None
    assert event_id in asked.event_id and asked.event_id != event_id
    assert text not in bot.core.texts()
    assert employee.texts(dm) == []  # no fixed notice from the channel itself


async def test_unreadable_message_is_answered_in_the_employees_language(
    synapse: SynapseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real app: an employee who chose French (the organisation
    defaults to Dutch) whose message can never be read is asked, in French
    only and once, to send it again."""
    monkeypatch.setattr(matrix_held, "_UNDECRYPTABLE_WAIT", 3.0)
    setup, bot_id = await matrix_setup(tmp_path / "bot", synapse, default_language="nl")
    employee = await MatrixPeer.create(synapse, tmp_path / "peers", "emp")
    try:
        async with running_app(setup):
            dm = await employee.dm(bot_id)
            await employee.say(dm, "/language fr")
            await employee.wait_text(
                lambda t: t.startswith(TR.t("fr", "language.set")), dm, "French chosen"
            )
            WithheldKey(employee, dm).withhold()
            await employee.say(dm, "jamais lisible " + secrets.token_hex(3))
            asked = TR.t("fr", "message.undecryptable")
            await employee.wait_text(lambda t: t == asked, dm, what="the French notice")
            await asyncio.sleep(1.5)  # a second notice (or another language) would be here
            texts = employee.texts(dm)
            assert texts.count(asked) == 1
            for lang in ("nl", "en"):
                assert not any(TR.t(lang, "message.undecryptable") in t for t in texts)
    finally:
        await employee.close()
