"""From `Outbound` to Bot API calls: a message is laid out as a media upload
(short text as its caption) and text parts of at most 4096 UTF-16 units,
sent at Telegram's pace, with PTB's errors mapped to the delivery errors of
`domain.messages`.  A multi-part send that fails midway resumes on retry
instead of repeating the parts already sent."""

from __future__ import annotations

import datetime as dtm
import logging
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.channels.ratelimit import RateLimiter
from domain.ids import ChannelName
from domain.messages import (
    ChannelAddress,
    Media,
    Menu,
    Outbound,
    OutboundKind,
    RetryLater,
    SendResult,
    Unreachable,
)

log = logging.getLogger("bot.channels.telegram")

TELEGRAM = ChannelName("telegram")
MAX_TEXT = 4096
MAX_CAPTION = 1024
EMPTY_TEXT_WITH_MENU = "…"
PROGRESS_KEEP = 1000

# BadRequest descriptions that mean "this chat will never receive anything".
_GONE_MARKERS = (
    "chat not found",
    "user is deactivated",
    "bot was blocked",
    "peer_id_invalid",
    "can't initiate conversation",
    "user not found",
)


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


def retry_seconds(exc: RetryAfter) -> float:
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


def _chat_id(to: ChannelAddress) -> int:
    """The numeric chat id of an address; anything else can never be reached."""
    if to.channel != TELEGRAM:
        raise Unreachable("telegram.wrong_channel")
    try:
        return int(to.address)
    except ValueError as exc:
        raise Unreachable("telegram.bad_address") from exc


class Sender:
    """Sends `Outbound` values through the bot ``get_bot`` gives (created on
    first need), paced by ``limiter``."""

    def __init__(self, get_bot: Callable[[], Awaitable[Bot]], limiter: RateLimiter) -> None:
        self.get_bot = get_bot
        self.limiter = limiter
        self._progress: OrderedDict[str, tuple[int, int]] = OrderedDict()

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        """Deliver one `Outbound` as one or more Bot API calls.

        If a multi-part send fails midway, the parts already sent are
        remembered (in memory) under the idempotency key, so a retry resumes
        instead of repeating them.
        """
        if out.kind == OutboundKind.CONTROL:
            return SendResult(None)
        chat_id = _chat_id(out.to)
        steps = _plan(out)
        if not steps:
            return SendResult(None)
        bot = await self.get_bot()
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
        while len(self._progress) > PROGRESS_KEEP:
            self._progress.popitem(last=False)

    async def _call(
        self, bot: Bot, chat_id: int, step: _Step, markup: InlineKeyboardMarkup | None
    ) -> Message:
        """One rate-limited Bot API call, with PTB errors mapped to delivery errors."""
        await self.limiter.acquire(chat_id)
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
            seconds = retry_seconds(exc)
            self.limiter.pause(seconds)
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
