"""The published hostile-input catalogue (tests/vectors/hostile/): every case gets its verdict and
reasons, and none crashes the verifier. Bundles are checked into the same result shape."""

import base64
import json
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509

from creditcert.trust.bundles import verify_bundle
from creditcert.trust.store import OwnCity, TrustStore
from creditcert.verify.result import Status
from creditcert.verify.verifier import InputKind, Verifier

HERE = Path(__file__).parent / "vectors" / "hostile"
ALL = sorted(p for p in HERE.glob("*.json") if not p.name.endswith(".trust.json"))


def trust(name: str) -> TrustStore:
    """A trust file names one city: its root and signing certificates, no registry."""
    (city,) = json.loads((HERE / name).read_text())["issuers"]
    load = lambda pem: x509.load_pem_x509_certificate(pem.encode())  # noqa: E731
    return TrustStore(
        OwnCity(city["code"], load(city["root"]), tuple(map(load, city["signers"])), None)
    )


def run(case: dict):
    at = datetime.fromisoformat(case["clock"].replace("Z", "+00:00"))
    kind, value = case["kind"], case["input"]
    if kind == "bundle":
        data = base64.b64decode(value)
        return verify_bundle(data, case["pin"], at=at, after_sequence=case["sequence_after"])
    source = value if kind in ("qr", "number") else base64.b64decode(value)
    return Verifier(trust(case["trust"]), at=at).verify(source, InputKind(kind))


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_case(path):
    case = json.loads(path.read_text(encoding="utf-8"))
    assert case["format"] == 2
    result = run(case)
    unmet = {c.step: c.reason for c in result.checks if c.status is not Status.PASSED}
    assert result.verdict.value == case["expected"]["verdict"], (case["description"], unmet)
    for step, reason in case["expected"]["failed"].items():
        assert unmet.get(step) == reason, (case["description"], unmet)


def test_catalogue_is_large_and_mostly_negative():
    descriptions = [json.loads(p.read_text(encoding="utf-8"))["description"] for p in ALL]
    assert len(ALL) >= 50
    assert sum(d.startswith("INVALID") for d in descriptions) >= 38
