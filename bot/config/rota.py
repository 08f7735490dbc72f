"""``[rota]``: what the rota should cover (office hours)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from bot.config.base import Section
from domain.parsing import OfficeHours, ParseError, parse_office_hours


def check_office_hours(value: Any) -> Any:
    """Office hours as `domain.parsing.parse_office_hours` reads them."""
    if isinstance(value, str):
        try:
            parse_office_hours(value)
        except ParseError as err:
            raise PydanticCustomError("office_hours", str(err)) from None
    return value


class RotaConfig(Section):
    """What the rota should cover."""

    office_hours: Annotated[str, BeforeValidator(check_office_hours)] = "mon-fri 09:00-17:00"
    """When someone should be on duty, e.g. ``"mon-thu 08:30-17:00, fri 08:30-12:30"``;
    the admin service warns about the hours nobody covers ("" for no warning)."""

    @property
    def hours(self) -> OfficeHours:
        return parse_office_hours(self.office_hours)
