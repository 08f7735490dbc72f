"""Rendering the console's pages: Jinja2 templates (autoescaped) filled with
the admin's language strings from ``handlers/content/ui-webadmin.*.toml``.

Pages are complete without JavaScript (plain forms that post and come back);
the scripts only add drawing in the grid and dialogs.  No page carries an
inline script or style: the CSP forbids both, so data for the scripts rides
in a ``<script type="application/json">`` block, which is never executed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web
from babel.dates import format_date
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from bot.webadmin.gate import CSRF_FIELD, Admin
from handlers.i18n import LANGUAGE_NAMES, Translator

TEMPLATES = Path(__file__).with_name("templates")
PREFIX = "webadmin."

NAV = (("rota", "/admin/rota"), ("confidants", "/admin/confidants"),
       ("absences", "/admin/absences"), ("rooms", "/admin/rooms"),
       ("figures", "/admin/figures"), ("rota_file", "/admin/rota-file"))
"""The console's sections, in the order of the navigation bar."""


@dataclass
class View:
    """One request as a page sees it: who, in which language, what to say."""

    request: web.Request
    admin: Admin | None
    lang: str
    tr: Translator
    flash: list[tuple[str, str]] = field(default_factory=list)
    """(kind, text) notes to show at the top: ``ok`` or ``error``."""

    def show_outcome(self, done: Mapping[str, str], error: str = "",
                     query: Mapping[str, str] | None = None) -> None:
        """Say how the last change went: the refusal just met, else what the
        ``?done=`` of the redirect after it names (``done`` maps it to a string key)."""
        if error:
            self.flash.append(("error", error))
            return
        key = done.get((self.request.query if query is None else query).get("done", ""))
        if key is not None:
            self.flash.append(("ok", self.t(key)))

    def t(self, key: str, **values: object) -> str:
        """The console's string ``webadmin.<key>`` in the admin's language."""
        return self.tr.t(self.lang, PREFIX + key, **values)

    def tt(self, key: str, **values: object) -> str:
        """Any UI string by its full key (theme names, weekday names …)."""
        return self.tr.t(self.lang, key, **values)

    def number(self, value: float) -> str:
        """A number to one decimal at most, as the admin writes it (``6,5``)."""
        return format_decimal(round(value, 1), locale=self.lang)

    def day(self, moment: date, pattern: str = "EEE d MMM") -> str:
        """A date in the admin's language (``ma 23 mrt``)."""
        return format_date(moment, pattern, locale=self.lang)


class Pages:
    """The template environment, shared by every route."""

    def __init__(self, tr: Translator, org_name: str, languages: tuple[str, ...]) -> None:
        self.tr = tr
        self.org_name = org_name
        self.languages = languages
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html", "svg"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, view: View, template: str, status: int = 200,
               **context: Any) -> web.Response:
        """A whole page as a response; ``context`` is given to the template."""
        body = self.env.get_template(template).render(
            v=view, t=view.t, tt=view.tt, admin=view.admin, lang=view.lang,
            org_name=self.org_name, nav=NAV, section=context.pop("section", ""),
            languages=[(code, LANGUAGE_NAMES.get(code, code)) for code in self.languages],
            csrf_field=CSRF_FIELD, csrf=view.admin.csrf if view.admin else "",
            path=view.request.path, flash=view.flash, **context)
        return web.Response(status=status, text=body, content_type="text/html",
                            charset="utf-8")

    def fragment(self, template: str, **context: Any) -> str:
        """A piece of markup (an SVG chart) rendered on its own."""
        return self.env.get_template(template).render(**context)


def data_block(element_id: str, data: Any) -> Markup:
    """Data for a script, as a JSON block the browser never executes;
    ``<`` is escaped so the data cannot close the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return Markup(  # noqa: S704 - the id is ours, the JSON has no "<" left
        f'<script type="application/json" id="{element_id}">{text}</script>')
