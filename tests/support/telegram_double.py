"""A Telegram Bot API double on 127.0.0.1 for the test suite.

It speaks the real Bot API JSON at ``/bot<token>/<method>`` (GET or POST,
JSON, form and multipart bodies) and serves downloads at
``/file/bot<token>/<path>``, so python-telegram-bot talks to it exactly as it
talks to Telegram.  Tests play users through `FakeUser`, read what the bot
sent with `TelegramDouble.sent_to` / `TelegramDouble.wait_for`, and inject
failures per method with `TelegramDouble.inject`.  Anything the double does
not know (an unknown method, a button that does not exist) fails loudly.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

DEFAULT_TOKEN = "7012345678:AAH-double-token_0123456789abcdefghij"
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_DOWNLOAD = 20 * 1024 * 1024
MAX_CALLBACK_DATA = 64

ALL_UPDATE_KINDS = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "message_reaction",
    "message_reaction_count",
)
# Telegram's default when allowed_updates was never given (or given empty).
DEFAULT_UPDATE_KINDS = frozenset(ALL_UPDATE_KINDS) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}

_INT_PARAMS = {
    "chat_id",
    "offset",
    "limit",
    "timeout",
    "message_id",
    "reply_to_message_id",
    "user_id",
    "duration",
    "cache_time",
    "max_connections",
    "message_thread_id",
}
_OBJECT_PARAMS = {
    "reply_markup",
    "reply_parameters",
    "allowed_updates",
    "commands",
    "scope",
    "entities",
    "caption_entities",
    "link_preview_options",
    "menu_button",
    "media",
}
_BOOL_PARAMS = {
    "disable_notification",
    "protect_content",
    "drop_pending_updates",
    "show_alert",
    "disable_web_page_preview",
    "allow_sending_without_reply",
    "has_spoiler",
}


def free_port() -> int:
    """Ask the kernel for a loopback port nobody uses right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def utf16_len(text: str) -> int:
    """Telegram measures lengths in UTF-16 code units, not code points."""
    return len(text.encode("utf-16-le")) // 2


class ApiError(Exception):
    """An error answer of the Bot API: status, description, parameters."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class RecordedRequest:
    """One HTTP request the bot made to the double."""

    method: str
    params: dict[str, Any]
    time: float
    http_method: str
    files: dict[str, int] = field(default_factory=dict)
    """Multipart file parts: part name -> size in bytes."""
    status: int = 200


@dataclass
class Injection:
    """A failure to produce for the next ``count`` calls of ``method``."""

    method: str
    status: int | None
    retry_after: int | None
    count: int
    description: str | None
    drop: bool
    delay: float


@dataclass
class StoredFile:
    """A file known to the double (sent by a user or uploaded by the bot)."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str


_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class FakeUser:
    """A Telegram user in a private chat with the bot, driven by a test."""

    def __init__(
        self,
        double: TelegramDouble,
        user_id: int,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
        started: bool,
    ) -> None:
        self.double = double
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.started = started
        self.blocked = False
        self.deactivated = False

    def as_dict(self) -> dict[str, Any]:
        """The ``User`` object as the Bot API shows it."""
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def chat_dict(self) -> dict[str, Any]:
        """The private ``Chat`` object between this user and the bot."""
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat

    @property
    def chat_id(self) -> int:
        """In a private chat the chat id equals the user id."""
        return self.id

    async def send_text(self, text: str, *, reply_to: dict[str, Any] | None = None) -> dict:
        """Type a plain message (commands get their ``bot_command`` entity)."""
        content: dict[str, Any] = {"text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        return self.double._user_message(self, content, reply_to=reply_to)

    async def send_command(self, command: str, args: str = "", *, mention: bool = False) -> dict:
        """Send ``/command [args]``; ``mention`` appends ``@botusername`` as in groups."""
        cmd = command if command.startswith("/") else "/" + command
        if mention:
            cmd += "@" + self.double.bot_username
        return await self.send_text(f"{cmd} {args}".strip() if args else cmd)

    async def reply_to(self, message: dict[str, Any], text: str) -> dict:
        """Answer a given message (a `sent_to` record or an API message object)."""
        return await self.send_text(text, reply_to=message)

    async def send_photo(self, data: bytes, caption: str | None = None) -> dict:
        """Send a photo; the double offers a thumbnail and the full size, like Telegram."""
        content: dict[str, Any] = {"photo": self.double._photo_sizes(data)}
        if caption:
            content["caption"] = caption
        return self.double._user_message(self, content)

    async def send_document(
        self,
        data: bytes,
        file_name: str = "file.bin",
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
    ) -> dict:
        """Send a file as a document."""
        stored = self.double._store_file(data, "documents", file_name.rsplit(".", 1)[-1])
        content: dict[str, Any] = {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": len(data),
            }
        }
        if caption:
            content["caption"] = caption
        return self.double._user_message(self, content)

    async def send_voice(self, data: bytes, duration: int = 2) -> dict:
        """Send a voice note (OGG/Opus in real life; any bytes here)."""
        stored = self.double._store_file(data, "voice", "oga")
        content = {
            "voice": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "duration": duration,
                "mime_type": "audio/ogg",
                "file_size": len(data),
            }
        }
        return self.double._user_message(self, content)

    async def send_contact(
        self, phone_number: str = "+32470123456", first_name: str | None = None
    ) -> dict:
        """Share a contact card (by default the user's own)."""
        content = {
            "contact": {
                "phone_number": phone_number,
                "first_name": first_name or self.first_name,
                "user_id": self.id,
            }
        }
        return self.double._user_message(self, content)

    async def send_location(self, latitude: float = 50.8466, longitude: float = 4.3528) -> dict:
        """Share a location pin."""
        content = {"location": {"latitude": latitude, "longitude": longitude}}
        return self.double._user_message(self, content)

    async def send_venue(self, title: str = "Office", address: str = "Wetstraat 1") -> dict:
        """Share a venue (which also carries a location, as in Telegram)."""
        location = {"latitude": 50.8466, "longitude": 4.3528}
        content = {
            "location": location,
            "venue": {"location": location, "title": title, "address": address},
        }
        return self.double._user_message(self, content)

    async def send_sticker(self, emoji: str = "🙂") -> dict:
        """Send a sticker."""
        stored = self.double._store_file(b"RIFF-sticker-webp", "stickers", "webp")
        content = {
            "sticker": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": emoji,
            }
        }
        return self.double._user_message(self, content)

    async def send_poll(
        self, question: str = "Lunch?", options: tuple[str, ...] = ("a", "b")
    ) -> dict:
        """Send a poll."""
        content = {
            "poll": {
                "id": secrets.token_hex(8),
                "question": question,
                "options": [
                    {"text": o, "voter_count": 0, "persistent_id": str(n)}
                    for n, o in enumerate(options)
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        }
        return self.double._user_message(self, content)

    async def send_dice(self, value: int = 3) -> dict:
        """Throw a dice."""
        return self.double._user_message(self, {"dice": {"emoji": "🎲", "value": value}})

    async def send_raw(self, content: dict[str, Any]) -> dict:
        """Send a message with arbitrary content fields (for kinds without a helper)."""
        return self.double._user_message(self, dict(content))

    async def forward_text(self, text: str, origin: FakeUser | None = None) -> dict:
        """Forward someone's text: the message carries a ``forward_origin`` header."""
        if origin is not None:
            fwd: dict[str, Any] = {
                "type": "user",
                "date": int(time.time()) - 3600,
                "sender_user": origin.as_dict(),
            }
        else:
            fwd = {"type": "hidden_user", "date": int(time.time()) - 3600,
                   "sender_user_name": "Hidden Person"}
        return self.double._user_message(self, {"text": text}, forward_origin=fwd)

    async def press(
        self, button: str, message: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Press the inline button whose text or callback_data is ``button``.

        Searches ``message`` (a `sent_to` record) or else the bot's latest
        message in this chat that has an inline keyboard; fails the test if no
        such button exists, as a real user could not press it either.
        """
        records = [message] if message is not None else [
            r for r in reversed(self.double.sent_to(self.id)) if r.get("reply_markup")
        ][:1]
        if not records:
            raise AssertionError("no bot message with an inline keyboard in this chat")
        record = records[0]
        markup = record.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for btn in row:
                if button in (btn.get("text"), btn.get("callback_data")):
                    data = btn.get("callback_data")
                    if data is None:
                        raise AssertionError(f"button {button!r} has no callback_data")
                    return await self.press_data(data, record)
        labels = [b.get("text") for row in markup.get("inline_keyboard", []) for b in row]
        raise AssertionError(f"no button {button!r} on the message; buttons: {labels}")

    async def press_data(self, data: str, message: dict[str, Any] | None = None) -> dict:
        """Send a callback query with arbitrary ``data`` (a forged press, if you like)."""
        record = message
        if record is None:
            sent = self.double.sent_to(self.id)
            if not sent:
                raise AssertionError("the bot never wrote in this chat")
            record = sent[-1]
        api_message = record.get("message", record)
        query = {
            "id": str(next(self.double._callback_ids)),
            "from": self.as_dict(),
            "message": api_message,
            "chat_instance": str(-abs(hash((self.id, self.double.bot_id))) % 10**18),
            "data": data,
        }
        self.double._callbacks[query["id"]] = None
        self.double._push_update("callback_query", query, self)
        return query

    def block_bot(self) -> None:
        """Block the bot: further sends to this chat answer 403."""
        self.blocked = True

    def unblock_bot(self) -> None:
        """Unblock the bot again."""
        self.blocked = False

    def deactivate(self) -> None:
        """Delete the account: further sends to this chat answer 403."""
        self.deactivated = True


def _command_entities(text: str) -> list[dict[str, Any]]:
    """A ``bot_command`` entity when the text starts with a command, as Telegram adds."""
    if not text.startswith("/") or len(text) < 2:
        return []
    word = text.split(maxsplit=1)[0]
    return [{"offset": 0, "length": utf16_len(word), "type": "bot_command"}]


class TelegramDouble:
    """The fake Bot API server; create, `start`, point the bot at `base_url`."""

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
        self._methods: dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]] = {
            name.lower(): getattr(self, "_api_" + name)
            for name in (
                "getMe",
                "getUpdates",
                "setWebhook",
                "deleteWebhook",
                "getWebhookInfo",
                "sendMessage",
                "sendPhoto",
                "sendDocument",
                "sendVoice",
                "sendChatAction",
                "getFile",
                "answerCallbackQuery",
                "editMessageText",
                "editMessageReplyMarkup",
                "deleteMessage",
                "setMyCommands",
                "getMyCommands",
                "deleteMyCommands",
                "setChatMenuButton",
                "getChatMenuButton",
            )
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Root URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What python-telegram-bot takes as ``base_url``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """What python-telegram-bot takes as ``base_file_url``."""
        return f"{self.url}/file/bot"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()

    async def stop(self) -> None:
        """Wake every long poll, stop pushing webhooks and close the server."""
        self._closing = True
        self._wake_pollers()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            try:
                await self._webhook_task
            except (asyncio.CancelledError, Exception):  # shutting down: errors no longer matter
                pass
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ test API

    def user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        *,
        started: bool = False,
    ) -> FakeUser:
        """A user who can chat with the bot.  Until the user has written once
        (or ``started=True``), the bot cannot message them, as on Telegram."""
        if user_id in self.users:
            return self.users[user_id]
        user = FakeUser(self, user_id, first_name, last_name, username, language_code, started)
        self.users[user_id] = user
        return user

    def inject(
        self,
        method: str,
        status: int | None = None,
        retry_after: int | None = None,
        count: int = 1,
        *,
        description: str | None = None,
        drop: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``count`` calls of ``method`` fail.

        ``status`` answers with that error (429 adds ``retry_after``, default
        1); ``drop`` closes the connection without an answer; ``delay`` waits
        that long before answering (normally, or with ``status``/``drop``).
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        self._injections.append(
            Injection(method.lower(), status, retry_after, count, description, drop, delay)
        )

    def sent_to(self, chat_id: int | str) -> list[dict[str, Any]]:
        """Every message the bot sent to a chat, in order.

        Each record has ``method``, ``message_id``, ``text`` (text or caption),
        ``caption``, ``parse_mode``, ``reply_markup``, ``media`` (uploaded
        bytes), ``media_kind``, ``filename``, ``mime_type``,
        ``reply_to_message_id``, ``edited``, ``deleted`` and ``message`` (the
        API object as returned to the bot).
        """
        return list(self._sent.get(int(chat_id), []))

    async def wait_for(
        self,
        chat_id: int | str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5.0,
        *,
        start: int = 0,
    ) -> dict[str, Any]:
        """Wait until the bot sent a message to ``chat_id`` (from index ``start``)
        that matches ``predicate``; fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            event = self._sent_event
            for record in self.sent_to(chat_id)[start:]:
                if predicate is None or predicate(record):
                    return record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                texts = [str(r.get("text"))[:80] for r in self.sent_to(chat_id)]
                raise AssertionError(
                    f"no matching bot message within {timeout}s; the chat has: {texts}"
                )
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        timeout: float = 5.0,
        *,
        start: int = 0,
    ) -> RecordedRequest:
        """Wait until the bot called ``method`` (from request index ``start``)."""
        deadline = time.monotonic() + timeout
        while True:
            for req in self.requests[start:]:
                if req.method.lower() == method.lower() and (predicate is None or predicate(req)):
                    return req
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not call {method} within {timeout}s")
            await asyncio.sleep(0.01)

    def calls(self, method: str) -> list[RecordedRequest]:
        """Every recorded request of one method."""
        return [r for r in self.requests if r.method.lower() == method.lower()]

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates created and not yet confirmed by the bot."""
        return list(self._updates)

    def file_bytes(self, file_id: str) -> bytes:
        """The content behind a file id."""
        return self._files[file_id].data

    # ------------------------------------------------------------------ internals: state

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

    # ------------------------------------------------------------------ internals: HTTP

    async def _parse(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read params from query, JSON, form or multipart, coercing as Telegram does."""
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, tuple[bytes, str | None, str | None]] = {}
        ctype = request.content_type
        is_json = False
        if request.method == "POST" and request.can_read_body:
            if ctype == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: parameters must be a JSON object")
                raw.update(body)
                is_json = True
            elif ctype == "multipart/form-data":
                reader = await request.multipart()
                while True:
                    part = await reader.next()
                    if part is None:
                        break
                    if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                        continue
                    data = await part.read()
                    if part.filename is not None:
                        files[part.name] = (
                            bytes(data),
                            part.filename,
                            part.headers.get("Content-Type"),
                        )
                    else:
                        raw[part.name] = bytes(data).decode()
            else:
                raw.update(await request.post())
        params = raw if is_json else {k: _coerce(k, v) for k, v in raw.items()}
        return params, files

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params, files = await self._parse(request)
        except ApiError as exc:
            return web.json_response(exc.body(), status=exc.status)
        record = RecordedRequest(
            method=method,
            params=params,
            time=time.time(),
            http_method=request.method,
            files={k: len(v[0]) for k, v in files.items()},
        )
        self.requests.append(record)
        if request.match_info["token"] != self.token:
            record.status = 401
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        handler = self._methods.get(method.lower())
        if handler is None:
            self.unknown_methods.append(method)
            record.status = 404
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        injection = self._take_injection(method.lower())
        try:
            if injection is not None:
                if injection.delay:
                    await asyncio.sleep(injection.delay)
                if injection.drop:
                    record.status = 0
                    if request.transport is not None:
                        request.transport.abort()
                    return web.Response(status=500)
                if injection.status is not None:
                    params_out = (
                        {"retry_after": injection.retry_after}
                        if injection.retry_after is not None
                        else None
                    )
                    desc = injection.description or (
                        f"Too Many Requests: retry after {injection.retry_after}"
                        if injection.status == 429
                        else _DEFAULT_DESCRIPTIONS.get(injection.status, "Error")
                    )
                    raise ApiError(injection.status, desc, params_out)
            result = await handler(params, files)
        except ApiError as exc:
            record.status = exc.status
            return web.json_response(exc.body(), status=exc.status)
        return web.json_response({"ok": True, "result": result})

    def _take_injection(self, method: str) -> Injection | None:
        for inj in self._injections:
            if inj.method == method and inj.count > 0:
                inj.count -= 1
                return inj
        return None

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        path = request.match_info["path"]
        for stored in self._files.values():
            if stored.file_path == path:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    # ------------------------------------------------------------------ internals: checks

    def _bot_dict(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
        }

    def _target(self, params: dict[str, Any]) -> FakeUser:
        """The chat a send goes to, with Telegram's refusals."""
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        user = self.users.get(chat_id)
        if user is None:
            raise ApiError(400, "Bad Request: chat not found")
        if user.deactivated:
            raise ApiError(403, "Forbidden: user is deactivated")
        if user.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if not user.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return user

    def _check_markup(self, markup: Any) -> dict[str, Any] | None:
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list):
                raise ApiError(400, "Bad Request: field \"inline_keyboard\" must be an Array")
            for row in rows:
                for btn in row:
                    if not btn.get("text"):
                        raise ApiError(400, "Bad Request: text buttons are unallowed in the "
                                            "inline keyboard")
                    data = btn.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                    actions = set(btn) - {"text"}
                    if not actions:
                        raise ApiError(400, "Bad Request: text buttons are unallowed in the "
                                            "inline keyboard")
        return markup

    def _check_reply(self, chat_id: int, params: dict[str, Any]) -> int | None:
        reply_id: int | None = params.get("reply_to_message_id")
        allow_missing = bool(params.get("allow_sending_without_reply"))
        rp = params.get("reply_parameters")
        if isinstance(rp, dict):
            reply_id = rp.get("message_id")
            allow_missing = bool(rp.get("allow_sending_without_reply"))
        if reply_id is None:
            return None
        if (chat_id, int(reply_id)) not in self._messages:
            if allow_missing:
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return int(reply_id)

    def _check_parse_mode(self, params: dict[str, Any]) -> str | None:
        mode = params.get("parse_mode") or None
        if mode is not None and mode not in ("HTML", "Markdown", "MarkdownV2"):
            raise ApiError(400, f"Bad Request: unsupported parse_mode {mode}")
        return mode

    def _new_bot_message(
        self, user: FakeUser, content: dict[str, Any], markup: dict[str, Any] | None,
        reply_id: int | None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(user.id),
            "from": self._bot_dict(),
            "chat": user.chat_dict(),
            "date": int(time.time()),
        }
        if reply_id is not None:
            message["reply_to_message"] = self._messages[(user.id, reply_id)]
        message.update(content)
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(user.id, message["message_id"])] = message
        return message

    # ------------------------------------------------------------------ Bot API methods

    async def _api_getMe(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        return {
            **self._bot_dict(),
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _api_getUpdates(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        allowed = params.get("allowed_updates")
        if allowed is not None:
            self._allowed = set(allowed) if allowed else set(DEFAULT_UPDATE_KINDS)
        self._confirm(params.get("offset"))
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0, int(params.get("timeout") or 0))
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # an older long poll of this bot is terminated
        deadline = time.monotonic() + timeout
        while True:
            if self._updates:
                return self._updates[:limit]
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing:
                return []
            event = self._update_event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    async def _api_setWebhook(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        url = params.get("url") or ""
        if not url:
            return await self._api_deleteWebhook(params, files)
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost"):
            raise ApiError(400, "Bad Request: bad webhook: the double only calls 127.0.0.1")
        secret = params.get("secret_token")
        if secret is not None and not (
            1 <= len(secret) <= 256 and all(c.isalnum() or c in "_-" for c in secret)
        ):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        allowed = params.get("allowed_updates")
        if allowed is not None:
            self._allowed = set(allowed) if allowed else set(DEFAULT_UPDATE_KINDS)
        self.webhook_url = url
        self.webhook_secret = secret
        self._poll_generation += 1
        self._wake_pollers()
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._push_webhooks())
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        self.webhook_url = ""
        self.webhook_secret = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._wake_pollers()
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _push_webhooks(self) -> None:
        """POST each pending update to the webhook, one at a time, until it gets a 2xx."""
        backoff = 0.05
        async with aiohttp.ClientSession() as session:
            while self.webhook_url and not self._closing:
                if not self._updates:
                    event = self._update_event
                    try:
                        await asyncio.wait_for(event.wait(), 1.0)
                    except TimeoutError:
                        pass
                    continue
                update = self._updates[0]
                headers = {}
                if self.webhook_secret:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
                try:
                    async with session.post(
                        self.webhook_url,
                        json=update,
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=10),
                    ) as resp:
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                self.webhook_deliveries.append((update["update_id"], status))
                if 200 <= status < 300:
                    if self._updates and self._updates[0] is update:
                        self._updates.pop(0)
                    backoff = 0.05
                else:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)

    async def _api_sendMessage(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        user = self._target(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        parse_mode = self._check_parse_mode(params)
        markup = self._check_markup(params.get("reply_markup"))
        reply_id = self._check_reply(user.id, params)
        content: dict[str, Any] = {"text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        message = self._new_bot_message(user, content, markup, reply_id)
        self._record_sent(user.id, {
            "method": "sendMessage",
            "message_id": message["message_id"],
            "text": text,
            "caption": None,
            "parse_mode": parse_mode,
            "reply_markup": markup,
            "media": None,
            "media_kind": None,
            "filename": None,
            "mime_type": None,
            "reply_to_message_id": reply_id,
            "edited": False,
            "deleted": False,
            "message": message,
        })
        return message

    def _resolve_upload(
        self, field_name: str, params: dict[str, Any], files: dict[str, Any]
    ) -> tuple[bytes, str | None, str | None]:
        """The bytes of an uploaded file: a multipart part, ``attach://``, or a known file_id."""
        if field_name in files:
            return files[field_name]
        value = params.get(field_name)
        if isinstance(value, str) and value.startswith("attach://"):
            part = value[len("attach://"):]
            if part in files:
                return files[part]
            raise ApiError(400, f"Bad Request: file {part} not found in the request")
        if isinstance(value, str) and value in self._files:
            stored = self._files[value]
            return stored.data, stored.file_path.rsplit("/", 1)[-1], None
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: failed to get HTTP URL content")
        raise ApiError(400, f"Bad Request: there is no {field_name} in the request")

    async def _send_media(
        self, kind: str, params: dict[str, Any], files: dict[str, Any]
    ) -> dict[str, Any]:
        user = self._target(params)
        data, filename, mime = self._resolve_upload(kind, params, files)
        caption = params.get("caption")
        if caption is not None and utf16_len(str(caption)) > MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")
        parse_mode = self._check_parse_mode(params)
        markup = self._check_markup(params.get("reply_markup"))
        reply_id = self._check_reply(user.id, params)
        content: dict[str, Any]
        if kind == "photo":
            from PIL import Image

            try:
                with Image.open(io.BytesIO(data)) as img:
                    img.load()
            except Exception as exc:
                raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from exc
            content = {"photo": self._photo_sizes(data)}
        elif kind == "document":
            stored = self._store_file(data, "documents", (filename or "bin").rsplit(".", 1)[-1])
            content = {"document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": filename or "file",
                "mime_type": mime or "application/octet-stream",
                "file_size": len(data),
            }}
        else:
            stored = self._store_file(data, "voice", "oga")
            content = {"voice": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "duration": int(params.get("duration") or 1),
                "mime_type": mime or "audio/ogg",
                "file_size": len(data),
            }}
        if caption:
            content["caption"] = caption
        message = self._new_bot_message(user, content, markup, reply_id)
        self._record_sent(user.id, {
            "method": "send" + kind.capitalize(),
            "message_id": message["message_id"],
            "text": caption,
            "caption": caption,
            "parse_mode": parse_mode,
            "reply_markup": markup,
            "media": data,
            "media_kind": kind,
            "filename": filename,
            "mime_type": mime,
            "reply_to_message_id": reply_id,
            "edited": False,
            "deleted": False,
            "message": message,
        })
        return message

    async def _api_sendPhoto(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        return await self._send_media("photo", params, files)

    async def _api_sendDocument(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        return await self._send_media("document", params, files)

    async def _api_sendVoice(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        return await self._send_media("voice", params, files)

    async def _api_sendChatAction(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        self._target(params)
        return True

    async def _api_getFile(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    async def _api_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._callbacks or query_id in self.callback_answers:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is "
                "invalid",
            )
        self.callback_answers[query_id] = params
        return True

    def _editable(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id = params.get("chat_id")
        message_id = params.get("message_id")
        if not isinstance(chat_id, int) or chat_id not in self.users:
            raise ApiError(400, "Bad Request: chat not found")
        for record in self._sent.get(chat_id, []):
            if record["message_id"] == message_id and not record["deleted"]:
                return chat_id, record
        raise ApiError(400, "Bad Request: message to edit not found")

    async def _api_editMessageText(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        _, record = self._editable(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        markup = self._check_markup(params.get("reply_markup"))
        if text == record["text"] and markup == record["reply_markup"]:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup of "
                "the message",
            )
        record.update(text=text, reply_markup=markup, edited=True,
                      parse_mode=self._check_parse_mode(params))
        message = record["message"]
        message["text"] = text
        message["edit_date"] = int(time.time())
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        self._sent_event.set()
        self._sent_event = asyncio.Event()
        return message

    async def _api_editMessageReplyMarkup(
        self, params: dict[str, Any], files: dict[str, Any]
    ) -> Any:
        _, record = self._editable(params)
        markup = self._check_markup(params.get("reply_markup"))
        if markup == record["reply_markup"]:
            raise ApiError(400, "Bad Request: message is not modified")
        record.update(reply_markup=markup, edited=True)
        message = record["message"]
        message["edit_date"] = int(time.time())
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        return message

    async def _api_deleteMessage(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        try:
            _, record = self._editable(params)
        except ApiError as exc:
            raise ApiError(400, "Bad Request: message to delete not found") from exc
        record["deleted"] = True
        return True

    @staticmethod
    def _scope_key(params: dict[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        key = str(scope["type"])
        if "chat_id" in scope:
            key += f":{scope['chat_id']}"
        return key

    @staticmethod
    def _language(params: dict[str, Any]) -> str:
        lang = params.get("language_code") or ""
        if lang and not (len(lang) == 2 and lang.isalpha() and lang.islower()):
            raise ApiError(400, "Bad Request: invalid language code specified")
        return str(lang)

    async def _api_setMyCommands(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for cmd in commands:
            name = str(cmd.get("command", ""))
            if not (1 <= len(name) <= 32 and all(c.islower() or c.isdigit() or c == "_"
                                                  for c in name)):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = (self._scope_key(params), self._language(params))
        self.commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _api_getMyCommands(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        key = (self._scope_key(params), self._language(params))
        return self.commands.get(key, [])

    async def _api_deleteMyCommands(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        self.commands.pop((self._scope_key(params), self._language(params)), None)
        return True

    async def _api_setChatMenuButton(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        chat_id = params.get("chat_id")
        self.menu_buttons[chat_id] = params.get("menu_button") or {"type": "default"}
        return True

    async def _api_getChatMenuButton(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        chat_id = params.get("chat_id")
        return self.menu_buttons.get(chat_id) or self.menu_buttons.get(None) or {
            "type": "commands"
        }


def _coerce(key: str, value: Any) -> Any:
    """Undo the stringification of form and multipart bodies for known parameters."""
    if not isinstance(value, str):
        return value
    if key in _OBJECT_PARAMS:
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from exc
    if key in _INT_PARAMS:
        try:
            return int(value)
        except ValueError:
            return value
    if key in _BOOL_PARAMS:
        return value.lower() in ("true", "1")
    return value


@pytest_asyncio.fixture
async def telegram_double() -> AsyncIterator[TelegramDouble]:
    """A started Bot API double; fails the test if the bot called an unknown method."""
    double = TelegramDouble()
    await double.start()
    try:
        yield double
    finally:
        await double.stop()
    if double.unknown_methods:
        pytest.fail(f"the bot called Bot API methods the double does not know: "
                    f"{double.unknown_methods}")
