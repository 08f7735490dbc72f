"""``[[admins]]``: administrators, by name (web admin console) and chat identities (/admin)."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from bot.config.base import MXID, Problem, Section


class AdminEntry(Section):
    """One administrator: a ``name`` for the web admin console (login links
    from ``confidant admin token --admin NAME``), chat identities for ``/admin``."""

    name: str | None = None
    telegram: str | None = None
    matrix: str | None = None
    web: str | None = None

    @field_validator("telegram", mode="before")
    @classmethod
    def _telegram_number(cls, value: Any) -> Any:
        """Accept a bare number, since Telegram ids are numbers in the app."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    def problems(self, key: str) -> list[Problem]:
        """An admin must be recognisable somewhere, by a well-formed id."""
        if not any((self.name, self.telegram, self.matrix, self.web)):
            return [(key, "give name, telegram, matrix or web (at least one)")]
        found: list[Problem] = []
        if self.name is not None and not 0 < len(self.name.strip()) <= 80:
            found.append((f"{key}.name", "must be 1 to 80 characters"))
        if self.telegram is not None and not self.telegram.lstrip("-").isdigit():
            found.append((f"{key}.telegram", "expected a numeric Telegram user id"))
        if self.matrix is not None and not MXID.match(self.matrix):
            found.append((f"{key}.matrix", 'expected a Matrix id like "@name:server"'))
        if self.web is not None and not self.web.strip():
            found.append((f"{key}.web", "must not be empty"))
        return found
