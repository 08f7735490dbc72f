"""``[organisation]``: who the bot speaks for, in which languages and timezone."""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Self

from pydantic import Field

from bot.config.base import ConfigPath, Problem, Section, did_you_mean
from domain.vocabulary import SUPPORTED_LANGUAGES, Language


def unknown_language(lang: str) -> str:
    """Problem text for a language the bot has no texts for."""
    return f"unknown language '{lang}' (supported: {', '.join(SUPPORTED_LANGUAGES)})"


def timezone_problems(name: str) -> list[Problem]:
    """A timezone zoneinfo knows, since every shift and appointment depends on it."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        hint = did_you_mean(name, sorted(zoneinfo.available_timezones()))
        return [
            (
                "organisation.timezone",
                f"unknown timezone '{name}'" + (hint or ' (use a name like "Europe/Brussels")'),
            )
        ]
    return []


class OrganisationConfig(Section):
    """Who the bot speaks for, and in which languages and timezone."""

    name: str
    timezone: str = "Europe/Brussels"
    default_language: str = Language.NL.value
    languages: list[str] = Field(default_factory=lambda: list(SUPPORTED_LANGUAGES))
    content_override: ConfigPath | None = None
    """A TOML file (or folder of per-language files) overriding information pages."""

    def checked(self, base: Path, problems: list[Problem]) -> Self:
        """Name, timezone, languages and the content override file."""
        if not self.name.strip():
            problems.append(("organisation.name", "must not be empty"))
        problems.extend(timezone_problems(self.timezone))
        if not self.languages:
            problems.append(("organisation.languages", "must name at least one language"))
        seen: set[str] = set()
        for i, lang in enumerate(self.languages):
            if lang not in SUPPORTED_LANGUAGES:
                problems.append((f"organisation.languages[{i}]", unknown_language(lang)))
            elif lang in seen:
                problems.append((f"organisation.languages[{i}]", f"'{lang}' is listed twice"))
            seen.add(lang)
        if self.default_language not in SUPPORTED_LANGUAGES:
            problems.append(("organisation.default_language",
                             unknown_language(self.default_language)))
        elif self.languages and self.default_language not in self.languages:
            problems.append(("organisation.default_language",
                             f"'{self.default_language}' is not in organisation.languages"))
        if self.content_override is not None and not self.content_override.exists():
            problems.append(("organisation.content_override",
                             f"{self.content_override} does not exist"))
        return self
