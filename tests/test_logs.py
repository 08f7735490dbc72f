"""The log format: one JSON object per line, and no content or identity in
any line, even at DEBUG, across a whole conversation with retries,
duplicates, refusals, an unreachable recipient and a /forget."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bot.logs import QUIET, setup_logging
from domain.messages import Media
from tests.support.documents import pdf_with_author
from tests.support.memory_channel import Harness, code_of

EMPLOYEE_ID = "tg-7731904455"
OTHER_EMPLOYEE_ID = "tg-6610022871"
ADMIN_ID = "tg-5512009934"
CONFIDANT_ID = "conf-55120077"
COLLEAGUE_ID = "conf-88124460"
CONFIDANT_NAME = "Saskia Vermeulenqx"
COLLEAGUE_NAME = "Tomasz Brouckaertqx"
BIO = "Works in logistics since 2009 biofragment"

SECRETS = {
    "employee text": "my team leader Bramqx humiliates me in meetings",
    "second text": "I cannot sleep anymore since the reorganisationqx",
    "confidant reply": "thank you for telling me, shall we meet Thursdayqx",
    "note": "seems exhausted, mentions Bramqx by name",
    "retried text": "this one hits a flaky platform zebraqx",
    "unreachable reply": "are you still there walrusqx",
    "document caption": "my doctor's note ocelotqx",
    "document name": "sicknote-ocelotqx.pdf",
    "document author": "Ocelotina Vandammeqx",
    "refused document name": "payslip-lynxqx.docx",
    "declare what": "a customer threw a chair at me narwhalqx",
    "declare where": "counter 3 in Leuven branch narwhalqx",
    "exception text": "driver said: token 123456:ABCDEF leaked",
}
IDENTITIES = (EMPLOYEE_ID, OTHER_EMPLOYEE_ID, ADMIN_ID, CONFIDANT_ID, COLLEAGUE_ID,
              CONFIDANT_NAME, COLLEAGUE_NAME, BIO)


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """The app's own logging setup at DEBUG, writing to a buffer; the previous
    logging state is put back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level,
             {name: logging.getLogger(name).level for name in QUIET},
             logging.getLogger("aiohttp.access").disabled)
    buffer = io.StringIO()
    setup_logging("DEBUG")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
        logging.getLogger("aiohttp.access").disabled = saved[3]


async def whole_conversation(h: Harness) -> list[str]:
    """Everything a busy day holds; returns the case codes it produced."""
    h.core.settings = replace(h.core.settings, admins=frozenset({("memory", ADMIN_ID)}))
    sara = await h.add_confidant(CONFIDANT_NAME, CONFIDANT_ID, bio=BIO)
    tom = await h.add_confidant(COLLEAGUE_NAME, COLLEAGUE_ID)
    emp = h.person(EMPLOYEE_ID)
    await emp.say("/start")
    await emp.say("/confidants")
    await emp.say("/talk")
    await emp.press_token(emp.inbox[-1].menu.rows[0][0].token)  # type: ignore[union-attr]
    code = code_of(emp)
    await sara.say(f"/claim {code}")
    await tom.say(f"/claim {code}")  # refused: already taken
    await emp.say(SECRETS["employee text"])
    await emp.say(SECRETS["second text"], event_id="same-event")
    await emp.say(SECRETS["second text"], event_id="same-event")  # a platform re-delivery
    await sara.say(SECRETS["confidant reply"])
    await sara.say(f"/note {SECRETS['note']}")
    await sara.say("/heard")
    await sara.say("/cases")
    await sara.say("/consent advisor")
    await emp.say(media=Media("document", pdf_with_author(SECRETS["document author"]),
                              SECRETS["document name"], "application/pdf",
                              SECRETS["document caption"]))
    relayed = sara.inbox[-1].media
    assert relayed is not None and relayed.filename == "document.pdf", "no document relayed"
    assert SECRETS["document author"].encode() not in relayed.data
    before = len(sara.inbox)
    await emp.say(media=Media("document", b"PK\x03\x04 lynxqx", SECRETS["refused document name"]))
    assert len(sara.inbox) == before  # cannot be cleaned: refused, and logged as such
    await emp.say(unsupported="location")
    await emp.say("/nonsense-command with args")
    await tom.say(f"/close {code} conflict")  # refused: not his case

    h.channel.failures.append(RuntimeError(SECRETS["exception text"]))
    await emp.say(SECRETS["retried text"])
    h.clock.current += timedelta(minutes=10)
    await h.worker.drain()

    await sara.say(f"/handover {COLLEAGUE_NAME.split()[0]}")
    h.channel.unreachable.add(EMPLOYEE_ID)
    await tom.say(SECRETS["unreachable reply"])
    await tom.say("/close conflict")

    admin = h.person(ADMIN_ID)
    await admin.say("/admin")
    await admin.say("/admin report")
    await h.person(EMPLOYEE_ID + "x").say("/admin")  # not an admin

    other = h.person(OTHER_EMPLOYEE_ID)
    await other.say("/declare")
    await other.say(SECRETS["declare what"])
    await other.say("yesterday")
    await other.say(SECRETS["declare where"])
    await other.press("keep it anonymous")
    await other.say("/talk")
    await other.press_token(other.inbox[-1].menu.rows[0][0].token)  # type: ignore[union-attr]
    second = code_of(other)
    await other.say("/forget")
    await other.press("Yes, erase everything")
    h.clock.current += timedelta(days=120)
    await h.tick()
    return [code, second]


async def test_every_line_is_json_without_content_or_identity(
        harness: Harness, log_buffer: io.StringIO) -> None:
    codes = await whole_conversation(harness)
    lines = log_buffer.getvalue().splitlines()
    assert lines, "nothing was logged: the capture is broken"
    events = []
    for line in lines:
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert {"ts", "level", "logger", "event"} <= entry.keys(), line
        assert set(entry) <= {"ts", "level", "logger", "event", "error"}, line
        datetime.fromisoformat(entry["ts"])
        assert entry["level"] in {"debug", "info", "warning", "error", "critical"}, line
        events.append(entry["event"])
    # the paths that log were really taken (so the sweep below means something)
    joined = "\n".join(events)
    for kind in ("case opened", "case claimed", "duplicate event ignored", "delivery retry",
                 "recipient unreachable", "refused action on a case not assigned",
                 "document not relayed"):
        assert kind in joined, f"no {kind!r} line; logged: {events}"
    assert any(code in joined for code in codes), "case codes are allowed and expected"

    text = log_buffer.getvalue()
    for what, secret in SECRETS.items():
        for part in {secret, *[w for w in secret.split() if w.endswith("qx")]}:
            assert part not in text, f"{what} leaked into the logs"
    for identity in IDENTITIES:
        assert identity not in text, "an identity leaked into the logs"
