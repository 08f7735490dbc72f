"""The command list each platform shows in its menu, per language."""

from __future__ import annotations

from handlers.aliases import localise
from handlers.i18n import Translator

EMPLOYEE_COMMANDS = ("start", "info", "talk", "confidants", "appointment", "stop", "forget",
                     "language", "privacy", "help", "emergency", "declare", "confirmation")


def command_menu(tr: Translator) -> dict[str, list[tuple[str, str]]]:
    """``{lang: [(command, description), …]}`` for Telegram's setMyCommands, each
    command in the words of that language's readers (`handlers.aliases`)."""
    return {lang: [(localise(lang, name), tr.t(lang, f"commands.{name}"))
                   for name in EMPLOYEE_COMMANDS]
            for lang in tr.languages}
