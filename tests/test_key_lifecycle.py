"""Keys that leave service: rotation retires, compromise revokes, here and at partners through the
bundle; damaged key and partner files fail alone; a root is never a signer; bundle sequences
count. Partner cities here are bare homes (keys, no data): a partner's report is our issued
document re-signed in its name, which is all a verifier sees."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta

import cbor2
import pytest

from creditcert import config
from creditcert.envelope import qr as qr_format
from creditcert.envelope.cose import sign1
from creditcert.errors import KeyFileError, PartnerError
from creditcert.model import report_number
from creditcert.trust.keys import fingerprint
from creditcert.verify.result import Status, Verdict
from creditcert.verify.verifier import InputKind

from .conftest import NOW_REPORTS, city_at

T0 = NOW_REPORTS - timedelta(days=2)
LATER = NOW_REPORTS + timedelta(hours=1)


def failed(result):
    return {c.step: c.reason for c in result.checks if c.status is not Status.PASSED}


def failed_message(result):
    return next(c.message for c in result.checks if c.status is not Status.PASSED)


@pytest.fixture
def own(issued, tmp_path):
    """A copy of the session city with keys and two issued reports."""
    home = tmp_path / "own"
    shutil.copytree(issued["home"], home)
    return city_at(home, rate_limit_per_day=0), issued["busy"]


def forged_qr(doc, signer, codes, *, issued_at, issuer=None):
    """The QR of `doc` re-issued at another time (and city), signed with `signer`."""
    issuer = issuer or doc.issuer_code
    number = report_number.new_number(issuer, issued_at)
    doc = dataclasses.replace(
        doc,
        issuer_code=issuer,
        number=number,
        issued_at=issued_at,
        valid_until=issued_at + (doc.valid_until - doc.issued_at),
    )
    return qr_format.encode(doc, signer, codes).text


# --- our own city --------------------------------------------------------------------------------


def test_rotation_retires_the_old_key_for_what_it_signs_later(own):
    city, (report, path) = own
    old = city.keys.signer(NOW_REPORTS)
    city.keys.rotate(NOW_REPORTS + timedelta(minutes=5))
    assert city.verify(path.read_bytes(), at=LATER).verdict is Verdict.ACCEPTED
    assert city.keys.signer(LATER).kid != old.kid  # the new key serves
    forged = forged_qr(report.document, old, city.settings.catalog.codes, issued_at=LATER)
    result = city.verify(forged, at=LATER + timedelta(minutes=1), kind=InputKind.QR)
    assert failed(result)["issuer.key-in-service.qr"] == "key-retired"
    listed = {i.kid: i for i in city.keys.list()}
    assert listed[old.kid.hex()].state.retired_at == NOW_REPORTS + timedelta(minutes=5)


def test_compromise_rejects_what_the_key_signed_after_the_time(own):
    city, (_, path) = own
    kid = city.keys.signer(NOW_REPORTS).kid.hex()
    with pytest.raises(KeyFileError, match="in the future"):
        city.keys.revoke(kid, compromised_at=LATER, now=NOW_REPORTS)
    with pytest.raises(KeyFileError, match="root cannot be revoked"):
        city.keys.revoke(fingerprint(city.keys.root())[:16], compromised_at=T0, now=LATER)
    city.keys.revoke(kid, compromised_at=NOW_REPORTS + timedelta(seconds=1), now=LATER)
    assert city.verify(path.read_bytes(), at=LATER).verdict is Verdict.ACCEPTED  # signed before
    city.keys.revoke(kid, compromised_at=NOW_REPORTS - timedelta(hours=1), now=LATER)
    city.keys.revoke(kid, compromised_at=NOW_REPORTS, now=LATER)  # the earliest time stays
    result = city.verify(path.read_bytes(), at=LATER)
    assert failed(result) == {
        "issuer.key-in-service.envelope": "key-compromised",
        "issuer.key-in-service.qr": "key-compromised",
    }
    with pytest.raises(KeyFileError, match="compromised .*keys rotate"):
        city.keys.signer(LATER)  # the compromised current key signs nothing more
    city.keys.rotate(LATER)
    assert city.keys.signer(LATER).kid.hex() != kid


def test_damaged_key_files_fail_alone(own):
    city, (_, path) = own
    pdf = path.read_bytes()
    keys = city.keys.dir
    first = city.keys.signer(NOW_REPORTS).kid.hex()
    city.keys.rotate(NOW_REPORTS + timedelta(minutes=5))
    second = city.keys.signer(LATER).kid.hex()
    shutil.copy(keys / "root.crt", keys / "signer-backup-copy.crt")  # D24: a root is no signer
    (keys / f"signer-{second}.crt").write_bytes(b"-----BEGIN CERT")  # torn (D11)
    assert city.verify(pdf, at=LATER).verdict is Verdict.ACCEPTED  # signed by the first key
    problems = {i.kid: i.problem for i in city.keys.list() if i.problem}
    assert "not a PEM certificate" in problems[second]
    assert "is not a signing certificate" in problems[fingerprint(city.keys.root())[:16]]
    with pytest.raises(KeyFileError, match=f"signer-{second}.crt.*keys rotate"):
        city.keys.signer(LATER)
    bundle = city.export_bundle(at=LATER)  # the damaged entry left out, the rest exported
    body = cbor2.loads(cbor2.loads(bundle).value[2])
    assert len(body["signers"]) == 1 and body["signers"][0]["retired_at"]

    (keys / f"signer-{first}.state").write_text("{")  # the key that signed the report
    result = city.verify(pdf, at=LATER)
    assert result.verdict is Verdict.CANNOT_DECIDE
    assert set(failed(result).values()) == {"key-unusable"}
    assert f"signer-{first}.state" in failed_message(result)
    assert f"keys revoke {first}" in failed_message(result)
    (keys / f"signer-{first}.crt").write_bytes(b"")
    result = city.verify(pdf, at=LATER)
    assert result.verdict is Verdict.CANNOT_DECIDE
    assert set(failed(result).values()) == {"key-unusable"}
    assert f"signer-{first}.crt" in failed_message(result)
    city.keys.rotate(LATER)  # a plain rotate still works beside the damaged files
    assert city.keys.signer(LATER + timedelta(minutes=1))


def test_every_key_message_points_to_a_command_that_works(tmp_path):
    """D22: no loop of advice between init and rotate."""
    home = tmp_path / "city"
    config.init(home, admin_code="210100", name="沈阳市")
    keys = city_at(home).keys
    with pytest.raises(KeyFileError, match="keys init"):
        keys.signer(T0)
    keys.init(T0)
    kid = keys.signer(T0).kid.hex()
    (keys.dir / "current").unlink()  # as after a crash before the last step of init
    with pytest.raises(KeyFileError, match="did not finish.*keys init"):
        keys.signer(T0)
    keys.init(T0)  # converges, keeping the root
    (keys.dir / f"signer-{keys.signer(T0).kid.hex()}.key").unlink()
    with pytest.raises(KeyFileError, match="keys rotate"):
        keys.signer(T0)
    keys.rotate(T0)
    assert keys.signer(T0).kid.hex() != kid
    (keys.dir / "root.key").rename(tmp_path / "root.key")  # kept offline
    with pytest.raises(KeyFileError, match="put the offline root key back"):
        keys.rotate(T0)
    with pytest.raises(KeyFileError, match="already holds a root"):
        keys.init(T0)


# --- partners, through bundles ----------------------------------------------------------------


@pytest.fixture
def pair(tmp_path):
    """伊春市 with keys (no data), and 茂名市 holding its bundle and an agreement."""
    config.init(tmp_path / "yc", admin_code="230700", name="伊春市")
    config.init(tmp_path / "mm", admin_code="440900", name="茂名市")
    yichun, maoming = city_at(tmp_path / "yc"), city_at(tmp_path / "mm")
    yichun.keys.init(T0)
    pin = fingerprint(yichun.keys.root())
    assert maoming.import_bundle(yichun.export_bundle(at=T0), pin=pin, at=T0).verdict.accepted
    codes = maoming.settings.catalog.codes
    maoming.partners.add_agreement(
        'format = 1\npartner = "230700"\nstart = 2026-01-01\nend = 2027-12-31\n[mapping]\n'
        + "\n".join(f'{c} = "{c}"' for c in codes),
        source="a.toml",
        at=T0,
    )
    return yichun, maoming


def test_partners_learn_retirement_and_compromise_from_the_bundle(pair, issued):
    yichun, maoming = pair
    doc, codes = issued["busy"][0].document, yichun.settings.catalog.codes
    old = yichun.keys.signer(T0)

    def verdict(issued_at, at):
        qr = forged_qr(doc, old, codes, issued_at=issued_at, issuer="230700")
        return maoming.verify(qr, at=at, kind=InputKind.QR)

    genuine = verdict(NOW_REPORTS, LATER)
    assert genuine.verdict is Verdict.ACCEPTED, failed(genuine)
    yichun.keys.rotate(NOW_REPORTS + timedelta(minutes=5))
    after = LATER + timedelta(minutes=1)
    assert verdict(LATER, after).verdict is Verdict.ACCEPTED  # until the new bundle arrives
    two = yichun.export_bundle(at=LATER)
    three = yichun.export_bundle(at=LATER)  # the same instant: the counter still moves (D15)
    earlier = yichun.export_bundle(at=LATER - timedelta(hours=1))  # a clock stepped back
    seqs = [cbor2.loads(cbor2.loads(b).value[2])["sequence"] for b in (two, three, earlier)]
    assert seqs[1] == seqs[0] + 1 and seqs[2] == seqs[1] + 1
    for bundle in (two, three, earlier):
        assert maoming.import_bundle(bundle, pin=None, at=after).verdict.accepted
    assert failed(verdict(LATER, after)) == {"issuer.key-in-service.qr": "key-retired"}
    assert verdict(NOW_REPORTS, after).verdict is Verdict.ACCEPTED  # issued before rotation

    yichun.keys.revoke(old.kid.hex(), compromised_at=NOW_REPORTS - timedelta(hours=1), now=LATER)
    assert maoming.import_bundle(
        yichun.export_bundle(at=LATER), pin=None, at=after
    ).verdict.accepted
    assert failed(verdict(NOW_REPORTS, after)) == {"issuer.key-in-service.qr": "key-compromised"}
    assert verdict(T0 + timedelta(hours=1), after).verdict is Verdict.ACCEPTED


def test_damaged_partner_files_fail_alone(pair, own):
    yichun, maoming = pair
    city, (report, path) = own
    (maoming.partners.dir / "230700" / "bundle.cose").write_bytes(b"\xd2\x84")  # torn
    (maoming.partners.dir / "110000").mkdir()
    (maoming.partners.dir / "110000" / "pin").write_text("ab" * 32)  # a first import, unfinished
    shutil.copytree(maoming.partners.dir, city.partners.dir)
    assert city.verify(path.read_bytes(), at=LATER).verdict is Verdict.ACCEPTED  # ours unharmed
    rows = {s.code: s.problem for s, _, _ in city.partners.listing(at=LATER)}
    assert rows["110000"] == "no bundle imported" and "refused" in rows["230700"]
    qr = forged_qr(
        report.document, yichun.keys.signer(T0), yichun.settings.catalog.codes,
        issued_at=NOW_REPORTS, issuer="230700",
    )  # fmt: skip
    undecided = city.verify(qr, at=LATER, kind=InputKind.QR)
    assert undecided.verdict is Verdict.CANNOT_DECIDE and "230700" in undecided.checks[-1].message
    fresh = city.import_bundle(yichun.export_bundle(at=LATER), pin=None, at=LATER)
    assert fresh.verdict.accepted  # the torn bundle never blocks a good one


# --- bundle content, signed by the genuine root --------------------------------------------------


def _resigned(city, change):
    body = cbor2.loads(cbor2.loads(city.export_bundle(at=T0)).value[2])
    change(body)
    return sign1(cbor2.dumps(body, canonical=True), city.keys.root_signer())


def _set(key, value):
    return lambda body: body.__setitem__(key, value)


HOSTILE = [
    ("missing-name", lambda b: b.pop("name"), "bad-content"),
    ("naive-times", _set("issued_at", "2026-06-29T10:30:00"), "bad-content"),
    ("sequence-string", _set("sequence", "9"), "bad-content"),
    ("sequence-2-63", _set("sequence", 2**63), "bad-content"),
    ("sequence-bool", _set("sequence", True), "bad-content"),
    ("revoked-bytes", _set("revoked", b"abc"), "bad-content"),
    ("revoked-short-id", _set("revoked", [b"\x00" * 8]), "bad-content"),
    ("hundred-years", _set("expires_at", "2126-06-29T10:30:00+08:00"), "bad-content"),
    ("signer-is-the-root", lambda b: b["signers"].append({"certificate": b["root"]}), "bad-content"),
    ("signer-extra-key", lambda b: b["signers"][0].update(note="x"), "bad-content"),
    ("retired-naive", lambda b: b["signers"][0].update(retired_at="2026-06-30T00:00"), "bad-content"),
    ("catalog-not-map", _set("catalog", [1]), "bad-catalog"),
    ("format-3", _set("format", "creditcert.bundle/3"), "malformed"),
    ("claims-our-code", _set("issuer", "440900"), PartnerError),
    ("issuer-a-path", _set("issuer", "../../x"), PartnerError),
]  # fmt: skip


@pytest.mark.parametrize("name,change,expected", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bundle_content_is_refused(pair, name, change, expected):
    yichun, maoming = pair
    data = _resigned(yichun, change)
    if expected is PartnerError:
        with pytest.raises(PartnerError):
            maoming.import_bundle(data, pin=None, at=T0 + timedelta(minutes=1))
        return
    result = maoming.import_bundle(data, pin=None, at=T0 + timedelta(minutes=1))
    assert result.verdict is Verdict.REJECTED and expected in failed(result).values(), failed(
        result
    )


def test_format_1_bundles_are_still_read(pair):
    """A partner on an older creditcert: DER signers, no retirement."""
    yichun, maoming = pair

    def downgrade(body):
        body["format"] = "creditcert.bundle/1"
        body["signers"] = [s["certificate"] for s in body["signers"]]
        body["sequence"] += 10

    result = maoming.import_bundle(_resigned(yichun, downgrade), pin=None, at=T0)
    assert result.verdict.accepted and len(result.bundle.signers) == 1
