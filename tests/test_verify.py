"""Verification: a genuine report is accepted three ways; tampering and junk are rejected with
the right reason, and nothing crashes the verifier."""

import asyncio
import io
import shutil
import zlib
from datetime import timedelta

import base45
import pypdfium2
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from creditcert.errors import VerificationFailed
from creditcert.model import report_number
from creditcert.registry import SqliteRegistry
from creditcert.trust.bundles import verify_bundle
from creditcert.trust.keys import KeyStore
from creditcert.trust.store import OwnCity, TrustStore
from creditcert.verify.result import Status, Verdict
from creditcert.verify.verifier import Verifier

from .conftest import NOW_REPORTS, city_at

AT = NOW_REPORTS + timedelta(days=1)


@pytest.fixture(scope="module")
def trust(issued):
    registry = SqliteRegistry(issued["home"] / "registry.sqlite")
    yield issued["city"].trust(at=AT, registry=registry)
    registry.close()


class verify:
    @staticmethod
    def verify_pdf(data, trust, *, at):
        return Verifier(trust, at=at).pdf(data)

    @staticmethod
    def verify_qr_text(text, trust, *, at):
        return Verifier(trust, at=at).qr_text(text)

    @staticmethod
    def verify_image(data, trust, *, at):
        return Verifier(trust, at=at).image(data)

    @staticmethod
    def verify_number(text, trust, *, at=AT):
        return Verifier(trust, at=at).number(text)


def reasons(result) -> dict[str, str]:
    return {c.step: c.reason for c in result.checks if c.status is not Status.PASSED}


def test_genuine_pdf_is_accepted_with_its_signed_content(issued, trust):
    report, path = issued["busy"]
    result = verify.verify_pdf(path.read_bytes(), trust, at=AT)
    assert result.verdict is Verdict.ACCEPTED, reasons(result)
    assert result.document == report.document
    steps = {c.step for c in result.checks}
    assert {
        "integrity.pades",
        "integrity.envelope-signature",
        "integrity.qr-signature",
        "consistency.qr-envelope",
        "consistency.qr-pages",
        "status.registry",
    } <= steps
    result.raise_for_status()
    with pytest.raises(TypeError):
        bool(result)


def test_a_genuine_pdf_is_accepted_from_inside_a_running_event_loop(issued, trust):
    """An async caller (a web handler, a notebook) verifying in its loop's own thread: pyHanko's
    synchronous validation cannot start its loop there, which once rejected a genuine PDF."""
    _, path = issued["busy"]

    async def in_a_loop():
        return verify.verify_pdf(path.read_bytes(), trust, at=AT)

    result = asyncio.run(in_a_loop())
    assert result.verdict is Verdict.ACCEPTED, reasons(result)


def test_flipped_byte_in_the_body_is_caught(issued, trust):
    _, path = issued["busy"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    result = verify.verify_pdf(bytes(data), trust, at=AT)
    assert result.verdict is Verdict.REJECTED
    assert reasons(result)["integrity.pades"] == "pades-invalid"
    with pytest.raises(VerificationFailed):
        result.raise_for_status()


def test_qr_text_accepted_then_expired(issued, trust):
    report, _ = issued["busy"]
    ok = verify.verify_qr_text(report.qr.text, trust, at=AT)
    assert ok.verdict is Verdict.ACCEPTED and ok.qr.subject_code == report.document.subject_code
    late = verify.verify_qr_text(report.qr.text, trust, at=report.document.valid_until)
    assert reasons(late) == {"validity.period": "expired"}  # valid iff iat <= clock < exp
    early = verify.verify_qr_text(
        report.qr.text, trust, at=report.document.issued_at - timedelta(seconds=1)
    )
    assert reasons(early) == {"validity.period": "not-yet-valid"}


def spoil(text: str, how: str) -> str:
    raw = zlib.decompress(base45.b45decode(text[4:]))
    if how == "bomb":
        return "CC1:" + base45.b45encode(zlib.compress(b"\0" * 1_000_000, 9)).decode()
    if how == "signature":
        raw = raw[:-1] + bytes([raw[-1] ^ 1])
    if how == "truncated-cose":
        raw = raw[: len(raw) // 2]
    return "CC1:" + base45.b45encode(zlib.compress(raw, 9)).decode()


def truncated_to_3k_plus_1(text: str) -> str:
    """The QR text cut inside its base45 to 3k + 1 characters, not ending in a space: a text's
    ends are stripped like a pasted line's, and a space there would leave 3k valid characters
    (a real base45 text never ends in a space: its last character encodes at most 32)."""
    body = text[len("CC1:") :]
    n = len(body) // 6 * 3 + 1
    while body[n - 1] == " ":
        n -= 3
    return text[: len("CC1:")] + body[:n]


@pytest.mark.parametrize(
    ("make", "step", "reason"),
    [
        (lambda t: "HC1:" + t[4:], "format.prefix", "bad-prefix"),
        (lambda t: t[4:], "format.prefix", "bad-prefix"),
        (lambda t: t[:-1] + "a", "format.base45", "bad-base45"),
        # truncated to a length base45 cannot have (3k + 1 characters)
        (lambda t: truncated_to_3k_plus_1(t), "format.base45", "bad-base45"),
        (lambda t: "CC1:" + base45.b45encode(b"not zlib").decode(), "format.zlib", "bad-zlib"),
        (lambda t: spoil(t, "bomb"), "format.zlib", "bad-zlib"),
        (lambda t: spoil(t, "signature"), "integrity.qr-signature", "bad-signature"),
        (lambda t: spoil(t, "truncated-cose"), "format.qr-cbor", "bad-cbor"),
        (lambda t: "CC1:" + "0" * 5000, "format.size", "too-long"),
    ],
)
def test_spoiled_qr_texts_are_rejected_with_the_reason(issued, trust, make, step, reason):
    """Spoiled CC1: texts (the form issued without a base URL, read forever): the busy report's
    payload in that form. Its URL form is spoiled in tests/test_qr_url.py."""
    report, _ = issued["busy"]
    text = "CC1:" + base45.b45encode(zlib.compress(report.qr.cose, 9)).decode()
    assert verify.verify_qr_text(text, trust, at=AT).verdict is Verdict.ACCEPTED
    result = verify.verify_qr_text(make(text), trust, at=AT)
    assert result.verdict is Verdict.REJECTED
    assert reasons(result)[step] == reason


def test_key_of_another_city_is_unknown(issued, trust, tmp_path):
    report, _ = issued["busy"]
    other = KeyStore(tmp_path / "keys", "440900", "茂名市")
    other.init(NOW_REPORTS)
    stranger = TrustStore(OwnCity("440900", other.root(), tuple(other.certificates()), None))
    result = verify.verify_qr_text(report.qr.text, stranger, at=AT)
    assert reasons(result)["issuer.key-known.qr"] == "unknown-key"
    assert result.verdict is Verdict.REJECTED


def test_photo_of_a_page_is_verified(issued, trust):
    report, path = issued["busy"]
    pdf = pypdfium2.PdfDocument(str(path))
    image = pdf[0].render(scale=300 / 72).to_pil()
    pdf.close()
    buf = io.BytesIO()
    image.convert("L").save(buf, format="PNG")
    result = verify.verify_image(buf.getvalue(), trust, at=AT)
    assert result.verdict is Verdict.ACCEPTED, reasons(result)
    assert result.number == report.document.number


def test_unreadable_inputs_cannot_be_decided_and_say_what_to_try(issued, trust):
    """Nothing read is not evidence of forgery: cannot decide (exit 3) with a hint, never rejected."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (400, 400), 255).save(buf, format="PNG")
    blank = verify.verify_image(buf.getvalue(), trust, at=AT)
    assert reasons(blank) == {"format.qr-found": "no-qr"}
    assert blank.verdict is Verdict.CANNOT_DECIDE and blank.verdict.exit_code == 3
    assert "closer" in blank.hint
    for result, step, reason in (
        (verify.verify_image(b"GIF89a junk", trust, at=AT), "format.image", "not-an-image"),
        (verify.verify_pdf(b"hello", trust, at=AT), "format.pdf", "not-pdf"),
        (verify.verify_pdf(b"%PDF-1.7 garbage", trust, at=AT), "format.pdf", "bad-pdf"),
    ):
        assert reasons(result) == {step: reason}
        assert result.verdict is Verdict.CANNOT_DECIDE and result.hint


def test_numbers_honour_validity_and_the_time_asked(issued, trust):
    report, _ = issued["busy"]
    number = report.document.number
    assert verify.verify_number(number.lower(), trust).verdict is Verdict.ACCEPTED
    expired = verify.verify_number(number, trust, at=report.document.valid_until)
    assert reasons(expired) == {"validity.period": "expired"}
    typo = number[:-1] + ("0" if number[-1] != "0" else "1")
    assert reasons(verify.verify_number(typo, trust)) == {"format.number": "bad-number"}
    other = verify.verify_number(report_number.new_number("440900", NOW_REPORTS), trust)
    assert reasons(other) == {"issuer.number": "other-issuer"}
    assert other.verdict is Verdict.CANNOT_DECIDE


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=600),
        st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", max_size=600).map(
            lambda t: "CC1:" + t
        ),
    )
)
def test_no_qr_text_crashes_the_verifier(issued, trust, text):
    result = verify.verify_qr_text(text, trust, at=AT)
    assert result.verdict is Verdict.REJECTED


def test_cli_verify_exit_codes(issued, tmp_path):
    import json

    from typer.testing import CliRunner

    from creditcert.cli.app import app

    report, path = issued["busy"]
    runner = CliRunner()
    home = str(issued["home"])
    ok = runner.invoke(app, ["--home", home, "verify", str(path), "--json", "--at", AT.isoformat()])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["verdict"] == "accepted"
    bad = tmp_path / "tampered.pdf"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    bad.write_bytes(bytes(data))
    assert runner.invoke(app, ["--home", home, "verify", str(bad)]).exit_code == 1
    qr = runner.invoke(
        app, ["--home", home, "verify", "--qr", report.qr.text, "--at", AT.isoformat()]
    )
    assert qr.exit_code == 0 and "ACCEPTED" in qr.stdout
    assert runner.invoke(app, ["--home", home, "verify"]).exit_code == 2
    assert (
        runner.invoke(
            app, ["--home", home, "verify", "--number", report_number.new_number("440900", AT)]
        ).exit_code
        == 3
    )
    blank = tmp_path / "blank.png"
    blank.write_bytes(b"\x89PNG not really")
    undecided = runner.invoke(app, ["--home", home, "verify", str(blank)])
    assert undecided.exit_code == 3 and "what to try" in undecided.stdout


def test_revoked_report_is_rejected(issued, tmp_path):
    """On a copy of the city: the shared one stays as issued for every other test."""
    from creditcert.errors import IssueError

    home = tmp_path / "city"
    shutil.copytree(issued["home"], home)
    city = city_at(home)
    report, path = issued["clean"]
    assert city.verify(report.qr.text, at=AT).verdict is Verdict.ACCEPTED
    city.revoke(report.document.number, reason="issued in error", at=AT)
    with pytest.raises(IssueError, match="already revoked"):
        city.revoke(report.document.number, reason="twice", at=AT)
    assert reasons(city.verify(report.qr.text, at=AT)) == {"status.registry": "revoked"}
    assert reasons(city.verify(path.read_bytes(), at=AT)) == {"status.registry": "revoked"}


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000))
def test_no_bytes_crash_the_image_pdf_or_bundle_decoders(issued, trust, data):
    undecided_or_rejected = (Verdict.CANNOT_DECIDE, Verdict.REJECTED)
    assert verify.verify_image(data, trust, at=AT).verdict in undecided_or_rejected
    assert verify.verify_pdf(b"%PDF-1.7\n" + data, trust, at=AT).verdict in undecided_or_rejected
    assert verify_bundle(data, "00" * 32, at=AT).verdict is Verdict.REJECTED


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), min_size=1, max_size=4))
def test_mutated_genuine_pdfs_are_rejected_never_crash(issued, trust, flips):
    _, path = issued["busy"]
    data = bytearray(path.read_bytes())
    # the signature's /Contents hex string is zero-padded; a flip in the padding may be ignored
    start = data.index(b"/Contents <")
    end = data.index(b">", start)
    outside = [i for i in range(len(data)) if not start <= i <= end]
    masks: dict[int, int] = {}
    for position, mask in flips:
        index = outside[position % len(outside)]
        masks[index] = masks.get(index, 0) ^ mask
    assume(any(masks.values()))  # two flips of one bit cancel out: nothing changed then
    for index, mask in masks.items():
        data[index] ^= mask
    assert verify.verify_pdf(bytes(data), trust, at=AT).verdict is not Verdict.ACCEPTED


def test_a_later_revision_is_rejected_whether_it_paints_or_signs(issued):
    """Two attacks on a genuine PDF by incremental update (findings §4.1, §4.2): a white box
    painted over page 1, and a second signature made with our own current key."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    from creditcert.issue.pades import sign_pdf

    _, path = issued["busy"]
    writer = IncrementalPdfFileWriter(io.BytesIO(path.read_bytes()))
    box = generic.StreamObject(stream_data=b"q 1 1 1 rg 0 0 595 842 re f Q")
    writer.add_stream_to_page(0, writer.add_object(box))
    painted = io.BytesIO()
    writer.write(painted)
    result = issued["city"].verify(painted.getvalue(), at=AT)
    assert result.verdict is Verdict.REJECTED
    assert reasons(result)["integrity.pades"] == "pades-invalid"

    signer = issued["city"].keys.signer(NOW_REPORTS)
    twice = sign_pdf(path.read_bytes(), signer, field="Second")
    result = issued["city"].verify(twice, at=AT)
    assert result.verdict is Verdict.REJECTED
    assert reasons(result)["integrity.pades"] == "signature-count"
