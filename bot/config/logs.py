"""``[logging]``: log verbosity (logs never carry content or identities at any level)."""

from __future__ import annotations

from typing import Literal

from bot.config.base import Section


class LoggingConfig(Section):
    """Log verbosity (logs never carry content or identities at any level)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
