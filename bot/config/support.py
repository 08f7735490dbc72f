"""``[support]``: what employees are promised about answers."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field

from bot.config.base import Problem, Section


class SupportConfig(Section):
    """Promises made to employees about answers."""

    response_hours: int = Field(default=24, ge=1, le=240)
    """Told to employees as the time within which a confidant answers."""
    escalation_hours: int = Field(default=4, ge=1, le=240)
    """An unclaimed case is announced to every confidant after this delay."""

    def checked(self, base: Path, problems: list[Problem]) -> Self:
        if self.escalation_hours > self.response_hours:
            problems.append((
                "support.escalation_hours",
                f"{self.escalation_hours} is more than support.response_hours "
                f"({self.response_hours}): unclaimed cases would be escalated after "
                "the answer time promised to employees",
            ))
        return self
