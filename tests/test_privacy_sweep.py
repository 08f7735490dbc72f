"""The privacy sweep: run realistic conversations with known employee ids,
usernames, names and message texts, then search every artefact the bot
leaves behind.

* Telegram, the real ``confidant run`` process on SQLite: its stderr (every
  log line), the SQLite file after a checkpoint (plus any WAL), and all
  traffic to the confidants' chats at the Bot API double.
* Telegram, the real `App` on PostgreSQL: a ``pg_dump`` of its database and
  the log records.
* The in-memory harness (core and store without a platform): the SQLite
  file, the log records and what the confidant received.

No employee id, name or username may appear anywhere (the confidant learns
only a case code); message text may appear only in what the confidant
received, never in logs or at rest.
"""

from __future__ import annotations

import functools
import io
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import bot.channels.telegram.channel as telegram_module
from bot.channels.ratelimit import RateLimiter
from handlers.i18n import Translator
from tests.support.app_runner import make_setup, running_app
from tests.support.faults import (
    PacedBotProcess,
    Pair,
    checkpointed_bytes,
    find_needles,
    identity_needles,
    int_encodings,
    open_pair,
    received_by,
)
from tests.support.memory_channel import make_harness
from tests.support.telegram_double import TelegramDouble

TR = Translator("nl", ("nl", "fr", "en"), "Europe/Brussels", "Acme Logistics")


def t(key: str, **values: object) -> str:
    return TR.t("en", key, **values)


@dataclass
class Conversation:
    """What was said, to search for afterwards."""

    pairs: list[Pair]
    texts: list[str] = field(default_factory=list)

    def say(self, what: str) -> str:
        text = f"{what} {secrets.token_hex(4)}"
        self.texts.append(text)
        return text

    @property
    def employee_needles(self) -> list[str]:
        return identity_needles([p.emp for p in self.pairs])


def people(d: TelegramDouble) -> list[Pair]:
    """Distinctive employees (and their confidants), so a leak is found by substring."""
    return [
        Pair(d.user(6_120_004_417, "Wendelientje", "Vanderstappen", "wendel_vdstappen", "en"),
             d.user(7_390_001_122, "Carla", "Janssens", "carla_vp", "en", started=True), "Carla"),
        Pair(d.user(6_120_009_953, "Brammert", "Oosterzeele", "brammert_oz", "en"),
             d.user(7_390_003_344, "Dirk", "Maes", "dirk_vp", "en", started=True), "Dirk"),
    ]


def photo(caption_owner: str) -> bytes:
    """A small JPEG with an EXIF maker tag naming the owner (must be scrubbed)."""
    img = Image.new("RGB", (64, 48), (20, 120, 40))
    exif = img.getexif()
    exif[0x010F] = caption_owner
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def containing(text: str) -> Callable[[dict[str, Any]], bool]:
    """A `TelegramDouble.wait_for` predicate: the message's text contains ``text``."""
    return lambda r: text in (r.get("text") or "")


async def telegram_conversation(d: TelegramDouble, conv: Conversation) -> None:
    """/start, /info, a case per employee, words both ways, a photo, a note, /close."""
    for pair in conv.pairs:
        emp, conf = pair.emp, pair.conf
        n = len(d.sent_to(emp.id))
        await emp.send_command("start")
        await d.wait_for(emp.id, lambda r: bool(r.get("reply_markup")), 20, start=n)
        await emp.send_command("info")
        await open_pair(d, pair)
        words = conv.say("my shift lead Zwartkop humiliates me")
        await emp.send_text(words)
        relayed = await d.wait_for(conf.id, containing(words), 20)
        answer = conv.say("Thank you for trusting me with the Zwartkop matter")
        await conf.reply_to(relayed, answer)
        await d.wait_for(emp.id, containing(answer), 20)
        caption = conv.say("photo of the note left on my desk")
        await emp.send_photo(photo(f"{emp.first_name}PhoneMaker"), caption=caption)
        await d.wait_for(conf.id, lambda r: r.get("method") == "sendPhoto", 20)
        note = conv.say("private note: employee seems exhausted")
        n_conf = len(d.sent_to(conf.id))
        await conf.send_command("note", note)
        await d.wait_for(conf.id, None, 20, start=n_conf)
        n_emp = len(d.sent_to(emp.id))
        await conf.send_command("close", "stress")
        await d.wait_for(emp.id, None, 20, start=n_emp)


def assert_clean(where: str, blob: bytes, needles: list[str], ids: list[int]) -> None:
    """None of the needles (as text) nor the ids (as binary integers) in ``blob``."""
    found = find_needles(blob, needles)
    assert not found, f"{where} holds {found}"
    for value in ids:
        for form in int_encodings(value):
            assert form not in blob, f"{where} holds an employee id in binary form"


def assert_confidants_saw_no_identity(d: TelegramDouble, conv: Conversation) -> None:
    """What confidants received: texts yes (that is the point), identity never."""
    blob = received_by(d, [p.conf.id for p in conv.pairs])
    assert conv.texts[0].encode() in blob, "the sweep saw nothing the confidants received"
    found = find_needles(blob, conv.employee_needles, utf16=False)
    assert not found, f"a confidant received {found}"
    assert b"PhoneMaker" not in blob, "photo metadata reached a confidant"


async def test_telegram_process_on_sqlite_leaves_no_identity_or_text(
        tmp_path: Path, telegram_double: TelegramDouble) -> None:
    d = telegram_double
    conv = Conversation(people(d))
    setup = await make_setup(tmp_path, telegram_base_url=d.base_url, telegram_token=d.token,
                             extra={"logging": {"level": "DEBUG"}})
    for p in conv.pairs:
        await setup.add_confidant(p.name, telegram=p.conf.id, languages=["en"])
    proc = PacedBotProcess(setup)
    proc.start()
    try:
        await proc.wait_until(lambda: bool(d.calls("getUpdates")), timeout=60)
        await telegram_conversation(d, conv)
    finally:
        assert await proc.stop() == 0
    log = proc.log()
    assert "case opened" in log and len(log.splitlines()) > 20, "the log captured too little"
    ids = [p.emp.id for p in conv.pairs]
    assert_clean("the bot's log", log.encode(), conv.employee_needles + conv.texts, [])
    assert "PhoneMaker" not in log
    data = checkpointed_bytes(setup.db_path)
    assert_clean("the SQLite file", data, conv.employee_needles + conv.texts, ids)
    assert_confidants_saw_no_identity(d, conv)


@pytest.fixture
def quick_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """10 messages/s per chat instead of Telegram's 1/s (the limiter has its own tests)."""
    monkeypatch.setattr(telegram_module, "RateLimiter",
                        functools.partial(RateLimiter, per_chat_rate=10.0))


async def test_telegram_app_on_postgresql_pg_dump_is_clean(
        tmp_path: Path, telegram_double: TelegramDouble, quick_pacing: None,
        pg_database: Callable[[], Awaitable[str]], pg_dump: Callable[[str], bytes],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    d = telegram_double
    conv = Conversation(people(d))
    url = await pg_database()
    setup = await make_setup(tmp_path, telegram_base_url=d.base_url, telegram_token=d.token,
                             extra={"store": {"url": url}})
    from datetime import UTC, datetime
    from datetime import time as dtime

    from store.crypto import load_master_key
    from store.migrate import upgrade
    from store.store import Store

    await upgrade(url)
    store = Store.open(url, load_master_key(setup.key_path))
    try:
        async with store.tx() as tx:
            for p in conv.pairs:
                c = await tx.confidants.add(p.name, bio="", languages=["en"],
                                            attested_by="test", now=datetime.now(UTC))
                await tx.confidants.set_address(c, "telegram", str(p.conf.id))
                for day in range(7):
                    await tx.rota.add_shift(c, day, dtime(0, 0), dtime(23, 59), "duty")
    finally:
        await store.close()
    async with running_app(setup):
        await telegram_conversation(d, conv)
    dump = pg_dump(url)
    assert b"COPY public.cases" in dump or b"COPY public." in dump, "the dump holds no data"
    assert_clean("the pg_dump", dump, conv.employee_needles + conv.texts, [])
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] in
                       ("confidant", "bot", "handlers", "store", "telegram", "httpx", "nio"))
    assert "case opened" in logged
    assert_clean("the log records", logged.encode(), conv.employee_needles + conv.texts, [])
    assert_confidants_saw_no_identity(d, conv)


async def test_in_memory_harness_leaves_no_identity_or_text(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "sweep.db"
    h = await make_harness(f"sqlite+aiosqlite:///{db}", tmp_path)
    try:
        sara = await h.add_confidant("Sara", "conf-sara-5501")
        emp_id = "employee-Hendrikus-Zwanepoel-8841"
        emp = h.person(emp_id, "nl")
        texts = [f"Ik word gepest door Zwanepoel {secrets.token_hex(4)}",
                 f"Het gebeurt elke maandag in magazijn B {secrets.token_hex(4)}"]
        answer = f"Dank je, we bekijken dit samen {secrets.token_hex(4)}"
        note = f"prive notitie over de situatie {secrets.token_hex(4)}"
        await emp.say("/start")
        await emp.say("/talk")
        await emp.press(TR.t("nl", "talk.first_available"))
        code = next(o.case for o in reversed(emp.inbox) if o.case)
        await sara.say(f"/claim {code}")
        for text in texts:
            await emp.say(text)
        await sara.say(answer)
        await sara.say(f"/note {note}")
        await sara.say("/close stress")
        await emp.say("/start")
        received = "\n".join(o.text for o in sara.inbox)
        assert texts[0] in received and any(answer in s for s in emp.texts)
        for needle in (emp_id, "Hendrikus", "Zwanepoel-8841", "8841"):
            assert needle not in received, "the confidant learned who it is"
            for o in sara.inbox:
                assert needle not in repr((o.role, o.control)) and (o.media is None
                                                       or needle.encode() not in o.media.data)
    finally:
        await h.store.close()
    secrets_all = [emp_id, "Hendrikus", *texts, answer, note]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert code in logged, "the log capture saw nothing of this conversation"
    assert_clean("the log records", logged.encode(), secrets_all, [])
    assert_clean("the SQLite file", checkpointed_bytes(db), secrets_all, [])
