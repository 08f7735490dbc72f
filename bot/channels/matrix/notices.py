"""The few fixed notices the Matrix channel sends on its own, outside the
conversation.

Only for notices that cannot go through the core: the one asking for
encryption is for an unencrypted room, where the core's messages must never
go (letting the core answer there would also move the person's address to
that room), and may come before anyone wrote; a new-device warning concerns a
room, not anyone's message.  The reader's language is unknown here, so the
words (the app's `NoticeWords`) come in every language of the organisation,
default first, from the same strings the core uses.
"""

from __future__ import annotations

import logging

import aiohttp
from nio.exceptions import EncryptionError, LocalProtocolError

from bot.channels.base import NoticeWords
from bot.channels.matrix.connection import Connection
from bot.channels.matrix.trust import DeviceTrust, NewDevices

log = logging.getLogger(__name__)


class RoomNotices:
    """Sends content-free notices: the only thing ever sent to an unencrypted room."""

    def __init__(self, connection: Connection, trust: DeviceTrust, words: NoticeWords) -> None:
        self._connection = connection
        self._trust = trust
        self._words = words

    async def ask_for_encryption(self, room_id: str) -> None:
        """Tell the room that nothing is relayed until it is end-to-end encrypted."""
        await self._send(room_id, self._words("matrix.not_encrypted"))

    async def warn_new_devices(self, new: NewDevices) -> None:
        """Name each user's newly trusted devices in every encrypted room with them."""
        client = self._connection.client
        for user_id, device_ids in new.items():
            log.info("matrix: new device of a known user trusted; warning posted")
            text = self._words("matrix.new_device", devices=", ".join(sorted(device_ids)))
            for room in list(client.rooms.values()):
                if room.encrypted and user_id in room.users:
                    try:
                        await client.room_send(
                            room.room_id,
                            "m.room.message",
                            {"msgtype": "m.notice", "body": text},
                        )
                    except (LocalProtocolError, EncryptionError, aiohttp.ClientError) as exc:
                        log.warning("matrix: warning not sent (%s)", type(exc).__name__)

    async def _send(self, room_id: str, text: str) -> None:
        """One notice, encrypted for the trusted devices when the room is encrypted."""
        client = self._connection.client
        room = client.rooms.get(room_id)
        try:
            if room is not None and room.encrypted:
                self._trust.apply(room)
            await client.room_send(
                room_id, "m.room.message", {"msgtype": "m.notice", "body": text}
            )
        except (LocalProtocolError, EncryptionError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("matrix: notice not sent (%s)", type(exc).__name__)
