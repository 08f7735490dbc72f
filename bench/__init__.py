"""The Confidant benchmark: relay latency, CPU and memory of the real bot
against the Telegram Bot API double, compared with a bare python-telegram-bot
echo bot under the same load.  Run with ``python -m bench.run``."""
