"""Load and check ``config.toml``: every problem becomes one line naming its key.

`load_config` gives a validated `Config` (secrets resolved, paths absolute) or
raises `ConfigError` listing every problem found; `check_config` returns those
lines for ``confidant check-config`` and adds the checks that touch the
running system (key file, database).  Nothing here ever ends in a traceback.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import stat
import tomllib
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.config_models import (
    DEFAULT_MATRIX_STORE,
    SECTIONS,
    AdminEntry,
    Config,
    MatrixConfig,
    OrganisationConfig,
    Section,
    StoreConfig,
    SupportConfig,
    TelegramConfig,
    WebConfig,
)
from domain.vocabulary import SUPPORTED_LANGUAGES
from store.ping import ping

__all__ = [
    "Config",
    "ConfigError",
    "check_config",
    "check_config_async",
    "default_config",
    "load_config",
    "runtime_problems",
]

EXAMPLE_MARKER = re.compile(r"\bchange[-_ ]?me\b", re.IGNORECASE)
"""What ``config.example.toml`` writes where a real value must go."""

_SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_MXID = re.compile(r"^@[^:\s]+:[^\s]+$")
_HTTP = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)
_SECRET_FIELDS = {
    ("store", "url"),
    ("telegram", "token"),
    ("telegram", "webhook_secret"),
    ("matrix", "password"),
    ("matrix", "access_token"),
}

Problem = tuple[str, str]
"""(key path, what is wrong) before the file name is put in front."""


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
    found: list[Problem] = []
    found.extend(_key_file_problems(store.key_file))
    reason = await ping(store.url)
    if reason:
        found.append(("store.url", reason))
    if matrix is not None and matrix.enabled:
        found.extend(_creatable_dir("matrix.store_dir", matrix.store_dir))
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
            problems.append((key, kind + _did_you_mean(key, known)))
    context = {"base_dir": base}
    sections: dict[str, Any] = {}
    for name, model in SECTIONS.items():
        data = raw.get(name, {})
        try:
            sections[name] = model.model_validate(data, context=context)
        except ValidationError as exc:
            problems.extend(_from_pydantic(exc, name, model))
    admins: list[AdminEntry] = []
    raw_admins = raw.get("admins", [])
    if not isinstance(raw_admins, list):
        problems.append(("admins", "expected [[admins]] tables"))
        raw_admins = []
    for i, entry in enumerate(raw_admins):
        try:
            admins.append(AdminEntry.model_validate(entry, context=context))
        except ValidationError as exc:
            problems.extend(_from_pydantic(exc, f"admins[{i}]", AdminEntry))
    examples = _example_values(raw)
    checked: list[Problem] = []
    _check_sections(sections, admins, base, checked)
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
        return None, _from_pydantic(exc, "", Config), store
    return config, [], store


def _check_sections(
    sections: dict[str, Any], admins: list[AdminEntry], base: Path, problems: list[Problem]
) -> None:
    """Cross-key checks and secret resolution on the sections that validated."""
    org = sections.get("organisation")
    if isinstance(org, OrganisationConfig):
        problems.extend(_organisation_problems(org))
    store = sections.get("store")
    if isinstance(store, StoreConfig):
        sections["store"] = _checked_store(store, base, problems)
    support = sections.get("support")
    if isinstance(support, SupportConfig) and support.escalation_hours > support.response_hours:
        problems.append(
            (
                "support.escalation_hours",
                f"{support.escalation_hours} is more than support.response_hours "
                f"({support.response_hours}): unclaimed cases would be escalated after "
                "the answer time promised to employees",
            )
        )
    telegram = sections.get("telegram")
    if isinstance(telegram, TelegramConfig) and telegram.enabled:
        sections["telegram"] = _checked_telegram(telegram, base, problems)
    matrix = sections.get("matrix")
    if isinstance(matrix, MatrixConfig) and matrix.enabled:
        sections["matrix"] = _checked_matrix(matrix, base, problems)
    web = sections.get("web")
    if isinstance(web, WebConfig) and web.public_url is not None:
        if not _HTTP.match(web.public_url):
            problems.append(("web.public_url", 'expected an http(s) address, e.g. "https://…"'))
    for i, admin in enumerate(admins):
        problems.extend(_admin_problems(i, admin))
    channels = [sections.get(n) for n in ("telegram", "matrix", "web")]
    if all(isinstance(c, Section) for c in channels) and not any(
        getattr(c, "enabled", False) for c in channels
    ):
        problems.append(
            ("web.enabled", "no channel is enabled (enable [web], [telegram] or [matrix])")
        )


def _organisation_problems(org: OrganisationConfig) -> list[Problem]:
    """Name, timezone, languages and the content override file."""
    found: list[Problem] = []
    if not org.name.strip():
        found.append(("organisation.name", "must not be empty"))
    found.extend(_timezone_problems(org.timezone))
    if not org.languages:
        found.append(("organisation.languages", "must name at least one language"))
    seen: set[str] = set()
    for i, lang in enumerate(org.languages):
        if lang not in SUPPORTED_LANGUAGES:
            found.append((f"organisation.languages[{i}]", _unknown_language(lang)))
        elif lang in seen:
            found.append((f"organisation.languages[{i}]", f"'{lang}' is listed twice"))
        seen.add(lang)
    if org.default_language not in SUPPORTED_LANGUAGES:
        found.append(("organisation.default_language", _unknown_language(org.default_language)))
    elif org.languages and org.default_language not in org.languages:
        found.append(
            (
                "organisation.default_language",
                f"'{org.default_language}' is not in organisation.languages",
            )
        )
    if org.content_override is not None and not org.content_override.exists():
        found.append(("organisation.content_override", f"{org.content_override} does not exist"))
    return found


def _timezone_problems(name: str) -> list[Problem]:
    """A timezone zoneinfo knows, since every shift and appointment depends on it."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        hint = _did_you_mean(name, sorted(zoneinfo.available_timezones()))
        return [
            (
                "organisation.timezone",
                f"unknown timezone '{name}'" + (hint or ' (use a name like "Europe/Brussels")'),
            )
        ]
    return []


def _unknown_language(lang: str) -> str:
    """Problem text for a language the bot has no texts for."""
    return f"unknown language '{lang}' (supported: {', '.join(SUPPORTED_LANGUAGES)})"


def _checked_store(store: StoreConfig, base: Path, problems: list[Problem]) -> StoreConfig:
    """Resolve the URL secret and make a relative SQLite file absolute."""
    url = _secret(store.url, "store.url", "CONFIDANT_STORE_URL", base, problems)
    if url is None:
        return store
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        problems.append(
            (
                "store.url",
                'not a database URL (expected "sqlite+aiosqlite:///path/confidant.db" '
                'or "postgresql+asyncpg://user:password@host/dbname")',
            )
        )
        return store
    if parsed.drivername not in _SUPPORTED_DRIVERS:
        hint = "sqlite+aiosqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+asyncpg"
        problems.append(
            (
                "store.url",
                f"driver '{parsed.drivername}' is not supported (write '{hint}://…'; "
                f"supported: {', '.join(_SUPPORTED_DRIVERS)})",
            )
        )
        return store
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database).expanduser()
            if not path.is_absolute():
                path = base / path
            parsed = parsed.set(database=str(Path(*path.parts)))
    return store.model_copy(update={"url": parsed.render_as_string(hide_password=False)})


def _checked_telegram(tg: TelegramConfig, base: Path, problems: list[Problem]) -> TelegramConfig:
    """Token, base URL and webhook settings of an enabled Telegram channel."""
    update: dict[str, Any] = {}
    if tg.token is None or not tg.token.strip():
        problems.append(
            ("telegram.token", 'missing (set it, or write "env:CONFIDANT_TELEGRAM_TOKEN")')
        )
    else:
        before = len(problems)
        token = _secret(tg.token, "telegram.token", "CONFIDANT_TELEGRAM_TOKEN", base, problems)
        if token is not None and len(problems) == before and not _TOKEN.match(token):
            problems.append(
                (
                    "telegram.token",
                    'does not look like a bot token ("123456789:AA…", from @BotFather)',
                )
            )
        update["token"] = token
    if tg.base_url and not _HTTP.match(tg.base_url):
        problems.append(
            ("telegram.base_url", 'expected "" or an http(s) address like "http://host:8081/bot"')
        )
    if tg.mode == "webhook":
        if not tg.webhook_url:
            problems.append(("telegram.webhook_url", 'missing (required when mode = "webhook")'))
        elif not _HTTP.match(tg.webhook_url):
            problems.append(("telegram.webhook_url", 'expected an address like "https://…"'))
        if tg.webhook_secret is None or not tg.webhook_secret.strip():
            problems.append(
                (
                    "telegram.webhook_secret",
                    'missing (required when mode = "webhook", so forged updates are refused; '
                    'write "env:CONFIDANT_TELEGRAM_WEBHOOK_SECRET")',
                )
            )
        else:
            before = len(problems)
            secret = _secret(
                tg.webhook_secret,
                "telegram.webhook_secret",
                "CONFIDANT_TELEGRAM_WEBHOOK_SECRET",
                base,
                problems,
            )
            if secret is not None and len(problems) == before and not _WEBHOOK_SECRET.match(secret):
                problems.append(
                    (
                        "telegram.webhook_secret",
                        "use 1 to 256 characters among A-Z, a-z, 0-9, _ and -",
                    )
                )
            update["webhook_secret"] = secret
    return tg.model_copy(update=update)


def _checked_matrix(mx: MatrixConfig, base: Path, problems: list[Problem]) -> MatrixConfig:
    """Homeserver, account and credentials of an enabled Matrix channel."""
    update: dict[str, Any] = {}
    if not mx.homeserver:
        problems.append(("matrix.homeserver", 'missing (e.g. "https://matrix.example.org")'))
    elif not _HTTP.match(mx.homeserver):
        problems.append(("matrix.homeserver", 'expected an address like "https://matrix.…"'))
    if not mx.user_id:
        problems.append(("matrix.user_id", 'missing (the bot account, e.g. "@confidant:server")'))
    elif not _MXID.match(mx.user_id):
        problems.append(("matrix.user_id", 'expected a Matrix id like "@confidant:server"'))
    if not mx.device_name.strip():
        problems.append(("matrix.device_name", "must not be empty"))
    given = [f for f in ("password", "access_token") if (getattr(mx, f) or "").strip()]
    if not given:
        problems.append(
            (
                "matrix.password",
                "missing: give matrix.password or matrix.access_token "
                '(e.g. "env:CONFIDANT_MATRIX_PASSWORD")',
            )
        )
    for field in given:
        env = f"CONFIDANT_MATRIX_{field.upper()}"
        update[field] = _secret(getattr(mx, field), f"matrix.{field}", env, base, problems)
    return mx.model_copy(update=update)


def _admin_problems(i: int, admin: AdminEntry) -> list[Problem]:
    """An admin must be recognisable on at least one channel, by a well-formed id."""
    key = f"admins[{i}]"
    if not any((admin.name, admin.telegram, admin.matrix, admin.web)):
        return [(key, "give name, telegram, matrix or web (at least one)")]
    found: list[Problem] = []
    if admin.name is not None and not 0 < len(admin.name.strip()) <= 80:
        found.append((f"{key}.name", "must be 1 to 80 characters"))
    if admin.telegram is not None and not admin.telegram.lstrip("-").isdigit():
        found.append((f"{key}.telegram", "expected a numeric Telegram user id"))
    if admin.matrix is not None and not _MXID.match(admin.matrix):
        found.append((f"{key}.matrix", 'expected a Matrix id like "@name:server"'))
    if admin.web is not None and not admin.web.strip():
        found.append((f"{key}.web", "must not be empty"))
    return found


def _secret(
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


def _key_file_problems(path: Path) -> list[Problem]:
    """The master key must exist and be readable by its owner only."""
    key = "store.key_file"
    try:
        st = path.stat()
    except FileNotFoundError:
        return [(key, f'{path} does not exist (run "confidant init" to create it)')]
    except OSError as exc:
        return [(key, f"cannot read {path} ({exc.strerror or type(exc).__name__})")]
    if not stat.S_ISREG(st.st_mode):
        return [(key, f"{path} is not a file")]
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return [
            (
                key,
                f"{path} is readable by group or others (mode {mode:04o}); run: chmod 600 {path}",
            )
        ]
    if not os.access(path, os.R_OK):
        return [(key, f"{path} is not readable by this user")]
    return []


def _creatable_dir(key: str, path: Path) -> list[Problem]:
    """A folder the bot needs must exist or be creatable by it."""
    if path.exists():
        if not path.is_dir():
            return [(key, f"{path} is not a folder")]
        if not os.access(path, os.W_OK | os.X_OK):
            return [(key, f"folder {path} is not writable by this user")]
        return []
    ancestor = path.parent
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        return [(key, f"cannot create {path} ({ancestor} is not a writable folder)")]
    return []


def _did_you_mean(word: str, choices: list[str]) -> str:
    """A hint for a misspelt key or value."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _from_pydantic(exc: ValidationError, prefix: str, model: type[BaseModel]) -> list[Problem]:
    """Turn Pydantic's errors into key-path lines a non-programmer can act on."""
    found: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        key = prefix
        for part in loc:
            if isinstance(part, int):
                key += f"[{part}]"
            else:
                key = f"{key}.{part}" if key else str(part)
        found.append((key or "(top level)", _describe(err, loc, model)))
    return found


_TYPE_WORDS = {
    "string_type": "expected a string (in quotes)",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "list_type": 'expected a list, e.g. ["a", "b"]',
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "dict_type": "expected a table",
    "path_type": "expected a path (a string)",
    "is_instance_of": "expected a path (a string)",
}


def _describe(err: Any, loc: tuple[int | str, ...], model: type[BaseModel]) -> str:
    """Words for one Pydantic error; inputs are named by type, never echoed (secrets)."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        owner = _model_at(model, loc[:-1])
        choices = list(owner.model_fields) if owner else []
        return "unknown key" + _did_you_mean(name, choices)
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]}, got {_toml_type(err.get('input'))}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')}, got {err['input']!r}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    message = str(err["msg"])
    return message[:1].lower() + message[1:]


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model owning a location, to list the keys it accepts."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        current = fields[part].annotation
        args = getattr(current, "__args__", None)
        if args:  # list[Model] and Model | None
            current = next(
                (a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), current
            )
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _toml_type(value: Any) -> str:
    """Name a value's TOML type without printing it."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date/time"
    return type(value).__name__
