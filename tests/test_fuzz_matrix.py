"""Hypothesis over the Matrix channel's inbound surface.

Synapse passes message content through unchecked, so whatever a client puts
in an ``m.room.message`` reaches `bot.channels.matrix.inbound_from_event`
after matrix-nio parsed it.  The translation must never raise (one bad event
would abort a whole sync round) and must never carry a display name or
avatar into the `Inbound`: the core sees the sender's id only to look up the
pseudonymous contact.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nio import Event, MatrixRoom, RoomMessage, RoomMessageMedia

from bot.channels.matrix import MatrixChannel, inbound_from_event
from domain.messages import Inbound

BOT = "@confidant:127.0.0.1"
SENDER = "@employee-7731:127.0.0.1"
OTHER = "@someone-else:127.0.0.1"
ROOM = "!fuzzroom:127.0.0.1"
# Markers that appear only where the employee's identity lives (profile,
# mentions, reply fallbacks), never in what they typed themselves.
DISPLAY_NAME = "Zelda Quixotic-Marsh"
AVATAR = "mxc://127.0.0.1/AvatarOfZeldaQM"
MARKERS = (DISPLAY_NAME, AVATAR, "Quixotic", "AvatarOfZelda")

NASTY = ("\u202e", "\u2066", "\u200f", "\ufeff", "\x00", "\x1b[2J", "\r\n", "🙂", "!claim",
         "!", "/", "> ", "\n\n", "<b>", "&amp;", "\u0301" * 20)


def _clean(text: str) -> str:
    """Typed text never contains the markers by construction (hypothesis would
    not invent them, but a shrink could splice them in from another field)."""
    for m in MARKERS:
        text = text.replace(m, "")
    return text


typed = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), max_size=10).map("".join),
    st.builds(lambda u, n: u * n, st.sampled_from(["a", "é", "\u202e", "🙂", "x\n"]),
              st.integers(1_000, 100_000)),
).map(_clean)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=20))
junk = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=8)

mention_html = st.sampled_from([
    f'<a href="https://matrix.to/#/{SENDER}">{DISPLAY_NAME}</a>: hi',
    f'<mx-reply><blockquote>{DISPLAY_NAME} wrote <img src="{AVATAR}"></blockquote></mx-reply>'
    "answer",
    "<script>alert(1)</script>", "<b>bold</b>", "", "<" * 500,
])

proper_reply = st.fixed_dictionaries(
    {"m.in_reply_to": st.fixed_dictionaries({"event_id": st.text(max_size=30)})})
relation = st.one_of(
    st.none(), proper_reply, proper_reply, junk,
    st.fixed_dictionaries({"m.in_reply_to": st.one_of(
        st.fixed_dictionaries({"event_id": st.one_of(st.text(max_size=30), junk)}),
        junk)}),
    st.fixed_dictionaries({"rel_type": st.sampled_from(["m.replace", "m.thread",
                                                        "m.annotation", "x"]),
                           "event_id": st.text(max_size=30)}),
)

msgtype = st.one_of(st.sampled_from(["m.text", "m.notice", "m.emote"]),
                    st.sampled_from(["m.text", "m.notice", "m.emote", "m.location",
                                     "m.server_notice", "m.key.verification.request",
                                     "m.image", "m.file", "m.audio", "m.video", "org.x.poll",
                                     ""]), st.text(max_size=20), junk)


@st.composite
def message_event(draw: st.DrawFn) -> dict[str, Any]:
    """One ``m.room.message`` as a client could send it (content unchecked)."""
    body = draw(st.one_of(st.just(""), st.just(" \n"), typed))
    rel = draw(relation)
    content: dict[str, Any] = {"msgtype": draw(msgtype), "body": body}
    reply = rel.get("m.in_reply_to") if isinstance(rel, dict) else None
    if isinstance(reply, dict) and isinstance(reply.get("event_id"), str) and draw(st.booleans()):
        # The reply fallback quotes the other person, with their name.
        content["body"] = f"> <{OTHER}> {DISPLAY_NAME} said\n> {AVATAR}\n\n{body}"
    if rel is not None:
        content["m.relates_to"] = rel
    for key, value in draw(st.dictionaries(st.sampled_from([
            "format", "formatted_body", "m.mentions", "displayname", "avatar_url", "url",
            "info", "m.new_content", "geo_uri", "file", "filename"]),
            st.one_of(mention_html, junk, st.just(DISPLAY_NAME), st.just(AVATAR),
                      st.just({"user_ids": [SENDER]}),
                      st.just({"msgtype": "m.text", "body": DISPLAY_NAME})),
            max_size=draw(st.sampled_from([0, 0, 1, 3])))).items():
        content[key] = value
    if draw(st.integers(0, 4)) == 0:
        content["body"] = draw(junk)  # nio rejects most of these; the rest must pass
    return {
        "type": "m.room.message",
        "event_id": "$" + draw(st.text("abcdefXYZ0123456789", min_size=1, max_size=43)),
        "sender": SENDER,
        "origin_server_ts": draw(st.integers(0, 2**53)),
        "content": content,
        "unsigned": draw(st.one_of(st.just({}), st.just({"displayname": DISPLAY_NAME}),
                                   st.dictionaries(st.text(max_size=8), junk, max_size=2))),
    }


def _room() -> MatrixRoom:
    """A room where the employee has a display name and an avatar."""
    room = MatrixRoom(ROOM, BOT)
    room.add_member(SENDER, DISPLAY_NAME, AVATAR)
    room.add_member(OTHER, "Other Person", None)
    return room


def _strings(inbound: Inbound) -> list[str]:
    """Every text the core would see, except the sender's id (kept only for lookup)."""
    values = [inbound.chat, inbound.event_id, inbound.text, inbound.button, inbound.reply_to,
              inbound.language_hint, inbound.unsupported, inbound.case_hint]
    return [v for v in values if v]


FUZZ = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])


@FUZZ
@given(source=message_event(), case=st.one_of(st.none(), st.just("K7F-3MQ")))
def test_translation_never_raises_and_carries_no_profile(
    source: dict[str, Any], case: str | None
) -> None:
    event = Event.parse_event(source)
    if not isinstance(event, RoomMessage):
        return  # nio refused it (BadEvent): the channel never sees it
    inbound = inbound_from_event(_room(), event, case)
    if isinstance(event, RoomMessageMedia):
        assert inbound is None  # media goes through the download path
        return
    assert inbound is not None
    assert (inbound.channel, inbound.sender, inbound.chat, inbound.event_id) == (
        "matrix", SENDER, ROOM, source["event_id"])
    assert inbound.case_hint == case
    assert inbound.media is None and inbound.button is None
    assert (inbound.text is None) != (inbound.unsupported is None)
    for value in _strings(inbound):
        for marker in MARKERS:
            assert marker not in value
    relates = source["content"].get("m.relates_to")
    if isinstance(relates, dict) and relates.get("rel_type") == "m.replace":
        assert inbound.unsupported == "edit"
    elif source["content"]["msgtype"] == "m.location":
        assert inbound.unsupported == "m.location" and inbound.text is None


def test_junk_relation_is_a_plain_message() -> None:
    """The shape a fuzzer found first: ``m.relates_to`` that is not an object."""
    for relates in ("oops", ["a"], 5, {"m.in_reply_to": "x"}, {"m.in_reply_to": {"event_id": 7}}):
        event = Event.parse_event({
            "type": "m.room.message", "event_id": "$e", "sender": SENDER,
            "origin_server_ts": 1,
            "content": {"msgtype": "m.text", "body": "!talk", "m.relates_to": relates}})
        assert isinstance(event, RoomMessage)
        inbound = inbound_from_event(_room(), event, None)
        assert inbound is not None
        assert (inbound.text, inbound.reply_to) == ("/talk", None)


def test_reply_fallback_with_a_name_is_dropped() -> None:
    for body, text in ((f"> <{OTHER}> {DISPLAY_NAME}\n\n", ""),
                       (f"> <{OTHER}> {DISPLAY_NAME}\n>\n\n  \n", ""),
                       ("> only a quote, typed", "> only a quote, typed")):
        event = Event.parse_event({
            "type": "m.room.message", "event_id": "$r", "sender": SENDER,
            "origin_server_ts": 1, "content": {
                "msgtype": "m.text", "body": body,
                "m.relates_to": {"m.in_reply_to": {"event_id": "$orig"}}}})
        assert isinstance(event, RoomMessage)
        inbound = inbound_from_event(_room(), event, None)
        assert inbound is not None and inbound.text == text
    event = Event.parse_event({
        "type": "m.room.message", "event_id": "$r", "sender": SENDER, "origin_server_ts": 1,
        "content": {"msgtype": "m.text",
                    "body": f"> <{OTHER}> {DISPLAY_NAME}\n\nmy answer",
                    "m.relates_to": {"m.in_reply_to": {"event_id": "$orig"}}}})
    assert isinstance(event, RoomMessage)
    inbound = inbound_from_event(_room(), event, "K7F-3MQ")
    assert inbound is not None
    assert (inbound.text, inbound.reply_to, inbound.case_hint) == ("my answer", "$orig", "K7F-3MQ")


# --- a short run against a real Synapse ------------------------------------------------

NASTY_CONTENTS: list[dict[str, Any]] = [
    {"msgtype": "m.text", "body": f"hi {DISPLAY_NAME}", "format": "org.matrix.custom.html",
     "formatted_body": f'<a href="https://matrix.to/#/{SENDER}">{DISPLAY_NAME}</a> hi'},
    {"msgtype": "m.text", "body": "mention", "m.mentions": {"user_ids": [SENDER]}},
    {"msgtype": "m.notice", "body": "a notice \u202e\x00\x1b[2J"},
    {"msgtype": "m.emote", "body": "waves 🙂"},
    {"msgtype": "m.text", "body": "long " + "a" * 30_000},  # near the 64 kB event limit
    {"msgtype": "org.example.unknown", "body": "unknown kind"},
    {"msgtype": "m.location", "body": "here", "geo_uri": "geo:50.8466,4.3528"},
    {"msgtype": "m.text", "body": " * edited", "m.new_content": {"msgtype": "m.text",
                                                                "body": "edited"},
     "m.relates_to": {"rel_type": "m.replace", "event_id": "$ORIGINAL"}},
    {"msgtype": "m.text", "body": f"> <{OTHER}> {DISPLAY_NAME}\n> {AVATAR}\n\n",
     "m.relates_to": {"m.in_reply_to": {"event_id": "$ORIGINAL"}}},
    {"msgtype": "m.text", "body": "junk relation", "m.relates_to": "oops"},
    {"msgtype": "m.text", "body": "junk reply", "m.relates_to": {"m.in_reply_to": 5}},
]


async def test_nasty_bodies_through_a_real_synapse(synapse: Any, tmp_path: Any) -> None:
    """A real nio client sends the bodies above, encrypted, to the real bot:
    every one is handled (none waits for a retry), the confidant reads the
    plain text ones, and nothing they read carries the employee's display
    name, avatar or Matrix id."""
    from tests.support.app_runner import running_app
    from tests.support.matrix_app import (
        CASE_CODE,
        MatrixPeer,
        add_matrix_confidant,
        eventually,
        matrix_setup,
        numbered_choice,
    )

    tr = __import__("handlers.i18n", fromlist=["Translator"]).Translator(
        "en", ("nl", "fr", "en"), "Europe/Brussels", "Acme Logistics")
    setup, bot_id = await matrix_setup(tmp_path, synapse, default_language="en")
    anna = await MatrixPeer.create(synapse, tmp_path / "peers", "anna", "Anna Confidant")
    emp = await MatrixPeer.create(synapse, tmp_path / "peers", "emp", DISPLAY_NAME)
    try:
        await emp.client.set_avatar(AVATAR)
        await add_matrix_confidant(setup, "Anna", anna.user_id)
        async with running_app(setup) as app:
            dm = await emp.dm(bot_id)
            await emp.say(dm, "/talk")
            menu = await emp.wait_text(lambda t: t.startswith(tr.t("en", "talk.choose")), dm)
            await emp.say(dm, numbered_choice(menu, tr.t("en", "talk.first_available")))
            opened = await emp.wait_text(lambda t: bool(CASE_CODE.search(t)), dm)
            code = CASE_CODE.findall(opened)[0]
            note = await anna.wait_text(lambda t: f"/claim {code}" in t, what="notified")
            anna_dm = await anna.wait_room_with(lambda t: f"/claim {code}" in t)
            await anna.say(anna_dm, numbered_choice(note, code))
            case_room = await eventually(
                lambda: next((r.room_id for r in anna.client.rooms.values() if r.name == code),
                             None), what="case room")
            original = await emp.say(dm, "the original")
            refused = []
            for content in NASTY_CONTENTS:
                content = json.loads(json.dumps(content).replace("$ORIGINAL", original))
                resp = await emp.client.room_send(dm, "m.room.message", content,
                                                  ignore_unverified_devices=True)
                if not hasattr(resp, "event_id"):
                    refused.append(content["body"][:20])
            assert not refused, f"the homeserver refused {refused}: the run proves less"
            await emp.say(dm, "sentinel after the nasty ones")
            await anna.wait_text(lambda t: t.endswith("sentinel after the nasty ones"),
                                 case_room, "the sentinel")
            channel = app.channels["matrix"]
            assert isinstance(channel, MatrixChannel) and channel.pending_retries == 0
            relayed = anna.texts(case_room)
            assert any("waves 🙂" in t for t in relayed)
            assert any("a notice" in t for t in relayed)
            for source in anna.sources():
                blob = json.dumps(source, ensure_ascii=False)
                for needle in (AVATAR, emp.user_id, "Quixotic-Marsh said"):
                    assert needle not in blob, "the employee's profile reached the confidant"
            # The display name reaches Anna only where the employee typed it themselves.
            named = [t for t in relayed if DISPLAY_NAME in t]
            assert named == [f"[{code}] hi {DISPLAY_NAME}"], named
    finally:
        await emp.close()
        await anna.close()
