"""MatrixChannel against a real Synapse, with real nio clients as employee and confidant."""

from __future__ import annotations

import asyncio
import io
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginResponse,
    MatrixRoom,
    RoomCreateResponse,
    RoomMessage,
    RoomMessageNotice,
    RoomMessageText,
    RoomPreset,
    RoomSendResponse,
    UploadResponse,
)
from PIL import ExifTags, Image

from bot.channels.base import MemoryChannelState
from bot.channels.matrix import MatrixChannel, MatrixSetupError
from bot.channels.matrix import inbound as matrix_inbound
from bot.notices import in_every_language
from domain.ids import CaseCode, ChannelName
from domain.messages import (
    Button,
    ChannelAddress,
    Inbound,
    Menu,
    Outbound,
    OutboundKind,
    Unreachable,
)
from domain.vocabulary import SUPPORTED_LANGUAGES, Role
from tests.support.synapse import SynapseServer

ENC = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}
MX = ChannelName("matrix")

NOTICES = in_every_language(SUPPORTED_LANGUAGES)
"""What the app gives the channel: its own notices in nl, fr and en."""


async def eventually(pred: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll until ``pred()`` is truthy; fail loudly otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = pred()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.05)


class Peer:
    """A real nio client (employee or confidant) syncing in the background."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.messages: list[tuple[str, RoomMessage]] = []
        self._task: asyncio.Task[Any] | None = None

    @classmethod
    async def create(cls, synapse: SynapseServer, tmp: Path, prefix: str) -> Peer:
        name = f"{prefix}-{secrets.token_hex(3)}"
        await synapse.register(name, "pw-" + name)
        store = tmp / name
        store.mkdir()
        client = AsyncClient(
            synapse.url,
            f"@{name}:localhost",
            store_path=str(store),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
        )
        resp = await client.login("pw-" + name, device_name=prefix)
        assert isinstance(resp, LoginResponse), resp
        peer = cls(client)
        client.add_event_callback(peer._on_message, RoomMessage)
        peer._task = asyncio.create_task(client.sync_forever(timeout=300, full_state=True))
        return peer

    async def _on_message(self, room: MatrixRoom, event: RoomMessage) -> None:
        if event.sender != self.client.user_id:
            self.messages.append((room.room_id, event))

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    def texts(self, room_id: str) -> list[str]:
        return [
            e.body
            for r, e in self.messages
            if r == room_id and isinstance(e, RoomMessageText | RoomMessageNotice)
        ]

    async def dm(self, bot_id: str, *, encrypted: bool = True, trusted: bool = True) -> str:
        resp = await self.client.room_create(
            is_direct=True,
            preset=RoomPreset.trusted_private_chat if trusted else RoomPreset.private_chat,
            invite=[bot_id],
            initial_state=[ENC] if encrypted else [],
        )
        assert isinstance(resp, RoomCreateResponse), resp
        await eventually(lambda: resp.room_id in self.client.rooms, what="room in peer sync")
        return str(resp.room_id)

    async def say(self, room_id: str, text: str) -> str:
        resp = await self.client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": text},
            ignore_unverified_devices=True,
        )
        assert isinstance(resp, RoomSendResponse), resp
        return str(resp.event_id)

    async def join(self, room_id: str) -> None:
        await self.client.join(room_id)
        await eventually(lambda: room_id in self.client.rooms, what="peer joined")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self.client.close()


class FakeCore:
    """Records every Inbound; can fail on demand and echo to a confidant."""

    def __init__(self) -> None:
        self.inbound: list[Inbound] = []
        self.fail_next = 0
        self.calls = 0
        self.then: Callable[[Inbound], Awaitable[None]] | None = None

    async def __call__(self, ev: Inbound) -> None:
        self.calls += 1
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("store unavailable")
        if self.then is not None:
            await self.then(ev)
        self.inbound.append(ev)

    def texts(self) -> list[str | None]:
        return [i.text for i in self.inbound]


class Bot:
    """Bot account + state + store dir, so a channel can be (re)started on them."""

    def __init__(self, synapse: SynapseServer, tmp: Path) -> None:
        self.synapse = synapse
        self.name = "bot-" + secrets.token_hex(3)
        self.user_id = f"@{self.name}:localhost"
        self.password = "pw-" + self.name
        self.state = MemoryChannelState()
        self.store = tmp / "bot-store"
        self.channels: list[MatrixChannel] = []
        self.reg_token = ""
        self.reg_device = ""

    async def start(self, core: FakeCore, trust: str = "tofu") -> MatrixChannel:
        ch = MatrixChannel(
            self.synapse.url,
            self.user_id,
            password=self.password,
            store_dir=self.store,
            trust=trust,  # type: ignore[arg-type]
            pickle_key="test-pickle-key",
            state=self.state,
            notices=NOTICES,
            sync_timeout_ms=1000,
        )
        await ch.start(core)
        self.channels.append(ch)
        return ch


@pytest.fixture
async def bot(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[Bot]:
    b = Bot(synapse, tmp_path)
    _, b.reg_token, b.reg_device = await synapse.register(b.name, b.password)
    yield b
    for ch in b.channels:
        await ch.stop()


@pytest.fixture
async def peers(
    synapse: SynapseServer, tmp_path: Path
) -> AsyncIterator[Callable[[str], Awaitable[Peer]]]:
    made: list[Peer] = []

    async def make(prefix: str) -> Peer:
        p = await Peer.create(synapse, tmp_path, prefix)
        made.append(p)
        return p

    yield make
    for p in made:
        await p.close()


def _employee_out(room_id: str, text: str, **kw: Any) -> Outbound:
    return Outbound(to=ChannelAddress(MX, room_id), text=text, **kw)


def _confidant_out(mxid: str, case: str, text: str, **kw: Any) -> Outbound:
    return Outbound(
        to=ChannelAddress(MX, mxid),
        text=text,
        case=CaseCode(case),
        role=Role.CONFIDANT,
        **kw,
    )


async def test_dm_text_menu_idempotency_and_ciphertext_only(
    synapse: SynapseServer, bot: Bot, peers: Callable[[str], Awaitable[Peer]]
) -> None:
    core = FakeCore()
    ch = await bot.start(core)
    assert (ch.name, ch.numbered_menus, ch.idempotent_sends) == ("matrix", True, True)
    emp = await peers("emp")
    room_id = await emp.dm(bot.user_id)
    await eventually(lambda: ch.room(room_id) is not None, what="bot joined")

    secret = "my manager shouts at me " + secrets.token_hex(4)
    await emp.say(room_id, secret)
    await emp.say(room_id, "!help")
    await eventually(lambda: len(core.inbound) >= 2, what="two inbound")
    first, second = core.inbound[:2]
    assert (first.channel, first.sender, first.chat, first.text) == (
        "matrix",
        emp.user_id,
        room_id,
        secret,
    )
    assert first.event_id.startswith("$") and first.case_hint is None
    assert second.text == "/help"

    menu = Menu(rows=((Button("Talk to a confidant", "t1"), Button("Information", "t2")),))
    out = _employee_out(room_id, "Reply " + secrets.token_hex(4), menu=menu)
    r1 = await ch.send(out, "idem-1")
    r2 = await ch.send(out, "idem-1")  # a retry by the delivery worker
    assert r1.platform_message_id and r1.platform_message_id == r2.platform_message_id
    expected = f"{out.text}\n\n1. Talk to a confidant\n2. Information"
    await eventually(lambda: expected in emp.texts(room_id), what="employee got the menu")
    await asyncio.sleep(0.3)
    assert emp.texts(room_id).count(expected) == 1

    events = await synapse.room_messages(room_id)
    msg_types = {e["type"] for e in events if "state_key" not in e}
    assert msg_types == {"m.room.encrypted"}, msg_types
    assert all(
        e["content"]["algorithm"] == "m.megolm.v1.aes-sha2"
        for e in events
        if e["type"] == "m.room.encrypted"
    )
    assert sum(e["event_id"] == r1.platform_message_id for e in events) == 1
    db = synapse.db_bytes()
    assert secret.encode() not in db and out.text.encode() not in db
    assert b"Talk to a confidant" not in db


async def test_unencrypted_dm_relays_nothing_until_encrypted(
    bot: Bot, peers: Callable[[str], Awaitable[Peer]]
) -> None:
    core = FakeCore()
    ch = await bot.start(core)
    emp = await peers("plain")
    # private_chat: the bot has no power to turn encryption on, so it must ask.
    room_id = await emp.dm(bot.user_id, encrypted=False, trusted=False)
    await eventually(lambda: emp.texts(room_id), what="bot asks for encryption")
    assert "encrypt" in emp.texts(room_id)[0]
    await emp.say(room_id, "plaintext secret")
    await eventually(lambda: len(emp.texts(room_id)) >= 2, what="refusal notice")
    assert core.inbound == []
    with pytest.raises(Exception, match="not encrypted"):
        await ch.send(_employee_out(room_id, "hello"), "k-plain")

    await emp.client.room_put_state(
        room_id, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}
    )
    await eventually(
        lambda: (room := ch.room(room_id)) is not None and room.encrypted, what="bot sees enc"
    )
    await eventually(lambda: emp.client.rooms[room_id].encrypted, what="peer sees enc")
    await emp.say(room_id, "now encrypted")
    await eventually(lambda: core.texts() == ["now encrypted"], what="encrypted text relayed")

    # trusted_private_chat: the bot may and does turn encryption on itself.
    emp2 = await peers("plain2")
    room2 = await emp2.dm(bot.user_id, encrypted=False, trusted=True)
    await eventually(lambda: emp2.client.rooms[room2].encrypted, what="bot enabled encryption")


async def test_case_room_lifecycle_with_echoing_core(
    synapse: SynapseServer, bot: Bot, peers: Callable[[str], Awaitable[Peer]]
) -> None:
    core = FakeCore()
    ch = await bot.start(core)
    emp = await peers("emp")
    conf1 = await peers("conf1")
    conf2 = await peers("conf2")
    case = "K7F-3MQ"
    n = 0

    async def relay(ev: Inbound) -> None:
        nonlocal n
        n += 1
        if ev.case_hint is None and ev.text:  # employee → current confidant's case room
            try:
                await ch.send(
                    _confidant_out(conf1.user_id, case, ev.text, kind=OutboundKind.RELAY), f"e{n}"
                )
            except Exception as exc:
                print("relay failed", repr(exc), exc)
                raise

    core.then = relay
    dm = await emp.dm(bot.user_id)
    await eventually(lambda: ch.room(dm) is not None, what="bot joined dm")
    await emp.say(dm, "I need help")
    await eventually(lambda: core.texts() == ["I need help"], what="employee text")

    invites = await eventually(lambda: list(conf1.client.invited_rooms), what="confidant invited")
    case_room = invites[0]
    assert bot.state._data[f"case:{case}"].decode() == case_room
    await conf1.join(case_room)
    await eventually(lambda: "I need help" in conf1.texts(case_room), what="confidant decrypts")
    room = conf1.client.rooms[case_room]
    assert room.encrypted and room.name == case
    assert set(room.users) == {bot.user_id, conf1.user_id}

    await conf1.say(case_room, "Hello, I am listening")
    await eventually(lambda: len(core.inbound) == 2, what="confidant text")
    reply = core.inbound[1]
    assert (reply.case_hint, reply.sender, reply.chat) == (case, conf1.user_id, case_room)

    # Handover: old confidant leaves, new one is invited and reads new messages.
    await ch.send(
        _confidant_out(
            conf1.user_id,
            case,
            "Case handed over",
            control="case-handover-out",
            kind=OutboundKind.CONTROL,
        ),
        "h1",
    )
    members = await synapse.admin_get(f"/_synapse/admin/v1/rooms/{case_room}/members")
    assert conf1.user_id not in members["members"], "old confidant still in the case room"
    await ch.send(
        _confidant_out(
            conf2.user_id, case, "New case for you", control="case-open", kind=OutboundKind.CONTROL
        ),
        "h2",
    )
    await eventually(lambda: case_room in conf2.client.invited_rooms, what="conf2 invited")
    await conf2.join(case_room)
    await ch.send(_confidant_out(conf2.user_id, case, "Welcome aboard"), "h3")
    await eventually(lambda: "Welcome aboard" in conf2.texts(case_room), what="conf2 decrypts")

    await ch.send(
        _confidant_out(
            conf2.user_id, case, "Case closed", control="case-close", kind=OutboundKind.CONTROL
        ),
        "c1",
    )
    await eventually(lambda: "Case closed" in conf2.texts(case_room), what="close text")
    members = await synapse.admin_get(f"/_synapse/admin/v1/rooms/{case_room}/members")
    assert bot.user_id not in members["members"]
    assert f"case:{case}" not in bot.state._data

    events = await synapse.room_messages(case_room)
    assert {e["type"] for e in events if "state_key" not in e} == {"m.room.encrypted"}
    assert b"Hello, I am listening" not in synapse.db_bytes()


async def test_a_notice_about_a_case_opens_no_room_and_posts_in_none(
    synapse: SynapseServer, bot: Bot, peers: Callable[[str], Awaitable[Peer]]
) -> None:
    """``about`` is for histories that drop a case's traces: on Matrix a
    notice about a case (even marked urgent, which for a message of the case
    would open its room) goes to the confidant's DM, whether the case has a
    room or not, and creates none."""
    ch = await bot.start(FakeCore())
    conf = await peers("conf")
    dm = await conf.dm(bot.user_id)
    await eventually(lambda: ch.room(dm) is not None, what="bot joined the DM")
    roomed, roomless = "K7F-3MQ", "Z9Q-2PL"
    await ch.send(_confidant_out(conf.user_id, roomed, "[K7F-3MQ] words",
                                 kind=OutboundKind.RELAY), "r1")
    case_room = (await eventually(lambda: list(conf.client.invited_rooms),
                                  what="invited to the case room"))[0]
    await conf.join(case_room)
    await eventually(lambda: "[K7F-3MQ] words" in conf.texts(case_room), what="relay read")

    claim = Menu(rows=((Button("Claim", "tok"),),))
    for n, code in enumerate((roomed, roomless)):
        notice = Outbound(to=ChannelAddress(MX, conf.user_id), text=f"Urgent: {code} waits",
                          kind=OutboundKind.URGENT, role=Role.CONFIDANT, menu=claim,
                          about=(CaseCode(code),))
        await ch.send(notice, f"about-{n}")
    await eventually(lambda: len([t for t in conf.texts(dm) if t.startswith("Urgent:")]) == 2,
                     what="both notices in the DM")
    assert not any(t.startswith("Urgent:") for t in conf.texts(case_room))
    assert list(conf.client.invited_rooms) == []
    assert f"case:{roomless}" not in bot.state._data
    joined = await synapse.admin_get(f"/_synapse/admin/v1/users/{bot.user_id}/joined_rooms")
    assert set(joined["joined_rooms"]) == {dm, case_room}


async def test_restart_restores_device_and_refuses_mismatch(
    synapse: SynapseServer, bot: Bot, peers: Callable[[str], Awaitable[Peer]], tmp_path: Path
) -> None:
    core = FakeCore()
    ch = await bot.start(core)
    device = ch.device_id
    emp = await peers("emp")
    dm = await emp.dm(bot.user_id)
    await eventually(lambda: ch.room(dm) is not None, what="bot joined")
    await ch.stop()

    ch2 = await bot.start(core)
    assert ch2.device_id == device
    await emp.say(dm, "after restart")
    await eventually(lambda: "after restart" in core.texts(), what="restored device decrypts")
    await ch2.send(_employee_out(dm, "still here"), "r1")
    await eventually(lambda: "still here" in emp.texts(dm), what="restored device encrypts")

    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{synapse.url}/_matrix/client/v3/devices",
            headers={"Authorization": f"Bearer {bot.reg_token}"},
        ) as r:
            devices = {d["device_id"] for d in (await r.json())["devices"]}
    assert devices == {bot.reg_device, device}  # registration's device + exactly one login

    # The bot's device is cross-signed.
    assert bot.state._data.get("xsign")
    await ch2.stop()

    # Store and state disagree: clear messages, no silent new device.
    with pytest.raises(MatrixSetupError, match="store_dir"):
        other = MatrixChannel(
            synapse.url,
            bot.user_id,
            password=bot.password,
            store_dir=tmp_path / "empty",
            pickle_key="k",
            state=bot.state,
            notices=NOTICES,
        )
        await other.start(core)
    with pytest.raises(MatrixSetupError, match="no Matrix login"):
        fresh = MatrixChannel(
            synapse.url,
            bot.user_id,
            password=bot.password,
            store_dir=bot.store,
            pickle_key="k",
            state=MemoryChannelState(),
            notices=NOTICES,
        )
        await fresh.start(core)
    with pytest.raises(MatrixSetupError, match="user_id"):
        wrong = MatrixChannel(
            synapse.url,
            "@someone:localhost",
            password="x",
            store_dir=bot.store,
            pickle_key="k",
            state=bot.state,
            notices=NOTICES,
        )
        await wrong.start(core)


async def test_failed_handler_is_retried_and_sync_survives_homeserver_restart(
    synapse: SynapseServer, bot: Bot, peers: Callable[[str], Awaitable[Peer]]
) -> None:
    core = FakeCore()
    ch = await bot.start(core)
    emp = await peers("emp")
    dm = await emp.dm(bot.user_id)
    await eventually(lambda: ch.room(dm) is not None, what="bot joined")
    core.fail_next = 1
    await emp.say(dm, "first try fails")
    await eventually(lambda: core.texts() == ["first try fails"], what="retried event")
    assert core.calls == 2

    await synapse.restart()
    await emp.say(dm, "after homeserver restart")
    await eventually(
        lambda: "after homeserver restart" in core.texts(), timeout=30, what="sync recovered"
    )


def _jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (32, 24), (200, 30, 30))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (50.0, 50.0, 46.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 21.0, 10.0)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


async def test_encrypted_image_arrives_scrubbed(
    bot: Bot, peers: Callable[[str], Awaitable[Peer]]
) -> None:
    core = FakeCore()
    ch = await bot.start(core)
    emp = await peers("emp")
    dm = await emp.dm(bot.user_id)
    await eventually(lambda: ch.room(dm) is not None, what="bot joined")
    original = _jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as im:
        assert im.getexif().get_ifd(ExifTags.IFD.GPSInfo), "precondition: GPS present"

    upload, keys = await emp.client.upload(
        lambda *_: io.BytesIO(original),
        content_type="application/octet-stream",
        encrypt=True,
        filesize=len(original),
    )
    assert isinstance(upload, UploadResponse) and keys is not None
    content = {
        "msgtype": "m.image",
        "body": "IMG_0001.jpg",
        "info": {"mimetype": "image/jpeg", "size": len(original)},
        "file": {**keys, "url": upload.content_uri},
    }
    await emp.client.room_send(dm, "m.room.message", content, ignore_unverified_devices=True)
    await eventually(lambda: core.inbound, what="image inbound")
    media = core.inbound[0].media
    assert media is not None and media.kind == "photo"
    assert media.data != original
    with Image.open(io.BytesIO(media.data)) as im:
        assert im.size == (32, 24)
        assert not im.getexif()
        assert "exif" not in im.info
    assert b"SpyCam" not in media.data


async def test_tofu_warns_about_a_new_device_and_unknown_room_is_unreachable(
    synapse: SynapseServer, bot: Bot, peers: Callable[[str], Awaitable[Peer]], tmp_path: Path
) -> None:
    core = FakeCore()
    ch = await bot.start(core, trust="tofu")
    emp = await peers("emp")
    dm = await emp.dm(bot.user_id)
    await eventually(lambda: ch.room(dm) is not None, what="bot joined")
    await ch.send(_employee_out(dm, "first contact"), "t1")
    await eventually(lambda: "first contact" in emp.texts(dm), what="first message")
    assert not any("new device" in t for t in emp.texts(dm))

    # The same employee account logs in on a second device.
    second = AsyncClient(
        synapse.url,
        emp.user_id,
        store_path=str(tmp_path / "second"),
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
    )
    (tmp_path / "second").mkdir()
    name = emp.user_id[1:].split(":")[0]
    login = await second.login("pw-" + name, device_name="phone2")
    assert isinstance(login, LoginResponse)
    try:
        await second.keys_upload()
        warning = await eventually(
            lambda: [t for t in emp.texts(dm) if login.device_id in t and "new device" in t],
            what="tofu warning naming the new device",
        )
        assert len(warning) == 1
    finally:
        await second.close()

    with pytest.raises(Unreachable):
        await ch.send(_employee_out("!nowhere:localhost", "lost"), "t2")


async def test_refused_attachments_name_their_reason_for_the_core(
    bot: Bot, peers: Callable[[str], Awaitable[Peer]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file over the size limit and one whose encryption does not check out
    reach the core as "too_large" and "undecryptable", so the employee is told
    the real reason (too big; please send it again) in their own language,
    not that such files cannot be passed on at all."""
    monkeypatch.setattr(matrix_inbound, "MAX_MEDIA_BYTES", 1000)
    core = FakeCore()
    ch = await bot.start(core)
    emp = await peers("emp")
    dm = await emp.dm(bot.user_id)
    await eventually(lambda: ch.room(dm) is not None, what="bot joined")

    async def send_file(data: bytes, tamper: bool) -> None:
        upload, keys = await emp.client.upload(
            lambda *_: io.BytesIO(data),
            content_type="application/octet-stream",
            encrypt=True,
            filesize=len(data),
        )
        assert isinstance(upload, UploadResponse) and keys is not None
        if tamper:
            keys = {**keys, "hashes": {"sha256": "A" * 43}}
        content = {
            "msgtype": "m.file",
            "body": "report.txt",
            "info": {"mimetype": "text/plain", "size": len(data)},
            "file": {**keys, "url": upload.content_uri},
        }
        await emp.client.room_send(dm, "m.room.message", content, ignore_unverified_devices=True)

    await send_file(b"x" * 5000, tamper=False)
    await send_file(b"small enough", tamper=True)
    await eventually(lambda: len(core.inbound) >= 2, what="both files handed over")
    assert [(i.unsupported, i.media) for i in core.inbound] == [
        ("too_large", None),
        ("undecryptable", None),
    ]
