"""The published report vectors, checked by a verifier written here from docs/report.md alone:
base45 + zlib + pycose + cbor2, and the URL form's digits decoded from its chunk table, none of
creditcert's sealing or QR code."""

import base64
import hashlib
import io
import json
import math
import re
import zlib
from datetime import datetime
from pathlib import Path

import base45
import cbor2
import pytest
from cryptography import x509
from pycose.keys import EC2Key
from pycose.messages import Sign1Message

from creditcert.issue.render import qr_png
from creditcert.model import document

VECTORS = sorted((Path(__file__).parent / "vectors" / "report").glob("*.json"))
# docs/report.md §3: a last chunk of k bytes is ceil(8k log10 2) digits; a full one (7 bytes) 17
BYTES_OF = {math.ceil(8 * k * math.log10(2)): k for k in range(1, 8)}


def digits_to_bytes(digits: str) -> bytes:
    """The URL form's digits back to bytes, from the chunk table alone; ValueError if they
    are not digits, leave a count no chunk has, or a chunk is over what its bytes hold."""
    if not re.fullmatch("[0-9]+", digits):
        raise ValueError("not digits")
    out = b""
    for i in range(0, len(digits), 17):
        chunk = digits[i : i + 17]
        size = BYTES_OF[len(chunk)]  # KeyError (a ValueError here) for a count no chunk has
        if int(chunk) >= 256**size:
            raise ValueError("chunk overflow")
        out += int(chunk).to_bytes(size, "big")
    return out


def verify_steps(case: dict) -> dict:
    """Run the documented steps; record True/False per step, stop at the first failure."""
    got: dict[str, bool] = {}
    text = case["stages"]["qr_text"].strip()
    markers = list(re.finditer("/cc1/", text, re.IGNORECASE))
    got["prefix"] = text.startswith("CC1:") or bool(markers)
    if not got["prefix"]:
        return got
    if text.startswith("CC1:"):
        try:
            compressed = base45.b45decode(text[4:])
            got["base45_decode"] = True
        except ValueError:
            got["base45_decode"] = False
            return got
    else:
        try:
            digits = re.split("[?#]", text[markers[-1].end() :])[0]
            compressed = digits_to_bytes(digits)
            got["digits_decode"] = True
        except (ValueError, KeyError):
            got["digits_decode"] = False
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


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_both_forms_carry_the_same_zlib_bytes(path):
    """The stages an issuer reproduces: base45 and digits of qr_zlib, and the URL under the
    base URL with its scheme and host in upper case."""
    case = json.loads(path.read_text(encoding="utf-8"))
    stages = case["stages"]
    compressed = bytes.fromhex(stages["qr_zlib"])
    assert zlib.decompress(compressed).hex() == stages["qr_cose"]
    assert base45.b45decode(stages["qr_base45"]) == compressed
    assert digits_to_bytes(stages["qr_digits"]) == compressed
    assert (
        len(stages["qr_digits"])
        == len(compressed) // 7 * 17
        + {0: 0, **{k: d for d, k in BYTES_OF.items()}}[len(compressed) % 7]
    )
    base = case["context"]["base_url"]
    scheme, host = re.fullmatch("([a-z]+)://([^/]+)", base).groups()
    assert stages["qr_url"] == f"{scheme.upper()}://{host.upper()}/CC1/{stages['qr_digits']}"


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_the_published_qr_png_is_what_issuance_draws(path):
    """The PNG is qr_png of qr_text, pixel for pixel; a VALID case's reads back as its text."""
    import numpy as np
    import zxingcpp
    from PIL import Image

    case = json.loads(path.read_text(encoding="utf-8"))
    text = case["stages"]["qr_text"]
    published = Image.open(io.BytesIO(base64.b64decode(case["stages"]["qr_png_base64"])))
    drawn = Image.open(io.BytesIO(qr_png(text)))
    assert np.array_equal(np.asarray(published), np.asarray(drawn))
    if case["description"].startswith("VALID"):
        assert [b.text for b in zxingcpp.read_barcodes(published)] == [text]


def test_there_are_valid_and_invalid_vectors():
    kinds = {
        json.loads(p.read_text(encoding="utf-8"))["description"].split(":")[0] for p in VECTORS
    }
    assert kinds == {"VALID", "INVALID"} and len(VECTORS) >= 16
    forms = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))["stages"]["qr_text"] for p in VECTORS
    }
    assert sum(t.startswith("CC1:") for t in forms.values()) >= 6  # the text form stays
    assert sum("/CC1/" in t.upper() for t in forms.values()) >= 7
