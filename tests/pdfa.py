"""PDF/A-3b conformance checks that need no veraPDF (which cannot be installed here): every rule
of ISO 19005-3 level B that the file's structure decides, read with pikepdf, each failure a
coded finding. Rules about what a content stream draws (colour spaces per operator, glyphs
present in the font program, widths against the font program) need a renderer and are not here.

    findings = check(pdf_bytes)          # [] when the file conforms
    assert_pdfa3b(pdf_bytes)             # AssertionError naming each failed rule

The rule codes, and the ISO 19005-3 clause (veraPDF rule id) each stands for, are in RULES.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pikepdf

RULES = {
    "header.version": "6.1.2-1: the file starts with %PDF-1.n (n <= 7) and one EOL",
    "header.binary": "6.1.2-2: a comment of >= 4 bytes above 127 follows the header",
    "catalog.version": "ISO 19005-3 is built on PDF 1.7: a catalog /Version says at most 1.7",
    "trailer.id": "6.1.3-1: the trailer has a file identifier /ID",
    "trailer.encrypt": "6.1.3-2: no /Encrypt",
    "eof.trailing": "6.1.3-3: nothing but one EOL after the last %%EOF",
    "stream.external": "6.1.7.1: no stream has /F, /FFilter or /FDecodeParms",
    "stream.filter": "6.1.7.2: standard filters only, no LZW, Crypt only as Identity",
    "limits": "6.1.13: integers, strings, names and page boundaries within PDF/A limits",
    "perms": "6.1.12-1: a /Perms dictionary holds only /UR3 and /DocMDP",
    "output-intent": "6.2.3: a GTS_PDFA1 output intent with one embedded ICC profile (mntr/prtr, RGB/CMYK/GRAY, ICC < 5)",
    "extgstate": "6.2.5, 6.2.10-1: no /TR, /TR2 other than /Default, /HTP; standard blend modes",
    "xobject": "6.2.8, 6.2.9: no /Alternates, /OPI, /Interpolate true, PostScript or reference XObjects",
    "font.type": "6.2.11.2: a font dictionary's /Type, /Subtype and /BaseFont as ISO 32000-1 says",
    "font.widths": "6.2.11.2-4..6: a simple font has /FirstChar, /LastChar and a /Widths of that size",
    "font.embedded": "6.2.11.4.1: every font other than Type 0 and Type 3 has an embedded font program",
    "font.program": "6.2.11.2-7: /FontFile3 is Type1C, CIDFontType0C or OpenType",
    "font.cidtogidmap": "6.2.11.3.2: a CIDFontType2 has /CIDToGIDMap",
    "font.cmap": "6.2.11.3.3: a Type 0 font's CMap is predefined (Table 118) or embedded",
    "font.cidset": "6.2.11.4.2: a /CIDSet, if present, marks every CID the font defines widths for",
    "annot.type": "6.3.1-1: annotation types of ISO 32000-1 only, and not 3D, Sound, Screen, Movie",
    "annot.flags": "6.3.2: /F present (not Popup) with Print set, Hidden, Invisible, NoView, ToggleNoView clear",
    "annot.appearance": "6.3.3: an appearance /AP with only /N, unless the /Rect has no area (or Popup, Link)",
    "form": "6.4.1, 6.4.2: widgets and fields without /A or /AA; no NeedAppearances true, /XFA, NeedsRendering",
    "signature": "6.4.3: /ByteRange covers the whole file but /Contents; one SignerInfo with its certificate",
    "action": "6.5.1: no Launch, Sound, Movie, ResetForm, ImportData, Hide, SetOCGState, Rendition, Trans, GoTo3DView, JavaScript; Named only Next/Prev/First/LastPage",
    "additional-actions": "6.5.2: no /AA in the catalog or a page; no JavaScript name tree",
    "xmp.present": "6.6.2.1-1: the catalog has /Metadata, an XMP stream",
    "xmp.packet": "6.6.2.1-2..4: a well-formed XMP packet, no bytes/encoding attributes",
    "xmp.stream": "PDF/A-1 6.7.2 and good practice for PDF/A-3: the XMP stream is not filtered (so never encrypted)",
    "xmp.pdfaid": "6.6.4: pdfaid:part 3, pdfaid:conformance B",
    "xmp.schema": "6.6.2.3.1: every XMP property is predefined or declared in a pdfaExtension schema",
    "info-xmp": "6.6.2.3.1 (veraPDF doesInfoMatchXMP): Info entries equal their XMP properties",
    "embedded.filespec": "6.8-2, 6.8-3: an embedded file's spec has /F, /UF and /AFRelationship",
    "embedded.stream": "6.8-1 and ISO 32000-1 7.11.4: an embedded file has a MIME /Subtype and /Params /ModDate",
    "embedded.associated": "6.8-4: every embedded file is an associated file (/AF) of the document or a part",
    "misc": "6.10, 6.11: no AlternatePresentations, PresSteps or Requirements",
    "tagged": "ISO 32000-1 14.7-14.9 (level A's, asked of ours when tagged): /MarkInfo /Marked true, /StructTreeRoot, a /Lang language tag",
}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str  # a key of RULES
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code} at {self.where}: {self.detail} [{RULES[self.code]}]"


def check(data: bytes, *, tagged: bool = False) -> list[Finding]:
    """Every PDF/A-3b rule the file's structure breaks; with `tagged`, also the tagging ones."""
    found = list(_file_rules(data))
    with pikepdf.open(io.BytesIO(data)) as pdf:
        found += _catalog_rules(pdf)
        found += _output_intent(pdf)
        found += _xmp_rules(pdf)
        found += _object_rules(pdf, data)
        if tagged:
            found += _tagged(pdf)
    return found


def assert_pdfa3b(pdf: bytes | Path, *, tagged: bool = False) -> None:
    """Fail naming every rule the PDF breaks."""
    data = pdf.read_bytes() if isinstance(pdf, Path) else pdf
    findings = check(data, tagged=tagged)
    assert not findings, "not PDF/A-3b:\n" + "\n".join(map(str, findings))


# -- the file's bytes and trailer ------------------------------------------------------------


def _file_rules(data: bytes) -> Iterator[Finding]:
    header = re.match(rb"%PDF-1\.([0-9])(\r\n|\r|\n)", data)
    if not header or int(header[1]) > 7:
        yield Finding("header.version", "byte 0", repr(data[:10]))
        return
    comment = data[header.end() : header.end() + 5]
    if not (comment[:1] == b"%" and len(comment) == 5 and all(b > 127 for b in comment[1:])):
        yield Finding("header.binary", f"byte {header.end()}", repr(comment))
    tail = data[data.rfind(b"%%EOF") + 5 :]
    if tail not in (b"", b"\n", b"\r", b"\r\n"):
        yield Finding("eof.trailing", "end of file", f"{len(tail)} bytes after %%EOF")


def _catalog_rules(pdf: pikepdf.Pdf) -> Iterator[Finding]:
    root, trailer = pdf.Root, pdf.trailer
    version = root.get("/Version")
    if version is not None and _version(str(version)[1:]) > (1, 7):
        yield Finding("catalog.version", "catalog", f"/Version {version}")
    ids = trailer.get("/ID")
    if ids is None or len(ids) != 2 or not all(len(bytes(i)) for i in ids):
        yield Finding("trailer.id", "trailer", f"/ID {ids!r}")
    if "/Encrypt" in trailer or pdf.is_encrypted:
        yield Finding("trailer.encrypt", "trailer", "encrypted")
    for key, code in (("/AA", "additional-actions"), ("/Requirements", "misc")):
        if key in root:
            yield Finding(code, "catalog", f"{key} present")
    names = root.get("/Names", {})
    for key, code in (("/JavaScript", "additional-actions"), ("/AlternatePresentations", "misc")):
        if key in names:
            yield Finding(code, "catalog /Names", f"{key} present")
    yield from _form_rules(root)
    extra = set(root.get("/Perms", {}).keys()) - {"/UR3", "/DocMDP"}
    if extra:
        yield Finding("perms", "catalog /Perms", f"keys {sorted(extra)}")


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def _form_rules(root: pikepdf.Dictionary) -> Iterator[Finding]:
    form = root.get("/AcroForm")
    if root.get("/NeedsRendering"):
        yield Finding("form", "catalog", "/NeedsRendering true")
    if form is None:
        return
    if form.get("/NeedAppearances"):
        yield Finding("form", "catalog /AcroForm", "/NeedAppearances true")
    if "/XFA" in form:
        yield Finding("form", "catalog /AcroForm", "/XFA present")


def _output_intent(pdf: pikepdf.Pdf) -> Iterator[Finding]:
    intents = [i for i in pdf.Root.get("/OutputIntents", []) if i.get("/S") == "/GTS_PDFA1"]
    if not intents:
        yield Finding("output-intent", "catalog", "no /GTS_PDFA1 output intent")
        return
    profiles = {
        i.DestOutputProfile.objgen for i in pdf.Root.OutputIntents if "/DestOutputProfile" in i
    }
    if len(profiles) != 1 or any("/DestOutputProfileRef" in i for i in pdf.Root.OutputIntents):
        yield Finding("output-intent", "catalog", f"{len(profiles)} distinct profiles or a Ref")
    profile = intents[0].get("/DestOutputProfile")
    if profile is None:
        yield Finding("output-intent", "catalog", "no embedded /DestOutputProfile")
        return
    icc = profile.read_bytes()
    device, space, major = icc[12:16], icc[16:20], icc[8] if len(icc) > 8 else 99
    channels = {b"GRAY": 1, b"RGB ": 3, b"CMYK": 4}.get(space)
    if device not in (b"mntr", b"prtr") or channels is None or major >= 5:
        yield Finding("output-intent", "DestOutputProfile", f"ICC {device!r} {space!r} v{major}")
    elif profile.get("/N") != channels:
        yield Finding("output-intent", "DestOutputProfile", f"/N {profile.get('/N')} for {space!r}")


# -- every object, each once -------------------------------------------------------------------


def _walk(pdf: pikepdf.Pdf) -> Iterator[tuple[pikepdf.Object, str]]:
    """Every dictionary, stream and array reachable from the trailer, once, with the key it was
    reached by ("/A", "/AA/O", "/Annots[]" ...)."""
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[pikepdf.Object, str]] = [(pdf.trailer, "trailer")]
    while stack:
        obj, key = stack.pop()
        if obj.is_indirect:
            if obj.objgen in seen:
                continue
            seen.add(obj.objgen)
        yield obj, key
        if isinstance(obj, pikepdf.Array):
            children = [(v, key + "[]") for v in obj]
        else:
            children = [(v, k if key != "/AA" else "/AA" + k) for k, v in obj.items()]
        stack.extend(
            (v, k)
            for v, k in children
            if isinstance(v, pikepdf.Dictionary | pikepdf.Array | pikepdf.Stream)
        )


def _object_rules(pdf: pikepdf.Pdf, data: bytes) -> Iterator[Finding]:
    associated: set[tuple[int, int]] = set()
    embedded: list[pikepdf.Object] = []
    for obj, key in _walk(pdf):
        where = f"{key} {obj.objgen}" if obj.is_indirect else key
        yield from _limits(obj, where)
        if isinstance(obj, pikepdf.Array):
            continue
        for rule in _DICT_RULES:
            yield from rule(obj, key, where)
        if "/AF" in obj:
            associated.update(f.objgen for f in obj.AF)
        if "/EF" in obj:
            embedded.append(obj)
        if obj.get("/Type") == "/Sig" and "/ByteRange" in obj:
            yield from _signature(obj, data, where)
    for spec in embedded:
        if spec.objgen not in associated:
            yield Finding(
                "embedded.associated", f"{spec.objgen}", f"{spec.get('/UF')} not in any /AF"
            )


def _limits(obj: pikepdf.Object, where: str) -> Iterator[Finding]:
    values = list(obj) if isinstance(obj, pikepdf.Array) else list(obj.items())
    for value in values:
        for v in value if isinstance(value, tuple) else (value,):
            bad = _beyond_limits(v)
            if bad:
                yield Finding("limits", where, bad)


def _beyond_limits(v: object) -> str | None:
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**31) <= v < 2**31:
        return f"integer {v}"
    if isinstance(v, Decimal) and (
        abs(v) > Decimal("3.403e38") or 0 < abs(v) < Decimal("1.175e-38")
    ):
        return f"real {v}"
    if isinstance(v, pikepdf.String) and len(bytes(v)) > 32767:
        return f"string of {len(bytes(v))} bytes"
    name = str(v) if isinstance(v, pikepdf.Name | str) else ""  # a dictionary key is a str
    if name.startswith("/") and len(name.encode()) - 1 > 127:
        return f"name of {len(name.encode()) - 1} bytes"
    return None


def _streams(obj: pikepdf.Object, key: str, where: str) -> Iterator[Finding]:
    if not isinstance(obj, pikepdf.Stream):
        return
    external = {"/F", "/FFilter", "/FDecodeParms"} & set(obj.stream_dict.keys())
    if external:
        yield Finding("stream.external", where, f"keys {sorted(external)}")
    filters = obj.stream_dict.get("/Filter")
    filters = [filters] if isinstance(filters, pikepdf.Name) else list(filters or [])
    params = obj.stream_dict.get("/DecodeParms")
    for f in filters:
        if f == "/Crypt" and not (params and params.get("/Name") in (None, "/Identity")):
            yield Finding("stream.filter", where, "Crypt filter other than Identity")
        elif f not in _FILTERS:
            yield Finding("stream.filter", where, f"filter {f}")


_FILTERS = {
    "/ASCIIHexDecode", "/ASCII85Decode", "/FlateDecode", "/RunLengthDecode", "/CCITTFaxDecode",
    "/JBIG2Decode", "/DCTDecode", "/JPXDecode", "/Crypt",
}  # fmt: skip


def _graphics(obj: pikepdf.Object, key: str, where: str) -> Iterator[Finding]:
    kind = obj.get("/Type")
    if kind == "/ExtGState":
        if "/TR" in obj or "/HTP" in obj or obj.get("/TR2", "/Default") != "/Default":
            yield Finding("extgstate", where, "/TR, /TR2 or /HTP")
        if obj.get("/BM", "/Normal") not in _BLEND_MODES:
            yield Finding("extgstate", where, f"/BM {obj.get('/BM')}")
    subtype = obj.get("/Subtype")
    if kind == "/XObject" or subtype in ("/Image", "/Form", "/PS"):
        if subtype == "/PS" or obj.get("/Subtype2") == "/PS":
            yield Finding("xobject", where, "PostScript XObject")
        forbidden = {"/Alternates", "/OPI", "/PS", "/Ref"} & set(obj.keys())
        if forbidden or obj.get("/Interpolate") is True:
            yield Finding("xobject", where, f"keys {sorted(forbidden)} or /Interpolate true")


_BLEND_MODES = {
    "/Normal", "/Compatible", "/Multiply", "/Screen", "/Overlay", "/Darken", "/Lighten",
    "/ColorDodge", "/ColorBurn", "/HardLight", "/SoftLight", "/Difference", "/Exclusion", "/Hue",
    "/Saturation", "/Color", "/Luminosity",
}  # fmt: skip


def _page(obj: pikepdf.Object, key: str, where: str) -> Iterator[Finding]:
    if obj.get("/Type") != "/Page":
        return
    for k in ("/AA", "/PresSteps"):
        if k in obj:
            yield Finding("additional-actions" if k == "/AA" else "misc", where, f"{k} present")
    for box in ("/MediaBox", "/CropBox", "/BleedBox", "/TrimBox", "/ArtBox"):
        if box in obj:
            x0, y0, x1, y1 = (float(v) for v in obj[box])
            if not (3 <= abs(x1 - x0) <= 14400 and 3 <= abs(y1 - y0) <= 14400):
                yield Finding("limits", where, f"{box} {x1 - x0:.1f} x {y1 - y0:.1f}")


# -- fonts ------------------------------------------------------------------------------------


def _fonts(obj: pikepdf.Object, key: str, where: str) -> Iterator[Finding]:
    if obj.get("/Type") != "/Font":
        return
    subtype = obj.get("/Subtype")
    if subtype not in _FONT_TYPES or (subtype != "/Type3" and "/BaseFont" not in obj):
        yield Finding("font.type", where, f"/Subtype {subtype}, /BaseFont {obj.get('/BaseFont')}")
        return
    if subtype == "/Type0":
        encoding = obj.get("/Encoding")
        if not isinstance(encoding, pikepdf.Stream) and str(encoding)[1:] not in _CMAPS:
            yield Finding("font.cmap", where, f"/Encoding {encoding}")
        return
    if subtype == "/Type3":
        return
    if subtype in ("/Type1", "/MMType1", "/TrueType"):
        yield from _simple_widths(obj, where)
    descriptor = obj.get("/FontDescriptor", {})
    yield from _font_program(descriptor, where, obj.get("/BaseFont"))
    if subtype == "/CIDFontType2" and "/CIDToGIDMap" not in obj:
        yield Finding("font.cidtogidmap", where, f"{obj.BaseFont} has none")
    if "/CIDSet" in descriptor:
        yield from _cidset(obj, descriptor.CIDSet, where)


_FONT_TYPES = {
    "/Type0",
    "/Type1",
    "/MMType1",
    "/Type3",
    "/TrueType",
    "/CIDFontType0",
    "/CIDFontType2",
}
# ISO 32000-1 Table 118's predefined CMaps (the CJK ones: a Chinese report could name them).
_CMAPS = set(
    """Identity-H Identity-V GB-EUC-H GB-EUC-V GBpc-EUC-H GBpc-EUC-V GBK-EUC-H GBK-EUC-V
    GBKp-EUC-H GBKp-EUC-V GBK2K-H GBK2K-V UniGB-UCS2-H UniGB-UCS2-V UniGB-UTF16-H UniGB-UTF16-V
    B5pc-H B5pc-V HKscs-B5-H HKscs-B5-V ETen-B5-H ETen-B5-V ETenms-B5-H ETenms-B5-V CNS-EUC-H
    CNS-EUC-V UniCNS-UCS2-H UniCNS-UCS2-V UniCNS-UTF16-H UniCNS-UTF16-V 83pv-RKSJ-H 90ms-RKSJ-H
    90ms-RKSJ-V 90msp-RKSJ-H 90msp-RKSJ-V 90pv-RKSJ-H Add-RKSJ-H Add-RKSJ-V EUC-H EUC-V
    Ext-RKSJ-H Ext-RKSJ-V H V UniJIS-UCS2-H UniJIS-UCS2-V UniJIS-UCS2-HW-H UniJIS-UCS2-HW-V
    UniJIS-UTF16-H UniJIS-UTF16-V KSC-EUC-H KSC-EUC-V KSCms-UHC-H KSCms-UHC-V KSCms-UHC-HW-H
    KSCms-UHC-HW-V KSCpc-EUC-H UniKS-UCS2-H UniKS-UCS2-V UniKS-UTF16-H UniKS-UTF16-V""".split()  # noqa: SIM905 (a table, as the standard prints it)
)


def _simple_widths(font: pikepdf.Object, where: str) -> Iterator[Finding]:
    first, last, widths = font.get("/FirstChar"), font.get("/LastChar"), font.get("/Widths")
    if first is None or last is None or widths is None or len(widths) != last - first + 1:
        yield Finding("font.widths", where, f"{font.BaseFont}: /FirstChar, /LastChar, /Widths")


def _font_program(descriptor: pikepdf.Object, where: str, name: object) -> Iterator[Finding]:
    programs = [k for k in ("/FontFile", "/FontFile2", "/FontFile3") if k in descriptor]
    if len(programs) != 1:
        yield Finding("font.embedded", where, f"{name}: font programs {programs}")
    elif programs[0] == "/FontFile3":
        kind = descriptor.FontFile3.get("/Subtype")
        if kind not in ("/Type1C", "/CIDFontType0C", "/OpenType"):
            yield Finding("font.program", where, f"{name}: /FontFile3 /Subtype {kind}")


def _cidset(font: pikepdf.Object, cidset: pikepdf.Object, where: str) -> Iterator[Finding]:
    bits = cidset.read_bytes()
    marked = {i for i in range(len(bits) * 8) if bits[i // 8] & (0x80 >> (i % 8))}
    missing = sorted(_cids_with_widths(font.get("/W", [])) - marked)
    if missing:
        yield Finding("font.cidset", where, f"{font.BaseFont}: CIDs {missing[:5]} not in /CIDSet")


def _cids_with_widths(w: pikepdf.Object) -> set[int]:
    """The CIDs a CIDFont's /W array gives widths to (ISO 32000-1 9.7.4.3)."""
    cids, items, i = set(), list(w), 0
    while i < len(items):
        if isinstance(items[i + 1], pikepdf.Array):
            cids.update(range(int(items[i]), int(items[i]) + len(items[i + 1])))
            i += 2
        else:
            cids.update(range(int(items[i]), int(items[i + 1]) + 1))
            i += 3
    return cids


# -- annotations, forms, actions ------------------------------------------------------------


def _annotations(obj: pikepdf.Object, key: str, where: str) -> Iterator[Finding]:
    if not (obj.get("/Type") == "/Annot" or (key == "/Annots[]" and "/Rect" in obj)):
        return
    subtype = obj.get("/Subtype")
    if subtype not in _ANNOTS:
        yield Finding("annot.type", where, f"/Subtype {subtype}")
    flags = obj.get("/F")
    if flags is None and subtype != "/Popup":
        yield Finding("annot.flags", where, f"{subtype} without /F")
    elif flags is not None and (int(flags) & 0b100100111) != 0b100:
        yield Finding("annot.flags", where, f"{subtype} /F {flags}: needs Print, no hiding")
    yield from _appearance(obj, subtype, where)
    if subtype == "/Widget" and ("/A" in obj or "/AA" in obj):
        yield Finding("form", where, "widget with /A or /AA")


_ANNOTS = {
    "/Text", "/Link", "/FreeText", "/Line", "/Square", "/Circle", "/Polygon", "/PolyLine",
    "/Highlight", "/Underline", "/Squiggly", "/StrikeOut", "/Stamp", "/Caret", "/Ink", "/Popup",
    "/FileAttachment", "/Widget", "/PrinterMark", "/TrapNet", "/Watermark", "/Redact",
}  # fmt: skip


def _appearance(annot: pikepdf.Object, subtype: object, where: str) -> Iterator[Finding]:
    x0, y0, x1, y1 = (float(v) for v in annot.Rect)
    ap = annot.get("/AP")
    if ap is None:
        if (x0, y0) != (x1, y1) and subtype not in ("/Popup", "/Link"):
            yield Finding("annot.appearance", where, f"{subtype} with an area and no /AP")
        return
    button = subtype == "/Widget" and annot.get("/FT") == "/Btn"
    normal = ap.get("/N")
    right_kind = isinstance(normal, pikepdf.Dictionary if button else pikepdf.Stream)
    if set(ap.keys()) != {"/N"} or not right_kind:
        yield Finding("annot.appearance", where, f"/AP keys {sorted(ap.keys())}")


def _fields_and_actions(obj: pikepdf.Object, key: str, where: str) -> Iterator[Finding]:
    if "/FT" in obj and "/AA" in obj:
        yield Finding("form", where, "field with /AA")
    is_action = obj.get("/Type") == "/Action" or key in ("/A", "/OpenAction", "/Next")
    if not (is_action or key.startswith("/AA/")) or "/S" not in obj:
        return
    kind = obj.S
    if kind not in _ACTIONS:
        yield Finding("action", where, f"/S {kind}")
    elif kind == "/Named" and obj.get("/N") not in _NAMED:
        yield Finding("action", where, f"named action {obj.get('/N')}")


_ACTIONS = {"/GoTo", "/GoToR", "/GoToE", "/Thread", "/URI", "/Named", "/SubmitForm"}
_NAMED = {"/NextPage", "/PrevPage", "/FirstPage", "/LastPage"}


def _signature(sig: pikepdf.Object, data: bytes, where: str) -> Iterator[Finding]:
    from asn1crypto import cms

    a, b, c, d = (int(v) for v in sig.ByteRange)
    hole = data[a + b : c]
    # the whole file as it was signed: up to the end of the last revision, or of an earlier one
    # that a later revision (another signature) extends
    whole = c + d == len(data) or data[: c + d].rstrip(b"\r\n").endswith(b"%%EOF")
    if a != 0 or not whole or not (hole.startswith(b"<") and hole.endswith(b">")):
        yield Finding("signature", where, f"/ByteRange {[a, b, c, d]} for {len(data)} bytes")
        return
    # the DER value, then zero padding to the end of the hole: read by its own length (not by
    # stripping zeros, which also eats a signature whose last byte is 0x00, one time in 256)
    raw = bytes.fromhex(hole[1:-1].decode())
    signed = cms.ContentInfo.load(raw if raw.strip(b"\0") else b"\x30\x00", strict=False)
    content = signed["content"]
    infos = content["signer_infos"]
    certs = {(x.chosen.issuer.dump(), x.chosen.serial_number) for x in content["certificates"]}
    sid = infos[0]["sid"].chosen if len(infos) else None
    if len(infos) != 1 or (sid["issuer"].dump(), sid["serial_number"].native) not in certs:
        yield Finding("signature", where, f"{len(infos)} SignerInfos or no signing certificate")


# -- embedded files ---------------------------------------------------------------------------


def _embedded(obj: pikepdf.Object, key: str, where: str) -> Iterator[Finding]:
    if "/EF" not in obj:
        return
    missing = [k for k in ("/F", "/UF", "/AFRelationship") if k not in obj]
    if missing:
        yield Finding("embedded.filespec", where, f"{obj.get('/UF')} lacks {missing}")
    stream = obj.EF.get("/F")
    mime = str(stream.get("/Subtype", ""))[1:] if stream is not None else ""
    if not re.fullmatch(r"[-\w+.]+/[-\w+.]+", mime) or "/ModDate" not in stream.get("/Params", {}):
        yield Finding("embedded.stream", where, f"{obj.get('/UF')}: /Subtype {mime!r}, /Params")


_DICT_RULES = (_streams, _graphics, _page, _fonts, _annotations, _fields_and_actions, _embedded)


# -- XMP --------------------------------------------------------------------------------------

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
}
# The XMP Specification 2005's predefined schemas, with the properties PDF/A knows for the ones
# a PDF writer uses (ISO 19005-3 6.6.2.3.1); properties of the others are not listed here.
PREDEFINED = {
    NS["dc"]: {"contributor", "coverage", "creator", "date", "description", "format",
               "identifier", "language", "publisher", "relation", "rights", "source", "subject",
               "title", "type"},
    NS["xmp"]: {"Advisory", "BaseURL", "CreateDate", "CreatorTool", "Identifier", "Label",
                "MetadataDate", "ModifyDate", "Nickname", "Rating", "Thumbnails"},
    NS["pdf"]: {"Keywords", "PDFVersion", "Producer", "Trapped"},
    NS["pdfaid"]: {"part", "amd", "corr", "conformance"},
    NS["xmpMM"]: {"DerivedFrom", "DocumentID", "History", "InstanceID", "ManagedFrom", "Manager",
                  "ManageTo", "ManageUI", "ManagerVariant", "RenditionClass", "RenditionParams",
                  "VersionID", "Versions", "LastURL", "RenditionOf", "SaveID"},
    NS["xmpRights"]: {"Certificate", "Marked", "Owner", "UsageTerms", "WebStatement"},
    "http://ns.adobe.com/xap/1.0/bj/": None, "http://ns.adobe.com/xap/1.0/t/pg/": None,
    "http://ns.adobe.com/xmp/1.0/DynamicMedia/": None, "http://ns.adobe.com/photoshop/1.0/": None,
    "http://ns.adobe.com/camera-raw-settings/1.0/": None, "http://ns.adobe.com/tiff/1.0/": None,
    "http://ns.adobe.com/exif/1.0/": None, "http://ns.adobe.com/exif/1.0/aux/": None,
    "http://www.aiim.org/pdfa/ns/extension/": None,
}  # fmt: skip


def _xmp_rules(pdf: pikepdf.Pdf) -> Iterator[Finding]:
    stream = pdf.Root.get("/Metadata")
    if not isinstance(stream, pikepdf.Stream):
        yield Finding("xmp.present", "catalog", "no /Metadata stream")
        return
    if "/Filter" in stream.stream_dict:
        yield Finding("xmp.stream", "catalog /Metadata", f"/Filter {stream.Filter}")
    packet = stream.read_bytes()
    begin = re.search(rb"<\?xpacket begin=[^>]*\?>", packet)
    if begin is None or re.search(rb"\s(bytes|encoding)=", begin[0]):
        yield Finding("xmp.packet", "catalog /Metadata", f"header {begin and begin[0]!r}")
    try:
        root = ET.fromstring(packet)
    except ET.ParseError as e:
        yield Finding("xmp.packet", "catalog /Metadata", f"not well-formed XML: {e}")
        return
    props = _xmp_properties(root)
    if props.get((NS["pdfaid"], "part")) != "3" or props.get((NS["pdfaid"], "conformance")) != "B":
        yield Finding(
            "xmp.pdfaid",
            "XMP",
            f"{props.get((NS['pdfaid'], 'part'))}{props.get((NS['pdfaid'], 'conformance'))}",
        )
    yield from _xmp_schemas(root, props)
    yield from _info_matches_xmp(pdf, props)


def _xmp_properties(root: ET.Element) -> dict[tuple[str, str], str | list[str]]:
    """The top-level properties of every rdf:Description: simple values as text, Alt as its
    x-default (or first) item, Seq and Bag as lists."""
    props: dict[tuple[str, str], str | list[str]] = {}
    for desc in root.iter(f"{{{RDF}}}Description"):
        if desc.get(f"{{{RDF}}}about") is None:
            continue  # a nested structure's value, not a top-level description
        for name, value in desc.attrib.items():
            if not name.startswith(f"{{{RDF}}}"):
                props[_split(name)] = value
        for child in desc:
            props[_split(child.tag)] = _value(child)
    return props


def _split(tag: str) -> tuple[str, str]:
    ns, _, local = tag[1:].partition("}")
    return ns, local


def _value(elem: ET.Element) -> str | list[str]:
    container = next(iter(elem), None)
    if container is None:
        return elem.text or ""
    items = container.findall(f"{{{RDF}}}li")
    if container.tag == f"{{{RDF}}}Alt":
        chosen = [
            i for i in items if i.get("{http://www.w3.org/XML/1998/namespace}lang") == "x-default"
        ]
        return ((chosen or items or [container])[0].text) or ""
    return [i.text or "" for i in items]


def _xmp_schemas(root: ET.Element, props: dict) -> Iterator[Finding]:
    declared = {e.text for e in root.iter("{http://www.aiim.org/pdfa/ns/schema#}namespaceURI")}
    declared |= {
        e.get("{http://www.aiim.org/pdfa/ns/schema#}namespaceURI") for e in root.iter()
    } - {None}
    for ns, local in props:
        if ns in declared:
            continue
        known = PREDEFINED.get(ns, set())
        if ns not in PREDEFINED or (known is not None and local not in known):
            yield Finding("xmp.schema", "XMP", f"{{{ns}}}{local} is not predefined or declared")


_INFO_XMP = {
    "/Title": (NS["dc"], "title"),
    "/Author": (NS["dc"], "creator"),
    "/Subject": (NS["dc"], "description"),
    "/Keywords": (NS["pdf"], "Keywords"),
    "/Creator": (NS["xmp"], "CreatorTool"),
    "/Producer": (NS["pdf"], "Producer"),
    "/CreationDate": (NS["xmp"], "CreateDate"),
    "/ModDate": (NS["xmp"], "ModifyDate"),
    "/Trapped": (NS["pdf"], "Trapped"),
}


def _info_matches_xmp(pdf: pikepdf.Pdf, props: dict) -> Iterator[Finding]:
    info = pdf.trailer.get("/Info", {})
    for key, prop in _INFO_XMP.items():
        if key not in info:
            continue
        ours, theirs = str(info[key]), props.get(prop)
        if isinstance(theirs, list):
            theirs = theirs[0] if len(theirs) == 1 else ", ".join(theirs)
        if key.endswith("Date") and theirs is not None:
            same = _instant(ours, pdf=True) == _instant(theirs, pdf=False)
        else:
            same = ours.lstrip("/") == theirs
        if not same:
            yield Finding("info-xmp", f"Info {key}", f"{ours!r} but XMP says {theirs!r}")


def _instant(text: str, *, pdf: bool) -> datetime | None:
    if pdf:
        m = re.fullmatch(r"D:(\d{14})(Z|[+-]\d\d'?\d\d'?)?", text.replace("Z00'00'", "Z"))
        if not m:
            return None
        zone = (m[2] or "Z").replace("'", "")
        text = f"{m[1][:8]}T{m[1][8:]}{'+0000' if zone == 'Z' else zone}"
        return datetime.strptime(text, "%Y%m%dT%H%M%S%z")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _tagged(pdf: pikepdf.Pdf) -> Iterator[Finding]:
    root = pdf.Root
    if not root.get("/MarkInfo", {}).get("/Marked"):
        yield Finding("tagged", "catalog", "no /MarkInfo /Marked true")
    if "/StructTreeRoot" not in root:
        yield Finding("tagged", "catalog", "no /StructTreeRoot")
    lang = str(root.get("/Lang", ""))
    if not re.fullmatch(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*", lang):
        yield Finding("tagged", "catalog", f"/Lang {lang!r}")
