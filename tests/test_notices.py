"""The words the app gives a channel for the notices it sends on its own:
every language of the organisation, default first, from the core's strings."""

from __future__ import annotations

import pytest

from bot.notices import in_every_language
from handlers.i18n import load_strings


def test_default_language_first_then_the_others_in_order() -> None:
    words = in_every_language(["nl", "fr", "en"], "fr")
    key = "matrix.not_encrypted"
    assert words(key) == "\n\n".join(load_strings(lang)[key] for lang in ("fr", "nl", "en"))


def test_values_are_filled_in_and_unknown_languages_left_out() -> None:
    words = in_every_language(["en", "de"], "en")
    text = words("matrix.new_device", devices="PHONE1")
    assert text == load_strings("en")["matrix.new_device"].format(devices="PHONE1")


def test_no_language_the_bot_speaks_is_refused() -> None:
    with pytest.raises(ValueError, match="supported language"):
        in_every_language(["de"])
