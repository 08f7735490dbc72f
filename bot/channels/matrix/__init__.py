"""Matrix channel: employees in encrypted DMs with the bot, confidants in one
encrypted room per case, all through matrix-nio with end-to-end encryption.

`MatrixChannel` (in `channel`) composes the parts: `connection` (the bot's
device and login), `crosssign`, `trust` (which devices get keys), `rooms`
(case rooms, confidant DMs, invites), `notices` (what the channel says on its
own) and the sync loop with its catch-up of missed events.
"""

from bot.channels.matrix.channel import UNREADABLE, MatrixChannel, inbound_from_event, render_text
from bot.channels.matrix.connection import MatrixSetupError

__all__ = ["UNREADABLE", "MatrixChannel", "MatrixSetupError", "inbound_from_event", "render_text"]
