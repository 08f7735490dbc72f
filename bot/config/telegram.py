"""``[telegram]``: the Telegram Bot API channel (polling or webhook)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field

from bot.config.base import HTTP, Listen, Problem, Section, secret, split_listen

_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class TelegramConfig(Section):
    """The Telegram Bot API channel."""

    enabled: bool = False
    token: str | None = Field(default=None, repr=False)
    base_url: str = ""
    """Empty: Telegram itself; else as python-telegram-bot takes it."""
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_listen: Listen = "127.0.0.1:8443"
    webhook_secret: str | None = Field(default=None, repr=False)

    @property
    def webhook_host_port(self) -> tuple[str, int]:
        """Address for the webhook server to bind."""
        return split_listen(self.webhook_listen)

    def checked(self, base: Path, problems: list[Problem]) -> Self:
        """Token, base URL and webhook settings of an enabled Telegram channel."""
        if not self.enabled:
            return self
        update: dict[str, Any] = {}
        if self.token is None or not self.token.strip():
            problems.append(
                ("telegram.token", 'missing (set it, or write "env:CONFIDANT_TELEGRAM_TOKEN")'))
        else:
            before = len(problems)
            token = secret(self.token, "telegram.token", "CONFIDANT_TELEGRAM_TOKEN", base,
                           problems)
            if token is not None and len(problems) == before and not _TOKEN.match(token):
                problems.append(("telegram.token", 'does not look like a bot token '
                                 '("123456789:AA…", from @BotFather)'))
            update["token"] = token
        if self.base_url and not HTTP.match(self.base_url):
            problems.append(("telegram.base_url", 'expected "" or an http(s) address like '
                             '"http://host:8081/bot"'))
        if self.mode == "webhook":
            update.update(self._webhook(base, problems))
        return self.model_copy(update=update)

    def _webhook(self, base: Path, problems: list[Problem]) -> dict[str, Any]:
        """Webhook mode needs a public address and a secret Telegram repeats."""
        if not self.webhook_url:
            problems.append(("telegram.webhook_url", 'missing (required when mode = "webhook")'))
        elif not HTTP.match(self.webhook_url):
            problems.append(("telegram.webhook_url", 'expected an address like "https://…"'))
        if self.webhook_secret is None or not self.webhook_secret.strip():
            problems.append((
                "telegram.webhook_secret",
                'missing (required when mode = "webhook", so forged updates are refused; '
                'write "env:CONFIDANT_TELEGRAM_WEBHOOK_SECRET")',
            ))
            return {}
        before = len(problems)
        value = secret(self.webhook_secret, "telegram.webhook_secret",
                       "CONFIDANT_TELEGRAM_WEBHOOK_SECRET", base, problems)
        if value is not None and len(problems) == before and not _WEBHOOK_SECRET.match(value):
            problems.append(("telegram.webhook_secret",
                             "use 1 to 256 characters among A-Z, a-z, 0-9, _ and -"))
        return {"webhook_secret": value}
