"""The whole configuration: one field per section, each section in its own module."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PrivateAttr

from bot.config.admins import AdminEntry
from bot.config.appointments import AppointmentsConfig
from bot.config.base import Section
from bot.config.logs import LoggingConfig
from bot.config.matrix import MatrixConfig
from bot.config.metrics import MetricsConfig
from bot.config.organisation import OrganisationConfig
from bot.config.privacy import PrivacyConfig
from bot.config.rota import RotaConfig
from bot.config.store import StoreConfig
from bot.config.support import SupportConfig
from bot.config.telegram import TelegramConfig
from bot.config.web import WebConfig


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
