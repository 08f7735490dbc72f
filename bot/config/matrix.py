"""``[matrix]``: the Matrix channel (end-to-end encrypted per-case rooms)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field

from bot.config.base import HTTP, MXID, ConfigPath, Problem, Section, secret

DEFAULT_MATRIX_STORE = "confidant-data/matrix-store"


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

    def checked(self, base: Path, problems: list[Problem]) -> Self:
        """Homeserver, account and credentials of an enabled Matrix channel."""
        if not self.enabled:
            return self
        update: dict[str, Any] = {}
        if not self.homeserver:
            problems.append(("matrix.homeserver", 'missing (e.g. "https://matrix.example.org")'))
        elif not HTTP.match(self.homeserver):
            problems.append(("matrix.homeserver", 'expected an address like "https://matrix.…"'))
        if not self.user_id:
            problems.append(("matrix.user_id",
                             'missing (the bot account, e.g. "@confidant:server")'))
        elif not MXID.match(self.user_id):
            problems.append(("matrix.user_id", 'expected a Matrix id like "@confidant:server"'))
        if not self.device_name.strip():
            problems.append(("matrix.device_name", "must not be empty"))
        given = [f for f in ("password", "access_token") if (getattr(self, f) or "").strip()]
        if not given:
            problems.append((
                "matrix.password",
                "missing: give matrix.password or matrix.access_token "
                '(e.g. "env:CONFIDANT_MATRIX_PASSWORD")',
            ))
        for field in given:
            update[field] = secret(getattr(self, field), f"matrix.{field}",
                                   f"CONFIDANT_MATRIX_{field.upper()}", base, problems)
        return self.model_copy(update=update)

    def runtime_problems(self) -> list[Problem]:
        """The store folder must exist or be creatable by the bot."""
        return creatable_dir("matrix.store_dir", self.store_dir) if self.enabled else []


def creatable_dir(key: str, path: Path) -> list[Problem]:
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
