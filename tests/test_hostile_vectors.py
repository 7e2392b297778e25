"""The published hostile-input catalogue (tests/vectors/hostile/): every case gets its verdict and
reasons, and none crashes the verifier."""

import base64
import json
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509

from creditcert.verify import verifier as verify
from creditcert.verify.verifier import Status

HERE = Path(__file__).parent / "vectors" / "hostile"
ALL = sorted(p for p in HERE.glob("*.json") if not p.name.endswith(".trust.json"))
CASES = [p for p in ALL if '"kind": "bundle"' not in p.read_text(encoding="utf-8")]
BUNDLES = [p for p in ALL if p not in CASES]


def trust(name: str) -> verify.Trust:
    body = json.loads((HERE / name).read_text())
    load = lambda pem: x509.load_pem_x509_certificate(pem.encode())  # noqa: E731
    return verify.Trust(
        tuple(
            verify.KnownIssuer(i["code"], load(i["root"]), tuple(load(s) for s in i["signers"]))
            for i in body["issuers"]
        )
    )


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path):
    case = json.loads(path.read_text(encoding="utf-8"))
    at = datetime.fromisoformat(case["clock"].replace("Z", "+00:00"))
    t = trust(case["trust"])
    kind, value = case["kind"], case["input"]
    if kind == "qr":
        result = verify.verify_qr_text(value, t, at=at)
    elif kind == "number":
        result = verify.verify_number(value, t)
    elif kind == "image":
        result = verify.verify_image(base64.b64decode(value), t, at=at)
    else:
        result = verify.verify_pdf(base64.b64decode(value), t, at=at)
    failed = {c.step: c.reason for c in result.checks if c.status is Status.FAILED}
    assert result.verdict.value == case["expected"]["verdict"], (case["description"], failed)
    for step, reason in case["expected"]["failed"].items():
        assert failed.get(step) == reason, (case["description"], failed)


@pytest.mark.parametrize("path", BUNDLES, ids=[p.stem for p in BUNDLES])
def test_bundle_case(path):
    from creditcert.trust.partners import PartnerError, verify_bundle

    case = json.loads(path.read_text(encoding="utf-8"))
    at = datetime.fromisoformat(case["clock"].replace("Z", "+00:00"))
    data = base64.b64decode(case["input"])
    try:
        verify_bundle(data, case["pin"], now=at, after_sequence=case["sequence_after"])
        got = None
    except PartnerError as exc:
        got = exc.reason
    assert got == case["expected"]["reason"], case["description"]


def test_catalogue_is_large_and_mostly_negative():
    descriptions = [json.loads(p.read_text(encoding="utf-8"))["description"] for p in ALL]
    assert len(ALL) >= 50
    assert sum(d.startswith("INVALID") for d in descriptions) >= 38
