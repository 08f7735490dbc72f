"""Structured logs: one JSON object per line, never content or identity.

Our own code logs event kinds and case codes only.  Third-party libraries
can be chattier (httpx logs request URLs, which for Telegram contain the bot
token; aiohttp's access log holds client addresses), so they are turned
down here, in the one place that configures logging.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

QUIET = ("httpx", "httpcore", "telegram", "aiohttp.access", "aiohttp.server", "nio",
         "aiosqlite", "asyncpg",  # at DEBUG they log SQL with its parameters
         "peewee", "asyncio", "sqlalchemy", "alembic",
         "PIL")  # at DEBUG, Pillow logs every EXIF tag: phone owner, GPS position


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages of driver errors can quote data.
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").disabled = True
