"""Interpreter settings for a long-running bot process.

Python's cyclic garbage collector runs a young-generation pass every 700
net allocations, and now and then a full pass over every object alive.  In
a bot that has imported python-telegram-bot, httpx, SQLAlchemy, matrix-nio
and aiohttp, that is a large heap the process never frees, scanned again
and again: measured on the relay's hot path (``bench/hotpath.py`` under
callgrind) collection took about a fifth of a relay's instructions.  So
once everything is loaded, what exists is moved out of the collector's
sight (``gc.freeze``: those objects live as long as the process anyway)
and the young generation may grow larger before a pass.  Cycles are still
collected; memory per message is unchanged (a relay allocates a few
thousand short-lived objects).  The benchmark gives its echo bots the same
settings, so that the comparisons are between code, not interpreter knobs.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION = 20_000
"""Net allocations between young-generation passes (Python's default: 700)."""


def settle_heap() -> None:
    """Call once the process has loaded and built everything it keeps."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)
