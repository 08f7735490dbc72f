"""Channel state in the store, on both backends: the web history's lines are
written in another transaction's stead (`Tx.channel_state`), read many at
once, replaced and dropped together, and a stolen copy of the database holds
none of their words."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from store.store import Store as Front
from tests.support.stores import Store

WORDS = b"Mijn chef roept elke dag tegen mij"


@pytest.fixture
async def front(store: Store) -> Front:
    return Front(store.engine, store.crypto)


async def test_state_written_in_a_transaction_commits_or_rolls_back_with_it(front: Front) -> None:
    state = front.channel_state("web")
    async with front.tx() as tx:
        await tx.channel_state("web").set("k:0", WORDS + b" 0")
        await tx.channel_state("web").set("k:0", WORDS + b" again")  # written over, no error
    with pytest.raises(RuntimeError):
        async with front.tx() as tx:
            await tx.channel_state("web").set("k:1", WORDS + b" 1")
            raise RuntimeError("the event failed")
    assert await state.get_many(["k:0", "k:1", "k:2"]) == {"k:0": WORDS + b" again"}
    assert await front.channel_state("matrix").get("k:0") is None


async def test_change_writes_and_deletes_together(front: Front) -> None:
    state = front.channel_state("web")
    for n in range(3):
        await state.set(f"k:{n}", WORDS)
    await state.change({"base": b"all three"}, ["k:0", "k:1", "k:2"])
    assert await state.get_many(["base", "k:0", "k:1", "k:2"]) == {"base": b"all three"}
    await state.change({}, ["base"])
    assert await state.get("base") is None


async def test_no_plaintext_of_channel_state_at_rest(
        store: Store, front: Front, raw_database_bytes: Callable[[str], bytes]) -> None:
    async with front.tx() as tx:
        await tx.channel_state("web").set("line:0", WORDS)
    await front.channel_state("web").set("line:1", WORDS + b" twice")
    await store.engine.dispose()
    assert WORDS not in raw_database_bytes(store.url)
