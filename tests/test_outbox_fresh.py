"""Which freshly written outbox rows may go straight out (the fast lane's
heads), on SQLite and PostgreSQL: a message never overtakes an older one
still waiting for the same person, and what a transaction changed after
writing is left to the delivery worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio

from handlers.types import ChannelAddress, ChannelName, Outbound
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
                ) -> tuple[list[str], int]:
    """Enqueue in one transaction; the texts of the heads and the fresh count."""
    async with store.tx() as tx:
        key = await tx.system_key()
        for out in outs:
            await tx.outbox.enqueue(out, key, None, NOW, not_before)
        heads, fresh = await tx.outbox.fresh_heads(NOW)
    return [out.text for _, out in heads], fresh


async def test_fresh_rows_are_heads_in_order_when_nothing_older_waits(store: Store) -> None:
    assert await write(store, message(ANN, "a1"), message(BEN, "b1"), message(ANN, "a2")) \
        == (["a1", "b1", "a2"], 3)


async def test_a_row_behind_an_older_pending_one_is_not_a_head(store: Store) -> None:
    assert await write(store, message(ANN, "a1")) == (["a1"], 1)  # stays pending: not sent
    # Ann's new message waits behind a1; Ben has nothing older and goes at once.
    assert await write(store, message(ANN, "a2"), message(BEN, "b1")) == (["b1"], 2)


async def test_a_message_held_for_later_blocks_what_follows_it(store: Store) -> None:
    later = NOW + timedelta(hours=3)
    assert await write(store, message(ANN, "held"), not_before=later) == ([], 1)
    assert await write(store, message(ANN, "next")) == ([], 1)


async def test_sent_rows_do_not_block(store: Store) -> None:
    async with store.tx() as tx:
        key = await tx.system_key()
        await tx.outbox.enqueue(message(ANN, "a1"), key, None, NOW)
        [(row, _)], _ = await tx.outbox.fresh_heads(NOW)
    async with store.tx() as tx:
        await tx.outbox.mark_sent(row.seq, NOW)
    assert await write(store, message(ANN, "a2")) == (["a2"], 1)


async def test_rows_changed_after_writing_are_left_to_the_worker(store: Store) -> None:
    async with store.tx() as tx:
        key = await tx.system_key()
        await tx.outbox.enqueue(message(ANN, "a1"), key, None, NOW)
        failed = await tx.outbox.fail_pending_for(
            tx.vault.address_hash(ANN.channel, ANN.address), NOW)
        heads, fresh = await tx.outbox.fresh_heads(NOW)
    assert failed == 1
    assert (heads, fresh) == ([], 0)  # the failed row must not be sent by the fast lane
