"""The web channel's static side: four HTML shells (employee chat, resume,
console, the quick-exit weather page), their scripts, styles and UI strings,
all from the package's ``static`` folder and nothing from another site.  The
shells carry only the organisation's name and settings; their scripts fill
them in from the WebSocket."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).with_name("static")
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
}
PAGES = {
    "/": "index.html",
    "/resume": "resume.html",
    "/console": "console.html",
    "/weather": "weather.html",
}


class Pages:
    """Serves the shells (filled once, then cached) and the static files."""

    def __init__(
        self, org_name: str, languages: Sequence[str], default_language: str, max_text: int
    ) -> None:
        self.org_name = org_name
        self.languages = list(languages)
        self.default_language = default_language
        self.max_text = max_text
        self._filled: dict[str, bytes] = {}

    def render(self, filename: str) -> bytes:
        """``filename`` from the static folder with its placeholders filled."""
        if filename not in self._filled:
            text = (STATIC_DIR / filename).read_text(encoding="utf-8")
            text = (
                text.replace("{{org_name}}", html.escape(self.org_name))
                .replace("{{languages}}", html.escape(",".join(self.languages)))
                .replace("{{default_language}}", html.escape(self.default_language))
                .replace("{{max_text}}", str(self.max_text))
            )
            self._filled[filename] = text.encode()
        return self._filled[filename]

    async def page(self, request: web.Request) -> web.Response:
        """The four HTML pages; all static shells filled by their scripts."""
        body = self.render(PAGES[request.path])
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def static(self, request: web.Request) -> web.Response:
        """Scripts, styles and the UI strings; only plain names from our folder."""
        name = request.match_info["name"]
        suffix = Path(name).suffix
        if not re.fullmatch(r"[a-z0-9_-]+\.(js|css|json)", name) or suffix not in STATIC_TYPES:
            raise web.HTTPNotFound()
        path = STATIC_DIR / name
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(
            body=path.read_bytes(), content_type=STATIC_TYPES[suffix], charset="utf-8"
        )

    async def health(self, request: web.Request) -> web.Response:
        """Liveness probe for the operator; says nothing about anyone."""
        return web.json_response({"ok": True})
