"""From a Bot API update to an `Inbound`: private messages and button presses
only, text with the ``@ourbot`` of a command removed, photos, documents and
voice notes downloaded (images scrubbed of their metadata, file names
dropped), and every other kind of content reported by its kind alone, its
content never passed on.  Forward headers are never read."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import Bot, CallbackQuery, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError

from bot.channels.base import InboundHandler
from bot.channels.media import MAX_MEDIA_BYTES, MediaRejected, scrub_image
from bot.channels.telegram.outbound import TELEGRAM
from domain.messages import Inbound, Media

log = logging.getLogger("bot.channels.telegram")

# Message content we never relay: the kind is reported, the content dropped.
# Order matters: a venue also carries a location, an animation also a document.
_UNSUPPORTED_KINDS = (
    "sticker",
    "animation",
    "video",
    "video_note",
    "audio",
    "venue",
    "location",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
    "invoice",
    "successful_payment",
    "paid_media",
    "giveaway",
    "checklist",
)

_IMAGE_DOCUMENT_TYPES = ("image/",)


class Intake:
    """Hands each update, translated, to the core (``on_inbound``, set by
    the channel at start)."""

    def __init__(self) -> None:
        self.on_inbound: InboundHandler | None = None

    async def handle_raw(self, bot: Bot, raw: dict[str, Any]) -> None:
        """Parse one raw update and process it; raises if the core did."""
        _, failure = await self.handle_many(bot, [raw])
        if failure is not None:
            raise failure

    async def handle_many(self, bot: Bot, raws: list[dict[str, Any]]
                          ) -> tuple[int, Exception | None]:
        """Process a ``getUpdates`` answer: how many of its first updates
        were handled (the offset may move past them), and the failure that
        stopped there, if any.

        Updates are translated one after the other (downloads included) and
        each is handed to the core as soon as it is translated, without
        waiting for the core: so they reach it in Telegram's order, and what
        reaches it together (every text of the answer, or those before a
        photo still downloading) is recorded in one transaction
        (`bot.intake.Intake.handle`).  An update PTB cannot parse still
        reaches the core as "unsupported" (if it is a private message), so
        the person gets an answer instead of silence.
        """
        handing: list[asyncio.Task[None]] = []
        failure: Exception | None = None
        try:
            for raw in raws:
                try:
                    inbound, query = await self._translate(bot, raw)
                except Exception as exc:
                    failure = exc  # this one and those after it come again
                    break
                handing.append(asyncio.ensure_future(self._hand_over(bot, inbound, query)))
        except BaseException:
            for task in handing:
                task.cancel()  # stopping: nothing is confirmed, all come again
            raise
        outcomes = await asyncio.gather(*handing, return_exceptions=True)
        for handled, outcome in enumerate(outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                return handled, outcome
        return len(outcomes), failure

    async def _translate(self, bot: Bot, raw: dict[str, Any]
                         ) -> tuple[Inbound | None, CallbackQuery | None]:
        try:
            update = Update.de_json(raw, bot)
        except Exception as exc:
            log.warning("telegram: unparsable update (%s)", type(exc).__name__)
            return fallback_inbound(raw), None
        return await to_inbound(bot, update), update.callback_query

    async def _hand_over(self, bot: Bot, inbound: Inbound | None,
                         query: CallbackQuery | None) -> None:
        """Hand one translated update to the core; raises if the core did."""
        assert self.on_inbound is not None
        try:
            if inbound is not None:
                await self.on_inbound(inbound)
                log.debug("telegram: inbound handled")
        finally:
            if query is not None:
                await _answer(bot, query)


async def _answer(bot: Bot, query: CallbackQuery) -> None:
    """Stop the button's spinner; a second answer after a re-delivery may fail, harmlessly."""
    try:
        await bot.answer_callback_query(query.id)
    except TelegramError as exc:
        log.debug("telegram: callback answer failed (%s)", type(exc).__name__)


def fallback_inbound(raw: dict[str, Any]) -> Inbound | None:
    """An "unsupported" `Inbound` from a raw private message PTB could not parse."""
    message = raw.get("message")
    if not isinstance(message, dict):
        return None
    chat, sender = message.get("chat"), message.get("from")
    # Whatever shape the rest has, this must not raise: an update that fails
    # here is never confirmed and would hold up every later one.
    if not (isinstance(chat, dict) and isinstance(sender, dict)):
        return None
    user_id = sender.get("id")
    if (chat.get("type") != "private" or sender.get("is_bot") is not False
            or not isinstance(user_id, int) or chat.get("id", user_id) != user_id):
        return None
    language = sender.get("language_code")
    return Inbound(
        channel=TELEGRAM,
        sender=str(user_id),
        chat=str(user_id),
        event_id=f"tg:{raw['update_id']}",
        unsupported="other",
        language_hint=language if isinstance(language, str) else None,
    )


async def to_inbound(bot: Bot, update: Update) -> Inbound | None:
    """The `Inbound` for an update, or None for what the core never sees
    (group chats, bots, service messages without sender)."""
    event_id = f"tg:{update.update_id}"
    query = update.callback_query
    if query is not None:
        msg = query.message
        chat = getattr(msg, "chat", None)  # PTB accepts a message without one
        # In a private chat the chat id is the user's id: a press whose
        # message lies in someone else's chat must not answer into it.
        if (msg is None or chat is None or chat.type != ChatType.PRIVATE
                or query.data is None or chat.id != query.from_user.id):
            log.info("telegram: ignored callback kind")
            return None
        return Inbound(
            channel=TELEGRAM,
            sender=str(query.from_user.id),
            chat=str(msg.chat.id),
            event_id=event_id,
            button=query.data,
            reply_to=str(msg.message_id),
            language_hint=query.from_user.language_code,
        )
    message = update.message
    if message is None:
        return None
    user = message.from_user
    chat = getattr(message, "chat", None)
    if (chat is None or chat.type != ChatType.PRIVATE or user is None or user.is_bot
            or chat.id != user.id):
        log.info("telegram: ignored non-private or bot message")
        return None
    base: dict[str, Any] = {
        "channel": TELEGRAM,
        "sender": str(user.id),
        "chat": str(message.chat.id),
        "event_id": event_id,
        "reply_to": (
            str(message.reply_to_message.message_id) if message.reply_to_message else None
        ),
        "language_hint": user.language_code,
    }
    if message.text is not None:
        return Inbound(text=strip_mention(bot, message.text), **base)
    for kind in _UNSUPPORTED_KINDS:
        if getattr(message, kind, None):
            log.info("telegram: unsupported content (%s)", kind)
            return Inbound(unsupported=kind, **base)
    try:
        media = await _media(bot, message)
    except MediaRejected as exc:
        reason = "too_large" if exc.reason == "media.too_large" else "invalid_media"
        log.info("telegram: media refused (%s)", reason)
        return Inbound(unsupported=reason, **base)
    if media is None:
        log.info("telegram: unsupported content (other)")
        return Inbound(unsupported="other", **base)
    return Inbound(media=media, **base)


def strip_mention(bot: Bot, text: str) -> str:
    """``/start@ourbot args`` → ``/start args``, so the core sees one spelling."""
    if not text.startswith("/"):
        return text
    head, sep, tail = text.partition(" ")
    command, at, name = head.partition("@")
    if at and name.lower() == (bot.username or "").lower():
        return command + sep + tail
    return text


async def _download(bot: Bot, file_id: str, declared_size: int | None) -> bytes:
    """Fetch a file the user sent; refuse oversized files before downloading them."""
    if declared_size is not None and declared_size > MAX_MEDIA_BYTES:
        raise MediaRejected("media.too_large")
    try:
        tg_file = await bot.get_file(file_id)
    except BadRequest as exc:
        if "too big" in exc.message.lower():
            raise MediaRejected("media.too_large") from exc
        raise MediaRejected("media.unavailable") from exc
    if tg_file.file_size is not None and tg_file.file_size > MAX_MEDIA_BYTES:
        raise MediaRejected("media.too_large")
    data = bytes(await tg_file.download_as_bytearray())
    if len(data) > MAX_MEDIA_BYTES:
        raise MediaRejected("media.too_large")
    return data


def _scrubbed(data: bytes) -> tuple[bytes, str, str]:
    """An image re-encoded without its metadata: (bytes, mime type, file extension)."""
    clean, mime = scrub_image(data)
    return clean, mime, "png" if mime == "image/png" else "jpg"


async def _media(bot: Bot, message: Message) -> Media | None:
    """Photo, document or voice as re-uploadable bytes; images scrubbed of metadata.

    File names are not kept (they often carry a person's name); only the
    extension survives.
    """
    caption = message.caption or None
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        data = await _download(bot, largest.file_id, largest.file_size)
        clean, mime, ext = _scrubbed(data)
        return Media("photo", clean, f"photo.{ext}", mime, caption)
    if message.document:
        doc = message.document
        data = await _download(bot, doc.file_id, doc.file_size)
        mime = doc.mime_type or "application/octet-stream"
        ext = (doc.file_name or "").rpartition(".")[2].lower()
        ext = ext if ext.isalnum() and 0 < len(ext) <= 5 else "bin"
        if mime.startswith(_IMAGE_DOCUMENT_TYPES):
            # An image sent "as file" keeps its EXIF/GPS: re-encode it too.
            data, mime, ext = _scrubbed(data)
        return Media("document", data, f"document.{ext}", mime, caption)
    if message.voice:
        voice = message.voice
        data = await _download(bot, voice.file_id, voice.file_size)
        return Media("voice", data, "voice.ogg", voice.mime_type or "audio/ogg", caption)
    return None
