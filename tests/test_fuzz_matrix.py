"""Hypothesis over the Matrix channel's inbound surface.

Synapse passes message content through unchecked, so whatever a client puts
in an ``m.room.message`` reaches `bot.channels.matrix.inbound_from_event`
after matrix-nio parsed it.  The translation must never raise (one bad event
would abort a whole sync round) and must never carry a display name or
avatar into the `Inbound`: the core sees the sender's id only to look up the
pseudonymous contact.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nio import Event, MatrixRoom, RoomMessage, RoomMessageMedia

from bot.channels.matrix import inbound_from_event
from handlers.types import Inbound

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
