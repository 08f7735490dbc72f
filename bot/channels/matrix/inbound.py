"""Timeline events towards the core: each one once, only if it arrived
end-to-end encrypted, attachments downloaded, decrypted and cleaned.

An event the bot cannot read is not dropped: it waits for its key
(`bot.channels.matrix.held`), and if the key never comes the core is handed
an `UNREADABLE` event so it can ask the sender, in their language, to send
the message again.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from nio import (
    DownloadError,
    MatrixRoom,
    MegolmEvent,
    RoomEncryptedAudio,
    RoomEncryptedImage,
    RoomEncryptedMedia,
    RoomMessage,
    RoomMessageAudio,
    RoomMessageImage,
    RoomMessageMedia,
    UnknownEncryptedEvent,
)
from nio.crypto.attachments import decrypt_attachment
from nio.exceptions import EncryptionError

from bot.channels.matrix.connection import Connection
from bot.channels.matrix.held import Held, HeldEvents
from bot.channels.matrix.inbox import Inbox
from bot.channels.matrix.notices import RoomNotices
from bot.channels.matrix.rooms import CaseRooms
from bot.channels.matrix.translate import (
    MATRIX,
    UNREADABLE,
    inbound_fields,
    inbound_from_event,
)
from bot.channels.media import MAX_MEDIA_BYTES, MediaRejected, scrub_image
from domain.messages import Inbound, Media, RetryLater

log = logging.getLogger(__name__)

_UNREADABLE_SUFFIX = "#unreadable"
"""Appended to a Matrix event id to name the "could not read it" event handed
to the core: stable, so a replay asks once, yet distinct from the message's
own id, so the message still counts if its key turns up after all."""

_MEDIA_REFUSALS = {"media.too_large": "too_large", "media.undecryptable": UNREADABLE}
"""Why an attachment was refused → the ``unsupported`` kind the core answers."""


class EventReader:
    """Turns the timeline events of the bot's rooms into `Inbound` values in the inbox."""

    def __init__(
        self, connection: Connection, cases: CaseRooms, notices: RoomNotices, inbox: Inbox
    ) -> None:
        self._connection = connection
        self._cases = cases
        self._notices = notices
        self._inbox = inbox
        self._seen: deque[str] = deque(maxlen=2000)
        self.held = HeldEvents(connection, self._given_up)
        """The events waiting for their key."""

    async def handle(self, room: MatrixRoom, event: Any) -> None:
        """Translate one timeline event; refuse anything that was not end-to-end encrypted."""
        if getattr(event, "sender", None) == self._connection.user_id:
            return
        event_id = getattr(event, "event_id", None)
        if not event_id or event_id in self._seen:
            return
        if isinstance(event, MegolmEvent):
            if event_id not in self.held:
                await self.held.hold(room, event)
            return
        if isinstance(event, UnknownEncryptedEvent):  # an algorithm we cannot ever read
            self._seen.append(event_id)
            log.info("matrix: undecryptable event")
            await self._ask_again(room.room_id, event.sender, event_id)
            return
        if not isinstance(event, RoomMessage):
            return
        self._seen.append(event_id)
        self.held.discard(event_id)  # its key came with the same sync
        if not getattr(event, "decrypted", False):
            log.info("matrix: refused an unencrypted message")
            await self._notices.ask_for_encryption(room.room_id)
            return
        inbound = await self._to_inbound(room, event)
        if inbound is not None:
            self._inbox.put(inbound)

    async def release_held(self) -> None:
        """Hand over waiting events whose key has arrived, in the order they came."""
        for room, event in self.held.released():
            await self.handle(room, event)

    async def _given_up(self, event_id: str, held: Held) -> None:
        """A waiting event will never be read: have its sender asked to send it again."""
        self._seen.append(event_id)
        await self._ask_again(held.room_id, held.source.get("sender"), event_id)

    async def _ask_again(self, room_id: str, sender: object, event_id: str) -> None:
        """Hand the core an unreadable message as an `UNREADABLE` event.

        The core, not the channel, answers it: only the core knows the
        person's language, and its answer goes out through the outbox, retried
        until delivered (a notice sent from here would be lost to a homeserver
        hiccup).  Queued like any event, so it is recorded before the sync
        position moves past the message."""
        if not isinstance(sender, str) or not sender or sender == self._connection.user_id:
            return
        self._inbox.put(
            Inbound(
                channel=MATRIX,
                sender=sender,
                chat=room_id,
                event_id=event_id + _UNREADABLE_SUFFIX,
                unsupported=UNREADABLE,
                case_hint=await self._cases.case_for_room(room_id),
            )
        )

    async def _to_inbound(self, room: MatrixRoom, event: RoomMessage) -> Inbound | None:
        """Build the `Inbound` for a decrypted message (text, media or unsupported)."""
        case_code = await self._cases.case_for_room(room.room_id)
        inbound = inbound_from_event(room, event, case_code)
        if inbound is not None or not isinstance(event, RoomEncryptedMedia | RoomMessageMedia):
            return inbound
        base = inbound_fields(room, event, case_code)
        try:
            media = await self._fetch_media(event)
        except MediaRejected as exc:
            log.info("matrix: media rejected (%s)", exc.reason)
            return Inbound(**base, unsupported=_MEDIA_REFUSALS.get(exc.reason, "invalid_media"))
        except RetryLater:
            log.warning("matrix: media download failed")
            return Inbound(**base, unsupported="unavailable")
        return Inbound(**base, media=media)

    async def _fetch_media(self, event: RoomEncryptedMedia | RoomMessageMedia) -> Media:
        """Download (and decrypt) an attachment; images are re-encoded without metadata."""
        resp = await self._connection.client.download(mxc=event.url)
        if isinstance(resp, DownloadError) or not hasattr(resp, "body"):
            raise RetryLater("download failed")
        data: bytes = resp.body
        if isinstance(event, RoomEncryptedMedia):
            try:
                data = decrypt_attachment(data, event.key["k"], event.hashes["sha256"], event.iv)
            except (EncryptionError, KeyError, ValueError) as exc:
                raise MediaRejected("media.undecryptable") from exc
        if len(data) > MAX_MEDIA_BYTES:
            raise MediaRejected("media.too_large")
        mime = str(
            getattr(event, "mimetype", None)
            or event.source.get("content", {}).get("info", {}).get("mimetype")
            or "application/octet-stream"
        )
        if isinstance(event, RoomEncryptedImage | RoomMessageImage):
            data, mime = scrub_image(data)
            ext = ".png" if mime == "image/png" else ".jpg"
            return Media("photo", data, filename="image" + ext, mime_type=mime)
        kind = "voice" if isinstance(event, RoomEncryptedAudio | RoomMessageAudio) else "document"
        return Media(kind, data, filename=_safe_filename(event.body), mime_type=mime)


def _safe_filename(body: str | None) -> str:
    """A harmless file name from the sender's body (no paths, bounded length)."""
    name = (body or "file").replace("/", "_").replace("\\", "_").strip() or "file"
    return name[:120]
