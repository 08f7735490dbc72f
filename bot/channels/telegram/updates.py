"""How Telegram's updates reach the channel: long polling (written here, on
our own event loop) or a webhook server.  Either way an update is confirmed
to Telegram only after the core recorded it (the poll offset moves past it,
the webhook answers 200), so a crash re-delivers instead of losing; and one
update at a time keeps each chat in order."""

from __future__ import annotations

import asyncio
import hmac
import logging
import warnings
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot
from telegram.error import NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBUserWarning

from bot.channels.telegram.inbound import Intake
from bot.channels.telegram.outbound import retry_seconds

log = logging.getLogger("bot.channels.telegram")

ALLOWED_UPDATES = ("message", "callback_query")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


async def get_updates_raw(bot: Bot, params: dict[str, Any],
                          read_timeout: float | None = None) -> Any:
    """``getUpdates`` answered as raw JSON, through PTB's public
    `Bot.do_api_request` (no return type: nothing parsed).

    Not `Bot.get_updates`: PTB parses the whole batch at once and, on
    failure, logs the raw data (ids, text) and loses the batch; one odd
    update must neither leak nor block the queue.  ``do_api_request`` warns
    that `Bot.get_updates` exists; following that advice is exactly what we
    must not do, so this one warning is silenced, here and only here (PTB
    still uses its separate long-poll connection for the endpoint)."""
    warnings.filterwarnings(
        "ignore", message=r"Please use 'Bot\.getUpdates' instead", category=PTBUserWarning
    )
    if read_timeout is None:
        return await bot.do_api_request("getUpdates", api_kwargs=params)
    return await bot.do_api_request("getUpdates", api_kwargs=params, read_timeout=read_timeout)


class Updates:
    """Receives updates by polling or webhook and hands them to ``intake``."""

    def __init__(
        self,
        intake: Intake,
        *,
        secret: str,
        poll_timeout: int,
        request_timeout: float,
        backoff: tuple[float, float],
        webhook_url: str | None,
        webhook_listen: str | None,
    ) -> None:
        self.intake = intake
        self.secret = secret
        self._poll_timeout = poll_timeout
        self._request_timeout = request_timeout
        self._backoff_min, self._backoff_max = backoff
        self._webhook_url = webhook_url
        self._webhook_listen = webhook_listen
        self._bot: Bot | None = None
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._poll_call: asyncio.Task[Any] | None = None
        self._runner: web.AppRunner | None = None

    async def start_polling(self, bot: Bot) -> None:
        """Drop a webhook Telegram may still have, then poll in a task."""
        self._begin(bot)
        await bot.delete_webhook(drop_pending_updates=False)
        self._loop_task = asyncio.create_task(self._poll_loop(bot), name="telegram-poll")

    def _begin(self, bot: Bot) -> None:
        self._bot = bot
        self._stopping = False
        self._stop_event = asyncio.Event()

    async def stop(self) -> None:
        """Stop receiving and let the update in hand finish."""
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
        self._bot = None

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
                await self._pause(retry_seconds(exc))
                continue
            except Exception as exc:  # NetworkError, Conflict, a bad token, unparsable updates
                log.warning("telegram: poll failed (%s), backing off", type(exc).__name__)
                await self._pause(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            finally:
                self._poll_call = None
            backoff = self._backoff_min
            if not updates or self._stopping:
                continue
            handled, failure = await self.intake.handle_many(bot, updates)
            if handled:
                offset = int(updates[handled - 1]["update_id"]) + 1
            if failure is not None:
                # Not confirmed: the next getUpdates starts at this update again.
                log.warning("telegram: inbound failed (%s), will retry", type(failure).__name__)
                await self._pause(backoff)
                backoff = min(backoff * 2, self._backoff_max)
        if offset is not None:
            try:  # confirm what was handled, so a restart does not see it again
                await get_updates_raw(bot, {"offset": offset, "timeout": 0, "limit": 1})
            except TelegramError:
                pass

    async def _fetch_updates(self, bot: Bot, offset: int | None) -> list[dict[str, Any]]:
        """One long poll, returning raw update dicts (parsed one by one later)."""
        data: dict[str, Any] = {
            "timeout": self._poll_timeout,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        if offset is not None:
            data["offset"] = offset
        result = await get_updates_raw(
            bot, data, read_timeout=self._request_timeout + self._poll_timeout
        )
        if not isinstance(result, list):
            raise NetworkError("getUpdates answered something other than a list")
        return [u for u in result if isinstance(u, dict) and isinstance(u.get("update_id"), int)]

    # ------------------------------------------------------------------ webhook

    async def start_webhook(self, bot: Bot) -> None:
        """Serve the webhook path, then tell Telegram where to push."""
        assert self._webhook_url is not None and self._webhook_listen is not None
        self._begin(bot)
        host, _, port = self._webhook_listen.rpartition(":")
        path = urlsplit(self._webhook_url).path or "/"
        app = web.Application()
        app.router.add_post(path, self._webhook_handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host or "127.0.0.1", int(port)).start()
        await bot.set_webhook(
            url=self._webhook_url,
            secret_token=self.secret,
            allowed_updates=list(ALLOWED_UPDATES),
            max_connections=1,  # one at a time keeps each chat in order
        )

    async def _webhook_handler(self, request: web.Request) -> web.Response:
        """Accept an update only with the right secret; 200 only once it was handled."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
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
            await self.intake.handle_raw(self._bot, data)
        except Exception as exc:
            log.warning("telegram: inbound failed (%s), Telegram will retry", type(exc).__name__)
            return web.Response(status=500)
        return web.Response(status=200)
