"""Information pages, crisis words and urgent-help texts, loaded from data.

The shipped content lives in ``handlers/content/<lang>.toml`` (Dutch is the
reference; French and English mirror its page tree).  An organisation may
layer its own file on top (its prevention advisor, internal policy, its own
numbers); the path comes from the config.  `InfoLibrary` validates both and
answers the questions the info menus and the crisis check ask.

Shape of a shipped content file (``nl.toml``)::

    [pages.<id>]          # id: lower-case letters, digits, "-" or "_"
    title = "..."         # short: it is a button label
    body = "..."          # plain text, fits in one chat message
    parent = "<id>"       # absent or "" for a top-level page
    order = 10            # position among its siblings (default 1000: last)

    [crisis]
    words = ["zelfmoord*", "ik kan niet meer$", "hij slaat me"]

    [emergency]
    text = "..."          # the urgent-help message for this language

    [[helplines]]         # structured numbers, also used by the tests
    id = "tele-onthaal"
    name = "Tele-Onthaal"
    number = "106"
    note = "..."          # optional

Pages nest at most two deep below the root menu (root menu, top-level page,
child page): a page's parent must itself be a top-level page.  Every loaded
language has the same page ids with the same parents and orders.

Crisis entries are matched case-insensitively, ignoring accents and
punctuation (so ``n'en`` matches ``n’en`` and ``n en``), on whole words.  A
trailing ``*`` lets the last word continue (``zelfmoord*`` also matches
``zelfmoordlijn``); a trailing ``$`` requires the phrase to end its clause
(``ik kan niet meer$`` matches "ik kan niet meer." but not "ik kan niet meer
wachten").

Shape of an organisation override file: the same sections, one table per
language code::

    [nl.pages.advisor]        # a new page: title and body are required
    title = "Onze preventieadviseur"
    body = "Mevr. ... bereik je op ..."
    parent = "formal"
    order = 15

    [nl.pages.help]           # an existing page: only the given fields change
    body = "..."

    [nl.emergency]
    text = "..."              # replaces the shipped urgent-help text

    [nl.crisis]
    words = ["..."]           # added to the shipped words, never replacing them

    [[nl.helplines]]          # added; an existing id is replaced
    id = "eap"
    name = "Employee assistance"
    number = "0800 00 000"

Override sections for a shipped language that is not loaded are validated and
then ignored.  Any problem raises `ContentError` naming the file and the key.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from domain.messages import Button, Menu
from domain.vocabulary import SUPPORTED_LANGUAGES

__all__ = [
    "ContentError",
    "Helpline",
    "InfoLibrary",
    "Page",
    "available_languages",
    "normalize_for_matching",
    "walk",
]

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
_LANG_FILE_RE = re.compile(r"^([a-z]{2})\.toml$")
_CLAUSE_END = "|"
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
class _Lang:
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
            out.append(f" {_CLAUSE_END} ")
        elif ch.isalnum():
            out.append(ch)
        else:
            out.append(" ")
    return " ".join("".join(out).split())


def _crisis_pattern(entry: str) -> str | None:
    """Turn one reviewed crisis entry into a regex fragment, or None when the
    entry has no words left after normalisation."""
    prefix = entry.endswith("*")
    clause_end = entry.endswith("$")
    core = entry[:-1] if prefix or clause_end else entry
    words = [w for w in normalize_for_matching(core).split() if w != _CLAUSE_END]
    if not words:
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    if prefix:
        tail = r"\w*"
    elif clause_end:
        tail = rf"(?=\s*(?:{re.escape(_CLAUSE_END)}|$))"
    else:
        tail = r"(?!\w)"
    return rf"(?<!\w){body}{tail}"


def available_languages() -> list[str]:
    """Languages that have a shipped content file, so config validation can
    refuse a language nobody wrote pages for."""
    folder = resources.files(CONTENT_PACKAGE) / CONTENT_DIR
    found = []
    for item in folder.iterdir():
        match = _LANG_FILE_RE.match(item.name)
        if match and item.is_file():
            found.append(match.group(1))
    return sorted(found)


def _read_shipped(lang: str) -> tuple[str, dict[str, Any]]:
    """Read one shipped file through importlib.resources so the bot works
    from an installed wheel as well as from a checkout."""
    label = f"{SHIPPED_LABEL}/{lang}.toml"
    if not _LANG_FILE_RE.match(f"{lang}.toml"):
        raise ContentError(label, "", f"not a language code: {lang!r}")
    resource = resources.files(CONTENT_PACKAGE) / CONTENT_DIR / f"{lang}.toml"
    try:
        raw = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        raise ContentError(label, "", "no content for this language") from None
    return label, _parse(label, raw)


def _parse(label: str, raw: str) -> dict[str, Any]:
    """Parse TOML, turning a syntax error into a ContentError with the file name."""
    try:
        return tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(label, "", f"not valid TOML: {exc}") from None


def _table(file: str, key: str, value: object) -> dict[str, Any]:
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
        result.append(_helpline(file, f"{key}[{i}]", _table(file, f"{key}[{i}]", item)))
    return result


def _crisis_words(file: str, key: str, value: object) -> list[str]:
    """Read and check a crisis word list; every entry must still mean
    something after normalisation, or it would silently never match."""
    crisis = _table(file, key, value)
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
        if _crisis_pattern(word) is None:
            raise ContentError(file, where, "has no letters or digits")
    return [w.strip() for w in words]


def _emergency(file: str, key: str, value: object) -> str:
    """Read the urgent-help text."""
    table = _table(file, key, value)
    _check_keys(file, key, table, frozenset({"text"}))
    if "text" not in table:
        raise ContentError(file, f"{key}.text", "missing")
    return _text(file, f"{key}.text", table["text"], MAX_BODY_CHARS)


def _shipped_language(file: str, data: Mapping[str, object]) -> _Lang:
    """Validate one shipped content file, where every section is required."""
    _check_keys(file, "", data, _SECTIONS)
    for section in ("pages", "crisis", "emergency"):
        if section not in data:
            raise ContentError(file, section, "missing")
    pages_table = _table(file, "pages", data["pages"])
    if not pages_table:
        raise ContentError(file, "pages", "has no pages")
    pages: dict[str, Page] = {}
    origin: dict[str, tuple[str, str]] = {}
    for page_id, raw in pages_table.items():
        key = f"pages.{page_id}"
        pages[page_id] = _page(file, key, page_id, _table(file, key, raw), None)
        origin[page_id] = (file, "")
    helplines = {h.id: h for h in _helplines(file, "helplines", data.get("helplines", []))}
    return _Lang(
        pages=pages,
        page_origin=origin,
        crisis_words=_crisis_words(file, "crisis", data["crisis"]),
        emergency=_emergency(file, "emergency", data["emergency"]),
        helplines=helplines,
    )


def _apply_override(file: str, lang: str, data: Mapping[str, object], target: _Lang) -> None:
    """Layer one language section of an organisation file onto the shipped
    content: pages merge field by field, crisis words only grow."""
    _check_keys(file, lang, data, _SECTIONS)
    if "pages" in data:
        for page_id, raw in _table(file, f"{lang}.pages", data["pages"]).items():
            key = f"{lang}.pages.{page_id}"
            base = target.pages.get(page_id)
            target.pages[page_id] = _page(file, key, page_id, _table(file, key, raw), base)
            target.page_origin[page_id] = (file, f"{lang}.")
    if "crisis" in data:
        target.crisis_words.extend(_crisis_words(file, f"{lang}.crisis", data["crisis"]))
    if "emergency" in data:
        target.emergency = _emergency(file, f"{lang}.emergency", data["emergency"])
    if "helplines" in data:
        for line in _helplines(file, f"{lang}.helplines", data["helplines"]):
            target.helplines[line.id] = line


def _check_tree(content: _Lang) -> None:
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


def _check_languages_agree(languages: Sequence[str], contents: Mapping[str, _Lang]) -> None:
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


class InfoLibrary:
    """The validated information pages, crisis words and urgent-help texts
    for the organisation's languages.  Immutable after `load`."""

    def __init__(
        self, contents: Mapping[str, _Lang], other_crisis_words: Iterable[str] = ()
    ) -> None:
        self._pages = {lang: dict(c.pages) for lang, c in contents.items()}
        self._children: dict[str, dict[str | None, list[Page]]] = {}
        for lang, pages in self._pages.items():
            tree: dict[str | None, list[Page]] = {}
            for page in pages.values():
                tree.setdefault(page.parent, []).append(page)
            for siblings in tree.values():
                siblings.sort(key=lambda p: (p.order, p.id))
            self._children[lang] = tree
        self._emergency = {lang: c.emergency for lang, c in contents.items()}
        self._helplines = {lang: list(c.helplines.values()) for lang, c in contents.items()}
        self._crisis_words = {lang: tuple(c.crisis_words) for lang, c in contents.items()}
        every_word = [w for c in contents.values() for w in c.crisis_words]
        every_word.extend(other_crisis_words)
        patterns = sorted({p for w in every_word if (p := _crisis_pattern(w))})
        self._crisis_re = re.compile("|".join(patterns)) if patterns else None
        self._languages = tuple(contents)

    @classmethod
    def load(
        cls, override: Path | None = None, languages: Sequence[str] = SUPPORTED_LANGUAGES
    ) -> InfoLibrary:
        """Read and validate the shipped content and the organisation's
        override once at start-up, so every later lookup is safe."""
        if not languages:
            raise ContentError(SHIPPED_LABEL, "", "no languages requested")
        langs = list(dict.fromkeys(languages))
        contents: dict[str, _Lang] = {}
        for lang in langs:
            file, data = _read_shipped(lang)
            contents[lang] = _shipped_language(file, data)
        unused: dict[str, _Lang] = {}
        if override is not None:
            unused = cls._merge_override(Path(override), langs, contents)
        for lang in langs:
            _check_tree(contents[lang])
        _check_languages_agree(langs, contents)
        # Crisis words of languages the organisation does not offer still
        # count: a person may type their distress in their own language anyway.
        for lang in available_languages():
            if lang not in contents and lang not in unused:
                unused[lang] = _shipped_language(*_read_shipped(lang))
        return cls(contents, [w for c in unused.values() for w in c.crisis_words])

    @staticmethod
    def _merge_override(
        path: Path, langs: Sequence[str], contents: dict[str, _Lang]
    ) -> dict[str, _Lang]:
        """Apply the organisation file.  Sections for shipped languages that are
        not in use are checked against a copy of the shipped content; those
        copies are returned (only their crisis words are kept)."""
        file = str(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ContentError(file, "", f"cannot read: {exc.strerror or exc}") from None
        data = _parse(file, raw)
        shipped = set(available_languages())
        unused: dict[str, _Lang] = {}
        for lang, section in data.items():
            if lang not in shipped:
                raise ContentError(
                    file, lang, f"unknown language (expected one of {', '.join(sorted(shipped))})"
                )
            table = _table(file, lang, section)
            if lang in contents:
                _apply_override(file, lang, table, contents[lang])
            else:
                scratch = _shipped_language(*_read_shipped(lang))
                _apply_override(file, lang, table, scratch)
                _check_tree(scratch)
                unused[lang] = scratch
        return unused

    @property
    def languages(self) -> tuple[str, ...]:
        """The loaded languages, reference first."""
        return self._languages

    def _lang(self, lang: str) -> str:
        """Fall back to the first loaded language so a stale language choice
        still shows help instead of failing."""
        return lang if lang in self._pages else self._languages[0]

    def root(self, lang: str) -> list[Page]:
        """Top-level pages in menu order: what `/info` shows first."""
        return list(self._children[self._lang(lang)].get(None, []))

    def page(self, lang: str, page_id: str) -> Page | None:
        """One page, or None for an unknown id (a stale or forged button)."""
        return self._pages[self._lang(lang)].get(page_id)

    def children(self, lang: str, page_id: str) -> list[Page]:
        """Sub-pages in menu order, shown as buttons under a page."""
        if page_id not in self._pages[self._lang(lang)]:
            return []
        return list(self._children[self._lang(lang)].get(page_id, []))

    def parent(self, lang: str, page_id: str) -> str | None:
        """Where a "back" button leads; None means the root menu."""
        page = self.page(lang, page_id)
        return page.parent if page else None

    def page_ids(self) -> list[str]:
        """All page ids (the same in every language), for token tables and tests."""
        return sorted(self._pages[self._languages[0]])

    def menu(self, lang: str, page_id: str | None, token: Callable[[str], str]) -> Menu:
        """Buttons for the sub-pages of a page (or the top-level pages for
        None), one per row; ``token`` maps a page id to the opaque button
        token the caller will resolve.  Back/home buttons are the caller's,
        as their labels are UI strings."""
        pages = self.root(lang) if page_id is None else self.children(lang, page_id)
        return Menu(rows=tuple((Button(label=p.title, token=token(p.id)),) for p in pages))

    def is_crisis(self, lang: str, text: str | None) -> bool:
        """True when a message contains a reviewed crisis phrase in any shipped
        language, loaded or not (people switch language under stress), so the
        caller can show the urgent-help numbers at once.  ``lang`` is accepted
        for symmetry; all languages' words are checked."""
        if not text or self._crisis_re is None:
            return False
        return self._crisis_re.search(normalize_for_matching(text)) is not None

    def crisis_words(self, lang: str) -> tuple[str, ...]:
        """The reviewed crisis entries for one language (for review and tests)."""
        return self._crisis_words[self._lang(lang)]

    def emergency_text(self, lang: str) -> str:
        """The urgent-help message: numbers that fit the person's language."""
        return self._emergency[self._lang(lang)]

    def helplines(self, lang: str) -> list[Helpline]:
        """Structured help lines for one language, in file order."""
        return list(self._helplines[self._lang(lang)])


def walk(library: InfoLibrary, lang: str) -> list[Page]:
    """Every page in menu order (depth-first), so an admin preview or a test
    sees exactly what a person can reach by tapping."""
    pages: list[Page] = []
    for top in library.root(lang):
        pages.append(top)
        pages.extend(library.children(lang, top.id))
    return pages
