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

from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from domain.messages import Button, Menu
from domain.vocabulary import SUPPORTED_LANGUAGES
from handlers.crisis import CrisisMatcher
from handlers.info_files import (
    CONTENT_DIR,
    CONTENT_PACKAGE,
    LANG_FILE_RE,
    SHIPPED_LABEL,
    ContentError,
    Helpline,
    LanguageContent,
    Page,
    apply_override,
    check_languages_agree,
    check_tree,
    normalize_for_matching,
    parse_toml,
    shipped_language,
    table_at,
)

__all__ = [
    "ContentError",
    "Helpline",
    "InfoLibrary",
    "Page",
    "available_languages",
    "normalize_for_matching",
    "walk",
]

def available_languages() -> list[str]:
    """Languages that have a shipped content file, so config validation can
    refuse a language nobody wrote pages for."""
    folder = resources.files(CONTENT_PACKAGE) / CONTENT_DIR
    found = []
    for item in folder.iterdir():
        match = LANG_FILE_RE.match(item.name)
        if match and item.is_file():
            found.append(match.group(1))
    return sorted(found)


def _read_shipped(lang: str) -> tuple[str, dict[str, Any]]:
    """Read one shipped file through importlib.resources so the bot works
    from an installed wheel as well as from a checkout."""
    label = f"{SHIPPED_LABEL}/{lang}.toml"
    if not LANG_FILE_RE.match(f"{lang}.toml"):
        raise ContentError(label, "", f"not a language code: {lang!r}")
    resource = resources.files(CONTENT_PACKAGE) / CONTENT_DIR / f"{lang}.toml"
    try:
        raw = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        raise ContentError(label, "", "no content for this language") from None
    return label, parse_toml(label, raw)


class InfoLibrary:
    """The validated information pages, crisis words and urgent-help texts
    for the organisation's languages.  Immutable after `load`."""

    def __init__(
        self, contents: Mapping[str, LanguageContent], other_crisis_words: Iterable[str] = ()
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
        self._crisis = CrisisMatcher(every_word)
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
        contents: dict[str, LanguageContent] = {}
        for lang in langs:
            file, data = _read_shipped(lang)
            contents[lang] = shipped_language(file, data)
        unused: dict[str, LanguageContent] = {}
        if override is not None:
            unused = cls._merge_override(Path(override), langs, contents)
        for lang in langs:
            check_tree(contents[lang])
        check_languages_agree(langs, contents)
        # Crisis words of languages the organisation does not offer still
        # count: a person may type their distress in their own language anyway.
        for lang in available_languages():
            if lang not in contents and lang not in unused:
                unused[lang] = shipped_language(*_read_shipped(lang))
        return cls(contents, [w for c in unused.values() for w in c.crisis_words])

    @staticmethod
    def _merge_override(
        path: Path, langs: Sequence[str], contents: dict[str, LanguageContent]
    ) -> dict[str, LanguageContent]:
        """Apply the organisation file.  Sections for shipped languages that are
        not in use are checked against a copy of the shipped content; those
        copies are returned (only their crisis words are kept)."""
        file = str(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ContentError(file, "", f"cannot read: {exc.strerror or exc}") from None
        data = parse_toml(file, raw)
        shipped = set(available_languages())
        unused: dict[str, LanguageContent] = {}
        for lang, section in data.items():
            if lang not in shipped:
                raise ContentError(
                    file, lang, f"unknown language (expected one of {', '.join(sorted(shipped))})"
                )
            table = table_at(file, lang, section)
            if lang in contents:
                apply_override(file, lang, table, contents[lang])
            else:
                scratch = shipped_language(*_read_shipped(lang))
                apply_override(file, lang, table, scratch)
                check_tree(scratch)
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
        if not text or not self._crisis:
            return False
        return self._crisis.matches(normalize_for_matching(text))

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
