"""The Telegram channel (see `bot.channels.telegram.channel`)."""

from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.outbound import split_text, utf16_len

__all__ = ["TelegramChannel", "split_text", "utf16_len"]
