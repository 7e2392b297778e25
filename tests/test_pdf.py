"""The PDF as a reviewer gets it, checked with real tools: poppler, pikepdf, zxing-cpp."""

import dataclasses
import subprocess
from datetime import datetime

import pikepdf
import pypdfium2
import pytest
import zxingcpp

from creditcert import lookup as records
from creditcert.data.store import Store
from creditcert.issue import issuer as issue
from creditcert.issue.render import Renderer
from creditcert.model.clock import SHANGHAI

NOW = datetime(2026, 7, 1, 10, 30, tzinfo=SHANGHAI)


def run(*args) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


def test_pdfsig_says_valid_and_whole_document(issued):
    _, path = issued["busy"]
    sig = run("pdfsig", str(path))
    assert "Signature is Valid." in sig and "Total document signed" in sig
    assert "creditcert signer" in sig


def test_any_byte_change_breaks_the_signature(issued, tmp_path):
    _, path = issued["busy"]
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    bad = tmp_path / "tampered.pdf"
    bad.write_bytes(bytes(data))
    assert "Signature is Valid." not in run("pdfsig", str(bad))


def test_text_and_fonts(issued):
    report, path = issued["busy"]
    text = run("pdftotext", str(path), "-")
    assert report.document.subject_name in text
    assert report.document.number in text
    assert "未发现违法违规记录" in text and "No record of violation found" in text
    assert "第 1 页 / 共" in text
    fonts = run("pdffonts", str(path)).splitlines()[2:]
    assert fonts and all(" yes yes " in line for line in fonts), fonts
    assert any("Serif-CJK-SC" in line for line in fonts)


def test_pdfa3_structure_and_attached_envelope(issued):
    report, path = issued["busy"]
    with pikepdf.open(path) as pdf:
        with pdf.open_metadata() as meta:
            assert meta.get("pdfaid:part") == "3" and meta.get("pdfaid:conformance") == "B"
        assert pdf.Root.OutputIntents[0].S == "/GTS_PDFA1"
        assert "/ID" in pdf.trailer
        files = {str(f.F): f for f in pdf.Root.AF if "/EF" in f}
        assert files["report.cose"].AFRelationship == "/Source"
        assert files["report.cose"].EF.F.read_bytes() == report.envelope
        assert files["report.json"].AFRelationship == "/Alternative"


@pytest.mark.slow
def test_qr_on_every_page_reads_back(issued):
    report, path = issued["busy"]
    pdf = pypdfium2.PdfDocument(str(path))
    assert len(pdf) >= 2
    for page in pdf:
        image = page.render(scale=150 / 72).to_pil()
        found = zxingcpp.read_barcodes(image)
        assert [b.text for b in found] == [report.qr.text]
    pdf.close()


def test_clean_report_says_so(issued):
    report, path = issued["clean"]
    assert report.document.records_count == 0
    text = run("pdftotext", str(path), "-")
    assert "均未发现违法违规记录" in text


def fixed_document(city):
    """The hand-made city's busy subject, with a fixed clock, number and key id."""
    s = city.settings
    domains = ["market-regulation", "transport", "taxation", "housing-fund", "public-security"]
    req = records.resolve_request(s.catalog, as_of=NOW.date(), domains=domains, years=5)
    with Store(s.data_dir, s.catalog) as store:
        findings = records.lookup(store, s, city.codes["busy"], req)
    return issue.build_document(
        findings, s, number="210100-2607-TESTTEST-0", key_id=bytes(8), issued_at=NOW
    )


def test_html_snapshot(issued, hand_city, snapshot):
    """The rendered HTML for fixed data, clock, number and key id is frozen."""
    doc = fixed_document(hand_city)
    html = issued["renderer"].html(doc, "CC1:TEST")
    html = html[: html.index('<img src="')] + html[html.index('" alt="report QR"') :]
    assert html == snapshot


def test_document_snapshot(hand_city, snapshot):
    """The report document for fixed data, clock, number and key id is frozen."""
    doc = fixed_document(hand_city)
    assert doc.to_data() == snapshot
    assert doc.digest().hex() == snapshot(name="digest")


@pytest.mark.slow
def test_fonts_are_trimmed_and_rare_characters_still_print(issued, hand_city, tmp_path):
    """The trimmed GB 2312 faces print the report; a name's character outside GB 2312 comes
    from the full face behind them, and copy-paste gives it back."""
    name = "沈阳堃喆㐂贸易有限公司"
    doc = dataclasses.replace(fixed_document(hand_city), subject_name=name)
    path = tmp_path / "rare.pdf"
    path.write_bytes(issued["renderer"].render(doc, "CC1:TEST", b"envelope"))
    fonts = [line.split()[0] for line in run("pdffonts", str(path)).splitlines()[2:]]
    trimmed = [f for f in fonts if f.endswith(("-GB2312", "-GB2312-Bold"))]
    assert len(trimmed) == 3, fonts  # serif, sans, sans bold: bold is always sans
    assert [f for f in fonts if "GB2312" not in f], fonts  # the full face, for 堃喆㐂
    assert name in run("pdftotext", str(path), "-").replace("\n", "")


def test_missing_cjk_font_is_a_clear_error(monkeypatch):
    from creditcert.errors import RenderError
    from creditcert.issue import render as pdf_mod

    monkeypatch.setattr(pdf_mod, "_font_families", lambda: frozenset({"DejaVu Sans"}))
    with pytest.raises(RenderError, match="fonts-noto-cjk"):
        Renderer()


@pytest.mark.slow
def test_cli_report_writes_pdf_and_json_or_nothing(fresh_city, tmp_path):
    from typer.testing import CliRunner

    from creditcert.cli.app import app

    runner = CliRunner()
    home = str(fresh_city.home)
    assert runner.invoke(app, ["--home", home, "keys", "init"]).exit_code == 0
    code = runner.invoke(
        app, ["--home", home, "sample", "subjects", "--with-records", "--limit", "1"]
    ).stdout.strip()
    pdf_path, json_path = tmp_path / "r.pdf", tmp_path / "r.json"
    res = runner.invoke(
        app,
        [
            "--home",
            home,
            "report",
            code,
            "--purpose",
            "bidding",
            "--out",
            str(pdf_path),
            "--json",
            str(json_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert pdf_path.read_bytes().startswith(b"%PDF-")
    body = __import__("json").loads(json_path.read_text(encoding="utf-8"))
    assert body["subject_code"] == code and len(body["domains"]) == 15
    again = runner.invoke(
        app,
        [
            "--home",
            home,
            "report",
            code,
            "--purpose",
            "bidding",
            "--out",
            str(tmp_path / "again.pdf"),
        ],
    )
    assert again.exit_code == 2 and "rate limit" in again.output
    assert not (tmp_path / "again.pdf").exists()
    bad = runner.invoke(
        app,
        [
            "--home",
            home,
            "report",
            "91110000600037341L",
            "--all",
            "--out",
            str(tmp_path / "bad.pdf"),
        ],
    )
    assert bad.exit_code == 2 and "not in the subject register" in bad.output
    assert not (tmp_path / "bad.pdf").exists()


def test_the_page_shows_control_and_bidi_characters_never_hides_them(issued):
    """Stored before ingest refused them, such characters are printed as escapes on the page."""
    import dataclasses

    report, _ = issued["busy"]
    doc = dataclasses.replace(report.document, subject_name="沈阳\x1b[31m恒达\u202e公司")
    html = issued["renderer"].html(doc, "CC1:TEST")
    assert "\x1b" not in html and "\u202e" not in html
    assert "沈阳\\x1b[31m恒达U+202E公司" in html
