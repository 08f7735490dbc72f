"""The Matrix channel end to end: the real App (core, store, delivery worker)
against the session's real Synapse, with real matrix-nio clients as employees
and confidants, and a Telegram employee through the Bot API double."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nio import RoomCreateResponse, RoomPreset, RoomPutStateError

from handlers.aliases import localise
from handlers.i18n import LANGUAGE_NAMES, Translator
from tests.support.app_runner import BotProcess, running_app
from tests.support.matrix_app import (
    CASE_CODE,
    MatrixPeer,
    add_matrix_confidant,
    eventually,
    matrix_setup,
    numbered_choice,
)
from tests.support.synapse import SynapseServer
from tests.support.telegram_double import TelegramDouble

ORG = "Acme Logistics"
TR = Translator("nl", ("nl", "fr", "en"), "Europe/Brussels", ORG)


PeerFactory = Callable[..., Awaitable[MatrixPeer]]


@pytest.fixture
async def peers(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[PeerFactory]:
    """Factory of real nio clients; all closed at the end of the test."""
    made: list[MatrixPeer] = []

    async def make(prefix: str, display_name: str | None = None) -> MatrixPeer:
        peer = await MatrixPeer.create(synapse, tmp_path / "peers", prefix, display_name)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        await peer.close()


CLAIM_WORDS = tuple(f"/{localise(lang, 'claim')}" for lang in ("nl", "fr", "en"))
"""/claim as each confidant reads it (/opnemen in Dutch, /prendre in French)."""


def claimable(text: str, code: str) -> bool:
    return any(f"{word} {code}" in text for word in CLAIM_WORDS)


def starts(prefix: str) -> Callable[[str], bool]:
    return lambda text: text.startswith(prefix)


def equals(expected: str) -> Callable[[str], bool]:
    return lambda text: text == expected


def before(template: str) -> str:
    """The fixed text of a translated string before its first ``@`` placeholder value."""
    return template.split("@", 1)[0]


async def members(synapse: SynapseServer, room_id: str) -> set[str]:
    data = await synapse.admin_get(f"/_synapse/admin/v1/rooms/{room_id}/members")
    return set(data["members"])


async def only_ciphertext(synapse: SynapseServer, room_id: str) -> None:
    """Every non-state event the homeserver keeps for the room is Megolm ciphertext."""
    events = await synapse.room_messages(room_id)
    kinds = {e["type"] for e in events if "state_key" not in e}
    assert kinds == {"m.room.encrypted"}, kinds
    for e in events:
        if e["type"] == "m.room.encrypted":
            assert e["content"]["algorithm"] == "m.megolm.v1.aes-sha2"


def room_named(peer: MatrixPeer, name: str) -> Callable[[], str | None]:
    return lambda: next((r.room_id for r in peer.client.rooms.values() if r.name == name), None)


@dataclass
class Scene:
    """One running bot with two Matrix confidants, Anna (nl) and Bram (en)."""

    synapse: SynapseServer
    bot_id: str
    anna: MatrixPeer
    bram: MatrixPeer
    make: PeerFactory
    said: list[str] = field(default_factory=list)
    rooms: set[str] = field(default_factory=set)
    employees: list[MatrixPeer] = field(default_factory=list)

    def words(self, what: str) -> str:
        text = f"{what} {secrets.token_hex(4)}"
        self.said.append(text)
        return text


async def conversation(sc: Scene, lang: str) -> None:
    """One employee's whole conversation in ``lang``, checked at every step."""
    anna, bram = sc.anna, sc.bram
    emp = await sc.make("emp", f"Jan Peeters {secrets.token_hex(3)}")
    sc.employees.append(emp)
    dm = await emp.dm(sc.bot_id)
    sc.rooms.add(dm)
    await emp.say(dm, "hallo")
    await emp.wait_text(starts(TR.t("nl", "welcome.first")[:30]), dm, "welcome")
    if lang != "nl":
        await emp.say(dm, "!language")
        menu = await emp.wait_text(starts(TR.t("nl", "language.choose")), dm, "language menu")
        await emp.say(dm, numbered_choice(menu, LANGUAGE_NAMES[lang]))
        await emp.wait_text(starts(TR.t(lang, "language.set")), dm, "language set")

    await emp.say(dm, "/talk")
    menu = await emp.wait_text(starts(TR.t(lang, "talk.choose")), dm, "talk menu")
    assert "Anna" in menu and "Bram" in menu
    await emp.say(dm, numbered_choice(menu, TR.t(lang, "talk.first_available")))
    opened = await emp.wait_text(starts(before(TR.t(lang, "case.opened", code="@"))), dm)
    code = CASE_CODE.findall(opened)[0]
    held = sc.words(f"held words {lang}")
    await emp.say(dm, held)

    # Both confidants hear of the case in their own DM with the bot (no case room yet).
    def notified(text: str) -> bool:
        return code in text and claimable(text, code)

    note = await anna.wait_text(notified, what="anna notified")
    anna_dm = await anna.wait_room_with(notified)
    await bram.wait_text(notified, what="bram notified")
    assert anna.client.rooms[anna_dm].name != code
    sc.rooms.add(anna_dm)
    await anna.say(anna_dm, numbered_choice(note, code))  # claimed by number

    await bram.wait_text(equals(TR.t("en", "claim.taken_by", code=code, name="Anna")))
    await emp.wait_text(equals(TR.t(lang, "claim.to_employee", name="Anna")), dm, "joined")
    case_room = await eventually(room_named(anna, code), what="case room")
    sc.rooms.add(case_room)
    assert anna.client.rooms[case_room].encrypted
    await anna.wait_text(equals(f"[{code}] {held}"), case_room, "held message")
    assert await members(sc.synapse, case_room) == {sc.bot_id, anna.user_id}

    words = sc.words(f"employee words {lang}")
    await emp.say(dm, words)
    await anna.wait_text(equals(f"[{code}] {words}"), case_room, "relayed words")
    answer = sc.words(f"anna listens {lang}")
    await anna.say(case_room, answer)
    await emp.wait_text(equals(TR.t(lang, "relay.to_employee", name="Anna", text=answer)), dm)

    await anna.say(case_room, "/handover Bram")
    await anna.wait_text(equals(TR.t("nl", "handover.done", code=code, name="Bram")), case_room)
    await eventually(lambda: case_room in bram.client.rooms, what="bram in the case room")
    received = before(TR.t("en", "handover.received", code=code, name="Anna", deadline="@"))
    await bram.wait_text(starts(received), case_room, "handover received")
    await emp.wait_text(equals(TR.t(lang, "handover.to_employee", name="Bram")), dm)
    assert await members(sc.synapse, case_room) == {sc.bot_id, bram.user_id}

    from_bram = sc.words(f"bram here {lang}")
    await bram.say(case_room, from_bram)
    await emp.wait_text(equals(TR.t(lang, "relay.to_employee", name="Bram", text=from_bram)), dm)
    thanks = sc.words(f"thanks {lang}")
    await emp.say(dm, thanks)
    await bram.wait_text(equals(f"[{code}] {thanks}"), case_room, "thanks")

    await bram.say(case_room, "!close stress")
    closed = TR.t("en", "close.done", code=code, theme=TR.t("en", "theme.stress"))
    await bram.wait_text(equals(closed), case_room, "closed")
    await emp.wait_text(starts(before(TR.t(lang, "close.to_employee", days="@"))), dm)
    await eventually(lambda: sc.bot_id not in bram.client.rooms[case_room].users, what="left")


async def test_full_conversation_in_two_languages_encrypted_and_anonymous(
    synapse: SynapseServer, tmp_path: Path, peers: PeerFactory
) -> None:
    """DM → numbered menus → /talk → claim → case room → both ways → handover →
    close, in Dutch (the default) and in English (chosen by number).  The
    homeserver keeps only ciphertext; confidants never learn who it is."""
    setup, bot_id = await matrix_setup(tmp_path / "bot", synapse, default_language="nl")
    anna = await peers("anna")
    bram = await peers("bram")
    await add_matrix_confidant(setup, "Anna", anna.user_id, languages=["nl"])
    await add_matrix_confidant(setup, "Bram", bram.user_id, languages=["en"])
    sc = Scene(synapse, bot_id, anna, bram, peers)
    async with running_app(setup):
        for lang in ("nl", "en"):
            await conversation(sc, lang)

    # The homeserver holds only Megolm ciphertext for every room the bot used…
    for room_id in sc.rooms:
        await only_ciphertext(synapse, room_id)
    raw = synapse.db_bytes()
    for text in sc.said:
        assert text.encode() not in raw, "plaintext found in Synapse's database"
    # …and nothing a confidant read names the employee.
    for emp in sc.employees:
        localpart = emp.user_id[1:].split(":")[0]
        for confidant in (anna, bram):
            dumped = json.dumps(confidant.sources(), ensure_ascii=False)
            for mark in (emp.user_id, localpart, emp.display_name):
                assert mark not in dumped, "employee identity reached a confidant"


def _canonical(obj: dict[str, Any]) -> bytes:
    """Matrix canonical JSON of a signed object (without ``signatures``/``unsigned``)."""
    body = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _check_signed(obj: dict[str, Any], user_id: str, signer_pub: str) -> None:
    """Ed25519 signature of ``signer_pub`` over ``obj``: present and valid (raises if not)."""
    sig = obj["signatures"][user_id][f"ed25519:{signer_pub}"]
    Ed25519PublicKey.from_public_bytes(_b64(signer_pub)).verify(_b64(sig), _canonical(obj))


async def test_keys_query_shows_the_device_cross_signed(
    synapse: SynapseServer, tmp_path: Path, peers: PeerFactory
) -> None:
    """Another account's /keys/query: device ← self-signing key ← master key."""
    setup, bot_id = await matrix_setup(tmp_path / "bot", synapse)
    other = await peers("other")
    async with running_app(setup) as app:
        device_id = app.channels["matrix"].device_id  # type: ignore[attr-defined]
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{synapse.url}/_matrix/client/v3/keys/query",
                json={"device_keys": {bot_id: []}},
                headers={"Authorization": f"Bearer {other.client.access_token}"},
            ) as r:
                assert r.status == 200
                query = await r.json()
    master = query["master_keys"][bot_id]
    ssk = query["self_signing_keys"][bot_id]
    device = query["device_keys"][bot_id][device_id]
    assert master["usage"] == ["master"] and ssk["usage"] == ["self_signing"]
    (master_pub,) = master["keys"].values()
    (ssk_pub,) = ssk["keys"].values()
    _check_signed(ssk, bot_id, master_pub)
    _check_signed(device, bot_id, ssk_pub)
    tampered = {**device, "device_id": "SOMEONEELSE"}
    with pytest.raises(InvalidSignature):
        _check_signed(tampered, bot_id, ssk_pub)


async def test_unencrypted_dm_relays_nothing_until_encryption_is_on(
    synapse: SynapseServer, tmp_path: Path, peers: PeerFactory
) -> None:
    """A DM without encryption (the bot may not turn it on): only the fixed notice
    comes back and the core records nothing; once encrypted, the bot answers."""
    setup, bot_id = await matrix_setup(tmp_path / "bot", synapse)
    emp = await peers("emp")
    resp = await emp.client.room_create(
        is_direct=True, preset=RoomPreset.private_chat, invite=[bot_id]
    )
    assert isinstance(resp, RoomCreateResponse)
    dm = str(resp.room_id)
    async with running_app(setup):
        await eventually(lambda: dm in emp.client.rooms and bot_id in emp.client.rooms[dm].users
                         and bot_id not in emp.client.rooms[dm].invited_users, what="bot joined")
        secret = f"my manager bullies me {secrets.token_hex(3)}"
        await emp.say(dm, secret)
        await emp.wait_text(lambda t: t.startswith("🔒"), dm, "not-encrypted notice")
        await asyncio.sleep(1.0)
        assert await setup.handled_events() == 0
        assert not await setup.cases()
        assert all(t.startswith("🔒") for t in emp.texts(dm))

        put = await emp.client.room_put_state(
            dm, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}
        )
        assert not isinstance(put, RoomPutStateError)
        await eventually(lambda: emp.client.rooms[dm].encrypted, what="encrypted")
        await emp.say(dm, "/start")
        await emp.wait_text(starts(TR.t("nl", "welcome.first")[:30]), dm, "welcome")
        assert await setup.handled_events() == 1
    assert secret.encode() not in (setup.db_path.read_bytes())


async def test_telegram_employee_with_matrix_confidant_both_ways(
    synapse: SynapseServer, tmp_path: Path, peers: PeerFactory, telegram_double: TelegramDouble
) -> None:
    """Telegram employee ↔ Matrix confidant through the core, both ways, anonymous."""
    double = telegram_double
    setup, _ = await matrix_setup(
        tmp_path / "bot", synapse, telegram_base_url=double.base_url,
        telegram_token=double.token,
    )
    anna = await peers("anna")
    await add_matrix_confidant(setup, "Anna", anna.user_id, languages=["en"])
    user = double.user(424242, "Jan", "Peeters", username="janpeeters77", language_code="en")
    async with running_app(setup):
        await user.send_text("/talk")
        await double.wait_for(user.id, lambda r: "first available" in json.dumps(
            r.get("reply_markup") or {}), timeout=10)
        await user.press(TR.t("en", "talk.first_available"))
        opened = await double.wait_for(
            user.id, lambda r: str(r.get("text", "")).startswith(
                before(TR.t("en", "case.opened", code="@"))), timeout=10)
        code = CASE_CODE.findall(opened["text"])[0]
        note = await anna.wait_text(lambda t: claimable(t, code), what="notified")
        anna_dm = await anna.wait_room_with(lambda t: claimable(t, code))
        await anna.say(anna_dm, f"/claim {code}")
        case_room = await eventually(room_named(anna, code), what="case room")
        assert note and case_room != anna_dm

        words = f"from telegram {secrets.token_hex(3)}"
        await user.send_text(words)
        await anna.wait_text(equals(f"[{code}] {words}"), case_room, "telegram → matrix")
        answer = f"from matrix {secrets.token_hex(3)}"
        await anna.say(case_room, answer)
        await double.wait_for(user.id, lambda r: r.get("text") == TR.t(
            "en", "relay.to_employee", name="Anna", text=answer), timeout=10)
    dumped = json.dumps(anna.sources(), ensure_ascii=False)
    for mark in ("424242", "janpeeters77", "Peeters"):
        assert mark not in dumped, "Telegram identity reached the confidant"


async def test_bot_sigkill_and_homeserver_restart_lose_and_duplicate_nothing(
    synapse: SynapseServer, tmp_path: Path, peers: PeerFactory
) -> None:
    """The bot process is SIGKILLed mid-conversation and restarted, then Synapse
    restarts: every message arrives, and exactly once."""
    setup, bot_id = await matrix_setup(tmp_path / "bot", synapse, default_language="en")
    anna = await peers("anna")
    emp = await peers("emp")
    await add_matrix_confidant(setup, "Anna", anna.user_id, languages=["en"])
    proc = BotProcess(setup)
    proc.start()
    try:
        dm = await emp.dm(bot_id, timeout=40)
        await emp.say(dm, "hello")
        await emp.wait_text(starts(TR.t("en", "welcome.first")[:30]), dm, "welcome")
        await emp.say(dm, "/talk")
        menu = await emp.wait_text(starts(TR.t("en", "talk.choose")), dm, "talk menu")
        await emp.say(dm, numbered_choice(menu, TR.t("en", "talk.first_available")))
        opened = await emp.wait_text(starts(before(TR.t("en", "case.opened", code="@"))), dm)
        code = CASE_CODE.findall(opened)[0]
        anna_dm = await anna.wait_room_with(lambda t: claimable(t, code))
        await anna.say(anna_dm, f"/claim {code}")
        case_room = await eventually(room_named(anna, code), what="case room")
        await emp.wait_text(equals(TR.t("en", "claim.to_employee", name="Anna")), dm)

        to_anna = [f"e{i} {secrets.token_hex(3)}" for i in range(9)]
        to_emp = [f"a{i} {secrets.token_hex(3)}" for i in range(3)]
        for text in to_anna[:4]:
            await emp.say(dm, text)
        await anna.say(case_room, to_emp[0])
        proc.kill()  # mid-conversation: some of these are surely not handled yet
        await emp.say(dm, to_anna[4])
        await anna.say(case_room, to_emp[1])
        proc.start()
        await emp.say(dm, to_anna[5])
        await anna.wait_text(equals(f"[{code}] {to_anna[5]}"), case_room, "after restart")

        await emp.say(dm, to_anna[6])
        await synapse.restart()
        await emp.say(dm, to_anna[7])
        await anna.say(case_room, to_emp[2])
        await emp.say(dm, to_anna[8])

        expected_anna = [f"[{code}] {t}" for t in to_anna]
        expected_emp = [TR.t("en", "relay.to_employee", name="Anna", text=t) for t in to_emp]
        await eventually(lambda: all(t in anna.texts(case_room) for t in expected_anna),
                         timeout=45, what="every employee message at the confidant")
        await eventually(lambda: all(t in emp.texts(dm) for t in expected_emp),
                         timeout=45, what="every confidant message at the employee")
        await asyncio.sleep(2.0)  # time for a duplicate to show up, if there were one
        for t in expected_anna:
            assert anna.texts(case_room).count(t) == 1, "duplicated at the confidant"
        for t in expected_emp:
            assert emp.texts(dm).count(t) == 1, "duplicated at the employee"
    except BaseException:
        print("bot log (tail):", proc.log()[-4000:])  # shown by pytest on failure
        raise
    finally:
        await proc.stop()
