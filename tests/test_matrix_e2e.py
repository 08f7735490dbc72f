"""The Matrix channel end to end: the real App (core, store, delivery worker)
against the session's real Synapse, with real matrix-nio clients as employees
and confidants, and a Telegram employee through the Bot API double."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from handlers.i18n import LANGUAGE_NAMES, Translator
from tests.support.app_runner import running_app
from tests.support.matrix_app import (
    CASE_CODE,
    MatrixPeer,
    add_matrix_confidant,
    eventually,
    matrix_setup,
    numbered_choice,
)
from tests.support.synapse import SynapseServer

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
        return code in text and f"/claim {code}" in text

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
