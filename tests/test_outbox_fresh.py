"""What the fast lane learns about freshly written outbox rows, on SQLite
and PostgreSQL: each due row with how many older messages still wait for
the same person (so it never overtakes one it does not hold), and what a
transaction changed after writing is left to the delivery worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio

from domain.ids import ChannelName
from domain.messages import ChannelAddress, Outbound
from store.crypto import generate_master_key
from store.migrate import upgrade
from store.store import Store

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ANN = ChannelAddress(ChannelName("telegram"), "1001")
BEN = ChannelAddress(ChannelName("telegram"), "1002")


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    await upgrade(store_url)
    s = Store.open(store_url, generate_master_key())
    yield s
    await s.close()


def message(to: ChannelAddress, text: str) -> Outbound:
    return Outbound(to=to, text=text)


async def write(store: Store, *outs: Outbound, not_before: datetime | None = None
                ) -> tuple[list[tuple[str, int]], int]:
    """Enqueue in one transaction; (text, older waiting) of each due fresh
    row, and the fresh count."""
    async with store.tx() as tx:
        key = await tx.system_key()
        for out in outs:
            await tx.outbox.enqueue(out, key, None, NOW, not_before)
        rows, fresh = await tx.outbox.fresh_rows(NOW)
    return [(out.text, older) for _, out, older in rows], fresh


async def test_fresh_rows_in_order_with_nothing_older_waiting(store: Store) -> None:
    # a2 follows a1 of the same transaction: nothing from elsewhere waits before it.
    assert await write(store, message(ANN, "a1"), message(BEN, "b1"), message(ANN, "a2")) \
        == ([("a1", 0), ("b1", 0), ("a2", 0)], 3)


async def test_a_row_behind_an_older_pending_one_says_so(store: Store) -> None:
    assert await write(store, message(ANN, "a1")) == ([("a1", 0)], 1)  # stays pending
    # Ann's new message has a1 before it; Ben has nothing older.
    assert await write(store, message(ANN, "a2"), message(BEN, "b1")) \
        == ([("a2", 1), ("b1", 0)], 2)
    assert await write(store, message(ANN, "a3")) == ([("a3", 2)], 1)


async def test_a_message_held_for_later_is_not_due_and_counts_as_waiting(store: Store) -> None:
    later = NOW + timedelta(hours=3)
    assert await write(store, message(ANN, "held"), not_before=later) == ([], 1)
    assert await write(store, message(ANN, "next")) == ([("next", 1)], 1)


async def test_sent_rows_do_not_block(store: Store) -> None:
    async with store.tx() as tx:
        key = await tx.system_key()
        await tx.outbox.enqueue(message(ANN, "a1"), key, None, NOW)
        [(row, _, _)], _ = await tx.outbox.fresh_rows(NOW)
    async with store.tx() as tx:
        await tx.outbox.mark_sent(row.seq, NOW)
    assert await write(store, message(ANN, "a2")) == ([("a2", 0)], 1)


async def test_rows_changed_after_writing_are_left_to_the_worker(store: Store) -> None:
    async with store.tx() as tx:
        key = await tx.system_key()
        await tx.outbox.enqueue(message(ANN, "a1"), key, None, NOW)
        failed = await tx.outbox.fail_pending_for(
            tx.vault.address_hash(ANN.channel, ANN.address), NOW)
        rows, fresh = await tx.outbox.fresh_rows(NOW)
    assert failed == 1
    assert (rows, fresh) == ([], 0)  # the failed row must not be sent by the fast lane
