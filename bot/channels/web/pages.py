"""The web channel's static side: four HTML shells (employee chat, resume,
console, the quick-exit weather page), their scripts, styles and UI strings,
all from the package's ``static`` folder and nothing from another site.  The
shells carry only the organisation's name and settings; their scripts fill
them in from the WebSocket."""

from __future__ import annotations

import html
import json
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
        self._weather: dict[str, bytes] = {}

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
        """The four HTML pages; all static shells filled by their scripts, but
        the quick-exit page, which is whole when it arrives (see `weather`)."""
        if request.path == "/weather":
            return self.weather(request)
        body = self.render(PAGES[request.path])
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    def weather(self, request: web.Request) -> web.Response:
        """The neutral page a quick exit lands on, in the reader's language
        (``?l=`` from the tab that left, else the browser's), complete without
        any script: someone looking over a shoulder sees a weather page in the
        language they expect."""
        lang = self.weather_language(request.query.get("l", ""),
                                     request.headers.get("Accept-Language", ""))
        if lang not in self._weather:
            strings = json.loads((STATIC_DIR / "i18n.json").read_text(encoding="utf-8"))
            words = strings.get(lang) or strings["en"]
            text = (STATIC_DIR / PAGES["/weather"]).read_text(encoding="utf-8")
            text = text.replace("{{lang}}", html.escape(lang))
            text = re.sub(r"\{\{t:([a-z0-9_]+)\}\}",
                          lambda m: html.escape(words.get(m.group(1), "")), text)
            self._weather[lang] = text.encode()
        return web.Response(body=self._weather[lang], content_type="text/html", charset="utf-8")

    def weather_language(self, asked: str, accept: str) -> str:
        """The language of the quick-exit page: the one the tab was using if
        the organisation offers it, else the browser's first offered one."""
        if asked in self.languages:
            return asked
        for part in accept.split(","):
            primary = part.split(";")[0].strip().split("-")[0].lower()
            if primary in self.languages:
                return primary
        return self.default_language

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
