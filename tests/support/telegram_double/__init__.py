"""A Telegram Bot API double on 127.0.0.1 for the test suite (see
`tests.support.telegram_double.server`), and its pytest fixture.

The parts: `server` (HTTP and the test API), `state` (what the double
knows), `updates` (polling and webhooks), `messages` (sending, editing,
files, buttons), `profile` (getMe, commands, menu button), `users` (the
users tests play) and `protocol` (constants, errors, parameter parsing)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.telegram_double.protocol import (
    DEFAULT_TOKEN,
    ApiError,
    Injection,
    RecordedRequest,
    StoredFile,
    free_port,
    utf16_len,
)
from tests.support.telegram_double.server import TelegramDouble
from tests.support.telegram_double.users import FakeUser

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "FakeUser",
    "Injection",
    "RecordedRequest",
    "StoredFile",
    "TelegramDouble",
    "free_port",
    "telegram_double",
    "utf16_len",
]


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
