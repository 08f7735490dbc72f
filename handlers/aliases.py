"""Command words in the reader's own language: ``/toestemming tussenkomst``
is ``/consent supervisor``, ``/clôturer conflit`` is ``/close conflict``.

The words are data (``content/aliases.toml``); this module reads them once
and answers two questions: which English command and argument a typed word
stands for (`resolve`, used by the router before it looks a command up), and
which word to show a reader (`localise`, used for the help texts' checks and
Telegram's command menu).  English always keeps working, and an alias is
understood whatever language its writer reads in.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

ALIAS_FILE = "aliases.toml"
WORD = re.compile(r"[a-z0-9_]{1,32}")
"""What Telegram accepts as a menu command, and so what an alias may be."""


def fold(word: str) -> str:
    """Lower case without accents, so ``/Clôturer`` finds ``cloturer``."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class Aliases:
    """Every language's words, read from the data file."""

    commands: Mapping[str, str]
    """Folded alias → English command (all languages together)."""
    arguments: Mapping[str, Mapping[str, str]]
    """English command → folded alias of an argument → English argument."""
    shown: Mapping[str, Mapping[str, str]]
    """Language → English command → the word shown to that language's readers."""
    shown_arguments: Mapping[str, Mapping[str, Mapping[str, str]]]
    """Language → English command → English argument → the word shown."""


class AliasError(ValueError):
    """The alias file is malformed; raised at load so a typo stops the bot with
    one line instead of a command that silently does nothing."""


def _words(where: str, value: object) -> list[str]:
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, list) or not words or not all(
            isinstance(w, str) and WORD.fullmatch(w) for w in words):
        raise AliasError(f"{ALIAS_FILE}: {where}: expected a word (a-z, 0-9, _) or a list of them")
    return list(words)


def parse(data: Mapping[str, object]) -> Aliases:
    """Build the tables from the TOML data, refusing clashes: one typed word
    must always mean the same command (or argument), in every language."""
    commands: dict[str, str] = {}
    arguments: dict[str, dict[str, str]] = {}
    shown: dict[str, dict[str, str]] = {}
    shown_args: dict[str, dict[str, dict[str, str]]] = {}
    for lang, section in data.items():
        if not isinstance(section, dict):
            raise AliasError(f"{ALIAS_FILE}: {lang}: expected a table")
        unknown = set(section) - {"commands", "arguments"}
        if unknown:
            raise AliasError(f"{ALIAS_FILE}: {lang}.{sorted(unknown)[0]}: unknown table")
        for command, value in dict(section.get("commands", {})).items():
            words = _words(f"{lang}.commands.{command}", value)
            for word in words:
                if commands.setdefault(fold(word), command) != command:
                    raise AliasError(f"{ALIAS_FILE}: {lang}.commands.{command}: {word!r} "
                                     f"already means /{commands[fold(word)]}")
            shown.setdefault(lang, {})[command] = words[0]
        for command, table in dict(section.get("arguments", {})).items():
            if not isinstance(table, dict):
                raise AliasError(f"{ALIAS_FILE}: {lang}.arguments.{command}: expected a table")
            known = arguments.setdefault(command, {})
            for argument, value in table.items():
                words = _words(f"{lang}.arguments.{command}.{argument}", value)
                for word in words:
                    if known.setdefault(fold(word), argument) != argument:
                        raise AliasError(f"{ALIAS_FILE}: {lang}.arguments.{command}.{argument}: "
                                         f"{word!r} already means {known[fold(word)]!r}")
                shown_args.setdefault(lang, {}).setdefault(command, {})[argument] = words[0]
    return Aliases(commands, arguments, shown, shown_args)


@cache
def aliases() -> Aliases:
    """The shipped words, read once."""
    text = resources.files("handlers").joinpath("content", ALIAS_FILE).read_text("utf-8")
    return parse(tomllib.loads(text))


def resolve(name: str, arg: str) -> tuple[str, str]:
    """The English command and argument a typed command stands for.  An
    English command stays itself; an argument is translated when its command
    has localised arguments (``/afsluiten pesten`` → ``close``, ``bullying``);
    other words (a case code, a name) are left as typed."""
    table = aliases()
    command = table.commands.get(fold(name), fold(name))
    words = table.arguments.get(command)
    if not words or not arg:
        return command, arg
    # Any word may be the argument: ``/afsluiten K7F-3MQ pesten`` names the case first.
    parts = [words.get(fold(part).replace("-", "_"), part) for part in arg.split(" ")]
    return command, " ".join(parts)


def localise(lang: str, command: str) -> str:
    """The command word a reader of ``lang`` is shown (English without an alias)."""
    return aliases().shown.get(lang, {}).get(command, command)


def localise_argument(lang: str, command: str, argument: str) -> str:
    """An argument as a reader of ``lang`` types it."""
    return aliases().shown_arguments.get(lang, {}).get(command, {}).get(argument, argument)
