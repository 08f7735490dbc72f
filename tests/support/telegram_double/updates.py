"""How the double hands updates to the bot: long polling (``getUpdates``,
with Telegram's offsets, timeouts and its conflict between two pollers) and
webhooks (one POST at a time, retried until a 2xx)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.support.telegram_double.protocol import DEFAULT_UPDATE_KINDS, ApiError
from tests.support.telegram_double.state import DoubleState


class UpdateMethods(DoubleState):
    """``getUpdates``, ``setWebhook``, ``deleteWebhook``, ``getWebhookInfo``."""

    async def _api_getUpdates(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        allowed = params.get("allowed_updates")
        if allowed is not None:
            self._allowed = set(allowed) if allowed else set(DEFAULT_UPDATE_KINDS)
        self._confirm(params.get("offset"))
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0, int(params.get("timeout") or 0))
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # an older long poll of this bot is terminated
        deadline = time.monotonic() + timeout
        while True:
            if self._updates:
                return self._updates[:limit]
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing:
                return []
            event = self._update_event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    async def _api_setWebhook(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        url = params.get("url") or ""
        if not url:
            return await self._api_deleteWebhook(params, files)
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost"):
            raise ApiError(400, "Bad Request: bad webhook: the double only calls 127.0.0.1")
        secret = params.get("secret_token")
        if secret is not None and not (
            1 <= len(secret) <= 256 and all(c.isalnum() or c in "_-" for c in secret)
        ):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        allowed = params.get("allowed_updates")
        if allowed is not None:
            self._allowed = set(allowed) if allowed else set(DEFAULT_UPDATE_KINDS)
        self.webhook_url = url
        self.webhook_secret = secret
        self._poll_generation += 1
        self._wake_pollers()
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._push_webhooks())
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        self.webhook_url = ""
        self.webhook_secret = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._wake_pollers()
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _push_webhooks(self) -> None:
        """POST each pending update to the webhook, one at a time, until it gets a 2xx."""
        backoff = 0.05
        async with aiohttp.ClientSession() as session:
            while self.webhook_url and not self._closing:
                if not self._updates:
                    event = self._update_event
                    try:
                        await asyncio.wait_for(event.wait(), 1.0)
                    except TimeoutError:
                        pass
                    continue
                update = self._updates[0]
                headers = {}
                if self.webhook_secret:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
                try:
                    async with session.post(
                        self.webhook_url,
                        json=update,
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=10),
                    ) as resp:
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                self.webhook_deliveries.append((update["update_id"], status))
                if 200 <= status < 300:
                    if self._updates and self._updates[0] is update:
                        self._updates.pop(0)
                    backoff = 0.05
                else:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
