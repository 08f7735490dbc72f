"""The words a channel sends on its own, outside the conversation, taken from
the core's strings: the channels know no content, the app hands them these."""

from __future__ import annotations

from collections.abc import Sequence

from bot.channels.base import NoticeWords
from domain.vocabulary import SUPPORTED_LANGUAGES
from handlers.i18n import Translator


def in_every_language(languages: Sequence[str], default: str | None = None) -> NoticeWords:
    """A notice in each of ``languages`` that the bot speaks, ``default``
    first (else the first given), one paragraph each: for a room whose
    reader's language is unknown."""
    ordered = [default, *languages] if default else list(languages)
    spoken = [lang for lang in dict.fromkeys(ordered) if lang in SUPPORTED_LANGUAGES]
    if not spoken:
        raise ValueError("at least one supported language is needed")
    tr = Translator(spoken[0], spoken)

    def words(key: str, /, **values: object) -> str:
        return "\n\n".join(tr.t(lang, key, **values) for lang in tr.languages)

    return words
