"""The published report vectors, checked by a verifier written here from docs/report.md alone:
base45 + zlib + pycose + cbor2, none of creditcert's sealing code."""

import json
import zlib
from datetime import datetime
from pathlib import Path

import base45
import cbor2
import pytest
from cryptography import x509
from pycose.keys import EC2Key
from pycose.messages import Sign1Message

from creditcert.model import document

VECTORS = sorted((Path(__file__).parent / "vectors" / "report").glob("*.json"))


def verify_steps(case: dict) -> dict:
    """Run the documented steps; record True/False per step, stop at the first failure."""
    got: dict[str, bool] = {}
    text = case["stages"]["qr_text"]
    got["prefix"] = text.startswith("CC1:")
    if not got["prefix"]:
        return got
    try:
        compressed = base45.b45decode(text[4:])
        got["base45_decode"] = True
    except ValueError:
        got["base45_decode"] = False
        return got
    try:
        cose = zlib.decompress(compressed)
        got["decompress"] = True
    except zlib.error:
        got["decompress"] = False
        return got
    cert = x509.load_pem_x509_certificate(case["context"]["signer_certificate"].encode())
    nums = cert.public_key().public_numbers()
    msg = Sign1Message.decode(cose)
    msg.key = EC2Key(crv="P_256", x=nums.x.to_bytes(32, "big"), y=nums.y.to_bytes(32, "big"))
    try:
        got["verify_signature"] = bool(msg.verify_signature())
    except Exception:  # pycose raises on a malformed signature
        got["verify_signature"] = False
    if not got["verify_signature"]:
        return got
    claims = cbor2.loads(msg.payload)
    got["cbor_decode"] = isinstance(claims, dict) and -65537 in claims
    clock = datetime.fromisoformat(case["context"]["validation_clock"].replace("Z", "+00:00"))
    got["expiry_check"] = claims[6] <= clock.timestamp() < claims[4]
    doc_cbor = bytes.fromhex(case["stages"]["document_cbor"])
    import hashlib

    got["digest_match"] = claims[-65537]["h"] == hashlib.sha256(doc_cbor).digest()
    return got


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path):
    case = json.loads(path.read_text(encoding="utf-8"))
    assert case["description"].split(":")[0] in ("VALID", "INVALID")
    got = verify_steps(case)
    for step, expected in case["expected"].items():
        assert got.get(step) is expected, f"{step}: got {got.get(step)}, expected {expected}"
    # our document model re-encodes the published document to the published bytes
    doc = document.from_data(case["document"])
    assert doc.to_cbor().hex() == case["stages"]["document_cbor"]
    # and the envelope signs exactly those bytes
    env = Sign1Message.decode(bytes.fromhex(case["stages"]["envelope_cose"]))
    assert env.payload == doc.to_cbor()


def test_there_are_valid_and_invalid_vectors():
    kinds = {
        json.loads(p.read_text(encoding="utf-8"))["description"].split(":")[0] for p in VECTORS
    }
    assert kinds == {"VALID", "INVALID"} and len(VECTORS) >= 8
