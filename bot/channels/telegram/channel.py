"""The Telegram channel: turns Bot API updates into `Inbound` values and
`Outbound` values into Bot API calls, with python-telegram-bot running under
our own event loop (long polling written here, or a webhook server).

An update is confirmed to Telegram only after ``on_inbound`` returned for it,
so a crash re-delivers instead of losing.  Nothing identifying (ids, names,
text) is ever logged; forward headers and the content of unsupported kinds
(contacts, locations…) never leave the channel.

The parts: `updates` (polling and webhook), `inbound` (update → `Inbound`,
media downloads), `outbound` (`Outbound` → Bot API calls, pacing, errors).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from telegram import Bot, BotCommand
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from bot.channels.base import InboundHandler
from bot.channels.ratelimit import RateLimiter
from bot.channels.telegram.inbound import Intake
from bot.channels.telegram.outbound import TELEGRAM, Sender
from bot.channels.telegram.updates import Updates
from domain.messages import Outbound, SendResult
from domain.vocabulary import SUPPORTED_LANGUAGES

log = logging.getLogger("bot.channels.telegram")


def _quiet_library_loggers() -> None:
    """Keep library debug lines out of our logs unless someone chose otherwise:
    PTB logs every call's parameters (chat ids, text) at DEBUG, httpx logs
    URLs carrying the bot token at INFO."""
    for name, level in (("telegram", logging.INFO), ("httpx", logging.WARNING),
                        ("httpcore", logging.WARNING)):
        lib_log = logging.getLogger(name)
        if lib_log.level == logging.NOTSET:
            lib_log.setLevel(level)


class TelegramChannel:
    """`Channel` for Telegram through the Bot API (python-telegram-bot 22)."""

    name = TELEGRAM
    numbered_menus = False
    end_to_end = False
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
        self._languages = list(languages)
        self._commands = dict(commands or {})
        self._request_timeout = request_timeout
        self._bot: Bot | None = None
        self._bot_lock = asyncio.Lock()
        self._intake = Intake()
        self._updates = Updates(
            self._intake, secret=secret_token or secrets.token_urlsafe(32),
            poll_timeout=poll_timeout, request_timeout=request_timeout, backoff=backoff,
            webhook_url=webhook_url, webhook_listen=webhook_listen)
        self._sender = Sender(self._ensure_bot, rate_limiter or RateLimiter())

    # ------------------------------------------------------------------ lifecycle

    @property
    def webhook_secret(self) -> str:
        """The secret Telegram must echo in the webhook header (set at start)."""
        return self._updates.secret

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
        self._intake.on_inbound = on_inbound
        bot = await self._ensure_bot()
        await self._register_commands(bot)
        if self._mode == "webhook":
            await self._updates.start_webhook(bot)
        else:
            await self._updates.start_polling(bot)
        log.info("telegram: started (%s)", self._mode)

    async def stop(self) -> None:
        """Stop receiving, let the update in hand finish, close connections."""
        await self._updates.stop()
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

    # ------------------------------------------------------------------ outbound

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        """Deliver one `Outbound` as one or more Bot API calls (see
        `bot.channels.telegram.outbound.Sender.send`)."""
        return await self._sender.send(out, idempotency_key)
