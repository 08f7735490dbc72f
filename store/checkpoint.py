"""SQLite's WAL folded back into the database file on a thread of its own.

A WAL commit only appends to the log; every so often the log must be copied
into the database file and that file synced (a checkpoint).  By default the
connection that commits does it, inside the commit that crosses 1,000 log
pages.  The bot's connection commits on the event loop's thread
(`store.sqlite_inline`), so that one commit in a hundred took about 5 ms of
wall time, 2 ms of it CPU, with every channel standing still: measured with
``bench/hotpath.py``, it was the whole of the commits' p99.

So the bot's connections do not checkpoint (``wal_autocheckpoint = 0``), and
while any of them is open a `Checkpointer` thread runs a PASSIVE checkpoint
every `CHECKPOINT_EVERY` seconds on a connection of its own.  PASSIVE never
waits for, nor blocks, the writer; ``sqlite3`` releases the GIL while SQLite
copies and syncs, so the loop keeps running.  A complete checkpoint lets
the next write start the log from the beginning again, so the WAL stays as
small as one interval's writes.  When the last connection closes, SQLite
checkpoints and removes the log as before.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("confidant.store")

CHECKPOINT_EVERY = 1.0
"""Seconds between checkpoints while the database is in use."""


class Checkpointer:
    """Checkpoints one SQLite file while any of the bot's connections to it is open."""

    def __init__(self, path: Path, every: float = CHECKPOINT_EVERY) -> None:
        self._path = path
        self._every = every
        self._lock = threading.Lock()
        self._open = 0
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def opened(self) -> None:
        """A bot connection was opened: make sure the thread runs."""
        with self._lock:
            self._open += 1
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                                name="sqlite-checkpoint", daemon=True)
                self._thread.start()

    def closed(self) -> None:
        """A bot connection is closing: the last one stops the thread."""
        with self._lock:
            self._open = max(0, self._open - 1)
            if self._open or self._thread is None:
                return
            thread, stop = self._thread, self._stop
            self._thread = self._stop = None
        assert stop is not None
        stop.set()
        thread.join(timeout=10)

    def _run(self, stop: threading.Event) -> None:
        try:
            db = sqlite3.connect(self._path, timeout=0, check_same_thread=False)
        except sqlite3.Error as exc:
            log.warning("checkpoint thread could not open the database (%s)",
                        type(exc).__name__)
            return
        try:
            while not stop.wait(self._every):
                self._checkpoint(db)
            self._checkpoint(db)
        finally:
            db.close()

    @staticmethod
    def _checkpoint(db: sqlite3.Connection) -> None:
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # busy (a restore, a backup): next time
            log.info("checkpoint skipped (%s)", type(exc).__name__)
