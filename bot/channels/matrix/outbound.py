"""Messages from the delivery worker onto Matrix: to an employee's DM or to
the case's confidant room, always encrypted, made idempotent through Matrix
transaction ids derived from the worker's idempotency key, with failures
mapped to the worker's vocabulary (`RetryLater`, `Unreachable`).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from typing import Any

from nio import ErrorResponse, MatrixRoom, RoomSendResponse, UploadResponse
from nio.exceptions import EncryptionError, LocalProtocolError, OlmUnverifiedDeviceError

from bot.channels.matrix.connection import Connection
from bot.channels.matrix.rooms import CaseRooms, ConfidantRooms, addressed_user, wait_room
from bot.channels.matrix.trust import DeviceTrust
from bot.channels.media import MediaRejected, scrub_image
from domain.messages import Outbound, OutboundKind, RetryLater, SendResult, Unreachable
from domain.vocabulary import Control, Role

log = logging.getLogger(__name__)


def tx_id(idempotency_key: str, part: str) -> str:
    """Stable Matrix transaction id: the same key always yields the same id, so a
    retried send is deduplicated by the homeserver."""
    digest = hashlib.sha256(f"{idempotency_key}\0{part}".encode()).hexdigest()
    return f"cf{digest[:40]}"


def render_text(out: Outbound) -> str:
    """Text plus the menu as a numbered list ("1. label"); the core maps numbers back."""
    if out.menu is None or not out.menu.buttons():
        return out.text
    lines = [f"{i}. {b.label}" for i, b in enumerate(out.menu.buttons(), start=1)]
    return "\n".join([out.text, "", *lines]) if out.text else "\n".join(lines)


class Sender:
    """Sends one `Outbound` (media, then text and menu) and carries out its
    room control (handing a case over, closing it)."""

    def __init__(
        self,
        connection: Connection,
        confidant_rooms: ConfidantRooms,
        cases: CaseRooms,
        trust: DeviceTrust,
    ) -> None:
        self._connection = connection
        self._confidant_rooms = confidant_rooms
        self._cases = cases
        self._trust = trust

    async def send(self, out: Outbound, key: str) -> SendResult:
        """Deliver one message to an employee's DM or to the case's confidant room."""
        client = self._connection.client
        case_room: str | None = None
        if out.role == Role.CONFIDANT:
            room_id, case_room = await self._confidant_rooms.target(out)
            room = await wait_room(self._connection, room_id, addressed_user(out))
        else:
            room_id = out.to.address
            found_room = client.rooms.get(room_id)
            if found_room is None:
                raise Unreachable("the bot is not in that room")
            room = found_room
        if not room.encrypted:
            raise RetryLater("room not encrypted yet")
        event_id: str | None = None
        if out.media is not None:
            event_id = await self._send_media(room, out, key)
        if out.text or out.menu:
            msgtype = "m.notice" if out.kind == OutboundKind.NOTICE else "m.text"
            event_id = await self._room_send(
                room, {"msgtype": msgtype, "body": render_text(out)}, tx_id(key, "text")
            )
        if out.control == Control.CASE_HANDOVER_OUT and room_id == case_room:
            resp = await client.room_kick(room_id, out.to.address, reason="case handed over")
            if isinstance(resp, ErrorResponse):
                log.warning("matrix: kick failed (%s)", resp.status_code)
        elif out.control in (Control.CASE_CLOSE, Control.CASE_ERASE) and out.case:
            await self._cases.forget(str(out.case))
        return SendResult(event_id)

    async def _room_send(self, room: MatrixRoom, content: dict[str, Any], tx: str) -> str:
        """Encrypt and send with our trust policy applied; map failures for the worker."""
        client = self._connection.client
        if not room.members_synced:
            await client.joined_members(room.room_id)
        if client.should_query_keys:
            await client.keys_query()
        self._trust.apply(room)
        try:
            resp = await client.room_send(room.room_id, "m.room.message", content, tx_id=tx)
        except OlmUnverifiedDeviceError:
            await client.keys_query()
            self._trust.apply(room)
            try:
                resp = await client.room_send(room.room_id, "m.room.message", content, tx_id=tx)
            except OlmUnverifiedDeviceError as exc:
                raise RetryLater("a device is not yet trusted") from exc
        except (LocalProtocolError, EncryptionError) as exc:
            raise RetryLater(f"could not encrypt: {type(exc).__name__}") from exc
        if isinstance(resp, RoomSendResponse):
            return str(resp.event_id)
        raise map_error(resp)

    async def _send_media(self, room: MatrixRoom, out: Outbound, key: str) -> str:
        """Upload the file encrypted (re-uploaded, never forwarded) and send it."""
        client = self._connection.client
        media = out.media
        assert media is not None
        data, mime = media.data, media.mime_type
        if media.kind == "photo":
            try:
                data, mime = scrub_image(data)
            except MediaRejected as exc:
                raise Unreachable(f"media rejected: {exc.reason}") from exc
        upload, keys = await client.upload(
            _bytes_provider(data),
            content_type="application/octet-stream",
            filename=None,
            encrypt=True,
            filesize=len(data),
        )
        if not isinstance(upload, UploadResponse) or keys is None:
            raise map_error(upload) if isinstance(upload, ErrorResponse) else RetryLater("upload")
        msgtype = {"photo": "m.image", "voice": "m.audio"}.get(media.kind, "m.file")
        file_info = {**keys, "url": upload.content_uri, "mimetype": mime}
        content = {
            "msgtype": msgtype,
            "body": media.caption or media.filename,
            "info": {"mimetype": mime, "size": len(data)},
            "file": file_info,
        }
        return await self._room_send(room, content, tx_id(key, "media"))


def map_error(resp: ErrorResponse) -> RetryLater | Unreachable:
    """Matrix errors → the delivery worker's vocabulary."""
    code = str(resp.status_code or "")
    transport = getattr(resp, "transport_response", None)
    http = getattr(transport, "status", None)
    if code == "M_LIMIT_EXCEEDED" or http == 429:
        ms = getattr(resp, "retry_after_ms", None)
        return RetryLater("rate limited", after=ms / 1000 if ms else None)
    if code in ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_ROOM") or http in (403, 404):
        return Unreachable(f"room refused the message: {code or http}")
    return RetryLater(f"homeserver error: {code or http}")


def _bytes_provider(data: bytes) -> Callable[[int, int], io.BytesIO]:
    """nio's upload wants a callable returning a fresh readable for each attempt."""

    def provider(_got_429: int, _got_timeouts: int) -> io.BytesIO:
        return io.BytesIO(data)

    return provider
