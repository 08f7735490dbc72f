"""The wire of the Telegram double: Bot API constants, the error answer,
what the double records of each request, and how form and multipart bodies
are read back into typed parameters, as Telegram does."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

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


DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def command_entities(text: str) -> list[dict[str, Any]]:
    """A ``bot_command`` entity when the text starts with a command, as Telegram adds."""
    if not text.startswith("/") or len(text) < 2:
        return []
    word = text.split(maxsplit=1)[0]
    return [{"offset": 0, "length": utf16_len(word), "type": "bot_command"}]


def coerce(key: str, value: Any) -> Any:
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
