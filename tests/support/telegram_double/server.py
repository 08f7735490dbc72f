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
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.telegram_double.messages import MessageMethods
from tests.support.telegram_double.profile import ProfileMethods
from tests.support.telegram_double.protocol import (
    DEFAULT_DESCRIPTIONS,
    DEFAULT_TOKEN,
    ApiError,
    Injection,
    RecordedRequest,
    coerce,
    free_port,
)
from tests.support.telegram_double.updates import UpdateMethods
from tests.support.telegram_double.users import FakeUser


class TelegramDouble(UpdateMethods, MessageMethods, ProfileMethods):
    """The fake Bot API server; create, `start`, point the bot at `base_url`."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "confidant_test_bot",
        bot_name: str = "Confidant",
    ) -> None:
        super().__init__(token, bot_username, bot_name)
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
        params = raw if is_json else {k: coerce(k, v) for k, v in raw.items()}
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
                        else DEFAULT_DESCRIPTIONS.get(injection.status, "Error")
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
