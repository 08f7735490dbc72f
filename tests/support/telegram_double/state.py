"""What the Telegram double knows: its users, the updates waiting for the
bot, every message in every chat, stored files, and the failures a test
asked for.  The Bot API methods (`updates`, `messages`, `profile`) read and
change it; the server (`server`) answers HTTP with them."""

from __future__ import annotations

import asyncio
import io
import itertools
import secrets
import time
from typing import Any

from aiohttp import web

from tests.support.telegram_double.protocol import (
    DEFAULT_TOKEN,
    DEFAULT_UPDATE_KINDS,
    Injection,
    RecordedRequest,
    StoredFile,
)
from tests.support.telegram_double.users import FakeUser


class DoubleState:
    """The double's state and the helpers that keep it consistent."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "confidant_test_bot",
        bot_name: str = "Confidant",
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self.unknown_methods: list[str] = []
        self.users: dict[int, FakeUser] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        """(scope type, language_code) -> commands set by setMyCommands."""
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.webhook_deliveries: list[tuple[int, int]] = []
        """(update_id, HTTP status or 0 for a connection failure) per webhook POST."""
        self.webhook_url = ""
        self.webhook_secret: str | None = None

        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 480_000_000 + secrets.randbelow(10_000_000)
        self._allowed = set(DEFAULT_UPDATE_KINDS)
        self._update_event = asyncio.Event()
        self._sent_event = asyncio.Event()
        self._poll_generation = 0
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._sent: dict[int, list[dict[str, Any]]] = {}
        self._msg_counter: dict[int, itertools.count[int]] = {}
        self._files: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._callback_ids = itertools.count(4_400_000_000_000_000_000 + secrets.randbelow(10**12))
        self._callbacks: dict[str, None] = {}
        self._injections: list[Injection] = []
        self._runner: web.AppRunner | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._closing = False

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._msg_counter.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def _store_file(self, data: bytes, folder: str, ext: str) -> StoredFile:
        n = next(self._file_counter)
        stored = StoredFile(
            file_id="BQACAgQAAxk" + secrets.token_urlsafe(24),
            file_unique_id="AgAD" + secrets.token_urlsafe(8),
            data=data,
            file_path=f"{folder}/file_{n}.{ext}",
        )
        self._files[stored.file_id] = stored
        return stored

    def _photo_sizes(self, data: bytes) -> list[dict[str, Any]]:
        """PhotoSize list: a small thumbnail and the full picture, as Telegram offers."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                thumb = img.convert("RGB")
                thumb.thumbnail((90, 90))
                buf = io.BytesIO()
                thumb.save(buf, format="JPEG")
                thumb_size = thumb.size
        except Exception as exc:  # a test handing non-images to send_photo is a test bug
            raise AssertionError("send_photo needs real image bytes") from exc
        small = self._store_file(buf.getvalue(), "photos", "jpg")
        full = self._store_file(data, "photos", "jpg")
        return [
            {
                "file_id": small.file_id,
                "file_unique_id": small.file_unique_id,
                "width": thumb_size[0],
                "height": thumb_size[1],
                "file_size": len(small.data),
            },
            {
                "file_id": full.file_id,
                "file_unique_id": full.file_unique_id,
                "width": width,
                "height": height,
                "file_size": len(data),
            },
        ]

    def _user_message(
        self,
        user: FakeUser,
        content: dict[str, Any],
        *,
        reply_to: dict[str, Any] | None = None,
        forward_origin: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        user.started = True
        message: dict[str, Any] = {
            "message_id": self._next_message_id(user.id),
            "from": user.as_dict(),
            "chat": user.chat_dict(),
            "date": int(time.time()),
        }
        if forward_origin is not None:
            message["forward_origin"] = forward_origin
        if reply_to is not None:
            message["reply_to_message"] = reply_to.get("message", reply_to)
        message.update(content)
        self._messages[(user.id, message["message_id"])] = message
        self._push_update("message", message, user)
        return message

    def _push_update(self, kind: str, obj: dict[str, Any], user: FakeUser) -> None:
        if user.deactivated:
            raise AssertionError("a deactivated user cannot send anything")
        if kind not in self._allowed:
            return  # Telegram does not even create updates the bot did not ask for
        update = {"update_id": self._next_update_id, kind: obj}
        self._next_update_id += 1
        self._updates.append(update)
        self._wake_pollers()

    def push_raw(self, kind: str, obj: Any) -> dict[str, Any]:
        """Queue an update of any kind with any content, as a misbehaving or
        future Telegram might send it (fuzzing): no user, no checks, not even
        ``allowed_updates``.  A ``callback_query`` carrying an ``id`` can be
        answered like a real one.  Returns the update."""
        update = {"update_id": self._next_update_id, kind: obj}
        self._next_update_id += 1
        self._updates.append(update)
        if kind == "callback_query" and isinstance(obj, dict):
            self._callbacks[str(obj.get("id"))] = None
        self._wake_pollers()
        return update

    def _wake_pollers(self) -> None:
        self._update_event.set()
        self._update_event = asyncio.Event()

    def _confirm(self, offset: int | None) -> None:
        if offset is None or offset == 0:
            return
        if offset < 0:
            self._updates = self._updates[offset:]
        else:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

    def _record_sent(self, chat_id: int, record: dict[str, Any]) -> None:
        self._sent.setdefault(chat_id, []).append(record)
        self._sent_event.set()
        self._sent_event = asyncio.Event()


    def _bot_dict(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
        }
