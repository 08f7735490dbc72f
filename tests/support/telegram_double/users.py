"""Telegram users played by the tests: each `FakeUser` chats privately with
the bot through the double, types, sends media, presses buttons, blocks the
bot or deletes their account."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from tests.support.telegram_double.protocol import command_entities

if TYPE_CHECKING:
    from tests.support.telegram_double.server import TelegramDouble


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
        entities = command_entities(text)
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
