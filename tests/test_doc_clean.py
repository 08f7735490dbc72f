"""The document cleaner on real files: a PDF, a Word file and a Writer file
that name "Jan Peeters" in their hidden metadata come out without the name
and still open; files it cannot clean are refused, never passed on raw;
other files are left alone; and no input makes it fail any other way."""

from __future__ import annotations

import io
import warnings
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfReader

from handlers import doc_clean
from handlers.doc_clean import DocumentRejected, clean_document
from tests.support.documents import (
    LOGIN,
    NAME,
    TEXT,
    assert_odf_consistent,
    assert_ooxml_consistent,
    docx_with_author,
    odt_with_author,
    pdf_pages_text,
    pdf_with_author,
)


def unpacked(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def names_left(data: bytes) -> list[str]:
    """Every member (or the whole file) that still says who wrote it."""
    parts = unpacked(data) if zipfile.is_zipfile(io.BytesIO(data)) else {"": data}
    return [name for name, body in parts.items()
            if NAME.encode() in body or LOGIN.encode() in body or b"Peeters" in body]


# ------------------------------------------------------------------ PDF


def test_pdf_loses_author_xmp_and_comment_author_and_keeps_its_pages() -> None:
    original = pdf_with_author()
    assert NAME.encode() in original  # the test file really does name him
    cleaned = clean_document(original, "Jan_Peeters.pdf", "application/pdf")
    assert cleaned is not None and cleaned.ext == "pdf"
    assert names_left(cleaned.data) == []
    reader = PdfReader(io.BytesIO(cleaned.data))
    assert reader.metadata is None and reader.xmp_metadata is None
    assert pdf_pages_text(cleaned.data) == pdf_pages_text(original)
    note = reader.pages[0]["/Annots"][0].get_object()
    assert note["/Contents"] == "see page two" and note["/T"] != NAME


def test_pdf_with_only_an_owner_password_is_cleaned_and_opens_without_one() -> None:
    original = pdf_with_author(encrypt_owner_only=True)
    cleaned = clean_document(original, "letter.pdf")
    assert cleaned is not None
    reader = PdfReader(io.BytesIO(cleaned.data))
    assert not reader.is_encrypted and reader.metadata is None
    assert names_left(cleaned.data) == []
    assert len(reader.pages) == 2


@pytest.mark.parametrize(("data", "name"), [
    (pdf_with_author(user_password="secret"), "locked.pdf"),  # cannot read: cannot clean
    (b"%PDF-1.4 data", "broken.pdf"),
    (pdf_with_author()[:400], "cut-off.pdf"),
    (b"just some words", "claims-to-be.pdf"),
    (b"just some words", "no-extension"),  # ... or says so by its MIME type
])
def test_pdf_that_cannot_be_cleaned_is_refused(data: bytes, name: str) -> None:
    with pytest.raises(DocumentRejected) as err:
        clean_document(data, name, "application/pdf" if name == "no-extension" else "")
    assert err.value.reason == "media.not_cleanable"


def test_pdf_is_recognised_by_content_whatever_its_name() -> None:
    cleaned = clean_document(pdf_with_author(), "holiday-photo.jpg", "image/jpeg")
    assert cleaned is not None and cleaned.ext == "pdf" and cleaned.mime_type == "application/pdf"
    assert names_left(cleaned.data) == []


# ------------------------------------------------------------------ Office


def test_docx_loses_every_trace_of_its_author_and_still_holds_together() -> None:
    original = docx_with_author()
    assert names_left(original)  # properties, comment, tracked change, people, template, EXIF
    cleaned = clean_document(original, "Jan_Peeters_klacht.docx")
    assert cleaned is not None and cleaned.ext == "docx"
    assert cleaned.mime_type.endswith("wordprocessingml.document")
    assert names_left(cleaned.data) == []
    assert_ooxml_consistent(cleaned.data)
    parts = unpacked(cleaned.data)
    assert set(parts) == set(unpacked(original))  # nothing the package refers to went missing
    assert TEXT.encode() in parts["word/document.xml"] and b"every day" in parts[
        "word/document.xml"]
    assert b'mc:Ignorable="w14"' in parts["word/document.xml"]  # prefixes untouched
    assert b"<w:t>true</w:t>" in parts["word/comments.xml"]  # the comment's words stay
    for props in ("docProps/core.xml", "docProps/app.xml", "docProps/custom.xml"):
        assert b"Acme" not in parts[props] and b"complaint" not in parts[props]
    with Image.open(io.BytesIO(parts["word/media/image1.jpeg"])) as img:
        assert img.size == (16, 16) and not img.getexif()
    with zipfile.ZipFile(io.BytesIO(cleaned.data)) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_docx_sent_under_another_name_is_recognised_by_its_content() -> None:
    cleaned = clean_document(docx_with_author(), "notes.txt", "text/plain")
    assert cleaned is not None and cleaned.ext == "docx"
    assert names_left(cleaned.data) == []


def test_macro_enabled_word_file_keeps_its_extension() -> None:
    cleaned = clean_document(docx_with_author(), "report.docm")
    assert cleaned is not None and cleaned.ext == "docm"


def test_odt_loses_its_author_and_keeps_mimetype_first_and_stored() -> None:
    original = odt_with_author()
    assert names_left(original)
    cleaned = clean_document(original, "klacht.odt")
    assert cleaned is not None and cleaned.ext == "odt"
    assert cleaned.mime_type == "application/vnd.oasis.opendocument.text"
    assert names_left(cleaned.data) == []
    assert_odf_consistent(cleaned.data)
    parts = unpacked(cleaned.data)
    assert TEXT.encode() in parts["content.xml"] and b"<text:p>true</text:p>" in parts[
        "content.xml"]
    assert b"<office:meta/>" in parts["meta.xml"] and b"LibreOffice" not in parts["meta.xml"]


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are on purpose below
        with zipfile.ZipFile(out, "w", method) as z:
            for name, body in members.items():
                z.writestr(name.split("#")[0], body)
    return out.getvalue()


@pytest.mark.parametrize(("data", "name"), [
    # an encrypted Word file is an OLE container, not a zip
    (bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 600, "protected.docx"),
    (_zip({"readme.txt": b"hello"}), "looks-like.docx"),
    (b"PK\x03\x04 truncated", "broken.xlsx"),
    (_zip({"[Content_Types].xml": b"<Types/>", "docProps/core.xml#1": b"<a/>",
           "docProps/core.xml#2": NAME.encode()}), "twice.docx"),
    (_zip({"mimetype": b"application/vnd.oasis.opendocument.text",
           "META-INF/manifest.xml": b"<manifest><manifest:encryption-data/></manifest>",
           "content.xml": b"\x8f\x01 encrypted bytes"}), "locked.odt"),
    (_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"\xff\xfe\xff\x00bad"}),
     "not-text.docx"),
])
def test_office_file_that_cannot_be_cleaned_is_refused(data: bytes, name: str) -> None:
    with pytest.raises(DocumentRejected):
        clean_document(data, name)


def test_zip_bomb_is_refused_before_it_is_unpacked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doc_clean, "MAX_UNPACKED_BYTES", 1024 * 1024)
    bomb = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b" " * 2_000_000})
    assert len(bomb) < 10_000
    with pytest.raises(DocumentRejected):
        clean_document(bomb, "bomb.docx")


def test_real_limit_leaves_room_for_a_full_size_office_file() -> None:
    from bot.channels.media import MAX_MEDIA_BYTES
    assert doc_clean.MAX_UNPACKED_BYTES >= 5 * MAX_MEDIA_BYTES


@pytest.mark.parametrize(("data", "name", "mime"), [
    (b"Dear confidant, ...", "letter.txt", "text/plain"),
    (_zip({"holiday/1.txt": b"x"}), "photos.zip", "application/zip"),
    (b"OggS\0\2" + b"\0" * 100, "voice.ogg", "audio/ogg"),
])
def test_other_files_pass_through_untouched(data: bytes, name: str, mime: str) -> None:
    assert clean_document(data, name, mime) is None


OLE2 = bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 600
RTF = b"{\\rtf1\\ansi{\\info{\\author Jan Peeters}{\\company Acme}}Dear confidant}"


@pytest.mark.parametrize(("data", "name", "mime"), [
    (OLE2, "old.doc", "application/msword"),
    (OLE2, "budget.xls", "application/vnd.ms-excel"),
    (OLE2, "slides.ppt", "application/vnd.ms-powerpoint"),
    (OLE2, "renamed.txt", "text/plain"),  # told by its content, not its name
    (OLE2, "", ""),
    (RTF, "letter.rtf", "application/rtf"),
    (RTF, "letter.txt", "text/plain"),
    (b"\r\n" + RTF, "letter", "text/rtf"),
    (b"not really a doc", "old.doc", ""),  # a name claiming the old format is enough
    (b"words", "letter", "application/msword"),
])
def test_old_binary_office_and_rtf_are_refused(data: bytes, name: str, mime: str) -> None:
    """Their summary information names the author and we cannot strip it: refused
    with a reason of their own, so the employee hears how to send them instead."""
    with pytest.raises(DocumentRejected) as err:
        clean_document(data, name, mime)
    assert err.value.reason == "media.old_format"


def test_a_modern_file_named_like_an_old_one_is_cleaned() -> None:
    """A .docx saved with an old name is still a package we can clean."""
    cleaned = clean_document(docx_with_author(), "report.doc", "application/msword")
    assert cleaned is not None and cleaned.ext == "docx"


# ------------------------------------------------------------------ never anything else

KNOWN = ["a.pdf", "a.docx", "a.xlsx", "a.pptx", "a.odt", "a.ods", "a.txt", "a", "a.zip"]


def _outcome(data: bytes, name: str) -> None:
    try:
        result = clean_document(data, name)
    except DocumentRejected as err:
        assert err.reason in ("media.not_cleanable", "media.old_format")
        return
    assert result is None or isinstance(result.data, bytes)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048), name=st.sampled_from(KNOWN))
def test_random_bytes_are_cleaned_passed_or_refused_never_anything_else(data: bytes,
                                                                        name: str) -> None:
    _outcome(data, name)


SEEDS = [docx_with_author(), odt_with_author(), pdf_with_author()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), name=st.sampled_from(KNOWN),
       edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1,
                                                                            max_size=8)),
                      min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.floats(0.1, 1)))
def test_damaged_real_documents_never_fail_any_other_way(
        seed: bytes, name: str, edits: list[tuple[float, bytes]], cut: float | None) -> None:
    data = bytearray(seed)
    for where, junk in edits:
        at = int(where * len(data))
        data[at:at + len(junk)] = junk
    if cut is not None:
        data = data[:max(1, int(cut * len(data)))]
    _outcome(bytes(data), name)
