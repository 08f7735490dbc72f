"""Load and check ``config.toml``: every problem becomes one line naming its key.

`load_config` gives a validated `Config` (secrets resolved, paths absolute) or
raises `ConfigError` listing every problem found; `check_config` returns those
lines for ``confidant check-config`` and adds the checks that touch the
running system (key file, database).  Each section checks itself
(`Section.checked`, in the section's module); only what spans sections is
checked here.  Nothing here ever ends in a traceback.
"""

from __future__ import annotations

import asyncio
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.config.admins import AdminEntry
from bot.config.base import EXAMPLE_MARKER, Problem, Section, did_you_mean
from bot.config.errors import from_pydantic
from bot.config.matrix import DEFAULT_MATRIX_STORE, MatrixConfig
from bot.config.model import SECTIONS, Config
from bot.config.store import StoreConfig

_SECRET_FIELDS = {
    ("store", "url"),
    ("telegram", "token"),
    ("telegram", "webhook_secret"),
    ("matrix", "password"),
    ("matrix", "access_token"),
}
"""Checked for example values when resolved (`bot.config.base.secret`)."""
CHANNELS = ("telegram", "matrix", "web")


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` holds one printable line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_config(path: Path) -> Config:
    """Read and validate ``path`` so the app starts only on a usable configuration."""
    try:
        config, problems = _load(Path(path))[:2]
    except Exception as exc:  # the caller prints lines, never a traceback
        raise ConfigError(
            [f"{path}: unexpected error while loading ({type(exc).__name__})"]
        ) from exc
    if problems or config is None:
        raise ConfigError(problems or [f"{path}: unusable configuration"])
    return config


def check_config(path: Path, check_runtime: bool = True) -> list[str]:
    """Every problem with the config at ``path``, one line each (empty: all good).

    ``check_runtime=False`` skips the key file and database checks, for
    ``confidant init`` which is about to create them.  Safe to call with or
    without a running event loop.
    """
    if not check_runtime:
        return _problems_without_runtime(Path(path))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(check_config_async(path, check_runtime=True))
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, check_config_async(path, check_runtime=True)).result()


async def check_config_async(path: Path, check_runtime: bool = True) -> list[str]:
    """`check_config` for callers already inside an event loop."""
    path = Path(path)
    try:
        config, problems, partial = _load(path)
        if not check_runtime:
            return problems
        if config is not None:
            return problems + await runtime_problems(config)
        if partial is None:
            return problems
        # Other sections are broken, but the store is usable: report its state too.
        found = await _runtime(partial, None)
        return problems + [f"{path}: {key}: {what}" for key, what in found]
    except Exception as exc:  # a checker must report, never crash
        return [f"{path}: unexpected error while checking ({type(exc).__name__})"]


async def runtime_problems(config: Config) -> list[str]:
    """Problems only the running system reveals: key file access, database, Matrix store."""
    found = await _runtime(config.store, config.matrix)
    return [f"{config.label}: {key}: {what}" for key, what in found]


async def _runtime(store: StoreConfig, matrix: MatrixConfig | None) -> list[Problem]:
    """Key file, database and Matrix store checks on validated sections."""
    found = await store.runtime_problems()
    if matrix is not None:
        found.extend(matrix.runtime_problems())
    return found


def default_config(data_dir: Path) -> Config:
    """The embedded configuration for ``confidant demo``: SQLite and the web chat only."""
    data_dir = Path(data_dir).expanduser().absolute()
    raw: dict[str, Any] = {
        "organisation": {"name": "Demo organisation"},
        "store": {
            "url": f"sqlite+aiosqlite:///{data_dir / 'confidant.db'}",
            "key_file": str(data_dir / "master.key"),
        },
        "matrix": {"store_dir": str(data_dir / Path(DEFAULT_MATRIX_STORE).name)},
        "web": {"enabled": True, "listen": "127.0.0.1:8080"},
    }
    config, problems, _ = _build(raw, data_dir)
    if config is None:  # only if the defaults themselves are broken
        raise ConfigError([f"built-in defaults: {key}: {what}" for key, what in problems])
    return config


def _problems_without_runtime(path: Path) -> list[str]:
    """Static checks only, shielded from any unexpected exception."""
    try:
        return _load(path)[1]
    except Exception as exc:
        return [f"{path}: unexpected error while checking ({type(exc).__name__})"]


def _load(path: Path) -> tuple[Config | None, list[str], StoreConfig | None]:
    """Parse the file and validate it, collecting lines rather than stopping at the first.

    Also returns the store section when it alone is valid, so the runtime
    checks can still run on a file with problems elsewhere.
    """
    label = str(path)
    try:
        raw_bytes = path.read_bytes()
    except FileNotFoundError:
        return None, [f"{label}: no such file (copy config.example.toml and edit it)"], None
    except OSError as exc:
        return None, [f"{label}: cannot read the file ({exc.strerror or type(exc).__name__})"], None
    try:
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, [f"{label}: not UTF-8 text (byte {exc.start})"], None
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{label}: not valid TOML: {exc}"], None
    base = path.expanduser().absolute().parent
    config, problems, store = _build(raw, base)
    if config is not None:
        config._source = path
    return config, [f"{label}: {key}: {what}" for key, what in problems], store


def _build(
    raw: dict[str, Any], base: Path
) -> tuple[Config | None, list[Problem], StoreConfig | None]:
    """Validate each section on its own so one bad table does not hide the others."""
    problems: list[Problem] = []
    known = [*SECTIONS, "admins"]
    for key, value in raw.items():
        if key not in known:
            kind = "unknown section" if isinstance(value, dict) else "unknown key"
            problems.append((key, kind + did_you_mean(key, known)))
    context = {"base_dir": base}
    sections: dict[str, Section] = {}
    for name, model in SECTIONS.items():
        try:
            sections[name] = model.model_validate(raw.get(name, {}), context=context)
        except ValidationError as exc:
            problems.extend(from_pydantic(exc, name, model))
    admins = _admins(raw.get("admins", []), context, problems)
    examples = _example_values(raw)
    checked: list[Problem] = []
    for name, section in sections.items():
        sections[name] = section.checked(base, checked)
    for i, admin in enumerate(admins):
        checked.extend(admin.problems(f"admins[{i}]"))
    checked.extend(_no_channel(sections))
    shown = {key for key, _ in examples}
    problems.extend(examples)
    problems.extend(p for p in checked if p[0] not in shown)
    store = sections.get("store")
    if not isinstance(store, StoreConfig) or any(k.startswith("store") for k, _ in problems):
        store = None
    if problems:
        return None, problems, store
    try:
        config = Config.model_validate({**sections, "admins": admins})
    except ValidationError as exc:
        return None, from_pydantic(exc, "", Config), store
    return config, [], store


def _admins(raw: Any, context: dict[str, Any], problems: list[Problem]) -> list[AdminEntry]:
    """The ``[[admins]]`` tables, each validated on its own."""
    if not isinstance(raw, list):
        problems.append(("admins", "expected [[admins]] tables"))
        return []
    admins: list[AdminEntry] = []
    for i, entry in enumerate(raw):
        try:
            admins.append(AdminEntry.model_validate(entry, context=context))
        except ValidationError as exc:
            problems.extend(from_pydantic(exc, f"admins[{i}]", AdminEntry))
    return admins


def _no_channel(sections: dict[str, Section]) -> list[Problem]:
    """A bot nobody can reach is refused (when every channel section validated)."""
    channels = [sections.get(n) for n in CHANNELS]
    if all(c is not None for c in channels) and not any(
            getattr(c, "enabled", False) for c in channels):
        return [("web.enabled", "no channel is enabled (enable [web], [telegram] or [matrix])")]
    return []


def _example_values(raw: dict[str, Any]) -> list[Problem]:
    """Unedited example values in plain settings (secrets are checked when resolved)."""
    found: list[Problem] = []
    for key, value in _walk(raw, ""):
        section, _, rest = key.partition(".")
        field = rest.split(".")[-1]
        if (section, field) in _SECRET_FIELDS:
            continue
        if section in ("telegram", "matrix") and not _enabled(raw, section):
            continue
        if isinstance(value, str) and EXAMPLE_MARKER.search(value):
            found.append((key, f"still the example value '{value}'; replace it"))
    return found


def _enabled(raw: dict[str, Any], section: str) -> bool:
    """Whether a channel is switched on, read from the raw table."""
    table = raw.get(section)
    return isinstance(table, dict) and table.get("enabled") is True


def _walk(node: Any, prefix: str) -> list[tuple[str, Any]]:
    """Every leaf of a TOML tree with its key path."""
    if isinstance(node, dict):
        out: list[tuple[str, Any]] = []
        for k, v in node.items():
            out.extend(_walk(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(node, list):
        out = []
        for i, v in enumerate(node):
            out.extend(_walk(v, f"{prefix}[{i}]"))
        return out
    return [(prefix, node)]
