"""The remote-application vectors (tests/vectors/application/), read twice: by pycose and the
documented rules alone (a second implementation), and by creditcert's own reader. Both must
reach each vector's expected steps and reason."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from pycose.keys import EC2Key
from pycose.messages import Sign1Message

from creditcert.envelope.application import read_application
from creditcert.envelope.cose import decode_unverified, verify_with
from creditcert.errors import DecodeError

VECTORS = sorted((Path(__file__).parent / "vectors" / "application").glob("*.json"))
KEYS = {"format", "from", "to", "subject", "domains", "years", "as_of", "lang", "sent_at", "nonce"}
REASONS = {
    "signature": "bad-signature",
    "payload": "bad-application",
    "addressee": "not-addressed-to-us",
    "time_window": "outside-time-window",
    "domains": "domain-not-agreed",
}


def by_the_docs(vector: dict) -> dict[str, bool]:
    """docs/partners.md, "Remote application", with pycose and cbor2 only."""
    context = vector["context"]
    cert = x509.load_pem_x509_certificate(context["signer_pem"].encode())
    numbers = cert.public_key().public_numbers()
    message = Sign1Message.decode(bytes.fromhex(vector["cose"]))
    message.key = EC2Key(
        crv="P_256", x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big")
    )
    steps = {"signature": message.verify_signature()}
    if not steps["signature"]:
        return steps
    p = cbor2.loads(message.payload)
    well_formed = (
        isinstance(p, dict)
        and set(p) == KEYS
        and p["format"] == "creditcert.application/1"
        and isinstance(p["years"], int)
        and not isinstance(p["years"], bool)
        and 1 <= p["years"] <= 5
        and isinstance(p["nonce"], bytes)
        and len(p["nonce"]) == 16
        and re.fullmatch(r"\d{6}", p["from"]) is not None
        and re.fullmatch(r"[0-9A-Z]{18}", p["subject"]) is not None
        and p["lang"] in ("zh", "en", "zh-en")
        and 1 <= len(p["domains"]) <= 64
        and len(set(p["domains"])) == len(p["domains"])
        and datetime.fromisoformat(p["sent_at"]).utcoffset() is not None
    )
    steps["payload"] = well_formed
    if not well_formed:
        return steps
    clock = datetime.fromisoformat(context["clock"])
    steps["addressee"] = p["to"] == context["receiver"]
    drift = abs(clock - datetime.fromisoformat(p["sent_at"]))
    steps["time_window"] = drift <= timedelta(minutes=5)
    steps["domains"] = set(p["domains"]) <= set(context["agreed_domains"])
    return steps


def by_creditcert(vector: dict) -> dict[str, bool]:
    context = vector["context"]
    cert = x509.load_pem_x509_certificate(context["signer_pem"].encode())
    message = decode_unverified(bytes.fromhex(vector["cose"]))
    steps = {"signature": verify_with(message, cert)}
    if not steps["signature"]:
        return steps
    try:
        application = read_application(message.payload)
    except DecodeError:
        return steps | {"payload": False}
    clock = datetime.fromisoformat(context["clock"])
    return steps | {
        "payload": True,
        "addressee": application.to_city == context["receiver"],
        "time_window": abs(clock - application.sent_at) <= timedelta(minutes=5),
        "domains": set(application.domains) <= set(context["agreed_domains"]),
    }


def first_reason(steps: dict[str, bool]) -> str:
    failed = [REASONS[s] for s, passed in steps.items() if not passed]
    return failed[0] if failed else "ok"


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_each_vector_by_the_docs_and_by_creditcert(path):
    vector = json.loads(path.read_text(encoding="utf-8"))
    assert vector["description"].startswith("VALID:" if path.stem == "valid" else "INVALID:")
    assert bytes.fromhex(vector["payload"]) == cbor2.loads(bytes.fromhex(vector["cose"])).value[2]
    for reader in (by_the_docs, by_creditcert):
        steps = reader(vector)
        assert {k: steps[k] for k in vector["expected"]} == vector["expected"], reader.__name__
        assert first_reason(steps) == vector["reason"], reader.__name__


def test_the_valid_vector_decodes_to_its_fields():
    vector = json.loads((VECTORS[-1]).read_text(encoding="utf-8"))
    application = read_application(bytes.fromhex(vector["payload"]))
    fields = vector["fields"]
    assert application.nonce.hex() == fields["nonce"] and application.to_city == fields["to"]
    assert list(application.domains) == fields["domains"] and len(VECTORS) == 10
