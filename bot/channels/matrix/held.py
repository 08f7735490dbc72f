"""Encrypted events whose room key has not arrived yet.

Keys often come a sync or two after their messages, or answer the key request
the bot sends to the sender's device; until then the event waits here (as
the ciphertext the homeserver sent, never plaintext).  When its key comes it
is decrypted and handed over; when it does not come in time the sender is
asked, through the core, to send it again.  What waits is saved with the sync
position, so a crash does not lose it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from nio import ErrorResponse, Event, MatrixRoom, MegolmEvent
from nio.exceptions import EncryptionError, LocalProtocolError

from bot.channels.matrix.connection import Connection

log = logging.getLogger(__name__)

_UNDECRYPTABLE_WAIT = 120.0
"""Seconds an encrypted event whose room key has not arrived is kept waiting
for it (keys often come a sync or two later, or answer our key request)
before the sender is asked to send it again."""

_HELD_MAX = 500
"""At most this many events wait for their key; beyond, the oldest gives up
early (a bound on what a misbehaving client can make the bot store)."""


@dataclass
class Held:
    """An encrypted event whose room key has not arrived yet.  Only the event
    as the homeserver sent it (ciphertext) is kept, never plaintext."""

    room_id: str
    source: dict[str, Any]
    since: float
    """Wall-clock time it was first seen (survives a restart)."""


GiveUp = Callable[[str, Held], Awaitable[None]]
"""Called with the event id of a waiting event that will never be read."""


class HeldEvents:
    """The events waiting for their key, oldest first."""

    def __init__(self, connection: Connection, give_up: GiveUp) -> None:
        self._connection = connection
        self._give_up = give_up
        self._held: dict[str, Held] = {}
        self._key_requested: set[str] = set()

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._held

    def discard(self, event_id: str) -> None:
        """Forget an event that could be read after all (its key came with the sync)."""
        self._held.pop(event_id, None)

    async def hold(self, room: MatrixRoom, event: MegolmEvent) -> None:
        """Keep an event whose room key is missing and ask the sender's device
        for the key; `released` gives it back when the key arrives.

        Newer events of the room that do decrypt are not held back behind it:
        a missing key almost always concerns a whole Megolm session, so the
        messages after it wait too and are released together, in the order
        they came."""
        client = self._connection.client
        source = dict(event.source)
        source.setdefault("room_id", room.room_id)
        self._held[event.event_id] = Held(room.room_id, source, time.time())
        log.info("matrix: event waits for its key")
        while len(self._held) > _HELD_MAX:
            await self._drop(next(iter(self._held)))
        session = event.session_id
        if session in self._key_requested or not event.device_id:
            return
        self._key_requested.add(session)
        try:
            request = event.as_key_request(event.sender, client.device_id or "", session,
                                           event.device_id)
            resp = await client.to_device(request)
        except (aiohttp.ClientError, TimeoutError, OSError, LocalProtocolError) as exc:
            log.warning("matrix: key request not sent (%s)", type(exc).__name__)
            return
        if isinstance(resp, ErrorResponse):
            log.warning("matrix: key request refused (%s)", resp.status_code)

    def released(self) -> Iterator[tuple[MatrixRoom, Event]]:
        """The waiting events whose key has arrived, decrypted, in the order they came."""
        client = self._connection.client
        if not self._held or client.olm is None:
            return
        for event_id, held in list(self._held.items()):
            room = client.rooms.get(held.room_id)
            if room is None:
                del self._held[event_id]
                continue
            event = MegolmEvent.from_dict(held.source)
            if not isinstance(event, MegolmEvent):
                del self._held[event_id]
                continue
            event.room_id = held.room_id
            if client.olm.inbound_group_store.get(
                held.room_id, event.sender_key, event.session_id
            ) is None:
                continue
            try:
                decrypted = client.olm.decrypt_megolm_event(event, held.room_id)
            except EncryptionError:
                continue  # e.g. a key that starts later than this message: keep waiting
            del self._held[event_id]
            log.info("matrix: event decrypted after its key arrived")
            yield room, decrypted

    async def expire(self) -> None:
        """Events whose key did not come in time: give them up."""
        cutoff = time.time() - _UNDECRYPTABLE_WAIT
        for event_id, held in list(self._held.items()):
            if held.since <= cutoff:
                await self._drop(event_id)

    def seconds_left(self) -> float | None:
        """Until the oldest waiting event is given up (None when nothing waits)."""
        if not self._held:
            return None
        oldest = min(h.since for h in self._held.values())
        return oldest + _UNDECRYPTABLE_WAIT - time.time()

    def snapshot(self) -> bytes:
        """What waits, as saved with the sync position."""
        held = [
            {"event_id": e, "room_id": h.room_id, "source": h.source, "since": h.since}
            for e, h in self._held.items()
        ]
        return json.dumps(held, sort_keys=True).encode()

    def load(self, raw: bytes) -> None:
        """Take back what a former run saved; raises on damaged data."""
        for h in json.loads(raw):
            self._held[str(h["event_id"])] = Held(
                str(h["room_id"]), dict(h["source"]), float(h["since"])
            )

    async def _drop(self, event_id: str) -> None:
        """Stop waiting for an event's key and hand it to `give_up`."""
        held = self._held.pop(event_id)
        log.info("matrix: undecryptable event given up")
        await self._give_up(event_id, held)
