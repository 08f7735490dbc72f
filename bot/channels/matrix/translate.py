"""A decrypted Matrix room message as the core's `Inbound`, without any
network call, so the translation can be tested (and fuzzed) on its own.

The homeserver passes message content through unchecked, so every field is
read defensively; what reaches the core is the sender's Matrix id (for its
lookup only), the room, the event and reply ids and what the person typed,
never a display name, avatar or quoted reply fallback.
"""

from __future__ import annotations

import re
from typing import Any

from nio import (
    MatrixRoom,
    RoomEncryptedMedia,
    RoomMessage,
    RoomMessageEmote,
    RoomMessageMedia,
    RoomMessageNotice,
    RoomMessageText,
)

from domain.ids import ChannelName
from domain.messages import Inbound

MATRIX = ChannelName("matrix")

UNREADABLE = "undecryptable"
"""``Inbound.unsupported`` kind for a message the bot cannot read (its room key
never came, or an algorithm nio does not know): the core asks the sender, in
their language, to send it again."""

_COMMAND = re.compile(r"^!(?=[A-Za-z])")
"""``!claim`` counts as ``/claim``: Matrix clients take a leading slash for
their own commands, so people type ``!`` instead."""


def relation(content: Any) -> tuple[dict[str, Any], str | None]:
    """``m.relates_to`` and the replied-to event id, tolerating any shape: the
    homeserver passes content through unchecked, so a client may send junk."""
    relates = content.get("m.relates_to") if isinstance(content, dict) else None
    if not isinstance(relates, dict):
        return {}, None
    in_reply_to = relates.get("m.in_reply_to")
    reply_to = in_reply_to.get("event_id") if isinstance(in_reply_to, dict) else None
    return relates, reply_to if isinstance(reply_to, str) and reply_to else None


def inbound_fields(room: MatrixRoom, event: RoomMessage, case_code: str | None) -> dict[str, Any]:
    """What every `Inbound` from a room event carries: the sender's Matrix id
    (for the core's lookup only), the room, the event and reply ids; never a
    display name or avatar."""
    return {
        "channel": MATRIX,
        "sender": event.sender,
        "chat": room.room_id,
        "event_id": event.event_id,
        "reply_to": relation(event.source.get("content"))[1],
        "case_hint": case_code,
    }


def inbound_from_event(
    room: MatrixRoom, event: RoomMessage, case_code: str | None
) -> Inbound | None:
    """The `Inbound` for a decrypted room message.

    Returns None only for media, which needs a download first
    (`bot.channels.matrix.inbound.EventReader`).  Edits are reported as
    unsupported: a changed message cannot be taken back from the other side.
    """
    content = event.source.get("content")
    relates, _ = relation(content)
    base = inbound_fields(room, event, case_code)
    if relates.get("rel_type") == "m.replace":
        return Inbound(**base, unsupported="edit")
    if isinstance(event, RoomMessageText | RoomMessageNotice | RoomMessageEmote):
        body = event.body if isinstance(event.body, str) else ""
        replying = isinstance(relates.get("m.in_reply_to"), dict)
        text = _strip_reply_fallback(body) if replying else body
        return Inbound(**base, text=_COMMAND.sub("/", text.strip()))
    if isinstance(event, RoomEncryptedMedia | RoomMessageMedia):
        return None
    msgtype = content.get("msgtype") if isinstance(content, dict) else None
    return Inbound(**base, unsupported=msgtype if isinstance(msgtype, str) and msgtype
                   else "unknown")


def _strip_reply_fallback(body: str) -> str:
    """Drop the quoted "> <@user> …" fallback that replies carry, keeping the answer."""
    lines = body.splitlines()
    quoted = 0
    while quoted < len(lines) and lines[quoted].startswith(">"):
        quoted += 1
    rest = lines[quoted:]
    if quoted and not rest:
        return body  # a quote with no separator: the person's own words
    while rest and not rest[0].strip():
        rest.pop(0)
    # A fallback followed by an empty answer is empty: the quote (which may
    # carry the other person's name) is never passed on as if typed.
    return "\n".join(rest)
