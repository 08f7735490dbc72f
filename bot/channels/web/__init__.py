"""The built-in web channel (see `bot.channels.web.channel`).  What other
code uses is importable from here: the channel, its cookie sessions for
mounted pages, and where its static files live."""

from bot.channels.web.channel import WebChannel
from bot.channels.web.pages import STATIC_DIR
from bot.channels.web.sessions import WebSessions, state_key

__all__ = ["STATIC_DIR", "WebChannel", "WebSessions", "state_key"]
