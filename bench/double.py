"""The Bot API double of the test suite, plus the two timestamps the
benchmark needs: when an update left the double in a getUpdates answer, and
when the matching sendMessage arrived.  Texts carry a tag ``bm<seq>q`` that
ties the two together."""

from __future__ import annotations

import re
import time
from typing import Any

from tests.support.telegram_double import TelegramDouble

TAG = re.compile(r"\bbm(\d+)q\b")


def tagged(seq: int) -> str:
    """The text an employee sends as message ``seq`` (plain words, no command)."""
    return f"Hello, this is message bm{seq}q about my week at work."


class BenchDouble(TelegramDouble):
    """`TelegramDouble` that stamps tagged messages on their way out and back."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delivered_at: dict[int, float] = {}
        """seq → perf_counter when the update was first handed to the bot."""
        self.received_at: dict[int, float] = {}
        """seq → perf_counter when the bot's sendMessage carrying it arrived."""
        self.duplicates = 0
        self.send_calls = 0

    async def _api_getUpdates(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        result = await super()._api_getUpdates(params, files)
        now = time.perf_counter()
        for update in result:
            text = (update.get("message") or {}).get("text") or ""
            match = TAG.search(text)
            if match:
                self.delivered_at.setdefault(int(match.group(1)), now)
        return result

    async def _api_sendMessage(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        now = time.perf_counter()
        self.send_calls += 1
        match = TAG.search(str(params.get("text") or ""))
        if match:
            seq = int(match.group(1))
            if seq in self.received_at:
                self.duplicates += 1
            else:
                self.received_at[seq] = now
        return await super()._api_sendMessage(params, files)

    def forget_history(self) -> None:
        """Drop recorded requests and sent messages (a long run must not grow
        the double's memory and slow it down)."""
        self.requests.clear()
        self._sent.clear()
        self._messages.clear()
