"""End-to-end helpers for the Matrix channel: the real bot configured for the
session's Synapse (a fresh bot account per test), Matrix confidants
registered in its database, and real matrix-nio clients playing employees and
confidants that accept invites and record what they read.

Builds on `tests.support.app_runner` (config, key file, migrated database,
in-process `App` or a killable ``python -m bot run`` process).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    LoginResponse,
    MatrixRoom,
    RoomCreateResponse,
    RoomMessage,
    RoomMessageNotice,
    RoomMessageText,
    RoomPreset,
    RoomSendResponse,
)

from bot.channels.base import ChannelState
from bot.channels.matrix import UNREADABLE
from domain.messages import Inbound
from tests.support.app_runner import BotSetup, make_setup
from tests.support.synapse import SynapseServer

PASSWORD_ENV = "CONFIDANT_MATRIX_PASSWORD"
ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}
CASE_CODE = re.compile(r"\b[A-Z0-9]{3}-[A-Z0-9]{3}\b")


class Recorder:
    """The core's stand-in for channel tests: records every Inbound handed over."""

    def __init__(self) -> None:
        self.inbound: list[Inbound] = []

    async def __call__(self, ev: Inbound) -> None:
        self.inbound.append(ev)

    def texts(self) -> list[str | None]:
        """What people wrote (not the channel's reports of what it could not pass on)."""
        return [i.text for i in self.inbound if i.unsupported is None]

    def unreadable(self) -> list[Inbound]:
        """The "could not read it, ask them again" events handed over."""
        return [i for i in self.inbound if i.unsupported == UNREADABLE]


async def state_changes(state: ChannelState, key: str, old: bytes | None) -> bytes:
    """Wait until a channel saved a new value under ``key`` (e.g. its sync position)."""
    for _ in range(300):
        value = await state.get(key)
        if value is not None and value != old:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"state {key!r} never changed")


async def eventually(pred: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll until ``pred()`` is truthy; fail loudly (naming ``what``) otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = pred()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.05)


async def matrix_setup(
    folder: Path,
    synapse: SynapseServer,
    *,
    trust: str = "tofu",
    languages: Sequence[str] = ("nl", "fr", "en"),
    default_language: str = "nl",
    telegram_base_url: str | None = None,
    telegram_token: str | None = None,
) -> tuple[BotSetup, str]:
    """A bot setup with the Matrix channel on ``synapse`` and a fresh bot account.

    Returns the setup and the bot's Matrix user id.  The password reaches the
    bot as ``env:`` (as the README recommends).
    """
    name = "confidant-" + secrets.token_hex(3)
    password = "pw-" + secrets.token_hex(8)
    user_id, _, _ = await synapse.register(name, password)
    setup = await make_setup(
        folder,
        languages=languages,
        default_language=default_language,
        telegram_base_url=telegram_base_url,
        telegram_token=telegram_token,
        extra={
            "matrix": {
                "enabled": True,
                "homeserver": synapse.url,
                "user_id": user_id,
                "password": f"env:{PASSWORD_ENV}",
                "device_name": "Confidant test",
                "store_dir": str(folder / "data" / "matrix-store"),
                "trust": trust,
            }
        },
    )
    setup.env[PASSWORD_ENV] = password
    return setup, user_id


async def add_matrix_confidant(
    setup: BotSetup, name: str, mxid: str, *, languages: Sequence[str] = ("en",)
) -> str:
    """Register a confidant reachable on Matrix, on duty around the clock."""
    async with setup.store() as store, store.tx() as tx:
        c = await tx.confidants.add(
            name, bio="", languages=list(languages), attested_by="test", now=datetime.now(UTC)
        )
        await tx.confidants.set_address(c, "matrix", mxid)
        for day in range(7):
            await tx.rota.add_shift(c, day, dtime(0, 0), dtime(23, 59), "duty")
        return str(c.id)


class MatrixPeer:
    """A real nio client (employee or confidant) that syncs in the background,
    joins every room it is invited to, and records every message it reads."""

    def __init__(self, client: AsyncClient, display_name: str) -> None:
        self.client = client
        self.display_name = display_name
        self.messages: list[tuple[str, RoomMessage]] = []
        self.invites: list[str] = []
        self._task: asyncio.Task[Any] | None = None

    @classmethod
    async def create(
        cls, synapse: SynapseServer, folder: Path, prefix: str, display_name: str | None = None
    ) -> MatrixPeer:
        """Register an account, log in with encryption, set a display name, start syncing."""
        name = f"{prefix}-{secrets.token_hex(3)}"
        await synapse.register(name, "pw-" + name)
        store = folder / name
        store.mkdir(parents=True)
        client = AsyncClient(
            synapse.url,
            f"@{name}:localhost",
            store_path=str(store),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
        )
        resp = await client.login("pw-" + name, device_name=prefix)
        assert isinstance(resp, LoginResponse), resp
        shown = display_name or f"{prefix.title()} {secrets.token_hex(2)}"
        await client.set_displayname(shown)
        peer = cls(client, shown)
        client.add_event_callback(peer._on_message, RoomMessage)
        client.add_event_callback(peer._on_invite, InviteMemberEvent)
        peer._task = asyncio.create_task(peer._sync())
        return peer

    async def _sync(self) -> None:
        """Keep syncing through homeserver restarts (nio's loop gives up on errors)."""
        while True:
            try:
                await self.client.sync_forever(timeout=1000, full_state=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.2)

    async def _on_message(self, room: MatrixRoom, event: RoomMessage) -> None:
        if event.sender != self.client.user_id:
            self.messages.append((room.room_id, event))

    async def _on_invite(self, room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key == self.client.user_id and event.membership == "invite":
            if room.room_id not in self.invites:
                self.invites.append(room.room_id)
                await self.client.join(room.room_id)

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    def texts(self, room_id: str | None = None) -> list[str]:
        """Bodies of decrypted text and notice messages (of one room, or all)."""
        return [
            e.body
            for r, e in self.messages
            if (room_id is None or r == room_id)
            and isinstance(e, RoomMessageText | RoomMessageNotice)
        ]

    def sources(self) -> list[dict[str, Any]]:
        """The raw decrypted events this peer read (to search for leaked identity)."""
        return [e.source for _, e in self.messages]

    async def wait_text(
        self, pred: Callable[[str], bool], room_id: str | None = None, what: str = ""
    ) -> str:
        """The first message (in ``room_id``) whose body matches ``pred``."""

        def found() -> str | None:
            return next((t for t in self.texts(room_id) if pred(t)), None)

        result: str = await eventually(found, what=what or "a matching message")
        return result

    async def wait_room_with(self, pred: Callable[[str], bool], what: str = "") -> str:
        """The room in which a message matching ``pred`` arrived."""

        def found() -> str | None:
            return next(
                (
                    r
                    for r, e in self.messages
                    if isinstance(e, RoomMessageText | RoomMessageNotice) and pred(e.body)
                ),
                None,
            )

        result: str = await eventually(found, what=what or "a room with a matching message")
        return result

    async def dm(self, bot_id: str, *, encrypted: bool = True, timeout: float = 20.0) -> str:
        """Open a direct chat with the bot, as Element does."""
        resp = await self.client.room_create(
            is_direct=True,
            preset=RoomPreset.trusted_private_chat,
            invite=[bot_id],
            initial_state=[ENCRYPTION] if encrypted else [],
        )
        assert isinstance(resp, RoomCreateResponse), resp
        room_id = str(resp.room_id)

        def bot_joined() -> bool:
            room = self.client.rooms.get(room_id)
            return room is not None and bot_id in room.users and bot_id not in room.invited_users

        await eventually(bot_joined, timeout, what="the bot joined the DM")
        return room_id

    async def say(self, room_id: str, text: str) -> str:
        """Send a text (encrypted if the room is)."""
        for _ in range(100):
            try:
                resp = await self.client.room_send(
                    room_id,
                    "m.room.message",
                    {"msgtype": "m.text", "body": text},
                    ignore_unverified_devices=True,
                )
            except Exception:  # the homeserver may be restarting
                await asyncio.sleep(0.1)
                continue
            if isinstance(resp, RoomSendResponse):
                return str(resp.event_id)
            await asyncio.sleep(0.1)
        raise AssertionError("could not send")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()


def numbered_choice(text: str, label_part: str) -> str:
    """The number in front of the menu line containing ``label_part``."""
    for line in text.splitlines():
        m = re.match(r"^(\d+)\. (.*)$", line)
        if m and label_part in m.group(2):
            return m.group(1)
    raise AssertionError(f"no menu line with {label_part!r} in {text!r}")
