"""The crisis check answers exactly as the entries' documented meaning says.

`handlers.crisis` walks a word trie for speed; the meaning of an entry is
written down most plainly as a regular expression (below, the way the check
was first built).  Hypothesis writes messages out of the entries' own words,
their beginnings, clause punctuation, accents and capitals, so the two
readings are compared where they could differ: at prefixes, at clause ends,
at phrases cut short or run on."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.crisis import CrisisMatcher
from handlers.info import InfoLibrary
from handlers.info_files import CLAUSE_END, crisis_entry_words, normalize_for_matching


def regex_reading(entries: list[str]) -> re.Pattern[str] | None:
    fragments = []
    for entry in entries:
        parsed = crisis_entry_words(entry)
        if parsed is None:
            continue
        words, tail = parsed
        body = r"\s+".join(re.escape(w) for w in words)
        end = {"*": r"\w*", "$": rf"(?=\s*(?:{re.escape(CLAUSE_END)}|$))"}.get(tail, r"(?!\w)")
        fragments.append(rf"(?<!\w){body}{end}")
    return re.compile("|".join(fragments)) if fragments else None


LIBRARY = InfoLibrary.load()
SHIPPED = [w for lang in ("nl", "fr", "en") for w in LIBRARY.crisis_words(lang)]
SHIPPED_RE = regex_reading(SHIPPED)
MATCHER = CrisisMatcher(SHIPPED)
VOCABULARY = sorted({w for e in SHIPPED for w in (crisis_entry_words(e) or ([], ""))[0]})


def agree(matcher: CrisisMatcher, pattern: re.Pattern[str] | None, text: str) -> None:
    normal = normalize_for_matching(text)
    expected = pattern is not None and pattern.search(normal) is not None
    assert matcher.matches(normal) is expected, (text, normal)


piece = st.one_of(
    st.sampled_from(VOCABULARY),
    st.sampled_from(VOCABULARY).map(lambda w: w[: max(1, len(w) - 2)]),
    st.sampled_from(VOCABULARY).map(lambda w: w + "s"),
    st.sampled_from(VOCABULARY).map(str.upper),
    st.sampled_from([".", "!", ",", "…", "\n", "'", "’", "-", "é", "ne", "pas", "plus", "niet"]),
    st.text(max_size=6),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(piece, max_size=14), st.sampled_from([" ", "  ", ""]))
def test_shipped_entries_read_as_their_regular_expression(pieces: list[str], sep: str) -> None:
    agree(MATCHER, SHIPPED_RE, sep.join(pieces))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["ik", "kan", "niet", "meer", "zelf", "moord"]), min_size=1,
                max_size=3).map(" ".join),
       st.sampled_from(["", "*", "$"]),
       st.lists(st.sampled_from(["ik", "kan", "niet", "meer", "zelfmoord", "moorden", ".",
                                 "nooit", "|"]), max_size=8).map(" ".join))
def test_any_entry_reads_as_its_regular_expression(phrase: str, tail: str, text: str) -> None:
    entries = [phrase + tail, "zelfmoord*"]
    agree(CrisisMatcher(entries), regex_reading(entries), text)


def test_each_shipped_entry_is_found_inside_a_sentence() -> None:
    for entry in SHIPPED:
        words, _ = crisis_entry_words(entry) or ([], "")
        assert LIBRARY.is_crisis("nl", "Sorry, maar " + " ".join(words) + "."), entry


def test_near_misses_are_not_alarms() -> None:
    assert LIBRARY.is_crisis("nl", "Ik kan niet meer.")
    assert not LIBRARY.is_crisis("nl", "ik kan niet meer komen morgen")
    assert LIBRARY.is_crisis("nl", "Ik denk aan ZELFMOORD")
    assert not LIBRARY.is_crisis("en", "")
    assert not CrisisMatcher([]).matches("ik kan niet meer")
