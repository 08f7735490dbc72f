"""``[store]``: where cases live (the database URL) and where the master key is kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Self

from pydantic import Field
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.config.base import ConfigPath, Problem, Section, secret
from store.ping import ping

DEFAULT_DATA_DIR = "confidant-data"
DEFAULT_STORE_URL = f"sqlite+aiosqlite:///{DEFAULT_DATA_DIR}/confidant.db"
DEFAULT_KEY_FILE = f"{DEFAULT_DATA_DIR}/master.key"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


class StoreConfig(Section):
    """Where cases live and where the master key is kept."""

    url: str = Field(default=DEFAULT_STORE_URL, repr=False)
    key_file: ConfigPath = Path(DEFAULT_KEY_FILE)

    def checked(self, base: Path, problems: list[Problem]) -> Self:
        """Resolve the URL secret and make a relative SQLite file absolute."""
        url = secret(self.url, "store.url", "CONFIDANT_STORE_URL", base, problems)
        if url is None:
            return self
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            problems.append((
                "store.url",
                'not a database URL (expected "sqlite+aiosqlite:///path/confidant.db" '
                'or "postgresql+asyncpg://user:password@host/dbname")',
            ))
            return self
        if parsed.drivername not in SUPPORTED_DRIVERS:
            hint = ("sqlite+aiosqlite" if parsed.get_backend_name() == "sqlite"
                    else "postgresql+asyncpg")
            problems.append((
                "store.url",
                f"driver '{parsed.drivername}' is not supported (write '{hint}://…'; "
                f"supported: {', '.join(SUPPORTED_DRIVERS)})",
            ))
            return self
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                path = Path(database).expanduser()
                if not path.is_absolute():
                    path = base / path
                parsed = parsed.set(database=str(Path(*path.parts)))
        return self.model_copy(update={"url": parsed.render_as_string(hide_password=False)})

    async def runtime_problems(self) -> list[Problem]:
        """What only the running system shows: the key file's access, the database."""
        found = key_file_problems(self.key_file)
        reason = await ping(self.url)
        if reason:
            found.append(("store.url", reason))
        return found


def key_file_problems(path: Path) -> list[Problem]:
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
        return [(key, f"{path} is readable by group or others (mode {mode:04o}); "
                      f"run: chmod 600 {path}")]
    if not os.access(path, os.R_OK):
        return [(key, f"{path} is not readable by this user")]
    return []
