"""A partner bundle checked by a second implementation written from docs/partners.md alone.

Only pycose, cbor2, cryptography and rfc8785 read the bundle here; creditcert makes the city, the
report and the bundle, and none of its decoding code (trust.partners, rules.catalog) is used to
check them. If this test and `creditcert partner import` disagree, the docs are wrong or one of
the two implementations is."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import cbor2
import pytest
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from pycose.keys import EC2Key
from pycose.messages import Sign1Message

from creditcert.model.clock import SHANGHAI

from .conftest import city_at

NOW = datetime(2026, 7, 1, 11, 0, 0, 123456, tzinfo=SHANGHAI)  # after the reports of `issued`
DER = Encoding.DER
HOSTILE = Path(__file__).parent / "vectors" / "hostile"
BODY_KEYS = {
    "format",
    "issuer",
    "name",
    "name_en",
    "sequence",
    "issued_at",
    "expires_at",
    "root",
    "signers",
    "catalog",
    "catalog_digest",
    "revoked",
}
RULES = (
    "kinds",
    "tiers",
    "excluded_when_alone",
    "fine_threshold",
    "window_years",
    "omit_after_publicity",
)
DOMAIN_KEYS = {"code", "zh", "en", "department", "dataset", "abbr", *RULES}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d$")


# --- the second implementation, from docs/partners.md --------------------------------------------


def normalise_pin(pin: str) -> str:
    """Case and every non-hex character are ignored."""
    return re.sub(r"[^0-9a-f]", "", pin.lower())


def check_bundle(data: bytes, pin: str) -> dict:
    """COSE layout, pin, kid, signature, body types, signers and catalog digest; the body back."""
    assert len(data) <= 1 << 20
    outer = cbor2.loads(data)
    assert isinstance(outer, cbor2.CBORTag) and outer.tag == 18
    protected, unprotected, payload, signature = outer.value
    assert isinstance(payload, bytes) and len(signature) == 64  # raw r‖s
    assert unprotected == {}
    body = cbor2.loads(payload)
    assert isinstance(body, dict) and set(body) == BODY_KEYS
    assert body["format"] in ("creditcert.bundle/1", "creditcert.bundle/2")

    root_der = body["root"]
    assert isinstance(root_der, bytes)
    assert hashlib.sha256(root_der).hexdigest() == normalise_pin(pin)  # the pin
    root = x509.load_der_x509_certificate(root_der)
    header = cbor2.loads(protected)
    assert header == {1: -7, 4: hashlib.sha256(root_der).digest()[:8]}  # ES256, the root's kid

    message = Sign1Message.decode(data)
    numbers = root.public_key().public_numbers()
    message.key = EC2Key(
        crv="P_256", x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big")
    )
    assert message.verify_signature()

    assert isinstance(body["issuer"], str) and re.fullmatch(r"\d{6}", body["issuer"])
    assert isinstance(body["name"], str) and isinstance(body["name_en"], str)
    assert isinstance(body["sequence"], int) and body["sequence"] > 0
    issued, expires = (datetime.fromisoformat(body[k]) for k in ("issued_at", "expires_at"))
    assert RFC3339.match(body["issued_at"]) and RFC3339.match(body["expires_at"])
    assert issued.utcoffset() is not None and expires - issued == timedelta(days=30)
    assert isinstance(body["revoked"], list) and body["revoked"] == sorted(body["revoked"])
    assert all(isinstance(r, bytes) and len(r) == 16 for r in body["revoked"])
    assert body["signers"]
    for signer in body["signers"]:
        if body["format"] == "creditcert.bundle/2":  # a map: the certificate and its times
            assert set(signer) <= {"certificate", "retired_at", "compromised_at"}
            for key in ("retired_at", "compromised_at"):
                assert key not in signer or RFC3339.match(signer[key])
            signer = signer["certificate"]
        assert isinstance(signer, bytes)
        cert = x509.load_der_x509_certificate(signer)
        cert.verify_directly_issued_by(root)
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # the city: the bundle's issuer; the root's subject names it in OU, for people
    ou = root.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert [a.value for a in ou] == [body["issuer"]]

    assert body["catalog_digest"] == catalog_digest(body["catalog"])
    return body


def catalog_digest(catalog: dict) -> str:
    """Re-shape the bundle's resolved catalog as docs/catalog.md § Digest says, then JCS."""
    assert set(catalog) == {"format", "id", "version", "zh", "en", "domain", "purpose"}
    assert catalog["format"] == 1  # no [defaults]: every rule is in every domain
    domains = []
    for d in catalog["domain"]:
        assert set(d) == DOMAIN_KEYS
        domains.append(
            {
                **{k: d[k] for k in ("code", "zh", "en", "department", "dataset", "abbr")},
                "rules": {k: d[k] for k in RULES},
            }
        )
    purposes = []
    for code in sorted(catalog["purpose"]):
        p = catalog["purpose"][code]
        assert set(p) == {"zh", "en", "domains", "years", "validity_days"}
        assert isinstance(p["domains"], list)  # "all" is already expanded
        purposes.append({"code": code, **p})
    canonical = rfc8785.dumps(
        {
            **{k: catalog[k] for k in ("id", "version", "zh", "en")},
            "domains": domains,
            "purposes": purposes,
        }
    )
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def revocation_id(number: str) -> bytes:
    assert re.fullmatch(r"\d{6}-\d{4}-[0-9A-HJKMNP-TV-Y]{8}-[0-9A-HJKMNP-TV-Y]", number)
    return hashlib.sha256(number.encode("utf-8")).digest()[:16]


# --- the bundles under test ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory, issued):
    """A copy of the city with two issued reports rotates its key and records the old one
    compromised, revokes one report and exports its bundle."""
    home = tmp_path_factory.mktemp("interop") / "city"
    shutil.copytree(issued["home"], home)
    city = city_at(home)
    reports = [issued["busy"][0], issued["clean"][0]]
    old = city.keys.signer(NOW - timedelta(minutes=30)).kid.hex()
    city.keys.rotate(NOW - timedelta(minutes=10))
    city.keys.revoke(old, compromised_at=NOW - timedelta(minutes=20), now=NOW)
    city.revoke(reports[0].document.number, reason="test", at=NOW)
    data = city.export_bundle(at=NOW, sequence=1_782_867_600)
    pin = hashlib.sha256(city.keys.root().public_bytes(DER)).hexdigest()
    return data, pin, reports, city.settings


def test_exported_bundle_checks_out_with_an_independent_implementation(exported):
    data, pin, reports, settings = exported
    pin_with_separators = ":".join(pin[i : i + 2] for i in range(0, 64, 2)).upper()
    body = check_bundle(data, pin_with_separators)
    assert body["issuer"] == "210100" and body["sequence"] == 1_782_867_600
    assert body["format"] == "creditcert.bundle/2"
    old, current = sorted(body["signers"], key=lambda s: "retired_at" not in s)
    assert old["retired_at"] == "2026-07-01T10:50:00.123456+08:00"
    assert old["compromised_at"] == "2026-07-01T10:40:00.123456+08:00"
    assert set(current) == {"certificate"}
    assert body["issued_at"] == "2026-07-01T11:00:00.123456+08:00"
    revoked, kept = (r.document.number for r in reports)
    assert body["revoked"] == [revocation_id(revoked)]
    assert revocation_id(kept) not in body["revoked"]
    # the digest recomputed here is the one every report of the city signs
    assert body["catalog_digest"] == settings.catalog.digest == reports[1].document.catalog_digest
    assert len(body["catalog"]["domain"]) == 52


def test_tampering_is_caught_by_the_independent_implementation(exported):
    data, pin, _, _ = exported
    with pytest.raises(AssertionError):
        check_bundle(data, "00" * 32)  # another pin
    outer = cbor2.loads(data)
    protected, unprotected, payload, signature = outer.value
    body = cbor2.loads(payload)
    body["revoked"] = []  # un-revoke, keep the signature
    forged = cbor2.dumps(
        cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(body, canonical=True), signature])
    )
    with pytest.raises(AssertionError):
        check_bundle(forged, pin)
    body = cbor2.loads(payload)
    body["catalog"]["domain"][0]["fine_threshold"] += 1
    assert catalog_digest(body["catalog"]) != body["catalog_digest"]


def test_published_bundle_vectors_check_out():
    """Every accepted bundle of the hostile catalogue passes this implementation too."""
    cases = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(HOSTILE.glob("*.json"))]
    valid = [
        c for c in cases if c.get("kind") == "bundle" and c["expected"]["verdict"] == "accepted"
    ]
    assert valid
    for case in valid:
        body = check_bundle(base64.b64decode(case["input"]), case["pin"])
        clock = datetime.fromisoformat(case["clock"].replace("Z", "+00:00"))
        issued, expires = (datetime.fromisoformat(body[k]) for k in ("issued_at", "expires_at"))
        assert issued <= clock < expires and body["sequence"] > case["sequence_after"]
