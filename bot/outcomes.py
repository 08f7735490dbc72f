"""What happened to each message the delivery worker tried, and how that is
written to the store (`write_outcomes`), for `bot.delivery`."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime

from domain.messages import Outbound, SendResult
from domain.vocabulary import Role
from store.outbox import DueMessage
from store.store import Tx

MAX_BACKOFF = 300.0


def backoff(attempts: int) -> float:
    """Exponential with jitter: 0.5 s, 1 s, 2 s … capped at five minutes."""
    base = min(MAX_BACKOFF, 0.5 * (2 ** min(attempts, 12)))
    return base * random.uniform(0.8, 1.2)


@dataclass(frozen=True, slots=True)
class Outcome:
    row: DueMessage
    out: Outbound | None
    kind: str
    """``sent`` | ``retry`` | ``unreachable`` | ``gone``."""
    retry_at: datetime | None = None
    result: SendResult | None = None


@dataclass(slots=True)
class Behind:
    """A row claimed while the fast lane was busy with its recipient."""

    row: DueMessage
    out: Outbound
    committed: asyncio.Future[bool]
    """True once its transaction committed, False if it never will (or was given up)."""


async def write_outcomes(tx: Tx, outcomes: list[Outcome], now: datetime) -> None:
    """Mark sent (keeping the reply link), schedule the retry, or fail, in ``tx``."""
    for o in outcomes:
        if o.kind == "sent":
            await tx.outbox.mark_sent(o.row.seq, now)
            pid = o.result.platform_message_id if o.result else None
            # Only confidants answer by replying to a relayed message; a
            # notice merely about a case (sealed with its key) is no message
            # of the case to answer.
            if pid and o.out is not None and o.row.case_id and o.out.case \
                    and o.out.role == Role.CONFIDANT:
                await tx.links.record(o.out.to.channel, o.out.to.address, pid, o.row.case_id)
        elif o.kind == "retry":
            assert o.retry_at is not None
            await tx.outbox.retry(o.row.seq, o.retry_at)
        else:  # unreachable, or its case is gone
            await tx.outbox.fail(o.row.seq, now)
