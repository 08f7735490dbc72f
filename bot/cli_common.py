"""What every ``confidant`` command that opens the store shares: where the
config is, who runs the command (for the audit trail), a migrated store
whose key check passes, the admin service over it, and terminal output.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.config import Config, load_config
from handlers.administration.service import AdminService, AdminSettings
from store.admin import admin_tx
from store.crypto import load_master_key
from store.db import is_sqlite
from store.keyring import check_master
from store.migrate import current_revision, head_revision
from store.store import Store


class UserError(Exception):
    """Something the admin can fix; printed as one line, exit code 1."""


def config_path(args: argparse.Namespace) -> Path:
    """``--config``, else ``$CONFIDANT_CONFIG``, else ``./config.toml`` (DESIGN.md)."""
    given = getattr(args, "config", None)
    if given:
        return Path(given)
    return Path(os.environ.get("CONFIDANT_CONFIG") or "config.toml")


def os_user() -> str:
    """Who runs the command, for audit events and the eligibility attestation."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def actor() -> str:
    """The audit actor of every CLI action."""
    return f"admin:cli:{os_user()}"


def now() -> datetime:
    """Current time in UTC (stored as such)."""
    return datetime.now(UTC)


def shown_url(url: str) -> str:
    """A database URL safe to print (no password)."""
    try:
        parsed = make_url(url)
    except Exception:  # printing must never fail
        return "(database)"
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def _missing_sqlite_file(url: str) -> str | None:
    """The SQLite file of ``url`` when it does not exist (opening would create it)."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return None if Path(database).exists() else database


async def ensure_migrated(url: str) -> None:
    """Refuse to work on a missing or outdated database with the command that fixes it."""
    missing = _missing_sqlite_file(url)
    if missing is not None:
        raise UserError(f"database {missing} does not exist (run: confidant init)")
    have = await current_revision(url)
    want = head_revision()
    if have is None:
        raise UserError(f"database {shown_url(url)} is not initialised (run: confidant init)")
    if have != want:
        raise UserError(
            f"database {shown_url(url)} is at revision {have}, this version needs {want} "
            "(run: confidant migrate)"
        )


@asynccontextmanager
async def open_store(args: argparse.Namespace) -> AsyncIterator[tuple[Config, Store]]:
    """Config, master key and a migrated database whose key check passes."""
    config = load_config(config_path(args))
    key = load_master_key(config.store.key_file)
    await ensure_migrated(config.store.url)
    store = Store.open(config.store.url, key)
    try:
        async with store.tx() as tx:
            await check_master(tx.session, store.crypto)
        yield config, store
    finally:
        await store.close()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns for the terminal."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths).rstrip())
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def show(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> int:
    """Print a listing, or what to do when there is nothing to list."""
    print(table(headers, rows) if rows else empty)
    return 0


def write_output(text: str, target: str | None) -> None:
    """Print, or write to a file (owner-only: exports may be sensitive)."""
    if target is None or target == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or type(exc).__name__})") from None
    print(f"written to {path}")


def admin_settings(config: Config) -> AdminSettings:
    """What the admin service needs from the configuration."""
    return AdminSettings(timezone=config.organisation.timezone,
                         office_hours=config.rota.hours,
                         default_language=config.organisation.default_language,
                         configured_admins=tuple(a.name for a in config.admins if a.name))


@asynccontextmanager
async def open_service(args: argparse.Namespace) -> AsyncIterator[tuple[Config, AdminService]]:
    """The admin service over one transaction, acting for the OS user."""
    async with open_store(args) as (config, store), admin_tx(store) as tx:
        yield config, AdminService(tx, actor(), now(), admin_settings(config))


def warn(lines: Sequence[object]) -> None:
    """Warnings of the service (office hours nobody covers), on stderr."""
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)
