"""The Telegram channel against the Bot API double: what arrives as `Inbound`,
what goes out for an `Outbound`, and what happens when things fail."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from PIL import Image

from bot.channels.ratelimit import RateLimiter
from bot.channels.telegram import TelegramChannel, split_text, utf16_len
from domain.ids import ChannelName
from domain.messages import (
    Button,
    ChannelAddress,
    Inbound,
    Media,
    Menu,
    Outbound,
    OutboundKind,
    RetryLater,
    Unreachable,
)
from tests.support.matrix_app import eventually
from tests.support.telegram_double import TelegramDouble, free_port

COMMANDS = {
    "nl": [("start", "Begin"), ("talk", "Praat met een vertrouwenspersoon")],
    "fr": [("start", "Commencer"), ("talk", "Parler à une personne de confiance")],
    "en": [("start", "Start"), ("talk", "Talk to a confidant")],
}


class Recorder:
    """An ``on_inbound`` that records, and can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.items: list[Inbound] = []
        self.calls = 0
        self.fail = fail
        self._event = asyncio.Event()

    async def __call__(self, inbound: Inbound) -> None:
        self.calls += 1
        self._event.set()
        if self.fail:
            raise RuntimeError("database down")
        self.items.append(inbound)

    async def wait(self, count: int = 1, timeout: float = 5.0) -> list[Inbound]:
        """Wait until ``count`` events were recorded."""
        async def until() -> None:
            while len(self.items) < count:
                self._event.clear()
                await self._event.wait()

        await asyncio.wait_for(until(), timeout)
        return self.items

    async def wait_calls(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until the handler was called ``count`` times, failing or not."""
        async def until() -> None:
            while self.calls < count:
                self._event.clear()
                await self._event.wait()

        await asyncio.wait_for(until(), timeout)


MakeChannel = Callable[..., Awaitable[TelegramChannel]]


@pytest_asyncio.fixture
async def make_channel(telegram_double: TelegramDouble) -> AsyncIterator[MakeChannel]:
    """Start channels pointed at the double; stop them all afterwards."""
    channels: list[TelegramChannel] = []

    async def make(handler: Any, **kwargs: Any) -> TelegramChannel:
        kwargs.setdefault("poll_timeout", 1)
        kwargs.setdefault("backoff", (0.05, 0.2))
        kwargs.setdefault("rate_limiter", RateLimiter(1000, 1000, 1000, 1000))
        channel = TelegramChannel(
            telegram_double.token,
            base_url=telegram_double.base_url,  # base_file_url derived from it
            languages=("nl", "fr", "en"),
            commands=COMMANDS,
            **kwargs,
        )
        channels.append(channel)
        await channel.start(handler)
        return channel

    yield make
    for channel in channels:
        await channel.stop()


def to(chat_id: int) -> ChannelAddress:
    return ChannelAddress(ChannelName("telegram"), str(chat_id))


def fields_text(inbound: Inbound) -> str:
    """Every field of an Inbound as one string, to search for leaked content."""
    return " ".join(repr(getattr(inbound, f.name)) for f in dataclasses.fields(inbound))


def jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (64, 48), "blue")
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Maker"
    exif[0x8825] = {1: "N", 2: (50.0, 50.0, 0.0), 3: "E", 4: (4.0, 21.0, 0.0)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


async def test_commands_text_and_buttons_arrive(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    rec = Recorder()
    channel = await make_channel(rec)
    alice = telegram_double.user(5551, "Alice", "Peeters", "alice_p", language_code="fr")
    await alice.send_command("/start", mention=True)
    await alice.send_text("hello there")
    first, second = await rec.wait(2)
    assert first.text == "/start"  # "@botname" stripped
    assert first.channel == "telegram" and first.sender == "5551" and first.chat == "5551"
    assert first.language_hint == "fr"
    assert re.fullmatch(r"tg:\d+", first.event_id)
    assert second.text == "hello there" and second.event_id != first.event_id

    menu = Menu(((Button("Oui", "tok-yes"), Button("Non", "tok-no")),))
    result = await channel.send(Outbound(to(5551), "Continuer ?", menu=menu), "k1")
    [sent] = telegram_double.sent_to(5551)
    assert sent["parse_mode"] is None
    assert sent["reply_markup"] == {"inline_keyboard": [
        [{"text": "Oui", "callback_data": "tok-yes"}, {"text": "Non", "callback_data": "tok-no"}]
    ]}
    assert result.platform_message_id == str(sent["message_id"])

    query = await alice.press("Non")
    pressed = (await rec.wait(3))[2]
    assert pressed.button == "tok-no" and pressed.text is None
    assert pressed.reply_to == str(sent["message_id"])
    for _ in range(100):
        if query["id"] in telegram_double.callback_answers:
            break
        await asyncio.sleep(0.02)
    assert query["id"] in telegram_double.callback_answers

    reply = await alice.reply_to(sent, "an answer")
    assert (await rec.wait(4))[3].reply_to == str(sent["message_id"])
    assert reply["reply_to_message"]["message_id"] == sent["message_id"]


async def test_commands_registered_per_language(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    await make_channel(Recorder())
    assert telegram_double.commands[("default", "fr")][1]["command"] == "talk"
    assert telegram_double.commands[("default", "nl")][0]["description"] == "Begin"
    assert telegram_double.commands[("default", "")] == telegram_double.commands[("default", "nl")]


async def test_photo_arrives_scrubbed(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    rec = Recorder()
    await make_channel(rec)
    original = jpeg_with_gps()
    assert b"Exif" in original and b"SpyCam" in original
    alice = telegram_double.user(5551, "Alice")
    await alice.send_photo(original, caption="look at this")
    await alice.send_document(original, "Alice_Peeters_holiday.jpg", "image/jpeg")
    photo, doc = await rec.wait(2)
    for inbound in (photo, doc):
        assert inbound.media is not None and inbound.unsupported is None
        data = inbound.media.data
        assert b"Exif" not in data and b"SpyCam" not in data
        with Image.open(io.BytesIO(data)) as img:
            assert img.size == (64, 48)  # the full size, not the thumbnail
            assert not img.getexif()
    assert photo.media is not None and photo.media.kind == "photo"
    assert photo.media.caption == "look at this" and photo.text is None
    assert doc.media is not None and doc.media.kind == "document"
    assert "Alice" not in doc.media.filename and doc.media.filename.endswith(".jpg")


async def test_document_and_voice_arrive_as_media(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    rec = Recorder()
    await make_channel(rec)
    alice = telegram_double.user(5551, "Alice")
    await alice.send_document(b"%PDF-1.4 letter", "Klacht_Alice.pdf", "application/pdf")
    await alice.send_voice(b"OggS voice bytes")
    doc, voice = await rec.wait(2)
    assert doc.media == Media("document", b"%PDF-1.4 letter", "document.pdf", "application/pdf")
    assert voice.media is not None and voice.media.kind == "voice"
    assert voice.media.data == b"OggS voice bytes"


async def test_too_large_is_refused_without_download(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    rec = Recorder()
    await make_channel(rec)
    alice = telegram_double.user(5551, "Alice")
    await alice.send_document(b"\0" * (20 * 1024 * 1024 + 1), "big.bin")
    [inbound] = await rec.wait(1)
    assert inbound.unsupported == "too_large" and inbound.media is None
    assert telegram_double.calls("getFile") == []


async def test_unsupported_kinds_carry_no_content(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    rec = Recorder()
    await make_channel(rec)
    alice = telegram_double.user(5551, "Alice")
    await alice.send_contact("+32470998877", "Mother")
    await alice.send_location(50.8466, 4.3528)
    await alice.send_sticker("🤬")
    await alice.send_venue("Secret Office", "Rue de la Loi 16")
    await alice.send_poll("Who is the worst boss?")
    await alice.send_dice()
    got = await rec.wait(6)
    assert [i.unsupported for i in got] == [
        "contact", "location", "sticker", "venue", "poll", "dice"]
    for inbound in got:
        assert inbound.text is None and inbound.media is None and inbound.button is None
        dumped = fields_text(inbound)
        for secret in ("+32470998877", "Mother", "50.84", "4.35", "🤬", "Secret Office",
                       "worst boss", "Rue de la Loi"):
            assert secret not in dumped


async def test_unparsable_update_neither_blocks_nor_leaks(
    telegram_double: TelegramDouble, make_channel: MakeChannel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rec = Recorder()
    await make_channel(rec)
    alice = telegram_double.user(5551, "Alice")
    # A poll option without persistent_id: PTB 22.8 refuses to parse it.
    await alice.send_raw({"poll": {"id": "1", "question": "Secret question", "options": [
        {"text": "a", "voter_count": 0}], "total_voter_count": 0, "is_closed": False,
        "is_anonymous": True, "type": "regular", "allows_multiple_answers": False}})
    await alice.send_text("next")
    odd, nxt = await rec.wait(2)
    assert odd.unsupported == "other" and odd.sender == "5551" and odd.text is None
    assert nxt.text == "next"
    assert "Secret question" not in caplog.text and "5551" not in caplog.text


async def test_forward_header_is_ignored(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    rec = Recorder()
    await make_channel(rec)
    alice = telegram_double.user(5551, "Alice")
    boss = telegram_double.user(7777, "Bernard", "Boss", "the_boss")
    message = await alice.forward_text("you are fired", origin=boss)
    assert message["forward_origin"]["sender_user"]["id"] == 7777
    [inbound] = await rec.wait(1)
    assert inbound.text == "you are fired"
    dumped = fields_text(inbound)
    assert "7777" not in dumped and "Bernard" not in dumped and "the_boss" not in dumped


async def test_group_messages_are_ignored_and_confirmed(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    rec = Recorder()
    await make_channel(rec)
    alice = telegram_double.user(5551, "Alice")
    group_msg = await alice.send_text("in a group")
    group_msg["chat"] = {"id": -100123, "type": "supergroup", "title": "Team"}
    await alice.send_text("private")
    [inbound] = await rec.wait(1)
    assert inbound.text == "private"


async def test_failed_inbound_is_not_confirmed_and_redelivered(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    failing = Recorder(fail=True)
    channel = await make_channel(failing)
    alice = telegram_double.user(5551, "Alice")
    await alice.send_text("please keep me")
    await failing.wait_calls(2)  # retried with backoff, never confirmed
    await channel.stop()
    pending = telegram_double.pending_updates()
    assert [u["message"]["text"] for u in pending] == ["please keep me"]
    first_id = pending[0]["update_id"]
    # Offsets sent by the crashed channel never went past the failed update.
    offsets = [r.params.get("offset") for r in telegram_double.calls("getUpdates")]
    assert all(o is None or o <= first_id for o in offsets)

    rec = Recorder()
    await make_channel(rec)
    [inbound] = await rec.wait(1)
    assert inbound.text == "please keep me" and inbound.event_id == f"tg:{first_id}"


async def test_failed_button_press_is_answered_but_not_confirmed(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    failing = Recorder(fail=True)
    channel = await make_channel(failing)
    alice = telegram_double.user(5551, "Alice", started=True)
    await channel.send(Outbound(to(5551), "Pick", menu=Menu(((Button("A", "tok-a"),),))), "k")
    query = await alice.press("A")
    await failing.wait_calls(1)
    await channel.stop()
    assert query["id"] in telegram_double.callback_answers  # no endless spinner
    assert [u["callback_query"]["data"] for u in telegram_double.pending_updates()] == ["tok-a"]


async def test_handled_updates_are_confirmed_on_stop(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    rec = Recorder()
    channel = await make_channel(rec)
    alice = telegram_double.user(5551, "Alice")
    await alice.send_text("one")
    await alice.send_text("two")
    await rec.wait(2)
    await channel.stop()
    assert telegram_double.pending_updates() == []


async def test_poll_survives_network_errors(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    telegram_double.inject("getUpdates", status=502, count=2)
    telegram_double.inject("getUpdates", drop=True)
    rec = Recorder()
    await make_channel(rec)
    alice = telegram_double.user(5551, "Alice")
    await alice.send_text("still there?")
    [inbound] = await rec.wait(1)
    assert inbound.text == "still there?"
    statuses = [r.status for r in telegram_double.calls("getUpdates")]
    assert statuses[:3] == [502, 502, 0]


async def test_long_text_is_split_on_word_boundaries(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    channel = await make_channel(Recorder())
    telegram_double.user(5551, "Alice", started=True)
    words = [f"woord{i % 97}x{'y' * (i % 7)}" for i in range(860)]
    text = " ".join(words)
    text = text[:5000] + "\n\n" + text[5000:]
    assert len(text) > 10_000
    menu = Menu(((Button("OK", "tok-ok"),),))
    result = await channel.send(Outbound(to(5551), text, menu=menu), "k-long")
    parts = telegram_double.sent_to(5551)
    assert len(parts) == 3
    assert all(utf16_len(p["text"]) <= 4096 for p in parts)
    assert [w for p in parts for w in p["text"].split()] == text.split()
    assert [p["reply_markup"] is not None for p in parts] == [False, False, True]
    assert result.platform_message_id == str(parts[-1]["message_id"])


async def test_partial_send_resumes_without_repeating(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    channel = await make_channel(Recorder())
    telegram_double.user(5551, "Alice", started=True)
    text = ("alpha " * 1000).strip()  # two parts
    telegram_double.inject("sendMessage", count=1)  # the first call passes…
    telegram_double.inject("sendMessage", status=502)  # …the second fails
    with pytest.raises(RetryLater):
        await channel.send(Outbound(to(5551), text), "k-partial")
    assert len(telegram_double.sent_to(5551)) == 1
    result = await channel.send(Outbound(to(5551), text), "k-partial")
    sent = telegram_double.sent_to(5551)
    assert len(sent) == 2 and " ".join(r["text"] for r in sent).split() == text.split()
    assert len(telegram_double.calls("sendMessage")) == 3
    assert result.platform_message_id == str(sent[-1]["message_id"])


async def test_media_is_reuploaded(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    channel = await make_channel(Recorder())
    telegram_double.user(5551, "Alice", started=True)
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "green").save(buf, "PNG")
    photo = Media("photo", buf.getvalue(), "photo.png", "image/png")
    await channel.send(Outbound(to(5551), "[K7F-3MQ] a photo", media=photo), "m1")
    pdf = Media("document", b"%PDF-1.4", "document.pdf", "application/pdf", caption="the form")
    await channel.send(Outbound(to(5551), "", media=pdf), "m2")
    sent = telegram_double.sent_to(5551)
    assert [r["media_kind"] for r in sent] == ["photo", "document"]
    assert sent[0]["media"] == buf.getvalue() and sent[0]["caption"] == "[K7F-3MQ] a photo"
    assert sent[1]["media"] == b"%PDF-1.4" and sent[1]["filename"] == "document.pdf"
    assert sent[1]["caption"] == "the form"
    control = Outbound(to(5551), "", kind=OutboundKind.CONTROL, control="case-open")
    assert (await channel.send(control, "c")).platform_message_id is None
    assert len(telegram_double.sent_to(5551)) == 2


async def test_send_errors_are_mapped(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    channel = await make_channel(Recorder())
    alice = telegram_double.user(5551, "Alice", started=True)
    telegram_double.inject("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryLater) as info:
        await channel.send(Outbound(to(5551), "hi"), "e1")
    assert info.value.after == 7
    for status in (500, 502):
        telegram_double.inject("sendMessage", status=status)
        with pytest.raises(RetryLater):
            await channel.send(Outbound(to(5551), "hi"), "e2")
    telegram_double.inject("sendMessage", drop=True)
    with pytest.raises(RetryLater):
        await channel.send(Outbound(to(5551), "hi"), "e3")
    with pytest.raises(Unreachable):
        await channel.send(Outbound(to(999_999), "hi"), "e4")  # chat not found
    alice.block_bot()
    with pytest.raises(Unreachable):
        await channel.send(Outbound(to(5551), "hi"), "e5")
    never_started = telegram_double.user(6001, "Carl")
    with pytest.raises(Unreachable):
        await channel.send(Outbound(to(never_started.id), "hi"), "e6")
    with pytest.raises(Unreachable):
        await channel.send(Outbound(ChannelAddress(ChannelName("matrix"), "@x:y"), "hi"), "e7")


def test_retry_after_pauses_the_limiter() -> None:
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    limiter.pause(7)
    assert limiter.reserve_chat("a") == pytest.approx(7)
    assert limiter.reserve_overall() == pytest.approx(7)


def test_rate_limiter_spacing() -> None:
    now = [0.0]
    limiter = RateLimiter(overall_rate=30, overall_burst=30, per_chat_rate=1, per_chat_burst=3,
                          clock=lambda: now[0])
    waits = [limiter.reserve_chat("chat") for _ in range(5)]
    assert waits[:3] == [0, 0, 0] and waits[3] == pytest.approx(1) and waits[4] == pytest.approx(2)
    assert limiter.reserve_chat("other") == 0  # a busy chat does not hold back another
    waits = [limiter.reserve_overall() for _ in range(60)]
    assert waits[:30] == [0] * 30
    assert waits[30] == pytest.approx(1 / 30) and waits[-1] == pytest.approx(1.0)
    now[0] = 10.0
    assert limiter.reserve_chat("chat") == 0 and limiter.reserve_overall() == 0


async def test_limiter_spaces_real_sends(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    channel = await make_channel(Recorder(), rate_limiter=RateLimiter(
        overall_rate=30, overall_burst=30, per_chat_rate=10, per_chat_burst=1))
    telegram_double.user(5551, "Alice", started=True)
    started = time.time()
    for i in range(4):
        await channel.send(Outbound(to(5551), f"m{i}"), f"r{i}")
    times = [r.time for r in telegram_double.calls("sendMessage")]
    # 10 per second for one chat, burst 1: the fourth send may not leave before
    # 0.3 s.  Measured from before the first send, so a late first request on a
    # busy machine (which only delays) cannot make spacing look shorter.
    assert len(times) == 4
    assert times[-1] - started >= 0.29


def test_split_text_edges() -> None:
    assert split_text("") == []
    assert split_text("short") == ["short"]
    word = "a" * 5000
    parts = split_text(word)
    assert [len(p) for p in parts] == [4096, 904]
    emoji = "😀" * 3000  # 6000 UTF-16 units
    parts = split_text(emoji)
    assert all(utf16_len(p) <= 4096 for p in parts) and "".join(parts) == emoji
    para = "x" * 3000 + "\n\n" + "y" * 3000
    assert split_text(para) == ["x" * 3000, "y" * 3000]


async def test_webhook_mode(telegram_double: TelegramDouble, make_channel: MakeChannel) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/tg/hook"
    rec = Recorder()
    channel = await make_channel(
        rec, mode="webhook", webhook_url=url, webhook_listen=f"127.0.0.1:{port}",
        secret_token="right-secret",
    )
    assert telegram_double.webhook_url == url
    async with aiohttp.ClientSession() as session:
        forged = {"update_id": 1, "message": {
            "message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"},
            "from": {"id": 1, "is_bot": False, "first_name": "Eve"}, "text": "forged"}}
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with session.post(url, json=forged, headers=headers) as resp:
                assert resp.status == 403
    alice = telegram_double.user(5551, "Alice")
    await alice.send_text("through the webhook")
    [inbound] = await rec.wait(1)
    assert inbound.text == "through the webhook"
    assert channel.webhook_secret == "right-secret"


async def test_webhook_failure_is_retried_by_telegram(
    telegram_double: TelegramDouble, make_channel: MakeChannel
) -> None:
    port = free_port()
    rec = Recorder(fail=True)
    await make_channel(rec, mode="webhook", webhook_url=f"http://127.0.0.1:{port}/hook",
                       webhook_listen=f"127.0.0.1:{port}")
    alice = telegram_double.user(5551, "Alice")
    await alice.send_text("retry me")
    await rec.wait_calls(2)
    assert all(status == 500 for _, status in telegram_double.webhook_deliveries)
    rec.fail = False
    [inbound] = await rec.wait(1)
    assert inbound.text == "retry me"
    # The answer to Telegram follows the hand-over to the core.
    await eventually(lambda: telegram_double.webhook_deliveries[-1][1] == 200, 10,
                     "the webhook delivery acknowledged")
    assert all(status == 500 for _, status in telegram_double.webhook_deliveries[:-1])


async def test_logs_carry_no_identity_or_content(
    telegram_double: TelegramDouble, make_channel: MakeChannel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rec = Recorder()
    channel = await make_channel(rec)
    alice = telegram_double.user(5551234, "Alicia", "Verhoeven", "alicia_v")
    await alice.send_text("my manager shouts at me")
    await alice.send_contact("+32470998877")
    await rec.wait(2)
    await channel.send(Outbound(to(5551234), "We hear you, Alicia"), "l1")
    telegram_double.inject("sendMessage", status=429, retry_after=1)
    with pytest.raises(RetryLater):
        await channel.send(Outbound(to(5551234), "again"), "l2")
    logged = caplog.text
    assert "telegram:" in logged  # the channel does log event kinds
    for secret in ("5551234", "Alicia", "Verhoeven", "alicia_v", "shouts", "+32470998877",
                   telegram_double.token):
        assert secret not in logged
