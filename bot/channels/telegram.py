"""The Telegram channel: turns Bot API updates into `Inbound` values and
`Outbound` values into Bot API calls, with python-telegram-bot running under
our own event loop (long polling written here, or a webhook server).

An update is confirmed to Telegram only after ``on_inbound`` returned for it,
so a crash re-delivers instead of losing.  Nothing identifying (ids, names,
text) is ever logged; forward headers and the content of unsupported kinds
(contacts, locations…) never leave this module.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import hmac
import logging
import secrets
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from bot.channels.base import InboundHandler
from bot.channels.media import MAX_MEDIA_BYTES, MediaRejected, scrub_image
from bot.channels.ratelimit import RateLimiter
from domain.ids import ChannelName
from domain.messages import (
    ChannelAddress,
    Inbound,
    Media,
    Menu,
    Outbound,
    OutboundKind,
    RetryLater,
    SendResult,
    Unreachable,
)
from domain.vocabulary import SUPPORTED_LANGUAGES

log = logging.getLogger(__name__)

TELEGRAM = ChannelName("telegram")
MAX_TEXT = 4096
MAX_CAPTION = 1024
ALLOWED_UPDATES = ("message", "callback_query")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
EMPTY_TEXT_WITH_MENU = "…"

# BadRequest descriptions that mean "this chat will never receive anything".
_GONE_MARKERS = (
    "chat not found",
    "user is deactivated",
    "bot was blocked",
    "peer_id_invalid",
    "can't initiate conversation",
    "user not found",
)

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


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units; so do we, to stay under it."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut a long text into parts Telegram accepts, preferring paragraph, then
    line, then word boundaries, so that no word is broken unless it alone is
    longer than a message."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if utf16_len(rest) <= limit:
            parts.append(rest)
            break
        # Longest prefix that fits, counted in UTF-16 units.
        units = 0
        end = 0
        for ch in rest:
            units += 2 if ord(ch) > 0xFFFF else 1
            if units > limit:
                break
            end += 1
        window = rest[:end]
        cut = -1
        # A paragraph or line break wins only in the second half of the window,
        # so that a break near the start does not leave a tiny part.
        for sep, earliest in (("\n\n", end // 2), ("\n", end // 2), (" ", 1)):
            pos = window.rfind(sep)
            if pos >= earliest:
                cut = pos
                break
        if cut <= 0:
            cut = end
        part = rest[:cut].rstrip()
        if not part:  # only whitespace before the cut: fall back to a hard cut
            part, cut = rest[:end], end
        parts.append(part)
        rest = rest[cut:].lstrip()
    return parts


def _quiet_library_loggers() -> None:
    """Keep library debug lines out of our logs unless someone chose otherwise:
    PTB logs every call's parameters (chat ids, text) at DEBUG, httpx logs
    URLs carrying the bot token at INFO."""
    for name, level in (("telegram", logging.INFO), ("httpx", logging.WARNING),
                        ("httpcore", logging.WARNING)):
        lib_log = logging.getLogger(name)
        if lib_log.level == logging.NOTSET:
            lib_log.setLevel(level)


def _retry_seconds(exc: RetryAfter) -> float:
    """PTB 22 returns int or timedelta (and warns about the int); we want seconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def _keyboard(menu: Menu | None) -> InlineKeyboardMarkup | None:
    """Menu rows become inline keyboard rows; the button token is the callback data."""
    if menu is None or not menu.rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.token) for b in row] for row in menu.rows]
    )


@dataclass(frozen=True, slots=True)
class _Step:
    """One Bot API call of a send: a text part or a media upload with caption."""

    text: str | None = None
    media: Media | None = None
    caption: str | None = None


def _plan(out: Outbound) -> list[_Step]:
    """Lay an `Outbound` out as Bot API calls: media first (short text as its
    caption), then the text in parts of at most 4096."""
    text = out.text or ""
    steps: list[_Step] = []
    if out.media is not None:
        caption = out.media.caption
        if not caption and text.strip() and utf16_len(text.strip()) <= MAX_CAPTION:
            caption, text = text.strip(), ""
        if caption and utf16_len(caption) > MAX_CAPTION:
            text = caption + ("\n\n" + text if text.strip() else "")
            caption = None
        steps.append(_Step(media=out.media, caption=caption or None))
    steps.extend(_Step(text=part) for part in split_text(text))
    if not steps and out.menu is not None:
        steps.append(_Step(text=EMPTY_TEXT_WITH_MENU))
    return steps


def _fallback_inbound(raw: dict[str, Any]) -> Inbound | None:
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


class TelegramChannel:
    """`Channel` for Telegram through the Bot API (python-telegram-bot 22)."""

    name = TELEGRAM
    numbered_menus = False
    idempotent_sends = False

    def __init__(
        self,
        token: str,
        *,
        base_url: str | None = None,
        base_file_url: str | None = None,
        mode: Literal["polling", "webhook"] = "polling",
        webhook_url: str | None = None,
        webhook_listen: str | None = None,
        secret_token: str | None = None,
        languages: Sequence[str] = SUPPORTED_LANGUAGES,
        commands: Mapping[str, Sequence[tuple[str, str]]] | None = None,
        poll_timeout: int = 30,
        backoff: tuple[float, float] = (0.5, 30.0),
        rate_limiter: RateLimiter | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        if mode not in ("polling", "webhook"):
            raise ValueError("telegram mode must be 'polling' or 'webhook'")
        if mode == "webhook" and not (webhook_url and webhook_listen):
            raise ValueError("telegram webhook mode needs webhook_url and webhook_listen")
        if base_url and not base_file_url:
            base_file_url = base_url[: -len("/bot")] + "/file/bot" if base_url.endswith(
                "/bot") else None
        self._token = token
        self._base_url = base_url or None
        self._base_file_url = base_file_url or None
        self._mode = mode
        self._webhook_url = webhook_url
        self._webhook_listen = webhook_listen
        self._secret = secret_token or secrets.token_urlsafe(32)
        self._languages = list(languages)
        self._commands = dict(commands or {})
        self._poll_timeout = poll_timeout
        self._backoff_min, self._backoff_max = backoff
        self._limiter = rate_limiter or RateLimiter()
        self._request_timeout = request_timeout
        self._bot: Bot | None = None
        self._bot_lock = asyncio.Lock()
        self._on_inbound: InboundHandler | None = None
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._poll_call: asyncio.Task[Any] | None = None
        self._runner: web.AppRunner | None = None
        self._progress: OrderedDict[str, tuple[int, int]] = OrderedDict()

    # ------------------------------------------------------------------ lifecycle

    @property
    def webhook_secret(self) -> str:
        """The secret Telegram must echo in the webhook header (set at start)."""
        return self._secret

    async def _ensure_bot(self) -> Bot:
        """Create and initialise the PTB bot once (getMe checks the token)."""
        async with self._bot_lock:
            if self._bot is None:
                _quiet_library_loggers()
                kwargs: dict[str, Any] = {}
                if self._base_url:
                    kwargs["base_url"] = self._base_url
                if self._base_file_url:
                    kwargs["base_file_url"] = self._base_file_url
                t = self._request_timeout
                bot = Bot(
                    self._token,
                    request=HTTPXRequest(
                        connection_pool_size=64,
                        read_timeout=t,
                        write_timeout=t,
                        connect_timeout=t,
                        media_write_timeout=max(t, 30.0),
                    ),
                    get_updates_request=HTTPXRequest(read_timeout=t, connect_timeout=t),
                    **kwargs,
                )
                await bot.initialize()
                self._bot = bot
            return self._bot

    async def start(self, on_inbound: InboundHandler) -> None:
        """Check the token, register commands, then begin polling or serve the webhook."""
        self._on_inbound = on_inbound
        self._stopping = False
        self._stop_event = asyncio.Event()
        bot = await self._ensure_bot()
        await self._register_commands(bot)
        if self._mode == "webhook":
            await self._start_webhook(bot)
        else:
            await bot.delete_webhook(drop_pending_updates=False)
            self._loop_task = asyncio.create_task(self._poll_loop(bot), name="telegram-poll")
        log.info("telegram: started (%s)", self._mode)

    async def stop(self) -> None:
        """Stop receiving, let the update in hand finish, close connections."""
        self._stopping = True
        self._stop_event.set()
        if self._poll_call is not None and not self._poll_call.done():
            self._poll_call.cancel()
        if self._loop_task is not None:
            try:
                await asyncio.wait_for(self._loop_task, timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("telegram: poll loop did not finish in time")
            self._loop_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._bot is not None:
            try:
                await self._bot.shutdown()
            finally:
                self._bot = None
        log.info("telegram: stopped")

    async def _register_commands(self, bot: Bot) -> None:
        """Show each language its own command list; the first language is the default."""
        try:
            for lang in self._languages:
                cmds = self._commands.get(lang)
                if cmds:
                    await bot.set_my_commands(
                        [BotCommand(c, d) for c, d in cmds], language_code=lang
                    )
            default = self._commands.get(self._languages[0]) if self._languages else None
            if default:
                await bot.set_my_commands([BotCommand(c, d) for c, d in default])
        except TelegramError as exc:
            log.warning("telegram: command registration failed (%s)", type(exc).__name__)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the channel stops."""
        try:
            await asyncio.wait_for(self._stop_event.wait(), seconds)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ polling

    async def _poll_loop(self, bot: Bot) -> None:
        """Long-poll; advance the offset past an update only once it was handled."""
        offset: int | None = None
        backoff = self._backoff_min
        while not self._stopping:
            try:
                self._poll_call = asyncio.ensure_future(self._fetch_updates(bot, offset))
                updates = await self._poll_call
            except asyncio.CancelledError:
                if self._stopping:
                    break
                raise
            except RetryAfter as exc:
                log.warning("telegram: poll flood-limited")
                await self._pause(_retry_seconds(exc))
                continue
            except Exception as exc:  # NetworkError, Conflict, a bad token, unparsable updates
                log.warning("telegram: poll failed (%s), backing off", type(exc).__name__)
                await self._pause(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            finally:
                self._poll_call = None
            backoff = self._backoff_min
            for raw in updates:
                if self._stopping:
                    break
                try:
                    await self._process_raw(bot, raw)
                except Exception as exc:
                    # Not confirmed: the next getUpdates starts at this update again.
                    log.warning("telegram: inbound failed (%s), will retry", type(exc).__name__)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, self._backoff_max)
                    break
                offset = int(raw["update_id"]) + 1
        if offset is not None:
            try:  # confirm what was handled, so a restart does not see it again
                await bot._post("getUpdates", {"offset": offset, "timeout": 0, "limit": 1})
            except TelegramError:
                pass

    async def _fetch_updates(self, bot: Bot, offset: int | None) -> list[dict[str, Any]]:
        """One long poll, returning raw update dicts.

        Parsed here one by one rather than by ``Bot.get_updates``: PTB parses
        the whole batch at once and, on failure, logs the raw data (ids, text)
        and loses the batch; one odd update must neither leak nor block the queue.
        """
        data: dict[str, Any] = {
            "timeout": self._poll_timeout,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        if offset is not None:
            data["offset"] = offset
        result = await bot._post(
            "getUpdates", data, read_timeout=self._request_timeout + self._poll_timeout
        )
        if not isinstance(result, list):
            raise NetworkError("getUpdates answered something other than a list")
        return [u for u in result if isinstance(u, dict) and isinstance(u.get("update_id"), int)]

    async def _process_raw(self, bot: Bot, raw: dict[str, Any]) -> None:
        """Parse one raw update and process it; an update PTB cannot parse still
        reaches the core as "unsupported" (if it is a private message), so the
        person gets an answer instead of silence."""
        try:
            update = Update.de_json(raw, bot)
        except Exception as exc:
            log.warning("telegram: unparsable update (%s)", type(exc).__name__)
            inbound = _fallback_inbound(raw)
            if inbound is not None:
                assert self._on_inbound is not None
                await self._on_inbound(inbound)
            return
        await self._process(bot, update)

    # ------------------------------------------------------------------ webhook

    async def _start_webhook(self, bot: Bot) -> None:
        """Serve the webhook path, then tell Telegram where to push."""
        assert self._webhook_url is not None and self._webhook_listen is not None
        host, _, port = self._webhook_listen.rpartition(":")
        path = urlsplit(self._webhook_url).path or "/"
        app = web.Application()
        app.router.add_post(path, self._webhook_handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host or "127.0.0.1", int(port)).start()
        await bot.set_webhook(
            url=self._webhook_url,
            secret_token=self._secret,
            allowed_updates=list(ALLOWED_UPDATES),
            max_connections=1,  # one at a time keeps each chat in order
        )

    async def _webhook_handler(self, request: web.Request) -> web.Response:
        """Accept an update only with the right secret; 200 only once it was handled."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning("telegram: webhook call with a wrong secret refused")
            return web.Response(status=403)
        if self._bot is None or self._stopping:
            return web.Response(status=503)
        try:
            data = await request.json()
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
        except Exception:
            log.warning("telegram: unreadable webhook body")
            return web.Response(status=400)
        try:
            await self._process_raw(self._bot, data)
        except Exception as exc:
            log.warning("telegram: inbound failed (%s), Telegram will retry", type(exc).__name__)
            return web.Response(status=500)
        return web.Response(status=200)

    # ------------------------------------------------------------------ inbound

    async def _process(self, bot: Bot, update: Update) -> None:
        """Translate one update and hand it to the core; raises if the core did."""
        assert self._on_inbound is not None
        query = update.callback_query
        try:
            inbound = await self._to_inbound(bot, update)
            if inbound is not None:
                await self._on_inbound(inbound)
                log.debug("telegram: inbound handled")
        finally:
            if query is not None:
                await self._answer(bot, query)

    async def _answer(self, bot: Bot, query: CallbackQuery) -> None:
        """Stop the button's spinner; a second answer after a re-delivery may fail, harmlessly."""
        try:
            await bot.answer_callback_query(query.id)
        except TelegramError as exc:
            log.debug("telegram: callback answer failed (%s)", type(exc).__name__)

    async def _to_inbound(self, bot: Bot, update: Update) -> Inbound | None:
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
            return Inbound(text=self._strip_mention(bot, message.text), **base)
        for kind in _UNSUPPORTED_KINDS:
            if getattr(message, kind, None):
                log.info("telegram: unsupported content (%s)", kind)
                return Inbound(unsupported=kind, **base)
        try:
            media = await self._media(bot, message)
        except MediaRejected as exc:
            reason = "too_large" if exc.reason == "media.too_large" else "invalid_media"
            log.info("telegram: media refused (%s)", reason)
            return Inbound(unsupported=reason, **base)
        if media is None:
            log.info("telegram: unsupported content (other)")
            return Inbound(unsupported="other", **base)
        return Inbound(media=media, **base)

    @staticmethod
    def _strip_mention(bot: Bot, text: str) -> str:
        """``/start@ourbot args`` → ``/start args``, so the core sees one spelling."""
        if not text.startswith("/"):
            return text
        head, sep, tail = text.partition(" ")
        command, at, name = head.partition("@")
        if at and name.lower() == (bot.username or "").lower():
            return command + sep + tail
        return text

    async def _download(self, bot: Bot, file_id: str, declared_size: int | None) -> bytes:
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

    async def _media(self, bot: Bot, message: Message) -> Media | None:
        """Photo, document or voice as re-uploadable bytes; images scrubbed of metadata.

        File names are not kept (they often carry a person's name); only the
        extension survives.
        """
        caption = message.caption or None
        if message.photo:
            largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
            data = await self._download(bot, largest.file_id, largest.file_size)
            clean, mime = scrub_image(data)
            ext = "png" if mime == "image/png" else "jpg"
            return Media("photo", clean, f"photo.{ext}", mime, caption)
        if message.document:
            doc = message.document
            data = await self._download(bot, doc.file_id, doc.file_size)
            mime = doc.mime_type or "application/octet-stream"
            ext = (doc.file_name or "").rpartition(".")[2].lower()
            ext = ext if ext.isalnum() and 0 < len(ext) <= 5 else "bin"
            if mime.startswith(_IMAGE_DOCUMENT_TYPES):
                # An image sent "as file" keeps its EXIF/GPS: re-encode it too.
                data, mime = scrub_image(data)
                ext = "png" if mime == "image/png" else "jpg"
            return Media("document", data, f"document.{ext}", mime, caption)
        if message.voice:
            voice = message.voice
            data = await self._download(bot, voice.file_id, voice.file_size)
            return Media("voice", data, "voice.ogg", voice.mime_type or "audio/ogg", caption)
        return None

    # ------------------------------------------------------------------ outbound

    @staticmethod
    def _chat_id(to: ChannelAddress) -> int:
        """The numeric chat id of an address; anything else can never be reached."""
        if to.channel != TELEGRAM:
            raise Unreachable("telegram.wrong_channel")
        try:
            return int(to.address)
        except ValueError as exc:
            raise Unreachable("telegram.bad_address") from exc

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        """Deliver one `Outbound` as one or more Bot API calls.

        If a multi-part send fails midway, the parts already sent are
        remembered (in memory) under the idempotency key, so a retry resumes
        instead of repeating them.
        """
        if out.kind == OutboundKind.CONTROL:
            return SendResult(None)
        chat_id = self._chat_id(out.to)
        steps = _plan(out)
        if not steps:
            return SendResult(None)
        bot = await self._ensure_bot()
        markup = _keyboard(out.menu)
        done, last_id = self._progress.get(idempotency_key, (0, 0))
        for index, step in enumerate(steps):
            if index < done:
                continue
            is_last = index == len(steps) - 1
            message = await self._call(bot, chat_id, step, markup if is_last else None)
            last_id = message.message_id
            self._remember(idempotency_key, index + 1, last_id)
        self._progress.pop(idempotency_key, None)
        log.debug("telegram: sent %d part(s)", len(steps))
        return SendResult(platform_message_id=str(last_id))

    def _remember(self, key: str, done: int, last_id: int) -> None:
        """Keep a bounded memory of partly sent messages."""
        self._progress[key] = (done, last_id)
        self._progress.move_to_end(key)
        while len(self._progress) > 1000:
            self._progress.popitem(last=False)

    async def _call(
        self, bot: Bot, chat_id: int, step: _Step, markup: InlineKeyboardMarkup | None
    ) -> Message:
        """One rate-limited Bot API call, with PTB errors mapped to delivery errors."""
        await self._limiter.acquire(chat_id)
        try:
            if step.media is None:
                assert step.text is not None
                return await bot.send_message(chat_id, step.text, reply_markup=markup)
            media = step.media
            upload = InputFile(media.data, filename=media.filename)
            if media.kind == "photo":
                return await bot.send_photo(
                    chat_id, upload, caption=step.caption, reply_markup=markup
                )
            if media.kind == "voice":
                return await bot.send_voice(
                    chat_id, upload, caption=step.caption, reply_markup=markup
                )
            return await bot.send_document(
                chat_id, upload, caption=step.caption, reply_markup=markup
            )
        except RetryAfter as exc:
            seconds = _retry_seconds(exc)
            self._limiter.pause(seconds)
            log.warning("telegram: flood limit, retry after %.0fs", seconds)
            raise RetryLater("telegram.flood", after=seconds) from exc
        except Forbidden as exc:
            log.info("telegram: recipient unreachable (forbidden)")
            raise Unreachable("telegram.forbidden") from exc
        except ChatMigrated as exc:
            raise Unreachable("telegram.chat_migrated") from exc
        except BadRequest as exc:
            if any(marker in exc.message.lower() for marker in _GONE_MARKERS):
                log.info("telegram: recipient unreachable (gone)")
                raise Unreachable("telegram.chat_gone") from exc
            log.warning("telegram: send rejected (bad request)")
            raise
        except (TimedOut, NetworkError) as exc:
            log.warning("telegram: send failed (%s)", type(exc).__name__)
            raise RetryLater("telegram.network") from exc
