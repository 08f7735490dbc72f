"""Matrix channel: employees in encrypted DMs with the bot, confidants in one
encrypted room per case, all through matrix-nio with end-to-end encryption.

`MatrixChannel` (`channel`) composes small parts, each in its own module:

* ``connection`` — the bot's one device: login or restore, cross-signing
  check (``crosssign``), the live client the other parts share;
* ``sync`` — the sync loop, which feeds ``inbound`` (each event once, only if
  encrypted; ``translate`` is the pure event → `Inbound` step), ``backfill``
  (cut-off timelines paged back in) and ``held`` (events waiting for their
  key); ``inbox`` hands events to the core and saves the sync position;
* ``outbound`` — sends from the delivery worker, into the ``rooms`` (case
  rooms, confidant DMs, invites) chosen for them;
* ``trust`` — which devices get keys; ``notices`` — what the channel says on
  its own.
"""

from bot.channels.matrix.channel import MatrixChannel
from bot.channels.matrix.connection import MatrixSetupError
from bot.channels.matrix.outbound import render_text
from bot.channels.matrix.translate import UNREADABLE, inbound_from_event

__all__ = ["UNREADABLE", "MatrixChannel", "MatrixSetupError", "inbound_from_event", "render_text"]
