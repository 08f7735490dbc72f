"""What every section of ``config.toml`` shares: the strict model base, paths
relative to the config file, listen addresses, secrets given as ``env:`` or
``file:``, and the wording of a problem.

A section is a Pydantic model (`Section`) that checks its own shape and
types; what needs several of its keys, the environment or the file system is
its `Section.checked`, beside the model in the section's module.  A problem
is ``(key path, what is wrong)``; `bot.config.loading` puts the file name in
front.  Input values are never echoed (they may be secrets).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo
from pydantic_core import PydanticCustomError

Problem = tuple[str, str]
"""(key path, what is wrong) before the file name is put in front."""

EXAMPLE_MARKER = re.compile(r"\bchange[-_ ]?me\b", re.IGNORECASE)
"""What ``config.example.toml`` writes where a real value must go."""
HTTP = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)
MXID = re.compile(r"^@[^:\s]+:[^\s]+$")

_LISTEN = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-]+)):(?P<port>\d{1,5})$"
)


class Section(BaseModel):
    """Common settings: unknown keys are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True)

    def checked(self, base: Path, problems: list[Problem]) -> Self:
        """Checks that need several keys, the environment or the files, run
        once the shape is right; returns the section with secrets resolved
        and paths made absolute, adding what is wrong to ``problems``."""
        return self


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


def did_you_mean(word: str, choices: list[str]) -> str:
    """A hint for a misspelt key or value."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def secret(
    value: str | None, key: str, env_hint: str, base: Path, problems: list[Problem]
) -> str | None:
    """Resolve ``env:NAME`` / ``file:PATH`` so secrets can stay out of the config file."""
    if value is None:
        return None
    if value.startswith("env:"):
        name = value[4:].strip()
        if not name:
            problems.append((key, f'"env:" needs a variable name, e.g. "env:{env_hint}"'))
            return None
        env_value = os.environ.get(name)
        if env_value is None:
            problems.append((key, f"environment variable {name} is not set"))
            return None
        value = env_value.strip()
        if not value:
            problems.append((key, f"environment variable {name} is empty"))
            return None
    elif value.startswith("file:"):
        path = Path(value[5:].strip()).expanduser()
        if not path.is_absolute():
            path = base / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            problems.append((key, f"secret file {path} is not UTF-8 text"))
            return None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            problems.append((key, f"cannot read secret file {path} ({reason})"))
            return None
        if not value:
            problems.append((key, f"secret file {path} is empty"))
            return None
    if EXAMPLE_MARKER.search(value):
        problems.append((key, f'still the example value; replace it (or write "env:{env_hint}")'))
        return None
    return value
