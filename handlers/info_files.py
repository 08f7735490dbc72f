"""The content files' shape and its checks, for `handlers.info` (which
documents the format): the parsed page, help line and language, the crisis
entries' matching rules, and every validation that names the file and key
of a problem (`ContentError`)."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CONTENT_PACKAGE = "handlers"
CONTENT_DIR = "content"
SHIPPED_LABEL = "handlers/content"

MAX_TITLE_CHARS = 60
"""Titles are button labels; longer ones wrap badly on a phone."""
MAX_BODY_CHARS = 3500
"""Below Telegram's 4096-character message limit, with room for a footer."""

DEFAULT_ORDER = 1000
"""A page without ``order`` comes after the shipped pages (which use < 1000)."""

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
LANG_FILE_RE = re.compile(r"^([a-z]{2})\.toml$")
CLAUSE_END = "|"
"""What clause punctuation becomes in normalised text (its own word)."""
_CLAUSE_PUNCT = frozenset(".!?;:,\n\r…¿¡")

_PAGE_KEYS = frozenset({"title", "body", "parent", "order"})
_HELPLINE_KEYS = frozenset({"id", "name", "number", "note"})
_SECTIONS = frozenset({"pages", "crisis", "emergency", "helplines"})


class ContentError(ValueError):
    """Invalid content: raised at load time so a broken file stops the bot
    with one clear line instead of a broken menu in front of a person in
    distress."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class Page:
    """One information page in one language."""

    id: str
    title: str
    body: str
    parent: str | None
    order: int


@dataclass(frozen=True, slots=True)
class Helpline:
    """A help line as data, so tests and organisations can check and extend
    the numbers without parsing prose."""

    id: str
    name: str
    number: str
    note: str = ""


@dataclass(slots=True)
class LanguageContent:
    """Everything for one language while it is being assembled."""

    pages: dict[str, Page]
    page_origin: dict[str, tuple[str, str]]
    """(file, key prefix) that last defined each page, to blame the right file."""
    crisis_words: list[str]
    emergency: str
    helplines: dict[str, Helpline]


def normalize_for_matching(text: str) -> str:
    """Fold case, accents and punctuation so that the way a distressed person
    happens to type a phrase (capitals, no accents, curly apostrophes) does
    not decide whether it is recognised.  Clause punctuation becomes ``|``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    out: list[str] = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        if ch in _CLAUSE_PUNCT:
            out.append(f" {CLAUSE_END} ")
        elif ch.isalnum():
            out.append(ch)
        else:
            out.append(" ")
    return " ".join("".join(out).split())


def crisis_entry_words(entry: str) -> tuple[list[str], str] | None:
    """One reviewed crisis entry as its normalised words and its tail (``*``:
    the last word may continue, ``$``: the phrase ends its clause, ``""``:
    neither), or None when no words are left after normalisation."""
    tail = entry[-1] if entry.endswith(("*", "$")) else ""
    core = entry[:-1] if tail else entry
    words = [w for w in normalize_for_matching(core).split() if w != CLAUSE_END]
    return (words, tail) if words else None


def parse_toml(label: str, raw: str) -> dict[str, Any]:
    """Parse TOML, turning a syntax error into a ContentError with the file name."""
    try:
        return tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(label, "", f"not valid TOML: {exc}") from None


def table_at(file: str, key: str, value: object) -> dict[str, Any]:
    """Insist on a TOML table, because a misplaced ``=`` silently turns one
    into a string."""
    if not isinstance(value, dict):
        raise ContentError(file, key, "must be a table")
    return value


def _text(file: str, key: str, value: object, limit: int | None = None) -> str:
    """Insist on a non-empty string (within a length limit)."""
    if not isinstance(value, str) or not value.strip():
        raise ContentError(file, key, "must be a non-empty string")
    if limit is not None and len(value) > limit:
        raise ContentError(file, key, f"too long ({len(value)} characters, at most {limit})")
    return value.strip()


def _check_keys(file: str, key: str, table: Mapping[str, object], allowed: frozenset[str]) -> None:
    """Refuse unknown keys so a typo (``titel``) is caught, not ignored."""
    for name in table:
        if name not in allowed:
            where = f"{key}.{name}" if key else name
            expected = ", ".join(sorted(allowed))
            raise ContentError(file, where, f"unknown key (expected one of {expected})")


def _page(
    file: str, key: str, page_id: str, table: Mapping[str, object], base: Page | None
) -> Page:
    """Build one page from a table, on top of the shipped page when overriding."""
    if not _ID_RE.match(page_id):
        raise ContentError(file, key, "page id must be lower-case letters, digits, '-' or '_'")
    _check_keys(file, key, table, _PAGE_KEYS)
    if base is None:
        for required in ("title", "body"):
            if required not in table:
                raise ContentError(file, f"{key}.{required}", "missing")
    title = base.title if base else ""
    if "title" in table:
        title = _text(file, f"{key}.title", table["title"], MAX_TITLE_CHARS)
    body = base.body if base else ""
    if "body" in table:
        body = _text(file, f"{key}.body", table["body"], MAX_BODY_CHARS)
    parent = base.parent if base else None
    if "parent" in table:
        raw_parent = table["parent"]
        if not isinstance(raw_parent, str):
            raise ContentError(file, f"{key}.parent", "must be a string (a page id, or '')")
        parent = raw_parent.strip() or None
    order = base.order if base else DEFAULT_ORDER
    if "order" in table:
        raw_order = table["order"]
        if isinstance(raw_order, bool) or not isinstance(raw_order, int):
            raise ContentError(file, f"{key}.order", "must be an integer")
        order = raw_order
    return Page(id=page_id, title=title, body=body, parent=parent, order=order)


def _helpline(file: str, key: str, table: Mapping[str, object]) -> Helpline:
    """Build one help line entry."""
    _check_keys(file, key, table, _HELPLINE_KEYS)
    for required in ("id", "name", "number"):
        if required not in table:
            raise ContentError(file, f"{key}.{required}", "missing")
    note = table.get("note", "")
    if not isinstance(note, str):
        raise ContentError(file, f"{key}.note", "must be a string")
    return Helpline(
        id=_text(file, f"{key}.id", table["id"]),
        name=_text(file, f"{key}.name", table["name"]),
        number=_text(file, f"{key}.number", table["number"]),
        note=note.strip(),
    )


def _helplines(file: str, key: str, value: object) -> list[Helpline]:
    """Read an array of help line tables."""
    if not isinstance(value, list):
        raise ContentError(file, key, "must be an array of tables ([[helplines]])")
    result = []
    for i, item in enumerate(value):
        result.append(_helpline(file, f"{key}[{i}]", table_at(file, f"{key}[{i}]", item)))
    return result


def _crisis_words(file: str, key: str, value: object) -> list[str]:
    """Read and check a crisis word list; every entry must still mean
    something after normalisation, or it would silently never match."""
    crisis = table_at(file, key, value)
    _check_keys(file, key, crisis, frozenset({"words"}))
    if "words" not in crisis:
        raise ContentError(file, f"{key}.words", "missing")
    words = crisis["words"]
    if not isinstance(words, list) or not words:
        raise ContentError(file, f"{key}.words", "must be a non-empty array of strings")
    for i, word in enumerate(words):
        where = f"{key}.words[{i}]"
        if not isinstance(word, str) or not word.strip():
            raise ContentError(file, where, "must be a non-empty string")
        if word.endswith(("*$", "$*")) or "*" in word[:-1] or "$" in word[:-1]:
            raise ContentError(file, where, "'*' or '$' may only appear once, at the end")
        if crisis_entry_words(word) is None:
            raise ContentError(file, where, "has no letters or digits")
    return [w.strip() for w in words]


def _emergency(file: str, key: str, value: object) -> str:
    """Read the urgent-help text."""
    table = table_at(file, key, value)
    _check_keys(file, key, table, frozenset({"text"}))
    if "text" not in table:
        raise ContentError(file, f"{key}.text", "missing")
    return _text(file, f"{key}.text", table["text"], MAX_BODY_CHARS)


def shipped_language(file: str, data: Mapping[str, object]) -> LanguageContent:
    """Validate one shipped content file, where every section is required."""
    _check_keys(file, "", data, _SECTIONS)
    for section in ("pages", "crisis", "emergency"):
        if section not in data:
            raise ContentError(file, section, "missing")
    pages_table = table_at(file, "pages", data["pages"])
    if not pages_table:
        raise ContentError(file, "pages", "has no pages")
    pages: dict[str, Page] = {}
    origin: dict[str, tuple[str, str]] = {}
    for page_id, raw in pages_table.items():
        key = f"pages.{page_id}"
        pages[page_id] = _page(file, key, page_id, table_at(file, key, raw), None)
        origin[page_id] = (file, "")
    helplines = {h.id: h for h in _helplines(file, "helplines", data.get("helplines", []))}
    return LanguageContent(
        pages=pages,
        page_origin=origin,
        crisis_words=_crisis_words(file, "crisis", data["crisis"]),
        emergency=_emergency(file, "emergency", data["emergency"]),
        helplines=helplines,
    )


def apply_override(file: str, lang: str, data: Mapping[str, object],
                   target: LanguageContent) -> None:
    """Layer one language section of an organisation file onto the shipped
    content: pages merge field by field, crisis words only grow."""
    _check_keys(file, lang, data, _SECTIONS)
    if "pages" in data:
        for page_id, raw in table_at(file, f"{lang}.pages", data["pages"]).items():
            key = f"{lang}.pages.{page_id}"
            base = target.pages.get(page_id)
            target.pages[page_id] = _page(file, key, page_id, table_at(file, key, raw), base)
            target.page_origin[page_id] = (file, f"{lang}.")
    if "crisis" in data:
        target.crisis_words.extend(_crisis_words(file, f"{lang}.crisis", data["crisis"]))
    if "emergency" in data:
        target.emergency = _emergency(file, f"{lang}.emergency", data["emergency"])
    if "helplines" in data:
        for line in _helplines(file, f"{lang}.helplines", data["helplines"]):
            target.helplines[line.id] = line


def check_tree(content: LanguageContent) -> None:
    """Every parent exists and is top-level, so menus never dead-end and stay
    within three levels (root menu, page, child page)."""
    for page in content.pages.values():
        if page.parent is None:
            continue
        file, prefix = content.page_origin[page.id]
        key = f"{prefix}pages.{page.id}.parent"
        if page.parent == page.id:
            raise ContentError(file, key, "a page cannot be its own parent")
        parent = content.pages.get(page.parent)
        if parent is None:
            raise ContentError(file, key, f"no page {page.parent!r}")
        if parent.parent is not None:
            raise ContentError(
                file, key, f"{page.parent!r} is a child page; menus are at most 3 levels deep"
            )


def check_languages_agree(languages: Sequence[str],
                          contents: Mapping[str, LanguageContent]) -> None:
    """Page trees must be the same in every language, so switching language
    never strands a person on a page that does not exist there."""
    reference = languages[0]
    ref = contents[reference]
    for lang in languages[1:]:
        other = contents[lang]
        for page_id, page in ref.pages.items():
            if page_id not in other.pages:
                file, prefix = ref.page_origin[page_id]
                if prefix:  # the organisation added it for the reference language only
                    where = (file, f"{lang}.pages.{page_id}")
                else:
                    where = (f"{SHIPPED_LABEL}/{lang}.toml", f"pages.{page_id}")
                raise ContentError(*where, f"missing (the page exists in {reference})")
            theirs = other.pages[page_id]
            if (theirs.parent, theirs.order) != (page.parent, page.order):
                file, prefix = other.page_origin[page_id]
                raise ContentError(
                    file,
                    f"{prefix}pages.{page_id}",
                    f"parent/order differ from {reference} "
                    f"({theirs.parent!r}/{theirs.order} vs {page.parent!r}/{page.order})",
                )
        for page_id in other.pages:
            if page_id not in ref.pages:
                file, prefix = other.page_origin[page_id]
                raise ContentError(file, f"{prefix}pages.{page_id}", f"not present in {reference}")
