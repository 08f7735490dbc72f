"""``[appointments]``: how in-person talks are cut into bookable slots."""

from __future__ import annotations

from pydantic import Field

from bot.config.base import Section


class AppointmentsConfig(Section):
    """How in-person talks are cut into bookable slots."""

    slot_minutes: int = Field(default=45, ge=10, le=240)
    buffer_minutes: int = Field(default=15, ge=0, le=120)
    days_ahead: int = Field(default=21, ge=1, le=120)
