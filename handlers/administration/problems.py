"""Refusals and warnings of the admin service, in a shape every front end can show.

A `Problem` carries a content key (``adm.rota_error.overlap`` …) with the
values to fill it, for the chat and the web admin console to say in the
admin's language, and one English line for the CLI.  ``field`` names the
input it is about (``day``, ``start``, ``end`` …) so a form can mark it.
Values named ``weekday`` (0 = Monday) and ``kind`` (a shift kind) are
words only once localised: `localised` does that with a front end's
translator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from domain.parsing import ParseError

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """Why a change is refused, or what it leaves wanting (a warning)."""

    key: str
    """Content key of the sentence (``adm.*`` or ``parse.*``)."""
    reason: str
    """The same in one English line, for the CLI."""
    values: Mapping[str, object] = field(default_factory=dict)
    field: str = ""
    """The input it is about, for a form ("" when it is about the whole change)."""

    def __str__(self) -> str:
        return self.reason


class AdminError(Exception):
    """A change the service refuses; nothing was written."""

    def __init__(self, key: str, reason: str, field: str = "", **values: object) -> None:
        super().__init__(reason)
        self.problem = Problem(key, reason, values, field)

    @property
    def key(self) -> str:
        return self.problem.key

    @property
    def values(self) -> Mapping[str, object]:
        return self.problem.values


def parsed(parser: Callable[[str], T], text: str, what: str) -> T:
    """Read typed input with `domain.parsing`; a refusal names the input."""
    try:
        return parser(text)
    except ParseError as err:
        raise AdminError(err.key, str(err), what, value=err.value) from None


def localised(problem: Problem, t: Callable[[str], str]) -> dict[str, object]:
    """The values of a problem ready for its sentence: ``weekday`` numbers
    become ``day`` names and ``kind`` codes words, through ``t(key)``."""
    values = dict(problem.values)
    weekday = values.pop("weekday", None)
    if isinstance(weekday, int):
        values["day"] = t(f"weekday.{weekday}")
    kind = values.get("kind")
    if isinstance(kind, str):
        values["kind"] = t(f"duty.kind.{kind}")
    return values
