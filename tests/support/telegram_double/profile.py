"""What the bot tells Telegram about itself, as the double keeps it: its
identity (``getMe``), its command lists per scope and language, and the
chat menu button."""

from __future__ import annotations

from typing import Any

from tests.support.telegram_double.protocol import ApiError
from tests.support.telegram_double.state import DoubleState


class ProfileMethods(DoubleState):
    """``getMe``, ``setMyCommands`` and friends, ``setChatMenuButton`` and friends."""

    async def _api_getMe(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        return {
            **self._bot_dict(),
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    @staticmethod
    def _scope_key(params: dict[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        key = str(scope["type"])
        if "chat_id" in scope:
            key += f":{scope['chat_id']}"
        return key

    @staticmethod
    def _language(params: dict[str, Any]) -> str:
        lang = params.get("language_code") or ""
        if lang and not (len(lang) == 2 and lang.isalpha() and lang.islower()):
            raise ApiError(400, "Bad Request: invalid language code specified")
        return str(lang)

    async def _api_setMyCommands(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for cmd in commands:
            name = str(cmd.get("command", ""))
            if not (1 <= len(name) <= 32 and all(c.islower() or c.isdigit() or c == "_"
                                                  for c in name)):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = (self._scope_key(params), self._language(params))
        self.commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _api_getMyCommands(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        key = (self._scope_key(params), self._language(params))
        return self.commands.get(key, [])

    async def _api_deleteMyCommands(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        self.commands.pop((self._scope_key(params), self._language(params)), None)
        return True

    async def _api_setChatMenuButton(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        chat_id = params.get("chat_id")
        self.menu_buttons[chat_id] = params.get("menu_button") or {"type": "default"}
        return True

    async def _api_getChatMenuButton(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        chat_id = params.get("chat_id")
        return self.menu_buttons.get(chat_id) or self.menu_buttons.get(None) or {
            "type": "commands"
        }
