"""Documents lose their hidden metadata before a confidant sees them.

A PDF or an Office file names its author without anyone noticing: the PDF
information dictionary and XMP stream, Office's ``docProps`` (author, last
modified by, company, manager, template path), ODF's ``meta.xml``, the
authors of comments and tracked changes, a spreadsheet's saved ``C:\\Users\\…``
path.  Any of these would undo DESIGN guarantee 1, so `clean_document`
rewrites such files without them before they are relayed.

What is cleaned
    * PDF: the information dictionary, every XMP ``/Metadata`` stream (document,
      pages, images), ``/PieceInfo`` (application private data), the author
      (``/T``) of comments and other markup annotations, and digital signatures
      (a signature certificate carries the signer's name).  Pages are kept.
      An encrypted PDF is opened only if it has no user password.
    * OOXML (docx/xlsx/pptx and their macro/template variants): core, extended
      and custom properties are emptied (the parts stay, so content types and
      relationships stay consistent); authors, initials and account ids of
      comments, tracked changes and co-authors (Word ``people.xml``, Excel
      ``persons``, PowerPoint comment authors) become "Anonymous"; Excel's saved
      folder path and ``fileSharing`` user name are blanked; relationships that
      point at local files (e.g. the attached template in a user's profile)
      point nowhere.
    * ODF (odt/ods/odp/odg …): ``meta.xml`` is emptied; creators and initials of
      comments and tracked changes become "Anonymous"; the printer name is
      blanked.
    * In both packages: every entry gets a fixed 1980 timestamp and loses its
      extra fields (which can hold a Unix user id); embedded JPEG and PNG
      pictures are re-encoded from their pixels (no EXIF/GPS); embedded PDFs
      and Office/ODF files are cleaned the same way, two levels deep.

What is refused
    Old binary Office files (.doc/.xls/.ppt and their templates, told by the
    OLE2 compound-file header whatever the name, or by a name or MIME type
    that claims one) and RTF (``{\\rtf``): their summary information and
    ``{\\info}`` group carry the author and company, and this module cannot
    rewrite them safely.  They raise `DocumentRejected` with the reason
    ``media.old_format``, so the employee hears how to send them instead.

What is not cleaned (and is said so in docs/threat-model.md)
    Words in the document itself (a name typed in the text or in a comment's
    text, a signature line, a header), file attachments inside a PDF, embedded
    OLE objects (``.bin``), SharePoint/custom XML data parts, VBA projects,
    pictures other than JPEG and PNG, and file types this module does not know:
    plain text, other archives, audio.  Those pass through as before.

A file that is, or claims to be (by name or MIME type), a PDF/OOXML/ODF file
but cannot be cleaned — corrupt, encrypted, too large once unpacked — raises
`DocumentRejected`: relaying its raw bytes would relay the metadata too.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from handlers.doc_clean_base import NEUTRAL, DocumentRejected

MAX_UNPACKED_BYTES = 120 * 1024 * 1024
"""Most bytes unpacked from one package, nested packages included (zip-bomb guard).
Office files compress text about five to ten times; 20 MB in fits comfortably."""
MAX_MEMBERS = 20_000
MAX_NESTING = 2
MAX_PICTURE_PIXELS = 40_000_000

PDF_EXTS = frozenset({"pdf"})
OOXML_EXTS = frozenset({
    "docx", "docm", "dotx", "dotm", "xlsx", "xlsm", "xltx", "xltm", "xlam",
    "pptx", "pptm", "potx", "potm", "ppsx", "ppsm",
})
ODF_EXTS = frozenset({
    "odt", "ott", "ods", "ots", "odp", "otp", "odg", "otg", "odf", "odc", "odm",
})
_OOXML_MIME_PREFIXES = ("application/vnd.openxmlformats-officedocument.",
                        "application/vnd.ms-word.", "application/vnd.ms-excel.",
                        "application/vnd.ms-powerpoint.")
_ODF_MIME_PREFIX = "application/vnd.oasis.opendocument."

OLD_FORMAT_EXTS = frozenset({
    "doc", "dot", "xls", "xlt", "xla", "ppt", "pot", "pps", "rtf",
})
"""Old binary Office and RTF: metadata we cannot strip, so they are refused."""
_OLD_FORMAT_MIMES = frozenset({
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/rtf", "application/x-rtf", "text/rtf", "text/richtext",
})
_OLE2_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
"""The compound-file header of .doc, .xls, .ppt (and .msg, .vsd …)."""


@dataclass(frozen=True, slots=True)
class Cleaned:
    data: bytes
    ext: str
    """What the content is (``pdf``, ``docx``, ``odt`` …), whatever the name said."""
    mime_type: str


def extension(filename: str) -> str:
    _stem, dot, ext = filename.rpartition(".")
    return ext.lower() if dot else ""


def clean_document(data: bytes, filename: str = "", mime_type: str = "") -> Cleaned | None:
    """Clean ``data`` if it is (or claims to be) a PDF, OOXML or ODF file.

    Returns None for any other kind of file, which is relayed unchanged.
    Raises only `DocumentRejected` (reason ``media.old_format`` for an old
    binary Office or RTF file, see `is_old_format`).
    """
    ext, mime = extension(filename), mime_type.lower()
    if is_old_format(data, ext, mime):
        raise DocumentRejected("old binary Office or RTF file", reason="media.old_format")
    return _clean(data, ext, mime, _Budget())


def is_old_format(data: bytes, ext: str = "", mime: str = "") -> bool:
    """An old binary Office or RTF file, told by its content first (a renamed
    ``.doc`` is still one); a name or MIME type that claims one counts too
    unless the content is a PDF or a zip package we know how to clean."""
    if data.startswith(_OLE2_MAGIC) or data[:64].lstrip()[:5].lower() == b"{\\rtf":
        return True
    if ext in OLD_FORMAT_EXTS or mime in _OLD_FORMAT_MIMES:
        return b"%PDF-" not in data[:1024] and not data.startswith(b"PK\x03\x04")
    return False


# ------------------------------------------------------------------ detection


def _claimed_family(ext: str, mime: str) -> str | None:
    if ext in PDF_EXTS or mime == "application/pdf":
        return "pdf"
    if ext in OOXML_EXTS or mime.startswith(_OOXML_MIME_PREFIXES):
        return "ooxml"
    if ext in ODF_EXTS or mime.startswith(_ODF_MIME_PREFIX):
        return "odf"
    return None


class _Budget:
    """Unpacked bytes left for this file and everything nested in it."""

    def __init__(self) -> None:
        self.left = MAX_UNPACKED_BYTES

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise DocumentRejected("unpacks to too many bytes")


def _clean(data: bytes, ext: str, mime: str, budget: _Budget, depth: int = 0) -> Cleaned | None:
    claimed = _claimed_family(ext, mime)
    if b"%PDF-" in data[:1024]:
        return Cleaned(_clean_pdf(data), "pdf", "application/pdf")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            IndexError, KeyError, NotImplementedError, OverflowError, UnicodeDecodeError,
            zlib.error) as exc:
        if claimed == "pdf":  # no header where readers look first; pypdf decides
            return Cleaned(_clean_pdf(data), "pdf", "application/pdf")
        if claimed is not None:
            raise DocumentRejected("not a readable package") from exc
        return None
    with zf:
        family = _package_family(zf)
        if family is None:
            if claimed is not None:
                raise DocumentRejected("package of unknown shape")
            return None
        out = _clean_package(zf, family, budget, depth)
        kind, default_mime = _package_kind(zf, family)
    if ext and (ext in OOXML_EXTS if family == "ooxml" else ext in ODF_EXTS):
        kind = ext  # keep docm, dotx, ott …: Office refuses a macro file named .docx
    own_mime = mime.startswith((*_OOXML_MIME_PREFIXES, _ODF_MIME_PREFIX))
    return Cleaned(out, kind, mime if own_mime else default_mime)


def _package_family(zf: zipfile.ZipFile) -> str | None:
    names = {i.filename for i in zf.infolist()}
    if "[Content_Types].xml" in names:
        return "ooxml"
    if "META-INF/manifest.xml" in names or "mimetype" in names:
        return "odf"
    return None


_OOXML_KINDS = (
    ("wordprocessingml", "docx",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("spreadsheetml", "xlsx",
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("presentationml", "pptx",
     "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
)
_ODF_KINDS = {"text": "odt", "spreadsheet": "ods", "presentation": "odp", "graphics": "odg",
              "formula": "odf", "chart": "odc", "text-master": "odm"}


def _package_kind(zf: zipfile.ZipFile, family: str) -> tuple[str, str]:
    """The canonical extension and MIME type, from the package's own declaration."""
    try:
        if family == "ooxml":
            types = zf.read("[Content_Types].xml")[:200_000]
            for word, kind, mime in _OOXML_KINDS:
                if word.encode() in types:
                    return kind, mime
            return "docx", _OOXML_KINDS[0][2]
        declared = zf.read("mimetype")[:100].decode("ascii").strip() \
            if "mimetype" in zf.namelist() else ""
    except (KeyError, zipfile.BadZipFile, OSError, ValueError, zlib.error,
            NotImplementedError, EOFError, RuntimeError):
        declared = ""
    if declared.startswith(_ODF_MIME_PREFIX):
        found = _ODF_KINDS.get(declared.removeprefix(_ODF_MIME_PREFIX).removesuffix("-template"))
        if found is not None:
            return found, declared
    return "odt", _ODF_MIME_PREFIX + "text"


# ------------------------------------------------------------------ packages

_PROPS_TYPES = ("/metadata/core-properties", "/extended-properties", "/custom-properties")
_DEFAULT_PROPS = {"docProps/core.xml", "docProps/app.xml", "docProps/custom.xml"}
_PICTURES = {"jpg": "JPEG", "jpeg": "JPEG", "jpe": "JPEG", "png": "PNG"}


def _clean_package(zf: zipfile.ZipFile, family: str, budget: _Budget, depth: int) -> bytes:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise DocumentRejected("too many members")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise DocumentRejected("duplicate members")  # readers disagree on which one counts
    budget.spend(sum(i.file_size for i in infos))
    if any(i.flag_bits & 0x1 for i in infos):
        raise DocumentRejected("encrypted members")
    read = _reader(zf)
    if family == "odf" and "META-INF/manifest.xml" in names \
            and b"encryption-data" in read("META-INF/manifest.xml"):
        raise DocumentRejected("encrypted ODF")
    props = _ooxml_props_parts(read) if family == "ooxml" else {"meta.xml"}

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        ordered = sorted(infos, key=lambda i: i.filename != "mimetype") \
            if family == "odf" else infos  # ODF: ``mimetype`` first and stored
        for info in ordered:
            body = read(info.filename)
            if not info.is_dir():
                body = _clean_member(info.filename, body, family, props, budget, depth)
            stored = info.compress_type == zipfile.ZIP_STORED or info.filename == "mimetype"
            fresh = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fresh.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            fresh.external_attr = info.external_attr & 0x10  # keep only "is a folder"
            dst.writestr(fresh, body)
    return out.getvalue()


def _reader(zf: zipfile.ZipFile) -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        try:
            return zf.read(name)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, RuntimeError,
                NotImplementedError, OverflowError, zlib.error) as exc:
            raise DocumentRejected("unreadable member") from exc
    return read


def _ooxml_props_parts(read: Callable[[str], bytes]) -> set[str]:
    """Where the package says its property parts are, plus the usual names."""
    parts = set(_DEFAULT_PROPS)
    try:
        rels = _decode(read("_rels/.rels"))[0]
    except (DocumentRejected, KeyError):
        return parts
    for tag in _TAG.finditer(rels):
        attrs = dict((m.group(3), m.group(5)[1:-1]) for m in _ATTR.finditer(tag.group(0)))
        if attrs.get("Type", "").endswith(_PROPS_TYPES) and attrs.get("Target"):
            parts.add(attrs["Target"].lstrip("/"))
    return parts


def _clean_member(name: str, body: bytes, family: str, props: set[str], budget: _Budget,
                  depth: int) -> bytes:
    ext = extension(name)
    if name in props:
        return _empty_root(body, family)
    if ext in ("xml", "rels"):
        return _neutralise_xml(name, body, family)
    if ext in _PICTURES:
        return _scrub_picture(body, _PICTURES[ext])
    if ext in PDF_EXTS | OOXML_EXTS | ODF_EXTS:
        if depth >= MAX_NESTING:
            raise DocumentRejected("documents nested too deep")
        cleaned = _clean(body, ext, "", budget, depth + 1)
        return cleaned.data if cleaned is not None else body
    return body


# ------------------------------------------------------------------ XML, by hand

# XML forbids "<" inside attribute values, so no match can run past the next
# "<": the scan stays linear on hostile input.  Rewriting the text in place
# (instead of parsing and serialising) keeps every namespace prefix that Office
# needs for mc:Ignorable, and every byte we have no reason to touch.
_TAG = re.compile(r"<(?![?!/])(?:[^<>\"']|\"[^\"<]*\"|'[^'<]*')*>")
_ATTR = re.compile(r"(\s)((?:[\w.-]+:)?([\w.-]+))(\s*=\s*)(\"[^\"<]*\"|'[^'<]*')")
_NAME = re.compile(r"<(?:([\w.-]+):)?([\w.-]+)")
_PERSON_ATTRS = frozenset({"author", "userId", "providerId", "displayName", "userName",
                           "lastModifiedBy"})
_PERSON_ELEMENT_ATTRS = frozenset({("cmAuthor", "name"), ("author", "name")})
_BLANK_ELEMENT_ATTRS = frozenset({("absPath", "url")})
_PERSON_ELEMENTS = ("author", "creator", "initial-creator", "lastModifiedBy")
_INITIALS_ELEMENTS = ("creator-initials", "sender-initials")
_CUSTOM_XML_ELEMENTS = ("DisplayName", "AccountId")
_SAFE_TARGETS = ("http://", "https://", "mailto:", "#")


def _element_text_re(local_names: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(n) for n in local_names)
    return re.compile(rf"(<((?:[\w.-]+:)?(?:{names}))(?:\s[^<>]*)?>)([^<]*)(</\2\s*>)")


_PERSON_TEXT = _element_text_re(_PERSON_ELEMENTS)
_INITIALS_TEXT = _element_text_re(_INITIALS_ELEMENTS)
_CUSTOM_XML_TEXT = _element_text_re(_CUSTOM_XML_ELEMENTS)
_PRINTER = re.compile(r"(<config:config-item\s[^<>]*config:name=\"Printer(?:Name|Setup)\""
                      r"[^<>]*>)([^<]*)(</config:config-item>)")


def _decode(body: bytes) -> tuple[str, str]:
    codec = "utf-8-sig" if body.startswith(b"\xef\xbb\xbf") else \
        "utf-16" if body[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    try:
        return body.decode(codec), codec
    except UnicodeDecodeError as exc:
        raise DocumentRejected("XML part is not text") from exc


def _neutralise_xml(name: str, body: bytes, family: str) -> bytes:
    text, codec = _decode(body)
    new = _TAG.sub(lambda m: _neutralise_tag(m.group(0), name), text) \
        if family == "ooxml" else text
    new = _PERSON_TEXT.sub(lambda m: m.group(1) + NEUTRAL + m.group(4), new)
    new = _INITIALS_TEXT.sub(lambda m: m.group(1) + NEUTRAL[0] + m.group(4), new)
    if family == "ooxml" and name.startswith("customXml/"):
        new = _CUSTOM_XML_TEXT.sub(lambda m: m.group(1) + NEUTRAL + m.group(4), new)
    if family == "odf" and name == "settings.xml":
        new = _PRINTER.sub(lambda m: m.group(1) + m.group(3), new)
    return body if new == text else new.encode(codec)


def _neutralise_tag(tag: str, part: str) -> str:
    head = _NAME.match(tag)
    element = head.group(2) if head else ""
    is_rels = part.endswith(".rels")
    external = is_rels and "External" in tag

    def attr(m: re.Match[str]) -> str:
        local, value = m.group(3), m.group(5)
        quote = value[0]
        if local == "initials":
            new = NEUTRAL[0]
        elif local in _PERSON_ATTRS or (element, local) in _PERSON_ELEMENT_ATTRS:
            new = NEUTRAL
        elif (element, local) in _BLANK_ELEMENT_ATTRS:
            new = ""
        elif external and local == "Target" and not value[1:].startswith(_SAFE_TARGETS):
            new = "file:///"
        else:
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}{m.group(4)}{quote}{new}{quote}"

    return _ATTR.sub(attr, tag)


def _empty_root(body: bytes, family: str) -> bytes:
    """The same root element with its namespaces and nothing in it: the part
    still exists for the content types and manifest, and says nothing."""
    text, _codec = _decode(body)
    root = _TAG.search(text)
    head = _NAME.match(root.group(0)) if root else None
    if root is None or head is None:
        raise DocumentRejected("property part without a root element")
    qname = root.group(0)[1:head.end()]
    keep = [m.group(0) for m in _ATTR.finditer(root.group(0))
            if m.group(2) == "xmlns" or m.group(2).startswith("xmlns:")
            or m.group(2) == "office:version"]
    start = f"<{qname}{''.join(keep)}"
    if family == "odf":
        prefix = f"{head.group(1)}:" if head.group(1) else ""
        inner = f"<{prefix}meta/>"
        xml = f"{start}>{inner}</{qname}>"
    else:
        xml = f"{start}/>"
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + xml).encode()


def _scrub_picture(body: bytes, fmt: str) -> bytes:
    """Re-encode from pixels (EXIF/GPS gone); keep a picture we cannot read as it is."""
    try:
        with Image.open(io.BytesIO(body)) as img:
            if img.format != fmt or img.width * img.height > MAX_PICTURE_PIXELS:
                return body
            img.load()
            modes = ("RGB", "L", "CMYK") if fmt == "JPEG" else ("RGB", "RGBA", "L", "LA")
            mode = img.mode if img.mode in modes else modes[0] if fmt == "JPEG" else "RGBA"
            clean = Image.new(mode, img.size)
            clean.paste(img.convert(mode))
    except Exception:  # a picture we cannot read carries nothing a viewer shows
        return body
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, format="JPEG", quality=90)
    else:
        clean.save(out, format="PNG")
    return out.getvalue()


# ------------------------------------------------------------------ PDF


def _clean_pdf(data: bytes) -> bytes:
    """pypdf is loaded with the first PDF, not with the bot: most bot
    processes never see one, and it would cost each of them memory."""
    from handlers.doc_clean_pdf import clean_pdf

    return clean_pdf(data)
