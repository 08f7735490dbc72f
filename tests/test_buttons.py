"""Button tokens: bound to their owner, and a typed number answers the menu sent last."""

from datetime import UTC, datetime, timedelta

from tests.support.memory_channel import Harness


async def test_number_answers_the_last_menu_even_within_one_step(harness: Harness) -> None:
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    owner = b"o" * 32
    async with harness.store.tx() as tx:
        await tx.buttons.issue(owner, [[("Main", "menu")], [("Info", "info")]], now)
        await tx.buttons.issue(owner, [[("First available", "open:any")]], now)
    async with harness.store.tx() as tx:
        assert await tx.buttons.resolve_number(owner, 1, now) == "open:any"
        assert await tx.buttons.resolve_number(owner, 2, now) is None


async def test_token_is_bound_to_its_owner_and_expires(harness: Harness) -> None:
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    async with harness.store.tx() as tx:
        menu = await tx.buttons.issue(b"a" * 32, [[("Yes", "forget:yes")]], now)
    token = menu.buttons()[0].token
    async with harness.store.tx() as tx:
        assert await tx.buttons.resolve(b"a" * 32, token, now) == "forget:yes"
        assert await tx.buttons.resolve(b"b" * 32, token, now) is None
        assert await tx.buttons.resolve(b"a" * 32, token + "x", now) is None
        assert await tx.buttons.resolve(b"a" * 32, token, now + timedelta(days=31)) is None
