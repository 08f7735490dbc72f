"""The baseline: a bare python-telegram-bot Application that answers every
text with a sendMessage of the same text to one fixed chat.  Same double,
same load, same process model as the bot; the difference is everything
Confidant adds (store, encryption, outbox, delivery worker).

Usage: ``python -m bench.echo BASE_URL TOKEN CHAT_ID``
"""

from __future__ import annotations

import asyncio
import signal
import sys

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bot.runtime import settle_heap


async def run(base_url: str, token: str, chat_id: int) -> None:
    """Poll under our own loop (as the bot does) until SIGTERM."""
    app = Application.builder().token(token).base_url(base_url).build()

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Relay the text to the fixed chat: the minimal work of a relay bot."""
        assert update.message is not None and update.message.text is not None
        await context.bot.send_message(chat_id, update.message.text)

    app.add_handler(MessageHandler(filters.TEXT, echo))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with app:
        await app.start()
        settle_heap()  # as Confidant does (bot/runtime.py)
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=30,
                                        allowed_updates=["message", "callback_query"])
        await stop.wait()
        await app.updater.stop()
        await app.stop()


def main() -> None:
    """Entry point for the subprocess."""
    base_url, token, chat_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
    asyncio.run(run(base_url, token, chat_id))


if __name__ == "__main__":
    main()
