"""``[privacy]``: how long anything about a case is kept."""

from __future__ import annotations

from pydantic import Field

from bot.config.base import Section


class PrivacyConfig(Section):
    """How long anything about a case is kept."""

    retention_days: int = Field(default=90, ge=1, le=3650)
    """Closed cases are erased this many days after closing."""
    idle_close_days: int = Field(default=30, ge=1, le=365)
    """A case with no message for this long is closed automatically."""
