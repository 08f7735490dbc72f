"""``[web]``: the built-in web chat, confidant console and admin console."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from bot.config.base import HTTP, Listen, Problem, Section, split_listen


class WebConfig(Section):
    """The built-in web chat and confidant console."""

    enabled: bool = True
    listen: Listen = "127.0.0.1:8080"
    public_url: str | None = None
    """The address employees open (behind a reverse proxy); links are built from it."""

    @property
    def host_port(self) -> tuple[str, int]:
        """Address for the web server to bind."""
        return split_listen(self.listen)

    def checked(self, base: Path, problems: list[Problem]) -> Self:
        if self.public_url is not None and not HTTP.match(self.public_url):
            problems.append(("web.public_url", 'expected an http(s) address, e.g. "https://…"'))
        return self
