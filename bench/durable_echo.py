"""The floor under any relay that keeps DESIGN's promise: the bare echo bot
plus the least that promise costs — the update recorded as handled and the
outgoing message sealed (AES-GCM, as `store.crypto` does) into an outbox
row, committed before it is sent, then marked sent.  Same engine settings as
the bot (`store.db.create_engine`), no case, no lookup.  How the database is
reached is the ``--variant`` (`bench.outbox_variants`).

Confidant's ratio to this run says how much its own logic costs; this run's
ratio to the bare echo says how much durability alone costs.

Usage: ``python -m bench.durable_echo BASE_URL TOKEN CHAT_ID DB [--variant NAME]
[--key-file FILE]``
(``DB`` a SQLite file or a ``postgresql+asyncpg://`` URL).  With
``BENCH_KILL_AFTER_COMMIT=N`` in the environment the process SIGKILLs itself
after the N-th commit and before that message's send (the crash test); at
start it delivers whatever a killed predecessor left pending.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bench.outbox_variants import VARIANTS, Item, Outbox, db_url
from bot.runtime import settle_heap
from store.crypto import Crypto
from store.vault import associated_data


class Relay:
    """Record, queue sealed, send, mark sent: the outbox pattern and nothing else."""

    def __init__(self, app: Application, outbox: Outbox, chat_id: int,
                 batch: bool, key: bytes) -> None:
        self.app, self.outbox, self.chat_id, self.batch = app, outbox, chat_id, batch
        self.key = key
        self.commits = 0
        kill = os.environ.get("BENCH_KILL_AFTER_COMMIT")
        self.kill_after = int(kill) if kill else 0

    def seal(self, update_id: int, text: str) -> bytes:
        """The reply body as Confidant stores it: AES-256-GCM bound to its row."""
        return Crypto.seal(self.key, text.encode(),
                           associated_data("outbox.payload_enc", str(update_id)))

    async def recover(self) -> None:
        """Deliver what a killed predecessor committed but never marked sent
        (as Confidant's delivery worker does at start), before polling again."""
        for seq, update_id, chat, payload in self.outbox.recovered:
            text = Crypto.open(self.key, payload,
                               associated_data("outbox.payload_enc", str(update_id))).decode()
            await self.app.bot.send_message(chat, text)
            await self.outbox.sent(seq)

    def _committed(self) -> None:
        self.commits += 1
        if self.kill_after and self.commits >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    async def handle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """One update, or with ``batch`` every text update already queued behind it."""
        updates = [update]
        if self.batch:
            updates += self._drain_queue()
        items: list[Item] = []
        texts: list[str] = []
        for u in updates:
            assert u.message is not None and u.message.text is not None
            items.append((u.update_id, self.chat_id, self.seal(u.update_id, u.message.text)))
            texts.append(u.message.text)
        seqs = await self.outbox.record_many(items)
        self._committed()
        for seq, text in zip(seqs, texts, strict=True):
            if seq is None:
                continue  # handled before a crash: its own row is delivered by then
            await context.bot.send_message(self.chat_id, text)
            await self.outbox.sent(seq)
        for _ in updates[1:]:
            self.app.update_queue.task_done()

    def _drain_queue(self) -> list[Update]:
        """Text updates the updater already queued (the rest of this getUpdates
        answer); anything else goes back to the queue for the application."""
        out: list[Update] = []
        queue = self.app.update_queue
        other = []
        while not queue.empty():
            item = queue.get_nowait()
            if isinstance(item, Update) and item.message is not None and item.message.text:
                out.append(item)
            else:
                other.append(item)
        for item in other:
            queue.put_nowait(item)
            queue.task_done()
        return out


def data_key(path: Path) -> bytes:
    """The sealing key, kept in a 0600 file so a restarted process can open
    what its predecessor queued."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Crypto.new_data_key())
    return path.read_bytes()


async def run(base_url: str, token: str, chat_id: int, target: str, variant: str,
              key_file: Path) -> None:
    """Poll under our own loop (as the bot does) until SIGTERM."""
    outbox = VARIANTS[variant](db_url(target))
    await outbox.open()
    app = Application.builder().token(token).base_url(base_url).build()
    relay = Relay(app, outbox, chat_id, batch=variant == "batch", key=data_key(key_file))
    app.add_handler(MessageHandler(filters.TEXT, relay.handle))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with app:
            await app.start()
            settle_heap()  # as Confidant does (bot/runtime.py)
            await relay.recover()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0.0, timeout=30,
                                            allowed_updates=["message", "callback_query"])
            await stop.wait()
            await app.updater.stop()
            await app.stop()
    finally:
        await outbox.close()


def main() -> None:
    """Entry point for the subprocess."""
    p = argparse.ArgumentParser(prog="python -m bench.durable_echo")
    p.add_argument("base_url")
    p.add_argument("token")
    p.add_argument("chat_id", type=int)
    p.add_argument("db", help="SQLite file or postgresql+asyncpg:// URL")
    p.add_argument("--variant", choices=list(VARIANTS), default="engine")
    p.add_argument("--key-file", type=Path, help="sealing key (default: DB + '.key')")
    a = p.parse_args()
    key_file = a.key_file or Path(a.db + ".key")
    asyncio.run(run(a.base_url, a.token, a.chat_id, a.db, a.variant, key_file))


if __name__ == "__main__":
    main()
