"""Typed sections of ``config.toml``: one Pydantic model per TOML table.

The models check shape and types (strict: TOML already has types, so no
string-to-number guessing) and turn relative paths into absolute ones against
the config file's folder.  Checks that need several keys, the environment or
the file system live in `bot.config`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain.parsing import OfficeHours, ParseError, parse_office_hours
from domain.vocabulary import SUPPORTED_LANGUAGES, Language

DEFAULT_DATA_DIR = "confidant-data"
DEFAULT_STORE_URL = f"sqlite+aiosqlite:///{DEFAULT_DATA_DIR}/confidant.db"
DEFAULT_KEY_FILE = f"{DEFAULT_DATA_DIR}/master.key"
DEFAULT_MATRIX_STORE = f"{DEFAULT_DATA_DIR}/matrix-store"

_LISTEN = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-]+)):(?P<port>\d{1,5})$"
)


def base_dir(info: ValidationInfo) -> Path:
    """Folder that relative paths hang from: the config file's, given as context."""
    ctx = info.context if isinstance(info.context, dict) else {}
    base = ctx.get("base_dir")
    return Path(base) if base is not None else Path.cwd()


def resolve_path(value: Any, info: ValidationInfo) -> Any:
    """Make a path absolute against the config folder so the process may chdir freely."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str):
        return value  # the strict Path check reports the wrong type
    if not value.strip():
        raise PydanticCustomError("empty_path", "must not be empty")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base_dir(info) / path
    return Path(*path.parts)  # normalise without touching the file system


def split_listen(value: str) -> tuple[str, int]:
    """Split ``host:port`` (or ``[v6]:port``) for the servers that bind it."""
    m = _LISTEN.match(value)
    if m is None:
        raise ValueError(value)
    host = m.group("v6") or m.group("host")
    port = int(m.group("port"))
    if not 0 < port < 65536:
        raise ValueError(value)
    return host, port


def check_listen(value: Any) -> Any:
    """Refuse a listen address the server could not bind, before it tries."""
    if isinstance(value, str):
        try:
            split_listen(value)
        except ValueError:
            raise PydanticCustomError(
                "listen", 'expected "host:port", e.g. "127.0.0.1:8080"'
            ) from None
    return value


ConfigPath = Annotated[Path, BeforeValidator(resolve_path)]
"""A path given in the config: absolute after validation."""
Listen = Annotated[str, BeforeValidator(check_listen)]
"""A ``host:port`` string a server binds."""


class Section(BaseModel):
    """Common settings: unknown keys are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True)


class OrganisationConfig(Section):
    """Who the bot speaks for, and in which languages and timezone."""

    name: str
    timezone: str = "Europe/Brussels"
    default_language: str = Language.NL.value
    languages: list[str] = Field(default_factory=lambda: list(SUPPORTED_LANGUAGES))
    content_override: ConfigPath | None = None
    """A TOML file (or folder of per-language files) overriding information pages."""


class StoreConfig(Section):
    """Where cases live and where the master key is kept."""

    url: str = Field(default=DEFAULT_STORE_URL, repr=False)
    key_file: ConfigPath = Path(DEFAULT_KEY_FILE)


class PrivacyConfig(Section):
    """How long anything about a case is kept."""

    retention_days: int = Field(default=90, ge=1, le=3650)
    """Closed cases are erased this many days after closing."""
    idle_close_days: int = Field(default=30, ge=1, le=365)
    """A case with no message for this long is closed automatically."""


class SupportConfig(Section):
    """Promises made to employees about answers."""

    response_hours: int = Field(default=24, ge=1, le=240)
    """Told to employees as the time within which a confidant answers."""
    escalation_hours: int = Field(default=4, ge=1, le=240)
    """An unclaimed case is announced to every confidant after this delay."""


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


class MatrixConfig(Section):
    """The Matrix channel (end-to-end encrypted per-case rooms)."""

    enabled: bool = False
    homeserver: str | None = None
    user_id: str | None = None
    password: str | None = Field(default=None, repr=False)
    access_token: str | None = Field(default=None, repr=False)
    device_name: str = "Confidant"
    store_dir: ConfigPath = Path(DEFAULT_MATRIX_STORE)
    trust: Literal["tofu", "all"] = "tofu"


class WebConfig(Section):
    """The built-in web chat and confidant console."""

    enabled: bool = True
    listen: Listen = "127.0.0.1:8080"
    public_url: str | None = None
    """The address employees open (behind a reverse proxy); links are built from it."""

    @property
    def host_port(self) -> tuple[str, int]:
        """Address for the web server to bind."""
        return split_listen(self.listen)


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


class AppointmentsConfig(Section):
    """How in-person talks are cut into bookable slots."""

    slot_minutes: int = Field(default=45, ge=10, le=240)
    buffer_minutes: int = Field(default=15, ge=0, le=120)
    days_ahead: int = Field(default=21, ge=1, le=120)


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


class MetricsConfig(Section):
    """Prometheus endpoint with anonymous counters only."""

    enabled: bool = False
    listen: Listen = "127.0.0.1:9464"

    @property
    def host_port(self) -> tuple[str, int]:
        """Address for the metrics server to bind."""
        return split_listen(self.listen)


class LoggingConfig(Section):
    """Log verbosity (logs never carry content or identities at any level)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"


class Config(Section):
    """The whole validated configuration; secrets are resolved, paths absolute."""

    organisation: OrganisationConfig
    store: StoreConfig = Field(default_factory=StoreConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    support: SupportConfig = Field(default_factory=SupportConfig)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    matrix: MatrixConfig = Field(default_factory=MatrixConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    admins: list[AdminEntry] = Field(default_factory=list)
    appointments: AppointmentsConfig = Field(default_factory=AppointmentsConfig)
    rota: RotaConfig = Field(default_factory=RotaConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file this was loaded from (None for the embedded default)."""
        return self._source

    @property
    def label(self) -> str:
        """Prefix for problem lines about this configuration."""
        return str(self._source) if self._source is not None else "built-in defaults"

    @property
    def enabled_channels(self) -> list[str]:
        """Names of the channels to start, in a stable order."""
        return [
            name
            for name, on in (
                ("telegram", self.telegram.enabled),
                ("matrix", self.matrix.enabled),
                ("web", self.web.enabled),
            )
            if on
        ]


SECTIONS: dict[str, type[Section]] = {
    name: info.annotation  # type: ignore[misc]
    for name, info in Config.model_fields.items()
    if name != "admins"
}
