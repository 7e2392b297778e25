"""Issuing reports: keys, numbers, the document, the envelope and QR, the registry, the PDF."""

import contextlib
import io
import json
import multiprocessing
import os
import stat
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycose.keys import EC2Key
from pycose.messages import Sign1Message

from creditcert.data.store import Store
from creditcert.errors import IssueError, KeyFileError, SubjectError
from creditcert.issue import issuer as issue
from creditcert.model import document
from creditcert.model import report_number as numbers
from creditcert.model.clock import SHANGHAI
from creditcert.registry import Entry, NumberTaken, SqliteRegistry
from creditcert.trust.keys import KeyStore, kid_of

from .conftest import city_at

NOW = datetime(2026, 7, 1, 10, 30, tzinfo=SHANGHAI)


def issued_at(report):
    return report.document.issued_at


@pytest.fixture
def city_keys(fresh_city):
    s = fresh_city.settings
    store = KeyStore(fresh_city.home / "keys", s.issuer.admin_code, s.issuer.name)
    store.init(NOW)
    return fresh_city, store


def issue_one(city, key_store, code=None, *, purpose=None):
    """One report issued through the front door (a signed PDF every time)."""
    api = city_at(city.home)
    with api.store() as st_:
        code = code or st_.subject_codes(with_records=True, limit=1)[0]
    request = api.request(
        as_of=NOW.date(),
        purpose=purpose,
        all_domains=purpose is None,
        years=3 if purpose is None else None,
    )
    return api.issue(code, request, at=NOW)


# --- keys ---------------------------------------------------------------------------------


def test_keys_are_0600_and_kids_are_certificate_digests(city_keys):
    _, ks = city_keys
    for key in ks.dir.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    infos = ks.list()
    assert [i.role for i in infos] == ["root", "signer"] and infos[1].current
    signer = ks.signer(NOW)
    assert signer.kid == kid_of(signer.certificate) and len(signer.kid) == 8
    assert signer.certificate.issuer == signer.root.subject
    assert "PRIVATE" not in repr(signer)


def test_rotation_keeps_old_certificates(city_keys):
    _, ks = city_keys
    first = ks.signer(NOW).kid
    ks.rotate(NOW + timedelta(days=1))
    second = ks.signer(NOW + timedelta(days=1)).kid
    assert first != second
    assert {kid_of(c) for c in ks.certificates()} == {first, second}
    with pytest.raises(KeyFileError, match="already holds a root"):
        ks.init(NOW)


def test_missing_or_exposed_keys_are_clear_errors(city_keys):
    _, ks = city_keys
    with pytest.raises(KeyFileError, match="keys rotate"):
        ks.signer(NOW + timedelta(days=800))  # the signing certificate has expired
    key = next(ks.dir.glob("signer-*.key"))
    secret = key.read_text()
    os.chmod(key, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600") as exc:
        ks.signer(NOW)
    assert secret.splitlines()[1] not in str(exc.value)
    key.unlink()
    with pytest.raises(KeyFileError, match="private key missing"):
        ks.signer(NOW)


# --- numbers ------------------------------------------------------------------------------


def test_number_shape_and_reading_back():
    n = numbers.new_number("210100", NOW)
    assert n.startswith("210100-2607-") and len(n) == 22
    assert numbers.parse(n) == n
    assert numbers.parse(n.lower().replace("-", " ")) == n
    assert numbers.parse(n.replace("0", "O")) == n  # O read as 0


@given(st.integers(0, 10**6), st.integers(0, 21), st.sampled_from(numbers.ALPHABET))
def test_number_check_catches_substitutions(seed, pos, char):
    n = numbers.new_number("210100", NOW)
    if n[pos] == "-" or n[pos] == char:
        return
    assert numbers.parse(n[:pos] + char + n[pos + 1 :]) is None


def test_number_check_catches_adjacent_swaps():
    for _ in range(200):
        compact = numbers.normalize(numbers.new_number("210100", NOW))
        for i in range(len(compact) - 1):
            a, b = compact[i], compact[i + 1]
            if a != b:
                swapped = compact[:i] + b + a + compact[i + 2 :]
                assert numbers.parse(swapped) is None


# --- document, envelope, QR ---------------------------------------------------------------


def pycose_verify(cose: bytes, cert) -> Sign1Message:
    """Verify with pycose, an implementation independent of the python-cwt that signed."""
    msg = Sign1Message.decode(cose)
    nums = cert.public_key().public_numbers()
    msg.key = EC2Key(crv="P_256", x=nums.x.to_bytes(32, "big"), y=nums.y.to_bytes(32, "big"))
    assert msg.verify_signature()
    return msg


def test_document_is_deterministic_and_round_trips(issued):
    report, _ = issued["busy"]
    doc = report.document
    assert doc.to_cbor() == doc.to_cbor()
    again = document.from_data(cbor2.loads(doc.to_cbor()))
    assert again == doc and again.digest() == doc.digest()
    assert doc.format == "creditcert.report/1"
    assert doc.valid_until - doc.issued_at == timedelta(days=issue.DEFAULT_VALIDITY_DAYS)
    assert len(doc.domains) == 52 and doc.records_count > 0
    assert report.pdf.startswith(b"%PDF-")  # the front door always delivers the signed PDF


def test_envelope_and_qr_verify_with_an_independent_cose(issued):
    report, _ = issued["busy"]
    cert = issued["city"].keys.signer(issued_at(report)).certificate
    msg = pycose_verify(report.envelope, cert)
    assert msg.payload == report.document.to_cbor()
    assert report.envelope[:1] == b"\xd2"  # CBOR tag 18: COSE_Sign1
    # the URL form under the test city's base URL, its digits decoded here from the chunk table
    # of docs/report.md §3 (17 digits a 7-byte chunk; the last chunk's digit count gives its size)
    prefix, digits = "HTTP://127.0.0.1:8000/CC1/", report.qr.text[26:]
    assert report.qr.text.startswith(prefix) and digits.isascii() and digits.isdigit()
    size_of = {3: 1, 5: 2, 8: 3, 10: 4, 13: 5, 15: 6, 17: 7}
    compressed = b"".join(
        int(digits[i : i + 17]).to_bytes(size_of[len(digits[i : i + 17])], "big")
        for i in range(0, len(digits), 17)
    )
    cose = zlib.decompress(compressed)
    claims = cbor2.loads(pycose_verify(cose, cert).payload)
    doc = report.document
    assert claims[1] == "210100" and claims[7] == doc.number.encode()
    assert claims[6] == int(doc.issued_at.timestamp()) and claims[4] == int(
        doc.valid_until.timestamp()
    )
    summary = claims[-65537]  # the summary claim (docs/report.md §3)
    assert summary["h"] == doc.digest() and summary["sc"] == doc.subject_code
    assert sum(summary["dc"]) == doc.records_count and len(summary["dc"]) == 52


def test_lookup_json_and_signed_document_state_the_same_records(issued):
    """The lookup JSON and the signed document share one record encoding; they cannot drift."""
    city = issued["city"]
    report, _ = issued["busy"]  # a subject with records, all domains, five years
    cert = city.keys.signer(issued_at(report)).certificate
    signed = cbor2.loads(pycose_verify(report.envelope, cert).payload)
    request = city.request(as_of=issued_at(report).date(), all_domains=True, years=5)
    found = city.lookup(signed["subject_code"], request, at=issued_at(report))
    looked = json.loads(json.dumps(found.to_json(), ensure_ascii=False))
    assert looked["subject"]["credit_code"] == signed["subject_code"]
    assert looked["requested"] == signed["requested"] and looked["period"] == signed["period"]
    assert [d["code"] for d in looked["domains"]] == [d["code"] for d in signed["domains"]]
    assert sum(len(d["records"]) for d in signed["domains"]) > 0
    for ours, theirs in zip(looked["domains"], signed["domains"], strict=True):
        assert [r["record_id"] for r in ours["records"]] == [
            r["record_id"] for r in theirs["records"]
        ]
        assert ours["records"] == theirs["records"]  # every field, same values
        assert ours["status"] == ("clean" if not theirs["records"] else "records")
        assert ours["period"] == theirs["period"]
        assert ours["clipped_by_window"] == theirs["clipped_by_window"]
        assert ours["left_out"] == dict(theirs["left_out"])
        assert datetime.fromisoformat(ours["data_cutoff"]) == datetime.fromisoformat(
            theirs["data_cutoff"]
        )


@pytest.mark.slow
def test_qr_stays_small_for_52_domains_and_a_long_name(city_keys):
    city, ks = city_keys
    s = city.settings
    with Store(s.data_dir, s.catalog) as st_:
        codes = st_.subject_codes(with_records=None, limit=None)
        long_named = next(c for c in codes if len(st_.subject(c).name) > 30)
    report = issue_one(city, ks, long_named)
    # the old bound, 800 characters of one alphanumeric segment, was version 22 at level Q; the
    # URL form's longest names measured version 19 (docs/report.md §3)
    from PIL import Image

    from creditcert.issue.render import qr_png

    modules = Image.open(io.BytesIO(qr_png(report.qr.text))).width // 2 - 8
    assert (modules - 17) // 4 <= 20


# --- registry -----------------------------------------------------------------------------


def _add_many(path: str, prefix: str, n: int) -> None:
    reg = SqliteRegistry(Path(path))
    for i in range(n):
        entry = Entry(f"{prefix}{i}", "210100", f"S{prefix}{i}", None, "00", "k", NOW, NOW)
        with contextlib.suppress(NumberTaken):
            reg.reserve(entry, rate_limit=0)


@pytest.mark.slow
def test_registry_numbers_stay_unique_across_processes(tmp_path):
    path = str(tmp_path / "registry.sqlite")
    SqliteRegistry(Path(path)).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_many, args=(path, "N", 40)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    import sqlite3

    rows = sqlite3.connect(path).execute("SELECT count(*), count(DISTINCT number) FROM reports")
    assert rows.fetchone() == (40, 40)  # three processes raced for the same 40 numbers


@pytest.mark.slow
def test_rate_limit_is_enforced(city_keys):
    city, ks = city_keys
    issue_one(city, ks, purpose="bidding")
    with pytest.raises(IssueError, match="rate limit"):
        issue_one(city, ks, purpose="bidding")


def test_unregistered_code_issues_nothing(city_keys):
    city, ks = city_keys
    with pytest.raises(SubjectError):
        issue_one(city, ks, "91110000600037341L")
    reg = SqliteRegistry(city.home / "registry.sqlite")
    assert reg.count() == 0
