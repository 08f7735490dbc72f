"""The real bot as the benchmark runs it: ``python -m bot run`` with one
difference, a relaxed Telegram rate limiter, so that the measurement is the
bot's own cost and not Telegram's 30 msg/s overall and 1 msg/s per chat
pacing (which the channel tests cover).

Usage: ``python -m bench.botproc CONFIG [--overall-rate R] [--per-chat-rate R]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools

import bot.channels.telegram.channel as telegram_module
from bot.app import run_app
from bot.channels.ratelimit import RateLimiter
from bot.config import load_config
from bot.logs import setup_logging


def main() -> None:
    """Parse the flags, relax the limiter, run the app until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.botproc")
    parser.add_argument("config")
    parser.add_argument("--overall-rate", type=float, default=10_000.0)
    parser.add_argument("--per-chat-rate", type=float, default=1_000.0)
    args = parser.parse_args()
    telegram_module.RateLimiter = functools.partial(  # type: ignore[misc,assignment]
        RateLimiter, overall_rate=args.overall_rate, overall_burst=int(args.overall_rate),
        per_chat_rate=args.per_chat_rate, per_chat_burst=int(args.per_chat_rate))
    config = load_config(args.config)
    setup_logging(config.logging.level)
    asyncio.run(run_app(config))


if __name__ == "__main__":
    main()
