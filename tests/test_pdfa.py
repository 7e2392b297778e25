"""The issued PDFs are PDF/A-3b as far as tests/pdfa.py can tell (no veraPDF here), before and
after the PAdES signature, in every language and after a key rotation; and each of the
checker's rules fails on a file that breaks it."""

from __future__ import annotations

import io
import re
import subprocess
from datetime import timedelta

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name

from creditcert.issue import pades
from creditcert.issue.render import LANGS
from tests import pdfa
from tests.conftest import NOW_REPORTS, reports_in_a_copy

pytestmark = pytest.mark.slow  # reports issued in every language and after a key rotation


def codes(data: bytes, **kwargs) -> set[str]:
    return {f.code for f in pdfa.check(data, **kwargs)}


@pytest.fixture(scope="module")
def unsigned(issued) -> bytes:
    """The busy report rendered again, before its signature."""
    report, _ = issued["busy"]
    return issued["renderer"].render(report.document, report.qr.text, report.envelope)


@pytest.fixture(scope="module")
def rotated_city(tmp_path_factory, _fresh_template):
    """A copy of a city that issued one report per language, then rotated its signing key and
    issued another."""
    home = tmp_path_factory.mktemp("pdfa") / "city"
    city, code, request, reports = reports_in_a_copy(home, _fresh_template, LANGS)
    later = NOW_REPORTS + timedelta(minutes=10)
    city.keys.rotate(NOW_REPORTS + timedelta(minutes=5))
    reports["rotated"] = city.issue(code, request, at=later)
    return reports


# -- the PDFs the tests issue ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["busy", "clean"])
def test_issued_reports_conform(issued, name):
    _, path = issued[name]
    pdfa.assert_pdfa3b(path)


@pytest.mark.parametrize("name", [*LANGS, "rotated"])
def test_every_language_and_a_rotated_key_conform(rotated_city, name):
    pdfa.assert_pdfa3b(rotated_city[name].pdf)


def test_conforms_before_and_after_the_signature(issued, unsigned):
    pdfa.assert_pdfa3b(unsigned)
    signer = issued["city"].keys.signer(NOW_REPORTS)
    signed = pades.sign_pdf(unsigned, signer)
    pdfa.assert_pdfa3b(signed)
    with pikepdf.open(io.BytesIO(signed)) as pdf:
        assert "/Version" not in pdf.Root and pdf.pdf_version == "1.7"
        assert pdf.Root.Extensions.ESIC.BaseVersion == "/1.7"
        with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
            assert pdf.docinfo.Producer == meta["pdf:Producer"]


def test_signature_widget_is_printable_zero_area_and_needs_no_appearance(issued):
    _, path = issued["busy"]
    with pikepdf.open(path) as pdf:
        (field,) = pdf.Root.AcroForm.Fields
        assert field.FT == "/Sig" and [float(v) for v in field.Rect] == [0, 0, 0, 0]
        assert int(field.F) & 4 and not int(field.F) & (1 | 2 | 32 | 256)
        assert "/AP" not in field


def test_attachment_dates_are_the_issue_time(issued):
    report, path = issued["busy"]
    with pikepdf.open(path) as pdf:
        dates = {str(f.EF.F.Params.ModDate) for f in pdf.Root.AF}
        assert len(pdf.Root.AF) == 2  # each associated file once
    assert dates == {f"D:{report.document.issued_at:%Y%m%d%H%M%S}+08'00'"}


def test_chinese_text_extracts_in_reading_order(rotated_city):
    """pdftotext gives the subject's Chinese name whole, and the domains' Chinese names first
    appear in the report's order."""
    report = rotated_city["zh"]
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=report.pdf, capture_output=True, check=True
    ).stdout.decode()
    doc = report.document
    assert doc.subject_name in text
    assert text.index(doc.subject_name) < text.index(doc.subject_code)
    lines = [line.strip() for line in text.splitlines()]
    first = [lines.index(d.zh) for d in doc.domains if d.zh in lines]
    assert len(first) == len(doc.domains) and first == sorted(first)


# -- each rule can fail ------------------------------------------------------------------------


def _save(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    pdf.save(
        out,
        stream_decode_level=pikepdf.StreamDecodeLevel.none,
        compress_streams=False,
        fix_metadata_version=False,  # pikepdf would parse and rewrite the XMP
    )
    return out.getvalue()


def _edit(data: bytes, change) -> bytes:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        change(pdf)
        return _save(pdf)


def _hang(obj: pikepdf.Object):
    """Reachable from the catalog, as anything in the file would be."""

    def change(pdf):
        pdf.Root.Extra = pdf.make_indirect(obj)

    return change


def _font(pdf, subtype: str) -> pikepdf.Object:
    return next(
        o for o in pdf.objects if isinstance(o, Dictionary) and o.get("/Subtype") == subtype
    )


def _descriptor(pdf) -> pikepdf.Object:
    return _font(pdf, "/CIDFontType0").FontDescriptor  # the Noto CJK fonts are CFF-based


def _xmp(edit):
    def change(pdf):
        pdf.Root.Metadata.write(edit(pdf.Root.Metadata.read_bytes()))

    return change


def _annot(**entries):
    def change(pdf):
        annot = pdf.make_indirect(
            Dictionary(Type=Name.Annot, Rect=Array([10, 10, 50, 50]), **entries)
        )
        pdf.pages[0].Annots = pdf.make_indirect(Array([annot]))
        if entries.get("Subtype") == Name.Widget:
            pdf.Root.AcroForm = Dictionary(Fields=Array([annot]))

    return change


def _del(path: str):
    def change(pdf):
        *parents, last = path.split(".")
        obj = pdf.Root
        for p in parents:
            obj = obj[f"/{p}"][0] if p == "AF" else obj[f"/{p}"]
        del obj[f"/{last}"]

    return change


def _set(**entries):
    def change(pdf):
        for k, v in entries.items():
            pdf.Root[f"/{k}"] = v

    return change


def _embedded_stream(pdf):
    del pdf.Root.AF[0].EF.F.Params.ModDate


def _producer(pdf):
    pdf.docinfo.Producer = "somebody else"


def _big_integer(pdf):
    pdf.Root.Extra = Array([2**40])


def _long_name(pdf):
    pdf.Root.Extra = Name("/" + "n" * 128)


def _wrong_icc_channels(pdf):
    pdf.Root.OutputIntents[0].DestOutputProfile.N = 4


def _no_font_program(pdf):
    del _descriptor(pdf).FontFile3


def _empty_cidset(pdf):
    _descriptor(pdf).CIDSet = pdf.make_stream(b"\0")


def _external_stream(pdf):
    pdf.pages[0].Contents.stream_dict.F = pikepdf.String("elsewhere.bin")


def _lzw(pdf):
    pdf.pages[0].Contents.stream_dict.Filter = Name.LZWDecode


def _page_aa(pdf):
    pdf.pages[0].AA = Dictionary()


BYTES = {
    "header.version": lambda d: d.replace(b"%PDF-1.7", b"%PDF-2.0", 1),
    "header.binary": lambda d: d.replace(b"%\xf0\x9f\x96\xa4", b"%abcd", 1),
    "eof.trailing": lambda d: d + b"trailing junk\n",
    "trailer.id": lambda d: d.replace(b"/ID [", b"/XX [", 1),
}
EDITS = [
    ("catalog.version", _set(Version=Name("/2.0"))),
    ("stream.external", _external_stream),
    ("stream.filter", _lzw),
    ("limits", _big_integer),
    ("limits", _long_name),
    ("perms", _set(Perms=Dictionary(Foo=Dictionary()))),
    ("output-intent", _del("OutputIntents")),
    ("output-intent", _wrong_icc_channels),
    ("extgstate", _hang(Dictionary(Type=Name.ExtGState, TR=Name.Identity))),
    ("extgstate", _hang(Dictionary(Type=Name.ExtGState, BM=Name.Dodgy))),
    ("xobject", _hang(Dictionary(Type=Name.XObject, Subtype=Name.Image, Interpolate=True))),
    ("xobject", _hang(Dictionary(Type=Name.XObject, Subtype=Name.PS))),
    ("font.type", _hang(Dictionary(Type=Name.Font, Subtype=Name.OpenType, BaseFont=Name.X))),
    ("font.widths", _hang(Dictionary(Type=Name.Font, Subtype=Name.TrueType, BaseFont=Name.X))),
    ("font.embedded", _no_font_program),
    ("font.program", _hang(Dictionary(
        Type=Name.Font, Subtype=Name.CIDFontType0, BaseFont=Name.X,
        FontDescriptor=Dictionary(FontFile3=Dictionary(Subtype=Name.Type1))))),
    ("font.cidtogidmap", _hang(Dictionary(
        Type=Name.Font, Subtype=Name.CIDFontType2, BaseFont=Name.X,
        FontDescriptor=Dictionary(FontFile2=Dictionary())))),
    ("font.cmap", _hang(Dictionary(Type=Name.Font, Subtype=Name.Type0, BaseFont=Name.X, Encoding=Name("/Made-Up-H")))),
    ("font.cidset", _empty_cidset),
    ("annot.type", _annot(Subtype=Name.Movie, F=4)),
    ("annot.flags", _annot(Subtype=Name.Link, F=4 | 2)),
    ("annot.flags", _annot(Subtype=Name.Link)),
    ("annot.appearance", _annot(Subtype=Name.Square, F=4)),
    ("form", _set(AcroForm=Dictionary(Fields=Array(), NeedAppearances=True))),
    ("form", _annot(Subtype=Name.Widget, F=4, A=Dictionary(S=Name.URI, URI="x"))),
    ("action", _set(OpenAction=Dictionary(S=Name.JavaScript, JS="app.alert(1)"))),
    ("action", _set(OpenAction=Dictionary(S=Name.Launch, F="calc.exe"))),
    ("action", _set(OpenAction=Dictionary(S=Name.Named, N=Name.Print))),
    ("additional-actions", _set(AA=Dictionary())),
    ("additional-actions", _page_aa),
    ("xmp.present", _del("Metadata")),
    ("xmp.packet", _xmp(lambda x: x.replace(b'begin=""', b'begin="" encoding="UTF-8"', 1))),
    ("xmp.packet", _xmp(lambda x: x.replace(b"</rdf:RDF>", b"", 1))),
    ("xmp.pdfaid", _xmp(lambda x: x.replace(b'pdfaid:part="3"', b'pdfaid:part="2"'))),
    ("xmp.pdfaid", _xmp(lambda x: x.replace(b'pdfaid:conformance="B"', b'pdfaid:conformance="X"'))),
    ("xmp.schema", _xmp(lambda x: x.replace(b'pdfaid:part="3"', b'pdfaid:part="3" xmlns:cc="urn:cc" cc:n="1"'))),
    ("xmp.schema", _xmp(lambda x: x.replace(b'pdfaid:part="3"', b'pdfaid:part="3" xmp:Foo="1"'))),
    ("info-xmp", _producer),
    ("embedded.filespec", _del("AF.AFRelationship")),
    ("embedded.filespec", _del("AF.UF")),
    ("embedded.stream", _embedded_stream),
    ("embedded.associated", _del("AF")),
    ("misc", _set(Requirements=Array())),
]  # fmt: skip


def test_the_unedited_file_passes_every_rule(unsigned):
    assert codes(_edit(unsigned, lambda pdf: None)) == set()


@pytest.mark.parametrize("code", BYTES)
def test_each_byte_rule_fails_when_broken(unsigned, code):
    assert code in codes(BYTES[code](unsigned))


@pytest.mark.parametrize(("code", "change"), EDITS, ids=[c for c, _ in EDITS])
def test_each_rule_fails_when_broken(unsigned, code, change):
    assert code in codes(_edit(unsigned, change))


def test_encryption_is_refused(unsigned):
    with pikepdf.open(io.BytesIO(unsigned)) as pdf:
        out = io.BytesIO()
        pdf.save(out, encryption=pikepdf.Encryption(owner="owner", user=""))
    assert "trailer.encrypt" in codes(out.getvalue())


def test_a_signature_not_covering_the_file_is_refused(issued):
    _, path = issued["busy"]
    data = path.read_bytes()
    byte_range = re.search(rb"/ByteRange \[0 (\d+) (\d+) (\d+)", data)
    short = str(int(byte_range[3]) - 10).encode().rjust(len(byte_range[3]))
    assert "signature" in codes(data[: byte_range.start(3)] + short + data[byte_range.end(3) :])


def test_weasyprints_own_pdfa_compresses_the_xmp():
    """Which pdfa.finisher undoes (qpdf, under pikepdf, would uncompress it on saving)."""
    import weasyprint

    plain = weasyprint.HTML(string="<p>x</p>").write_pdf(pdf_variant="pdf/a-3b")
    assert "xmp.stream" in codes(plain)


def test_untagged_reports_fail_the_tagging_rules(unsigned):
    assert "tagged" in codes(unsigned, tagged=True)


def test_every_rule_is_exercised():
    assert set(pdfa.RULES) == {c for c, _ in EDITS} | set(BYTES) | {
        "trailer.encrypt",
        "signature",
        "xmp.stream",
        "tagged",
    }


def test_a_second_signature_keeps_the_first_conforming(issued):
    """Each signature covers the file up to the end of its own revision."""
    _, path = issued["busy"]
    twice = pades.sign_pdf(
        path.read_bytes(), issued["city"].keys.signer(NOW_REPORTS), field="Second"
    )
    pdfa.assert_pdfa3b(twice)


def test_deflating_once_writes_the_bytes_pydyf_would(issued, unsigned, monkeypatch):
    """pdfa's deflate-once only moves pydyf's work (the saving is in benchmarks/pdfa_cost.py)."""
    from creditcert.issue import pdfa as finishing

    report, _ = issued["busy"]
    monkeypatch.setattr(finishing, "_deflate_once", lambda stream: None)
    again = issued["renderer"].render(report.document, report.qr.text, report.envelope)
    assert again == unsigned
