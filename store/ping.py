"""Can the configured database be reached?  Answers ``check-config`` and start-up.

`ping` never raises and never creates anything: for SQLite it only checks that
the database file is readable or could be created; for a server it runs
``SELECT 1``.  The reason it returns is one line with no password in it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


async def ping(url: str, timeout: float = 5.0) -> str | None:  # noqa: ASYNC109 (contract)
    """Return why the database at ``url`` is unusable, or None when it answers."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "not a database URL"
    try:
        if parsed.get_backend_name() == "sqlite":
            return await _ping_sqlite(parsed, timeout)
        return await _ping_server(parsed, timeout)
    except Exception as exc:  # a check must report, never crash the caller
        return f"cannot check the database ({_short(exc, parsed)})"


async def _ping_sqlite(url: URL, seconds: float) -> str | None:
    """Check an SQLite file without creating it, so ``check-config`` has no side effects."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    path = Path(database)
    exists, problem = _sqlite_file_state(path)
    if problem or not exists:
        return problem
    return await _select(
        url.set(database=f"file:{path}", query={"mode": "ro", "uri": "true"}),
        "SELECT count(*) FROM sqlite_master",
        seconds,
        f"cannot open the SQLite database {path}",
    )


def _sqlite_file_state(path: Path) -> tuple[bool, str | None]:
    """Whether the file exists, and why it could not be used or created."""
    if path.exists():
        if not path.is_file():
            return True, f"{path} is not a file"
        if not os.access(path, os.R_OK | os.W_OK):
            return True, f"{path} is not readable and writable by this user"
        return True, None
    ancestor = path.parent
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return False, f"cannot create {path}: {ancestor} is not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return False, f"cannot create {path}: folder {ancestor} is not writable by this user"
    return False, None


async def _ping_server(url: URL, seconds: float) -> str | None:
    """Run ``SELECT 1`` on a database server within ``timeout`` seconds."""
    where = f"{url.host or 'localhost'}:{url.port or 'default port'}"
    return await _select(url, "SELECT 1", seconds, f"cannot connect to {where}")


async def _select(url: URL, sql: str, seconds: float, failure: str) -> str | None:
    """Connect, run one query, always dispose the engine; describe any failure."""
    connect_args: dict[str, object] = {}
    if url.get_driver_name() == "asyncpg":
        connect_args["timeout"] = seconds
    try:
        engine = create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
    except ModuleNotFoundError as exc:
        return f"database driver {exc.name!r} is not installed"
    try:
        async with asyncio.timeout(seconds):
            async with engine.connect() as conn:
                await conn.execute(text(sql))
    except TimeoutError:
        return f"{failure}: no answer within {seconds:g} s"
    except Exception as exc:
        return f"{failure} ({_short(exc, url)})"
    finally:
        await engine.dispose()
    return None


def _short(exc: BaseException, url: URL) -> str:
    """One line about ``exc``, without SQLAlchemy's boilerplate or the password."""
    inner = getattr(exc, "orig", None) or exc
    message = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    if url.password:
        message = message.replace(str(url.password), "***")
    message = message[:200]
    kind = type(inner.__cause__ or inner).__name__  # the driver's own error class
    return f"{kind}: {message}" if message else kind
