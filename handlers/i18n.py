"""User-facing strings in nl / fr / en, loaded from ``content/ui.<lang>.toml``.

Strings are data, not code: a key missing in one language is a test failure,
and at run time falls back to the organisation's default language rather
than showing a key to a person in distress.  Dates and times are formatted
with Babel in the organisation's timezone.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from domain.vocabulary import SUPPORTED_LANGUAGES, Language

LANGUAGE_NAMES: dict[str, str] = {Language.NL: "Nederlands", Language.FR: "Français",
                                 Language.EN: "English"}
"""Each language by its own name, as a person picks it."""


def _flatten(prefix: str, table: Mapping[str, Any], out: dict[str, str]) -> None:
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            _flatten(full, value, out)
        elif isinstance(value, str):
            out[full] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[full] = "\n".join(value)


def string_files(lang: str) -> list[str]:
    """``ui.<lang>.toml`` plus any ``ui-<area>.<lang>.toml`` (one file per feature
    area keeps translations reviewable)."""
    folder = resources.files("handlers").joinpath("content")
    return sorted(f.name for f in folder.iterdir()
                  if f.name.startswith("ui") and f.name.endswith(f".{lang}.toml"))


@cache
def load_strings(lang: str) -> dict[str, str]:
    folder = resources.files("handlers").joinpath("content")
    out: dict[str, str] = {}
    for name in string_files(lang):
        _flatten("", tomllib.loads(folder.joinpath(name).read_text("utf-8")), out)
    return out


class Translator:
    """Looks up and fills strings for one organisation."""

    def __init__(self, default_language: str = Language.NL.value,
                 languages: Iterable[str] = SUPPORTED_LANGUAGES, timezone: str = "Europe/Brussels",
                 org_name: str = "") -> None:
        self.default = default_language
        self.languages = tuple(lang for lang in languages if lang in SUPPORTED_LANGUAGES)
        self.tz = ZoneInfo(timezone)
        self.org_name = org_name

    def pick(self, hint: str | None) -> str:
        """The person's language from a platform hint ("fr-BE" → fr), else the default."""
        if hint:
            short = hint.split("-")[0].split("_")[0].lower()
            if short in self.languages:
                return short
        return self.default

    def t(self, lang: str, key: str, **values: object) -> str:
        strings = load_strings(lang if lang in SUPPORTED_LANGUAGES else self.default)
        template = strings.get(key)
        if template is None:
            template = load_strings(self.default).get(key) or load_strings(Language.EN)[key]
        values.setdefault("org", self.org_name)
        return template.format(**values) if values else template

    def has(self, lang: str, key: str) -> bool:
        """Whether ``key`` has words (in ``lang``, the default or English), for
        labels that may name something the content does not know."""
        return any(key in load_strings(code) for code in
                   (lang if lang in SUPPORTED_LANGUAGES else self.default, self.default,
                    Language.EN))

    def when(self, lang: str, moment: datetime, style: str = "medium") -> str:
        """A date and time as a person in Brussels reads it, DST-correct."""
        fmt = "EEEE d MMMM y, HH:mm" if style == "long" else "EEE d MMM, HH:mm"
        return format_datetime(moment, fmt, tzinfo=self.tz, locale=lang)

    def day(self, lang: str, moment: datetime) -> str:
        return format_datetime(moment, "EEEE d MMMM y", tzinfo=self.tz, locale=lang)
