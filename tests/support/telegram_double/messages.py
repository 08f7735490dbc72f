"""What the bot says and does in chats, as the double answers it: sending
text and media (with Telegram's limits and refusals: unknown or blocked
chats, too long texts, bad keyboards), downloads, button answers, edits and
deletions.  Every message sent is recorded for `TelegramDouble.sent_to`."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

from tests.support.telegram_double.protocol import (
    MAX_CALLBACK_DATA,
    MAX_CAPTION,
    MAX_DOWNLOAD,
    MAX_TEXT,
    ApiError,
    command_entities,
    utf16_len,
)
from tests.support.telegram_double.state import DoubleState
from tests.support.telegram_double.users import FakeUser


class MessageMethods(DoubleState):
    """``sendMessage``, ``sendPhoto`` … ``deleteMessage``, and their checks."""

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
        entities = command_entities(text)
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
