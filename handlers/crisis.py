"""Recognising a reviewed crisis phrase in a message, at the cost of a few
dictionary lookups per word.

Every plain message an employee writes is checked, so the check sits on the
relay's hot path.  One regular expression with an alternative per entry
(there are hundreds across nl / fr / en) made Python's ``re`` try each
alternative at every character: about a third of a millisecond per message.
Here the entries are a trie of words instead, and a message is walked word by
word from each word on; the answer is the same (``tests/test_crisis.py``
checks it against the entries' regular-expression reading).

An entry's meaning (see `handlers.info`): its words in order, separated by
any whitespace; a trailing ``*`` lets the last word continue (``suicid*``
matches "suicidaal"); a trailing ``$`` means the phrase must end its clause
(followed by clause punctuation or the end of the message).  Text is compared
after `normalize_for_matching`, so case, accents and punctuation do not decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from handlers.info_files import CLAUSE_END, crisis_entry_words


@dataclass(slots=True)
class _Node:
    next: dict[str, _Node] = field(default_factory=dict)
    """The following word, exactly."""
    prefixes: set[str] = field(default_factory=set)
    """A last word that may continue (``word*``): a match when the next word
    starts with it."""
    prefix_lengths: tuple[int, ...] = ()
    """The lengths among ``prefixes``: a word's beginnings of these lengths
    are all that need looking up."""
    whole: bool = False
    """An entry ends here, followed by anything but more letters."""
    clause_end: bool = False
    """An entry ends here when its clause ends here too (``phrase$``)."""


class CrisisMatcher:
    """The reviewed entries of every language, ready to test a message."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._root = _Node()
        for entry in entries:
            self._add(entry)

    def _add(self, entry: str) -> None:
        parsed = crisis_entry_words(entry)
        if parsed is None:
            return
        words, tail = parsed
        node = self._root
        for word in words[:-1]:
            node = node.next.setdefault(word, _Node())
        last = words[-1]
        if tail == "*":
            node.prefixes.add(last)
            node.prefix_lengths = tuple(sorted({len(p) for p in node.prefixes}))
            return
        node = node.next.setdefault(last, _Node())
        if tail == "$":
            node.clause_end = True
        else:
            node.whole = True

    def __bool__(self) -> bool:
        return bool(self._root.next or self._root.prefixes)

    def matches(self, normalized: str) -> bool:
        """True when some entry occurs in text already passed through
        `normalize_for_matching` (words and ``|`` separated by one space)."""
        words = normalized.split(" ")
        count = len(words)
        for start in range(count):
            node = self._root
            i = start
            while True:
                if node.prefixes and i < count and _continues(node, words[i]):
                    return True
                if i >= count:
                    break
                child = node.next.get(words[i])
                if child is None:
                    break
                i += 1
                if child.whole or (child.clause_end and (i == count or words[i] == CLAUSE_END)):
                    return True
                node = child
        return False


def _continues(node: _Node, word: str) -> bool:
    """Whether ``word`` starts with one of the node's prefixes."""
    return word != CLAUSE_END and any(word[:n] in node.prefixes for n in node.prefix_lengths
                                      if n <= len(word))
