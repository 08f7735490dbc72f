"""The Bot API double, exercised with the real python-telegram-bot `Bot`:
if PTB accepts its answers, the channel tests built on it mean something."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ReplyParameters
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from tests.support.telegram_double import TelegramDouble


def _png(color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 200), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest_asyncio.fixture
async def bot(telegram_double: TelegramDouble) -> AsyncIterator[Bot]:
    """A PTB bot pointed at the double, with short timeouts."""
    b = Bot(
        telegram_double.token,
        base_url=telegram_double.base_url,
        base_file_url=telegram_double.base_file_url,
        request=HTTPXRequest(read_timeout=2.0, connect_timeout=2.0),
        get_updates_request=HTTPXRequest(read_timeout=2.0, connect_timeout=2.0),
    )
    async with b:
        yield b


async def test_get_me_and_wrong_token(bot: Bot, telegram_double: TelegramDouble) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == telegram_double.bot_username
    wrong = Bot("1:wrong", base_url=telegram_double.base_url)
    with pytest.raises(Exception, match=r"(?i)Unauthorized|Invalid"):
        await wrong.get_me()


async def test_offsets_confirm_and_redeliver(bot: Bot, telegram_double: TelegramDouble) -> None:
    alice = telegram_double.user(1001, "Alice")
    await alice.send_command("/start")
    await alice.send_text("hello")
    first = await bot.get_updates(timeout=0)
    assert [u.message.text for u in first if u.message] == ["/start", "hello"]
    assert first[1].update_id == first[0].update_id + 1
    assert first[0].message.entities[0].type == "bot_command"
    # Not confirmed: a restarted bot (no offset) gets them again.
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [u.update_id for u in first]
    # Confirm the first only.
    rest = await bot.get_updates(offset=first[0].update_id + 1, timeout=0)
    assert [u.message.text for u in rest] == ["hello"]
    assert len(telegram_double.pending_updates()) == 1
    assert await bot.get_updates(offset=rest[0].update_id + 1, timeout=0) == ()
    assert telegram_double.pending_updates() == []


async def test_long_poll_waits_and_wakes(bot: Bot, telegram_double: TelegramDouble) -> None:
    alice = telegram_double.user(1001, "Alice")
    t0 = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert time.monotonic() - t0 >= 0.9

    async def later() -> None:
        await asyncio.sleep(0.3)
        await alice.send_text("late")

    task = asyncio.create_task(later())
    t0 = time.monotonic()
    got = await bot.get_updates(timeout=5)
    await task
    assert [u.message.text for u in got] == ["late"]
    assert time.monotonic() - t0 < 3


async def test_allowed_updates_filters_new_updates(
    bot: Bot, telegram_double: TelegramDouble
) -> None:
    alice = telegram_double.user(1001, "Alice")
    await alice.send_text("hi")
    await bot.send_message(alice.id, "menu", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("Yes", callback_data="tok-yes")]]))
    got = await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    assert [u.message.text for u in got] == ["hi"]  # created before the filter
    offset = got[-1].update_id + 1
    await alice.send_text("ignored")
    await alice.press("Yes")
    got = await bot.get_updates(offset=offset, timeout=0)
    assert len(got) == 1 and got[0].callback_query.data == "tok-yes"
    assert got[0].callback_query.message.text == "menu"
    assert got[0].callback_query.chat_instance
    assert await bot.answer_callback_query(got[0].callback_query.id)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(got[0].callback_query.id)


async def test_second_poller_terminates_the_first(
    bot: Bot, telegram_double: TelegramDouble
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=3))
    await telegram_double.wait_for_call("getUpdates")
    other = Bot(telegram_double.token, base_url=telegram_double.base_url)
    async with other:
        second = asyncio.create_task(other.get_updates(timeout=0))
        with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
            await first
        assert await second == ()


async def test_send_message_records_markup_and_reply(
    bot: Bot, telegram_double: TelegramDouble
) -> None:
    alice = telegram_double.user(1001, "Alice", "Peeters", "alice_p", "nl")
    asked = await alice.send_text("question")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="t1"),
                                    InlineKeyboardButton("B", callback_data="t2")]])
    msg = await bot.send_message(alice.id, "answer", reply_markup=markup,
                                 reply_parameters=ReplyParameters(asked["message_id"]))
    assert msg.message_id == asked["message_id"] + 1  # one counter per chat
    assert msg.reply_to_message.text == "question"
    [record] = telegram_double.sent_to(alice.id)
    assert record["text"] == "answer" and record["parse_mode"] is None
    assert record["reply_to_message_id"] == asked["message_id"]
    assert [b["callback_data"] for b in record["reply_markup"]["inline_keyboard"][0]] == [
        "t1", "t2"]
    edited = await bot.edit_message_text("answer 2", chat_id=alice.id, message_id=msg.message_id)
    assert edited.text == "answer 2"
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("answer 2", chat_id=alice.id, message_id=msg.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(alice.id, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(alice.id, "😀" * 2049)  # 4098 UTF-16 units
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(alice.id, "m", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("A", callback_data="x" * 65)]]))


async def test_chat_refusals(bot: Bot, telegram_double: TelegramDouble) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "hello")
    stranger = telegram_double.user(2002, "Bob")
    with pytest.raises(Forbidden, match=r"(?i)can't initiate"):
        await bot.send_message(stranger.id, "hello")
    await stranger.send_command("/start")
    await bot.send_message(stranger.id, "hello")
    stranger.block_bot()
    with pytest.raises(Forbidden, match=r"(?i)blocked"):
        await bot.send_message(stranger.id, "hello again")


async def test_multipart_uploads_and_get_file(bot: Bot, telegram_double: TelegramDouble) -> None:
    alice = telegram_double.user(1001, "Alice")
    await alice.send_text("hi")
    png = _png()
    sent = await bot.send_photo(alice.id, InputFile(png, filename="p.png"), caption="look")
    assert sent.photo[-1].width == 320 and sent.caption == "look"
    await bot.send_document(alice.id, InputFile(b"%PDF-1.4 x", filename="a.pdf"))
    await bot.send_voice(alice.id, InputFile(b"OggS voice", filename="v.ogg"))
    records = telegram_double.sent_to(alice.id)
    assert [r["media_kind"] for r in records] == ["photo", "document", "voice"]
    assert records[0]["media"] == png and records[1]["media"] == b"%PDF-1.4 x"
    assert records[1]["filename"] == "a.pdf"
    assert telegram_double.calls("sendPhoto")[0].files == {"photo": len(png)}
    with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(alice.id, InputFile(b"not an image", filename="x.jpg"))

    incoming = await alice.send_document(b"secret bytes", "notes.txt", "text/plain")
    tg_file = await bot.get_file(incoming["document"]["file_id"])
    assert tg_file.file_size == len(b"secret bytes")
    assert bytes(await tg_file.download_as_bytearray()) == b"secret bytes"
    photo = await alice.send_photo(png)
    assert len(photo["photo"]) == 2 and photo["photo"][0]["width"] <= 90
    big = await bot.get_file(photo["photo"][-1]["file_id"])
    assert bytes(await big.download_as_bytearray()) == png
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nope")


async def test_error_injection(bot: Bot, telegram_double: TelegramDouble) -> None:
    alice = telegram_double.user(1001, "Alice", started=True)
    telegram_double.inject("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(alice.id, "hi")
    assert info.value._retry_after.total_seconds() == 7
    telegram_double.inject("sendMessage", status=502, count=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(alice.id, "hi")
    telegram_double.inject("sendMessage", drop=True)
    with pytest.raises(NetworkError):
        await bot.send_message(alice.id, "hi")
    telegram_double.inject("sendMessage", delay=3.0)
    with pytest.raises(TimedOut):
        await bot.send_message(alice.id, "hi", read_timeout=0.5)
    msg = await bot.send_message(alice.id, "finally")
    assert msg.text == "finally"
    # The slow call was still executed by the server, as Telegram would.
    await telegram_double.wait_for(alice.id, lambda r: r["text"] == "hi")
    assert [r.status for r in telegram_double.calls("sendMessage")][:4] == [429, 502, 502, 0]


async def test_unknown_method_is_404_and_recorded(
    bot: Bot, telegram_double: TelegramDouble
) -> None:
    with pytest.raises(Exception, match=r"(?i)Not Found|Invalid|not found"):
        await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": 1})
    assert telegram_double.unknown_methods == ["sendTelepathy"]
    telegram_double.unknown_methods.clear()  # expected here; the fixture fails otherwise


async def test_commands_per_language(bot: Bot, telegram_double: TelegramDouble) -> None:
    await bot.set_my_commands([("start", "Begin"), ("help", "Help")])
    await bot.set_my_commands([("start", "Beginnen")], language_code="nl")
    assert [c.description for c in await bot.get_my_commands(language_code="nl")] == [
        "Beginnen"]
    assert len(await bot.get_my_commands()) == 2
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([("Start!", "x")])


async def test_webhook_push_with_secret(bot: Bot, telegram_double: TelegramDouble) -> None:
    from aiohttp import web

    from tests.support.telegram_double import free_port

    seen: list[tuple[str | None, int]] = []
    fail_first = [True]

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), body["update_id"]))
        if fail_first[0]:
            fail_first[0] = False
            return web.Response(status=500)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cr3t")
        with pytest.raises(Conflict):
            await bot.get_updates(timeout=0)
        alice = telegram_double.user(1001, "Alice")
        await alice.send_text("via webhook")
        for _ in range(200):
            if not telegram_double.pending_updates():
                break
            await asyncio.sleep(0.02)
        assert telegram_double.pending_updates() == []
        assert len(seen) == 2 and seen[0] == seen[1]  # redelivered after the 500
        assert seen[0][0] == "s3cr3t"
        with pytest.raises(BadRequest, match=r"(?i)bad webhook"):
            await bot.set_webhook("https://example.org/hook")
        assert await bot.delete_webhook()
    finally:
        await runner.cleanup()
