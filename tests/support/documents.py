"""Real documents that name their author in hidden metadata, built in the test
(a PDF through pypdf, Office and OpenDocument packages as the zip files those
programs write), and checks that a cleaned package still holds together."""

from __future__ import annotations

import io
import posixpath
import zipfile
from xml.etree import ElementTree as ET

from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    TextStringObject,
)

NAME = "Jan Peeters"
LOGIN = "jan.peeters"
TEXT = "My manager shouts at me"


def pdf_with_author(name: str = NAME, pages: int = 2, encrypt_owner_only: bool = False,
                    user_password: str | None = None) -> bytes:
    """A PDF with the name in /Info, in XMP, and as the author of a comment."""
    w = PdfWriter()
    for n in range(pages):
        page = w.add_blank_page(300, 300)
        content = DecodedStreamObject()
        content.set_data(f"BT /F1 12 Tf 20 200 Td ({TEXT} page {n + 1}) Tj ET".encode())
        page[NameObject("/Contents")] = w._add_object(content)
    w.add_metadata({"/Author": name, "/Creator": f"Word for {name}", "/Title": "complaint"})
    w.xmp_metadata = (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:creator><rdf:Seq><rdf:li>{name}</rdf:li></rdf:Seq></dc:creator>'
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()
    note = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"),
        NameObject("/Subtype"): NameObject("/Text"),
        NameObject("/Rect"): ArrayObject([FloatObject(10), FloatObject(10),
                                          FloatObject(30), FloatObject(30)]),
        NameObject("/T"): TextStringObject(name),
        NameObject("/Contents"): TextStringObject("see page two"),
    })
    w.pages[0][NameObject("/Annots")] = ArrayObject([w._add_object(note)])
    if encrypt_owner_only or user_password is not None:
        w.encrypt(user_password=user_password or "", owner_password="owner-secret",
                  algorithm="AES-128")
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def pdf_pages_text(data: bytes) -> list[bytes]:
    """Each page's content stream: proof the pages survived cleaning."""
    reader = PdfReader(io.BytesIO(data))
    return [page.get_contents().get_data() for page in reader.pages]  # type: ignore[union-attr]


def jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (16, 16), (200, 30, 30))
    exif = Image.Exif()
    exif[0x013B] = NAME  # Artist
    exif[0x8825] = {1: "N", 2: (50.0, 51.0, 0.0)}  # GPS: Brussels
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OD = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def docx_with_author(name: str = NAME, login: str = LOGIN) -> bytes:
    """A Word file as Word writes it, naming the employee in its properties, as
    the author of a comment and a tracked change, as a co-author, in the
    attached template's path, and in a picture's EXIF."""
    parts = {
        "[Content_Types].xml": _HEAD + (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Default Extension="jpeg" ContentType="image/jpeg"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            '<Override PartName="/word/comments.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.comments+xml"/>'
            '<Override PartName="/word/people.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.people+xml"/>'
            '<Override PartName="/word/settings.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.settings+xml"/>'
            '<Override PartName="/docProps/core.xml" '
            'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            '<Override PartName="/docProps/app.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.extended-properties+xml"/>'
            '<Override PartName="/docProps/custom.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.custom-properties+xml"/>'
            '</Types>'),
        "_rels/.rels": _HEAD + (
            f'<Relationships xmlns="{_RELS}">'
            f'<Relationship Id="rId1" Type="{_OD}/officeDocument" Target="word/document.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
            'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{_OD}/extended-properties" '
            'Target="docProps/app.xml"/>'
            f'<Relationship Id="rId4" Type="{_OD}/custom-properties" '
            'Target="docProps/custom.xml"/>'
            '</Relationships>'),
        "word/_rels/document.xml.rels": _HEAD + (
            f'<Relationships xmlns="{_RELS}">'
            f'<Relationship Id="rId1" Type="{_OD}/comments" Target="comments.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.microsoft.com/office/2011/'
            'relationships/people" Target="people.xml"/>'
            f'<Relationship Id="rId3" Type="{_OD}/settings" Target="settings.xml"/>'
            f'<Relationship Id="rId4" Type="{_OD}/image" Target="media/image1.jpeg"/>'
            '</Relationships>'),
        "word/_rels/settings.xml.rels": _HEAD + (
            f'<Relationships xmlns="{_RELS}">'
            f'<Relationship Id="rId1" Type="{_OD}/attachedTemplate" '
            f'Target="file:///C:\\Users\\{login}\\AppData\\Roaming\\Microsoft\\Templates\\'
            'Normal.dotm" TargetMode="External"/>'
            '</Relationships>'),
        "word/document.xml": _HEAD + (
            f'<w:document {_W} {_R} xmlns:mc="http://schemas.openxmlformats.org/'
            'markup-compatibility/2006" xmlns:w14="http://schemas.microsoft.com/office/'
            'word/2010/wordml" mc:Ignorable="w14"><w:body>'
            f'<w:p w14:paraId="1A2B3C4D"><w:r><w:t>{TEXT}</w:t></w:r>'
            f'<w:ins w:id="1" w:author="{name}" w:date="2026-01-05T10:00:00Z">'
            '<w:r><w:t xml:space="preserve"> every day</w:t></w:r></w:ins>'
            '<w:commentRangeStart w:id="0"/><w:r><w:t>.</w:t></w:r>'
            '<w:commentRangeEnd w:id="0"/><w:r><w:commentReference w:id="0"/></w:r></w:p>'
            '</w:body></w:document>'),
        "word/comments.xml": _HEAD + (
            f'<w:comments {_W}><w:comment w:id="0" w:author="{name}" w:initials="JP" '
            'w:date="2026-01-05T10:00:00Z"><w:p><w:r><w:t>true</w:t></w:r></w:p>'
            '</w:comment></w:comments>'),
        "word/people.xml": _HEAD + (
            '<w15:people xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml">'
            f'<w15:person w15:author="{name}"><w15:presenceInfo w15:providerId="AD" '
            f'w15:userId="S::{login}@acme.example::0b1c"/></w15:person></w15:people>'),
        "word/settings.xml": _HEAD + (
            f'<w:settings {_W} {_R}><w:attachedTemplate r:id="rId1"/></w:settings>'),
        "docProps/core.xml": _HEAD + (
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
            'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<dc:title>complaint</dc:title><dc:creator>{name}</dc:creator>'
            f'<cp:lastModifiedBy>{name}</cp:lastModifiedBy>'
            '<dcterms:created xsi:type="dcterms:W3CDTF">2026-01-05T09:00:00Z</dcterms:created>'
            '</cp:coreProperties>'),
        "docProps/app.xml": _HEAD + (
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
            'extended-properties" xmlns:vt="http://schemas.openxmlformats.org/'
            'officeDocument/2006/docPropsVTypes"><Template>Normal.dotm</Template>'
            f'<Company>Acme — team of {name}</Company><Manager>Boss</Manager>'
            '<Application>Microsoft Office Word</Application></Properties>'),
        "docProps/custom.xml": _HEAD + (
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
            'custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/'
            '2006/docPropsVTypes"><property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" '
            f'pid="2" name="Owner"><vt:lpwstr>{name}</vt:lpwstr></property></Properties>'),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for part, text in parts.items():
            z.writestr(part, text.encode())
        z.writestr("word/media/image1.jpeg", jpeg_with_gps())
    return out.getvalue()


_ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
           'xmlns:dc="http://purl.org/dc/elements/1.1/" '
           'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
           'xmlns:config="urn:oasis:names:tc:opendocument:xmlns:config:1.0"')


def odt_with_author(name: str = NAME) -> bytes:
    """A Writer file naming the employee in meta.xml, as a comment's and a
    tracked change's creator, and in the printer settings."""
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.3">'
        '<manifest:file-entry manifest:full-path="/" manifest:version="1.3" '
        'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        + "".join(f'<manifest:file-entry manifest:full-path="{p}" '
                  'manifest:media-type="text/xml"/>'
                  for p in ("content.xml", "meta.xml", "settings.xml"))
        + '</manifest:manifest>')
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content {_ODF_NS} '
        'office:version="1.3"><office:body><office:text>'
        '<text:tracked-changes><text:changed-region text:id="ct1"><text:insertion>'
        f'<office:change-info><dc:creator>{name}</dc:creator>'
        '<dc:date>2026-01-05T10:00:00</dc:date></office:change-info>'
        '</text:insertion></text:changed-region></text:tracked-changes>'
        f'<text:p>{TEXT}<office:annotation><dc:creator>{name}</dc:creator>'
        '<meta:creator-initials>JP</meta:creator-initials>'
        '<text:p>true</text:p></office:annotation></text:p>'
        '</office:text></office:body></office:document-content>')
    meta = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-meta {_ODF_NS} '
        'office:version="1.3"><office:meta>'
        f'<meta:initial-creator>{name}</meta:initial-creator><dc:creator>{name}</dc:creator>'
        '<meta:generator>LibreOffice/24.2</meta:generator>'
        '</office:meta></office:document-meta>')
    settings = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-settings {_ODF_NS} '
        'office:version="1.3"><office:settings><config:config-item-set '
        'config:name="ooo:configuration-settings"><config:config-item '
        f'config:name="PrinterName" config:type="string">HP of {name}</config:config-item>'
        '</config:config-item-set></office:settings></office:document-settings>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), b"application/vnd.oasis.opendocument.text",
                   compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/manifest.xml", manifest)
        z.writestr("content.xml", content)
        z.writestr("meta.xml", meta)
        z.writestr("settings.xml", settings)
    return out.getvalue()


def assert_ooxml_consistent(data: bytes) -> None:
    """What Office checks before it opens a package: every part has a content
    type, every override and every internal relationship points at a part
    that exists, and every XML part is well-formed."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        names = set(z.namelist())
        for name in names:
            if name.endswith((".xml", ".rels")):
                ET.fromstring(z.read(name))  # raises if not well-formed
        types = ET.fromstring(z.read("[Content_Types].xml"))
        ns = "{http://schemas.openxmlformats.org/package/2006/content-types}"
        defaults = {d.get("Extension", "").lower() for d in types.iter(f"{ns}Default")}
        overrides = {(o.get("PartName") or "").lstrip("/")
                     for o in types.iter(f"{ns}Override")}
        assert overrides <= names, overrides - names
        for name in names - {"[Content_Types].xml"}:
            ext = name.rpartition(".")[2].lower()
            assert name in overrides or ext in defaults, f"{name} has no content type"
        for rels in (n for n in names if n.endswith(".rels")):
            base = posixpath.dirname(posixpath.dirname(rels))
            for rel in ET.fromstring(z.read(rels)):
                if rel.get("TargetMode") == "External":
                    continue
                target = rel.get("Target", "")
                path = target.lstrip("/") if target.startswith("/") \
                    else posixpath.normpath(posixpath.join(base, target))
                assert path in names, f"{rels} points at missing {path}"


def assert_odf_consistent(data: bytes) -> None:
    """ODF readers want ``mimetype`` first and stored, and every manifest entry present."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        first = z.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        names = set(z.namelist())
        for name in names:
            if name.endswith(".xml"):
                ET.fromstring(z.read(name))
        manifest = ET.fromstring(z.read("META-INF/manifest.xml"))
        key = "{urn:oasis:names:tc:opendocument:xmlns:manifest:1.0}full-path"
        for entry in manifest:
            path = entry.get(key, "")
            assert path == "/" or path in names, f"manifest names missing {path}"
