"""An employee sends a document that names them in its hidden metadata: the
confidant gets a copy without the name that still opens; a document that
cannot be cleaned reaches no confidant and the employee is told, kindly and
in their language, what to send instead.  Through the real core, store and
delivery worker."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from domain.messages import Media
from handlers.i18n import Translator
from store.models import CaseMessage
from tests.support.documents import (
    LOGIN,
    NAME,
    assert_odf_consistent,
    assert_ooxml_consistent,
    docx_with_author,
    odt_with_author,
    pdf_pages_text,
    pdf_with_author,
)
from tests.support.memory_channel import Harness, Person, open_case

OOXML_WORD = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def identifying(data: bytes) -> bool:
    parts = [data]
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            parts += [z.read(n) for n in z.namelist()]
    return any(NAME.encode() in p or LOGIN.encode() in p or b"Peeters" in p for p in parts)


def media_received(p: Person) -> list[Media]:
    return [o.media for o in p.inbox if o.media is not None]


def refusal(lang: str) -> str:
    return Translator().t(lang, "media.not_cleanable")


async def held(h: Harness, code: str) -> list[dict[str, Any]]:
    """What the store keeps for a case nobody has claimed yet, decrypted."""
    async with h.store.tx() as tx:
        case = await tx.cases.by_code(code)
        assert case is not None
        rows = (await tx.session.scalars(select(CaseMessage)
                                         .where(CaseMessage.case_id == case.id)
                                         .order_by(CaseMessage.seq))).all()
        return [json.loads(await tx.vault.open_text(case.data_key_id, r.body_enc,
                                                    "case_messages.body_enc", r.id))
                for r in rows]


async def test_word_file_reaches_the_confidant_without_its_author(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp, sara)
    original = docx_with_author()
    assert identifying(original)
    await emp.say("my complaint", media=Media(
        "document", original, filename="Jan_Peeters_klacht.docx",
        mime_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document"))
    got = sara.inbox[-1]
    assert code in got.text and got.media is not None
    assert got.media.filename == "document.docx"
    assert not identifying(got.media.data)
    assert_ooxml_consistent(got.media.data)
    assert refusal("en") not in emp.texts


async def test_pdf_reaches_the_confidant_without_its_author(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    await open_case(emp, sara)
    original = pdf_with_author()
    await emp.say(media=Media("document", original, filename="scan.pdf",
                              mime_type="application/pdf"))
    [got] = media_received(sara)
    assert not identifying(got.data)
    assert PdfReader(io.BytesIO(got.data)).metadata is None
    assert pdf_pages_text(got.data) == pdf_pages_text(original)


async def test_held_document_is_cleaned_when_the_case_is_claimed(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp)  # nobody has claimed it yet: the file waits
    await emp.say(media=Media("document", odt_with_author(), filename="klacht.odt"))
    assert media_received(sara) == []
    await sara.say(f"/claim {code}")
    [got] = media_received(sara)
    assert got.filename == "document.odt" and not identifying(got.data)
    assert_odf_consistent(got.data)


@pytest.mark.parametrize(("build", "sent_as", "mime", "kept_as"), [
    (pdf_with_author, "Jan_Peeters_klacht.pdf", "application/pdf", "document.pdf"),
    (docx_with_author, "Jan_Peeters_klacht.docx", OOXML_WORD, "document.docx"),
])
async def test_held_document_is_stored_already_cleaned(
        harness: Harness, tmp_path: Path, build: Callable[[], bytes], sent_as: str, mime: str,
        kept_as: str) -> None:
    """While nobody has claimed the case, the file waits in the database: it
    waits without its author, under a neutral name, next to the words sent
    with it; the confidant who claims the case gets that clean copy."""
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp)
    original = build()
    assert identifying(original)
    await emp.say("my complaint", media=Media("document", original, filename=sent_as,
                                              mime_type=mime))
    assert refusal("en") not in emp.texts
    [body] = await held(harness, code)
    assert body["text"] == "my complaint"
    kept = base64.b64decode(body["data"])
    assert not identifying(kept)
    assert body["filename"] == kept_as
    for stored in tmp_path.glob("core.db*"):  # the database file and its write-ahead log
        raw = stored.read_bytes()
        assert NAME.encode() not in raw and b"Peeters" not in raw and LOGIN.encode() not in raw
    await sara.say(f"/claim {code}")
    [got] = media_received(sara)
    assert got.filename == kept_as and not identifying(got.data)
    assert any("my complaint" in t for t in sara.texts)


async def test_a_file_held_raw_by_an_older_version_is_still_cleaned_at_the_claim(
        harness: Harness) -> None:
    """Messages held before documents were cleaned at hold time were stored as
    sent: the claim cleans them too, so an upgrade relays nothing raw."""
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    code = await open_case(emp)
    async with harness.store.tx() as tx:
        case = await tx.cases.by_code(code)
        assert case is not None
        await tx.cases.hold_message(case, "", Media("document", odt_with_author(),
                                                    filename="Jan_Peeters.odt"),
                                    False, harness.clock.now())
    await sara.say(f"/claim {code}")
    [got] = media_received(sara)
    assert got.filename == "document.odt" and not identifying(got.data)
    assert_odf_consistent(got.data)


@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
async def test_document_that_cannot_be_cleaned_reaches_nobody(harness: Harness,
                                                              lang: str) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1", language=lang)
    await open_case(emp, sara)
    before = len(sara.inbox)
    locked = pdf_with_author(user_password="secret")
    await emp.say(media=Media("document", locked, filename="Jan_Peeters.pdf",
                              mime_type="application/pdf"))
    assert len(sara.inbox) == before
    assert emp.last == refusal(lang)


@pytest.mark.parametrize(("lang", "name", "data"), [
    ("nl", "Jan_Peeters.doc", bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 600),
    ("fr", "budget.xls", bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 600),
    ("en", "letter.rtf", b"{\\rtf1{\\info{\\author Jan Peeters}}Dear confidant}"),
])
async def test_old_office_and_rtf_files_are_refused_kindly(harness: Harness, lang: str,
                                                           name: str, data: bytes) -> None:
    """Old binary Office and RTF files carry their author's name and cannot be
    cleaned: nobody gets them, and the employee hears how to send them instead."""
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1", language=lang)
    await open_case(emp, sara)
    before = len(sara.inbox)
    await emp.say("here it is", media=Media("document", data, filename=name))
    assert media_received(sara) == []
    assert "here it is" in sara.last and len(sara.inbox) == before + 1
    assert Translator().t(lang, "media.old_format") in emp.texts
    assert ".docx" in emp.last


async def test_words_sent_with_an_uncleanable_document_still_arrive(harness: Harness) -> None:
    """Only the file is held back: the employee's own words (here, words of
    distress) reach the confidant as any message would."""
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    await open_case(emp, sara)
    await emp.say("I can't go on, I want to end my life",
                  media=Media("document", b"%PDF-1.7 broken", filename="Jan_Peeters.pdf"))
    assert media_received(sara) == []
    assert "I can't go on" in sara.last
    assert refusal("en") in emp.texts


async def test_held_document_that_cannot_be_cleaned_is_refused_at_once(
        harness: Harness) -> None:
    """The employee hears straight away that the file will not be passed on
    (not "kept safely" now and a refusal days later, at the claim); the words
    sent with it wait for the confidant, the file is not kept at all."""
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1", language="nl")
    code = await open_case(emp)
    await emp.say("hello")
    emp.clear()
    await emp.say("see the attached payslip",
                  media=Media("document", b"PK\x03\x04 broken", filename="Jan_Peeters.docx"))
    assert emp.texts == [refusal("nl")]  # told now, in their language
    await emp.say(media=Media("document", pdf_with_author(user_password="secret"),
                              filename="Jan_Peeters.pdf", mime_type="application/pdf"))
    assert emp.texts == [refusal("nl")] * 2
    bodies = await held(harness, code)
    assert [b["text"] for b in bodies] == ["hello", "see the attached payslip"]
    assert not any("data" in b or "filename" in b for b in bodies)  # no file kept
    emp.clear()
    await sara.say(f"/claim {code}")
    assert media_received(sara) == []
    assert any("hello" in t for t in sara.texts)
    assert any("see the attached payslip" in t for t in sara.texts)
    assert refusal("nl") not in emp.texts  # not told a second time at the claim
    assert refusal("en") not in sara.texts and refusal("nl") not in sara.texts


async def test_other_files_are_relayed_as_before(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    emp = harness.person("emp-1")
    await open_case(emp, sara)
    await emp.say(media=Media("document", b"plain words", filename="Jan notes.txt",
                              mime_type="text/plain"))
    [got] = media_received(sara)
    assert got.data == b"plain words" and got.filename == "document.txt"
