"""The floor under any relay that keeps DESIGN's promise: the bare echo bot
plus the least that promise costs — the update recorded as handled and the
outgoing message written (encrypted) to an outbox in one committed
transaction before it is sent, then marked sent in a second one.  Same
engine settings as the bot (`store.db.create_engine`: SQLite WAL through
SQLAlchemy's async engine and aiosqlite), no ORM, no case, no lookup.

Confidant's ratio to this run says how much its own logic costs; this run's
ratio to the bare echo says how much durability alone costs.

Usage: ``python -m bench.durable_echo BASE_URL TOKEN CHAT_ID DB_FILE``
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, update
from sqlalchemy.dialects.sqlite import insert
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from store.db import create_engine

META = MetaData()
HANDLED = Table("handled", META, Column("update_id", Integer, primary_key=True))
OUTBOX = Table("outbox", META,
               Column("seq", Integer, primary_key=True, autoincrement=True),
               Column("chat", Integer, nullable=False),
               Column("payload", LargeBinary),
               Column("status", String(8), nullable=False))


async def run(base_url: str, token: str, chat_id: int, db_file: str) -> None:
    """Poll under our own loop (as the bot does) until SIGTERM."""
    engine = create_engine(f"sqlite+aiosqlite:///{db_file}")
    async with engine.begin() as conn:
        await conn.run_sync(META.create_all)
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    app = Application.builder().token(token).base_url(base_url).build()

    async def relay(update_: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Record, queue sealed, send, mark sent: the outbox pattern and nothing else."""
        assert update_.message is not None and update_.message.text is not None
        text = update_.message.text
        async with engine.begin() as conn:
            seen = await conn.execute(insert(HANDLED).values(update_id=update_.update_id)
                                      .on_conflict_do_nothing())
            if seen.rowcount == 0:
                return
            nonce = os.urandom(12)
            queued = await conn.execute(OUTBOX.insert().values(
                chat=chat_id, payload=nonce + aead.encrypt(nonce, text.encode(), None),
                status="pending"))
            seq = queued.inserted_primary_key[0] if queued.inserted_primary_key else None
        await context.bot.send_message(chat_id, text)
        async with engine.begin() as conn:
            await conn.execute(update(OUTBOX).where(OUTBOX.c.seq == seq)
                               .values(status="sent", payload=None))

    app.add_handler(MessageHandler(filters.TEXT, relay))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0.0, timeout=30,
                                            allowed_updates=["message", "callback_query"])
            await stop.wait()
            await app.updater.stop()
            await app.stop()
    finally:
        await engine.dispose()


def main() -> None:
    """Entry point for the subprocess."""
    base_url, token, chat_id, db_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    asyncio.run(run(base_url, token, chat_id, db_file))


if __name__ == "__main__":
    main()
