"""PDF cleaning for `handlers.doc_clean`, in a module of its own so that
pypdf is imported only when a PDF arrives."""

from __future__ import annotations

import io
import logging

from pypdf import PasswordType, PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    PdfObject,
    TextStringObject,
)

from handlers.doc_clean_base import NEUTRAL, DocumentRejected

# pypdf's diagnostics can quote bits of the document; logs carry no content.
logging.getLogger("pypdf").setLevel(logging.CRITICAL + 1)

_MARKUP = frozenset({"/Text", "/FreeText", "/Line", "/Square", "/Circle", "/Polygon",
                     "/PolyLine", "/Highlight", "/Underline", "/Squiggly", "/StrikeOut",
                     "/Stamp", "/Caret", "/Ink", "/FileAttachment", "/Sound", "/Redact"})
_DROP_KEYS = ("/Metadata", "/PieceInfo")
_ROOT_DROP_KEYS = ("/Metadata", "/PieceInfo", "/Perms", "/DSS")


def clean_pdf(data: bytes) -> bytes:
    """The PDF without its information dictionary, XMP metadata, private
    application data, annotation authors and signatures; pages unchanged."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise DocumentRejected("encrypted PDF")
        pages = len(reader.pages)
        writer = PdfWriter(clone_from=reader)
        writer.metadata = None
        _scrub_pdf(writer.root_object)
        first = io.BytesIO()
        writer.write(first)
        # The first pass still carries the orphaned metadata objects; cloning
        # again copies only what the cleaned catalog reaches.
        again = PdfWriter(clone_from=PdfReader(io.BytesIO(first.getvalue()), strict=False))
        again.metadata = None
        out = io.BytesIO()
        again.write(out)
        if len(PdfReader(io.BytesIO(out.getvalue()), strict=False).pages) != pages:
            raise DocumentRejected("pages lost while cleaning")
        return out.getvalue()
    except DocumentRejected:
        raise
    except Exception as exc:  # a hostile PDF can break the parser in any way
        raise DocumentRejected("unreadable PDF") from exc


def _scrub_pdf(root: DictionaryObject) -> None:
    for key in _ROOT_DROP_KEYS:
        root.pop(NameObject(key), None)
    seen: set[int] = set()
    stack: list[PdfObject] = [root]
    while stack:
        item = stack.pop()
        obj = item.get_object() if isinstance(item, IndirectObject) else item
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, DictionaryObject):
            for key in _DROP_KEYS:
                obj.pop(NameObject(key), None)
            if _resolved(obj.get("/Subtype")) in _MARKUP and "/T" in obj:
                obj[NameObject("/T")] = TextStringObject(NEUTRAL)
            if _resolved(obj.get("/FT")) == "/Sig":
                obj.pop(NameObject("/V"), None)  # the signer's name and certificate
            stack.extend(obj.values())
        elif isinstance(obj, ArrayObject):
            stack.extend(obj)


def _resolved(value: PdfObject | None) -> str | None:
    found = value.get_object() if isinstance(value, IndirectObject) else value
    return found if isinstance(found, str) else None
