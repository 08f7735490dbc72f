"""The rooms the bot keeps on Matrix: one encrypted room per case for its
confidants, a personal encrypted DM per confidant, and the DMs employees open
by inviting the bot.

Which case a room belongs to (and back) is kept in the channel's state; a
confidant's DM is stored under a keyed hash of their id, so the database
names no one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from nio import (
    ErrorResponse,
    InviteMemberEvent,
    JoinError,
    MatrixRoom,
    RoomCreateError,
    RoomPreset,
    RoomPutStateError,
    SyncResponse,
)

from bot.channels.base import ChannelState
from bot.channels.matrix.connection import Connection
from bot.channels.matrix.notices import RoomNotices
from domain.messages import Outbound, OutboundKind, RetryLater
from domain.vocabulary import Control

log = logging.getLogger(__name__)

MEGOLM = "m.megolm.v1.aes-sha2"
ENCRYPTION_STATE = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}


async def create_encrypted_room(connection: Connection, user: str, what: str,
                                preset: RoomPreset, *, name: str | None = None,
                                is_direct: bool = False) -> str:
    """A new end-to-end encrypted room with only ``user`` invited; a refusal
    of the homeserver is retried later (``what`` names the room in the reason)."""
    resp = await connection.client.room_create(
        name=name, is_direct=is_direct, preset=preset, invite=[user],
        initial_state=[ENCRYPTION_STATE])
    if isinstance(resp, RoomCreateError):
        raise RetryLater(f"{what} creation failed: {resp.status_code}")
    return str(resp.room_id)


def addressed_user(out: Outbound) -> str | None:
    """The Matrix user a message is addressed to, when it names a user, not a room."""
    address = out.to.address
    return address if address.startswith("@") else None


class CaseRooms:
    """The case ↔ room map: which case a room serves, and each case's room."""

    def __init__(self, connection: Connection, state: ChannelState) -> None:
        self._connection = connection
        self._state = state
        self._room_case: dict[str, str | None] = {}

    async def case_for_room(self, room_id: str) -> str | None:
        """The case code a per-case room belongs to (None for employee DMs)."""
        if room_id not in self._room_case:
            raw = await self._state.get(f"room:{room_id}")
            self._room_case[room_id] = raw.decode() if raw else None
        return self._room_case[room_id]

    async def room_for_case(self, case: str) -> str | None:
        """The case's room, if it has one the bot is still in."""
        raw = await self._state.get(f"case:{case}")
        room_id = raw.decode() if raw else None
        if room_id is not None and room_id not in self._connection.client.rooms:
            return None  # the bot is no longer in it: as good as gone
        return room_id

    async def create(self, case: str, user: str) -> str:
        """A new encrypted room for the case, named with its code, only the confidant invited."""
        room_id = await create_encrypted_room(self._connection, user, "room",
                                              RoomPreset.private_chat, name=case)
        await self._state.set(f"case:{case}", room_id.encode())
        await self._state.set(f"room:{room_id}", case.encode())
        self._room_case[room_id] = case
        log.info("matrix: case room created for %s", case)
        return room_id

    async def forget(self, case: str) -> None:
        """Leave a closed or erased case's room and drop the mapping: nothing reopens it."""
        client = self._connection.client
        raw = await self._state.get(f"case:{case}")
        if raw is None:
            return
        room_id = raw.decode()
        if room_id in client.rooms:
            leave = await client.room_leave(room_id)
            if isinstance(leave, ErrorResponse):
                raise RetryLater(f"leave failed: {leave.status_code}")
        await self._state.delete(f"case:{case}")
        await self._state.delete(f"room:{room_id}")
        self._room_case.pop(room_id, None)


class DmRooms:
    """Each confidant's personal encrypted DM with the bot."""

    def __init__(
        self, connection: Connection, state: ChannelState, cases: CaseRooms, pickle_key: str
    ) -> None:
        self._connection = connection
        self._state = state
        self._cases = cases
        self._secret = hashlib.sha256(b"matrix-dm\0" + pickle_key.encode()).digest()

    def _key(self, user: str) -> str:
        """State key of a confidant's DM room: a keyed hash, so the database names no one."""
        digest = hashlib.blake2b(user.encode(), key=self._secret, digest_size=16).hexdigest()
        return "dm:" + digest

    async def room_for(self, user: str) -> str:
        """The stored DM, else a room the confidant invited the bot to, else a new
        one (created on first need)."""
        client = self._connection.client
        key = self._key(user)
        raw = await self._state.get(key)
        if raw is not None:
            room_id = raw.decode()
            room = client.rooms.get(room_id)
            if room is not None and user in room.users:
                return room_id
            if room is not None:  # the confidant left: ask them back in
                resp = await client.room_invite(room_id, user)
                if not isinstance(resp, ErrorResponse):
                    return room_id
            await self._state.delete(key)
        for room in list(client.rooms.values()):
            if (
                set(room.users) == {self._connection.user_id, user}
                and await self._cases.case_for_room(room.room_id) is None
            ):
                await self._state.set(key, room.room_id.encode())
                log.info("matrix: confidant DM room adopted")
                return str(room.room_id)
        room_id = await create_encrypted_room(self._connection, user, "DM",
                                              RoomPreset.trusted_private_chat, is_direct=True)
        await self._state.set(key, room_id.encode())
        log.info("matrix: confidant DM room created")
        return room_id


class ConfidantRooms:
    """Chooses the room a message for a confidant goes to."""

    def __init__(self, connection: Connection, cases: CaseRooms, dms: DmRooms) -> None:
        self._connection = connection
        self._cases = cases
        self._dms = dms

    async def target(self, out: Outbound) -> tuple[str, str | None]:
        """Where a message for a confidant goes, and the case's room if it has one.

        The case room when the message belongs to a case whose room the
        confidant is in (``case-open`` and relayed words create the room or
        invite them);
        otherwise the confidant's personal DM with the bot, so notifications,
        ``/cases`` answers and news about cases without a room are never
        dropped.  A reply addressed to a room (the confidant wrote from it)
        goes back there.
        """
        client = self._connection.client
        user = addressed_user(out)
        case_room: str | None = None
        if out.case:
            case_room = await self._cases.room_for_case(str(out.case))
            # Words of the employee belong in the case room, so they open it too.
            opens = out.control == Control.CASE_OPEN or out.kind in (
                OutboundKind.RELAY,
                OutboundKind.URGENT,
            )
            if opens and user is not None:
                if case_room is None:
                    created = await self._cases.create(str(out.case), user)
                    return created, created
                if user not in client.rooms[case_room].users:
                    resp = await client.room_invite(case_room, user)
                    if isinstance(resp, ErrorResponse):
                        log.warning("matrix: invite failed (%s)", resp.status_code)
                return case_room, case_room
            if case_room is not None and (user is None or user in client.rooms[case_room].users):
                return case_room, case_room
        if user is None:
            return out.to.address, case_room
        return await self._dms.room_for(user), case_room


async def wait_room(connection: Connection, room_id: str, member: str | None) -> MatrixRoom:
    """Wait until the sync loop has seen the room encrypted (and ``member`` in it),
    so the Megolm session is shared with everyone who must read the message."""
    client = connection.client
    for _ in range(200):
        room = client.rooms.get(room_id)
        if room is not None and room.encrypted and (member is None or member in room.users):
            return room
        await asyncio.sleep(0.05)
    raise RetryLater("room state not synced yet")


class RoomUpkeep:
    """What the sync loop does for rooms: join employees' DMs on invite and
    make sure each room the bot is in is end-to-end encrypted."""

    def __init__(self, connection: Connection, notices: RoomNotices) -> None:
        self._connection = connection
        self._notices = notices
        self._encryption_asked: set[str] = set()

    async def accept_invite(self, room_id: str, resp: SyncResponse) -> None:
        """Employees start a DM by inviting the bot: join it."""
        client = self._connection.client
        info = resp.rooms.invite[room_id]
        own = [
            e
            for e in info.invite_state
            if isinstance(e, InviteMemberEvent)
            and e.state_key == self._connection.user_id
            and e.membership == "invite"
        ]
        if not own:
            return
        result = await client.join(room_id)
        if isinstance(result, JoinError):
            log.warning("matrix: could not join an invited room (%s)", result.status_code)
        else:
            log.info("matrix: joined a room on invite")

    async def ensure_encrypted(self, room: MatrixRoom) -> None:
        """Turn encryption on in a DM that lacks it; if we may not, ask the user to."""
        if room.encrypted or room.room_id in self._encryption_asked:
            return
        self._encryption_asked.add(room.room_id)
        client = self._connection.client
        resp = await client.room_put_state(room.room_id, "m.room.encryption", {"algorithm": MEGOLM})
        if isinstance(resp, RoomPutStateError):
            log.info("matrix: may not enable encryption in a room; asking the user")
            await self._notices.ask_for_encryption(room.room_id)
        else:
            log.info("matrix: enabled encryption in a room")
