"""The common ground of the admin service's parts: settings, the transaction,
the actor, lookups that refuse in the admin's words, and the reading of
typed days, times and dates (always `domain.parsing`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from domain.parsing import OfficeHours, parse_date, parse_time, parse_weekday
from handlers.administration.problems import AdminError, parsed
from handlers.administration.validation import DEFAULT_OFFICE_HOURS
from store.admin import AdminTx
from store.models import Confidant


@dataclass(frozen=True)
class AdminSettings:
    """What the service needs from the configuration."""

    timezone: str = "Europe/Brussels"
    office_hours: OfficeHours = DEFAULT_OFFICE_HOURS
    default_language: str = "nl"
    configured_admins: tuple[str, ...] = ()
    """Names of the ``[[admins]]`` entries that may use the web admin console."""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


Day = int | str
"""A weekday: 0 (Monday) … 6, or as typed (``mon``, ``1``, ``maandag``)."""
Clock = time | str
Calendar = date | str


def day_of(value: Day) -> int:
    """A weekday number from a number or from what was typed."""
    if isinstance(value, int):
        if not 0 <= value <= 6:
            raise AdminError("adm.rota_error.weekday", "unknown weekday", "day")
        return value
    return parsed(parse_weekday, value, "day")


def time_of(value: Clock, what: str) -> time:
    return value if isinstance(value, time) else parsed(parse_time, value, what)


def day_in(value: Calendar, what: str) -> date:
    """A date, or one typed in any form `parse_date` reads."""
    return value if isinstance(value, date) else parsed(parse_date, value, what)


class Retirable(Protocol):
    """A thing the admin removes by marking it inactive (confidants, rooms)."""

    @property
    def active(self) -> bool: ...


R = TypeVar("R", bound=Retirable)


async def active_by_ref(ref: str, by_id: Callable[[str], Awaitable[R | None]],
                        by_name: Callable[[str], Awaitable[R | None]], noun: str,
                        field: str, key: str) -> R:
    """An active ``noun`` by id or name (its id first), else a refusal that
    tells where to look (``confidant admin <noun> list``).  ``key`` is the
    refusal's content key, spelled out by the caller so the string check
    (tests/test_ui_strings.py) sees it."""
    ref = ref.strip()
    found = await by_id(ref) or await by_name(ref)
    if found is None or not found.active:
        raise AdminError(key, f"no {noun} named '{ref}' (see: confidant "
                         f"admin {noun} list)", field, name=ref)
    return found


class ServiceBase:
    """One admin's operations over one `AdminTx` (see `handlers.administration.service`)."""

    def __init__(self, tx: AdminTx, actor: str, now: datetime,
                 settings: AdminSettings | None = None) -> None:
        self.tx = tx
        self.actor = actor
        self.now = now
        self.settings = settings or AdminSettings()

    @property
    def today(self) -> date:
        return self.now.astimezone(self.settings.tz).date()

    async def audit(self, kind: str, subject: str = "", detail: str = "") -> None:
        await self.tx.record(self.actor, kind, subject, detail)

    # ------------------------------------------------------------ lookups

    async def _confidant(self, ref: str) -> Confidant:
        """An active confidant by id or name (case-insensitive when unique)."""
        return await active_by_ref(ref, self.tx.confidant_by_id, self.tx.confidant_by_name,
                                   "confidant", "confidant", "adm.unknown_confidant")

    async def _names(self) -> dict[str, str]:
        return {c.id: c.name for c in await self.tx.confidants(active_only=False)}


