"""The QR as a URL under the city's base URL (docs/report.md §3): a phone's scanner opens the
verification page, and the same text still carries the whole signed payload, so it verifies
offline. The digits, their chunk table and its coded errors; the two segments the symbol is drawn
in; issuance with and without a base URL; the verifier, the sniffer and the CLI on the URL form.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import zlib
from datetime import timedelta

import base45
import numpy as np
import pytest
import qrcode
import qrcode.util
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from creditcert.config import LOCAL_URL
from creditcert.envelope import qr as qr_format
from creditcert.errors import DecodeError, Reason
from creditcert.issue.render import qr_png
from creditcert.registry import SqliteRegistry
from creditcert.verify import extract
from creditcert.verify.result import Verdict
from creditcert.verify.verifier import InputKind, Verifier

from .conftest import NOW_REPORTS, city_at
from .decoders import zbar_texts

AT = NOW_REPORTS + timedelta(days=1)
CITY_URL = "https://credit.shenyang.gov.cn"


@pytest.fixture(scope="module")
def trust(issued):
    registry = SqliteRegistry(issued["home"] / "registry.sqlite")
    yield issued["city"].trust(at=AT, registry=registry)
    registry.close()


def verdict(text: str, trust) -> tuple[Verdict, dict[str, str]]:
    result = Verifier(trust, at=AT).qr_text(text)
    return result.verdict, {c.step: c.reason for c in result.failures}


def digits_of(report) -> str:
    return report.qr.text.rpartition("/CC1/")[2]


# --- the digits --------------------------------------------------------------------------------


def test_the_chunk_table_is_the_fewest_digits_that_hold_every_value():
    for k in range(1, 8):
        digits = qr_format.CHUNK_DIGITS[k]
        assert digits == math.ceil(8 * k * math.log10(2))
        assert 10**digits > 256**k - 1 >= 10 ** (digits - 1)  # fits, and one digit fewer would not
        assert qr_format.to_digits(b"\xff" * k) == str(256**k - 1).zfill(digits)
        assert qr_format.to_digits(b"\x00" * k) == "0" * digits
    # every remainder mod 17 names at most one byte count: the count decodes unambiguously
    assert len({d % 17 for d in qr_format.CHUNK_DIGITS.values()}) == 7


def test_the_worked_example_of_the_docs():
    """docs/report.md §3 works this example; a partner checks against it."""
    data = zlib.compress(b"creditcert", 9)
    assert data.hex() == "78da4b2e4a4dc92c494e2d2a0100169b042a"  # 18 bytes: 7 + 7 + 4
    digits = "34017013639302601" + "12465499089273088" + "0379257898"
    assert qr_format.to_digits(data) == digits
    assert qr_format.from_digits(digits) == data
    text = "HTTPS://CREDIT.SHENYANG.GOV.CN/CC1/" + digits
    assert qr_format.text_of(data, CITY_URL) == text
    assert qr_format.unwrap(text.lower() + "?from=wechat").cose == b"creditcert"


@given(st.binary(min_size=1, max_size=400))
def test_digits_round_trip_with_the_documented_length(data):
    digits = qr_format.to_digits(data)
    assert digits.isascii() and digits.isdigit()
    tail = {0: 0} | qr_format.CHUNK_DIGITS
    assert len(digits) == len(data) // 7 * 17 + tail[len(data) % 7]
    assert qr_format.from_digits(digits) == data


@pytest.mark.parametrize(
    ("digits", "reason"),
    [
        ("", Reason.BAD_DIGITS),
        ("12a45", Reason.BAD_DIGITS),
        ("١٢٣", Reason.BAD_DIGITS),  # Arabic-Indic digits: str.isdigit, not 0-9
        ("123 45", Reason.BAD_DIGITS),
        *[("1" * n, Reason.BAD_DIGIT_COUNT) for n in (1, 2, 4, 6, 7, 9, 11, 12, 14, 16)],
        ("1" * 17 + "1" * 16, Reason.BAD_DIGIT_COUNT),
        ("256", Reason.DIGIT_CHUNK_OVERFLOW),
        ("65536", Reason.DIGIT_CHUNK_OVERFLOW),
        (str(2**56), Reason.DIGIT_CHUNK_OVERFLOW),
        ("9" * 17, Reason.DIGIT_CHUNK_OVERFLOW),
        ("0" * 17 + "999999999999999", Reason.DIGIT_CHUNK_OVERFLOW),  # 6 bytes hold < 2^48
    ],
)
def test_digits_that_are_no_bytes_are_coded_errors(digits, reason):
    with pytest.raises(DecodeError) as caught:
        qr_format.from_digits(digits)
    assert (caught.value.stage, caught.value.reason) == ("digits", reason)


def test_the_largest_value_of_each_chunk_decodes():
    for k in range(1, 8):
        assert qr_format.from_digits(str(256**k - 1)) == b"\xff" * k


# --- the URL -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "prefix"),
    [
        ("https://credit.shenyang.gov.cn", "HTTPS://CREDIT.SHENYANG.GOV.CN/CC1/"),
        ("http://127.0.0.1:8000/", "HTTP://127.0.0.1:8000/CC1/"),
        ("https://Credit.Example.cn/verify", "HTTPS://CREDIT.EXAMPLE.CN/verify/CC1/"),
    ],
)
def test_the_url_prefix_upper_cases_scheme_and_host_only(base, prefix):
    assert qr_format.url_prefix(base) == prefix


def test_segments_put_the_digits_in_numeric_mode():
    A, N, B = qr_format.Mode.ALPHANUMERIC, qr_format.Mode.NUMERIC, qr_format.Mode.BYTE
    assert qr_format.segments("HTTPS://X.CN/CC1/0123") == [(A, "HTTPS://X.CN/CC1/"), (N, "0123")]
    assert qr_format.segments("HTTPS://X.CN/verify/CC1/01") == [
        (B, "HTTPS://X.CN/verify/CC1/"),
        (N, "01"),
    ]
    assert qr_format.segments("CC1:6BFOXN%TSM") == [(A, "CC1:6BFOXN%TSM")]
    assert qr_format.segments("CC1:TEST") == [(A, "CC1:TEST")]
    assert qr_format.segments("CC1:AB/CC1/123") == [(A, "CC1:AB/CC1/123")]  # base45 may hold it
    assert qr_format.segments("https://x.cn/CC1/12a") == [(B, "https://x.cn/CC1/12a")]


def _version(png: bytes) -> int:
    side = Image.open(io.BytesIO(png)).width // 2 - 8  # 2 pixels a module, 4 of quiet zone
    return (side - 17) // 4


def _fitted_version(*parts: qrcode.util.QRData) -> int:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q)
    for part in parts:
        code.add_data(part, optimize=0)
    return code.best_fit()


def test_the_symbol_codes_the_prefix_alphanumeric_and_the_digits_numeric():
    """The drawn version is that of the two segments, smaller than one byte-mode segment would
    need; every decoder reads the exact text back."""
    text = qr_format.url_prefix(CITY_URL) + qr_format.to_digits(os.urandom(430))
    png = qr_png(text)
    prefix, digits = text[:35], text[35:]
    two = _fitted_version(
        qrcode.util.QRData(prefix.encode(), mode=qrcode.util.MODE_ALPHA_NUM),
        qrcode.util.QRData(digits.encode(), mode=qrcode.util.MODE_NUMBER),
    )
    one = _fitted_version(qrcode.util.QRData(text.encode(), mode=qrcode.util.MODE_8BIT_BYTE))
    assert _version(png) == two < one
    big = Image.open(io.BytesIO(png)).resize((2 * 4 * 101, 2 * 4 * 101), Image.Resampling.NEAREST)
    assert extract.read_qr_texts(np.asarray(big.convert("L"))) == [text]
    assert zbar_texts(big) == [text]


def test_a_lower_case_path_goes_in_byte_mode_and_still_reads():
    text = qr_format.url_prefix("https://x.example.cn/verify") + qr_format.to_digits(b"\x01" * 50)
    img = Image.open(io.BytesIO(qr_png(text)))
    big = img.resize((img.width * 3, img.height * 3), Image.Resampling.NEAREST)
    assert extract.read_qr_texts(np.asarray(big)) == [text]
    assert zbar_texts(big) == [text]


# --- issuance ----------------------------------------------------------------------------------


def test_a_city_with_a_base_url_issues_the_url_form(issued):
    """The test cities have the default base URL; the PDF shows that very text."""
    report, _ = issued["busy"]
    assert issued["settings"].service.base_url == LOCAL_URL
    prefix = "HTTP://127.0.0.1:8000/CC1/"
    assert report.qr.text.startswith(prefix)
    assert qr_format.from_digits(report.qr.text[len(prefix) :]) == zlib.compress(report.qr.cose, 9)
    assert extract.page_qr_texts(report.pdf)[0] == [report.qr.text]


@pytest.mark.slow
def test_a_city_without_a_base_url_issues_the_cc1_form(issued, tmp_path):
    home = tmp_path / "city"
    shutil.copytree(issued["home"], home)
    city = city_at(home, rate_limit_per_day=0)
    city = city_at(
        home,
        rate_limit_per_day=0,
        service=dataclasses.replace(city.settings.service, base_url=None),
    )
    report, _ = issued["busy"]
    request = city.request(as_of=NOW_REPORTS.date(), all_domains=True, years=5)
    again = city.issue(report.document.subject_code, request, at=NOW_REPORTS + timedelta(hours=1))
    assert again.qr.text.startswith("CC1:")
    assert base45.b45decode(again.qr.text[4:]) == zlib.compress(again.qr.cose, 9)
    assert extract.page_qr_texts(again.pdf)[0] == [again.qr.text]
    assert city.verify(again.pdf, at=AT).verdict is Verdict.ACCEPTED


# --- verification ------------------------------------------------------------------------------


def test_the_url_form_and_the_cc1_form_of_a_report_both_verify(issued, trust):
    report, _ = issued["busy"]
    cc1 = "CC1:" + base45.b45encode(zlib.compress(report.qr.cose, 9)).decode()
    for text in (report.qr.text, cc1):
        result = Verifier(trust, at=AT).qr_text(text)
        assert result.verdict is Verdict.ACCEPTED, result.failures
        assert result.number == report.document.number
    [check] = [
        c
        for c in Verifier(trust, at=AT).qr_text(report.qr.text).checks
        if c.step == "format.qr-text"
    ]
    assert "/CC1/ + digits" in check.message


@pytest.mark.parametrize(
    "dress",
    [
        lambda d: f"http://127.0.0.1:8000/CC1/{d}",
        lambda d: f"https://credit.shenyang.gov.cn/cc1/{d}",
        lambda d: f"https://credit.shenyang.gov.cn/CC1/{d}?lang=en",
        lambda d: f"https://credit.shenyang.gov.cn/CC1/{d}#top",
        lambda d: f"  HTTPS://X.CN/a/b/CC1/{d}?x=1&y=2#top\n",
        lambda d: f"https://forger.example/CC1/12/CC1/{d}",  # the last /CC1/ counts
        lambda d: f"HTTPS://EVIL.EXAMPLE/CC1/{d}",  # the host is not trusted, nor needed
    ],
)
def test_any_url_holding_the_digits_verifies_the_host_decides_nothing(issued, trust, dress):
    report, _ = issued["busy"]
    result = Verifier(trust, at=AT).qr_text(dress(digits_of(report)))
    assert result.verdict is Verdict.ACCEPTED, result.failures
    assert result.number == report.document.number


def _cose_spoiled(report, how: str) -> str:
    cose = report.qr.cose
    if how == "signature":
        cose = cose[:-1] + bytes([cose[-1] ^ 1])
    if how == "bomb":
        return qr_format.text_of(zlib.compress(b"\0" * 1_000_000, 9), LOCAL_URL)
    return qr_format.text_of(zlib.compress(cose, 9), LOCAL_URL)


@pytest.mark.parametrize(
    ("make", "step", "reason"),
    [
        (lambda r: r.qr.text[:-1], "format.digits", "bad-digit-count"),
        (lambda r: r.qr.text + "0", "format.digits", "bad-digit-count"),
        (
            lambda r: r.qr.text.replace("/CC1/", "/CC1/" + "9" * 17),
            "format.digits",
            "digit-chunk-overflow",
        ),
        (lambda r: r.qr.text[:-20] + "O" + r.qr.text[-19:], "format.digits", "bad-digits"),
        (lambda r: r.qr.text.rpartition("/CC1/")[0] + "/CC1/", "format.digits", "bad-digits"),
        (lambda r: r.qr.text + "/", "format.digits", "bad-digits"),
        (lambda r: r.qr.text.replace("/CC1/", "/CC2/"), "format.prefix", "bad-prefix"),
        (lambda r: r.qr.text[: len(r.qr.text) // 2 // 17 * 17 + 26], "format.zlib", "bad-zlib"),
        (lambda r: _cose_spoiled(r, "bomb"), "format.zlib", "bad-zlib"),
        (lambda r: _cose_spoiled(r, "signature"), "integrity.qr-signature", "bad-signature"),
        (lambda r: r.qr.text + "0" * 4000, "format.size", "too-long"),
    ],
)
def test_spoiled_urls_are_rejected_with_the_reason(issued, trust, make, step, reason):
    report, _ = issued["busy"]
    got, failed = verdict(make(report), trust)
    assert got is Verdict.REJECTED
    assert failed[step] == reason, failed


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=40),
    st.sampled_from(["/CC1/", "/cc1/", "/Cc1/"]),
    st.one_of(st.text(max_size=900), st.text(alphabet="0123456789", max_size=1200)),
    st.sampled_from(["", "?", "#", "?a=1#b", "/"]),
)
def test_no_url_crashes_the_verifier(issued, trust, head, marker, digits, tail):
    assert verdict(head + marker + digits + tail, trust)[0] is Verdict.REJECTED


def test_sniffing_takes_an_http_url_with_cc1_for_qr_text(issued):
    report, _ = issued["busy"]
    for text in (
        report.qr.text,
        report.qr.text.lower(),
        " " + report.qr.text,
        "CC1:ABC",
        "cc1:abc",
    ):
        assert InputKind.sniff(text) is InputKind.QR, text
    for text in (
        "210100-2607-TESTTEST-6",
        "https://credit.shenyang.gov.cn/verify",
        "ftp://x.cn/CC1/123",
        "x/CC1/123",
    ):
        assert InputKind.sniff(text) is InputKind.NUMBER, text
    assert issued["city"].verify(report.qr.text, at=AT).verdict is Verdict.ACCEPTED


def test_cli_verifies_the_url_a_phone_read(issued):
    from typer.testing import CliRunner

    from creditcert.cli.app import app

    report, _ = issued["busy"]
    url = "https://credit.shenyang.gov.cn/CC1/" + digits_of(report)
    run = CliRunner().invoke(
        app,
        ["--home", str(issued["home"]), "verify", "--qr", url, "--at", AT.isoformat(), "--json"],
    )
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["number"] == report.document.number
    spoiled = url[:-1]
    bad = CliRunner().invoke(app, ["--home", str(issued["home"]), "verify", "--qr", spoiled])
    assert bad.exit_code == 1
    positional = CliRunner().invoke(
        app, ["--home", str(issued["home"]), "verify", url, "--at", AT.isoformat(), "--json"]
    )  # as pasted: no --qr, and the // of the URL kept (a path would collapse it)
    assert positional.exit_code == 0, positional.output
    assert json.loads(positional.stdout)["number"] == report.document.number
