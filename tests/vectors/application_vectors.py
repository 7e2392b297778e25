"""Generate the remote-application vectors (tests/vectors/application/).

    python tests/vectors/application_vectors.py

Each case is one JSON file: `cose` (the COSE_Sign1 as hex, what the issuing city's endpoint
receives), `payload` (its CBOR payload as hex), a `context` (the forwarding city's signer
certificate and root in PEM, the receiving city's code, the domains its agreement with the
sender maps, the receiving clock in RFC 3339), a description starting VALID: or INVALID:, the
expected result of each step (true must pass, false must fail, absent is not tested), the reason
code of the first failure, and for the valid case the decoded fields. Rules: docs/partners.md,
"Remote application". A fresh test PKI is made on each run; ECDSA signatures are randomised, so
regenerating changes signatures but never the rules.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cbor2
from cryptography.hazmat.primitives import serialization

from creditcert.envelope.application import Application, seal_application
from creditcert.envelope.cose import sign1
from creditcert.model.clock import SHANGHAI
from creditcert.trust.keys import KeyStore

OUT = Path(__file__).resolve().parent / "application"
SENT = datetime(2026, 7, 1, 10, 30, tzinfo=SHANGHAI)
RECEIVER = "230700"
AGREED = ["market-regulation", "taxation", "transport"]
STEPS = ("signature", "payload", "addressee", "time_window", "domains")


def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def main() -> None:
    import tempfile

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        keys = KeyStore(Path(tmp) / "keys", "440900", "茂名市")
        keys.init(SENT - timedelta(days=1))
        signer, root = keys.signer(SENT), keys.root()
        base = Application(
            "440900", RECEIVER, "91230717MA0P4E8X0T", ("market-regulation", "taxation"), 3,
            date(2026, 7, 1), "zh-en", SENT, bytes(range(16)),
        )  # fmt: skip
        raw = cbor2.loads(base.to_cbor())
        context = {
            "signer_pem": pem(signer.certificate),
            "root_pem": pem(root),
            "receiver": RECEIVER,
            "agreed_domains": AGREED,
            "clock": (SENT + timedelta(seconds=40)).astimezone(UTC).isoformat(),
        }
        everything = dict.fromkeys(STEPS, True)

        def case(name: str, description: str, cose: bytes, expected: dict, **extra) -> None:
            body = {
                "format": 1,
                "description": description,
                "cose": cose.hex(),
                "payload": cbor2.loads(cose).value[2].hex(),
                "context": context | extra.pop("context", {}),
                "expected": expected,
                **extra,
            }
            path = OUT / f"{name}.json"
            path.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", "utf-8")

        def signed(payload: dict) -> bytes:
            return sign1(cbor2.dumps(payload, canonical=True), signer)

        good = seal_application(base, signer)
        case(
            "valid", "VALID: two agreed domains, sent 40 s before it is received", good,
            everything, reason="ok",
            fields={k: (v.hex() if isinstance(v, bytes) else v) for k, v in raw.items()},
        )  # fmt: skip
        spoiled = bytearray(good)
        spoiled[-1] ^= 1
        case(
            "invalid-signature", "INVALID: last byte of the signature flipped", bytes(spoiled),
            {"signature": False}, reason="bad-signature",
        )  # fmt: skip
        for name, change, why in (
            ("extra-key", {"note": "x"}, "a key the format does not have"),
            ("no-offset", {"sent_at": "2026-07-01T10:30:00"}, "sent_at without its UTC offset"),
            ("years", {"years": 6}, "years outside 1 to 5"),
            ("nonce", {"nonce": b"\x00" * 8}, "a nonce of 8 bytes"),
            ("format", {"format": "creditcert.application/2"}, "another format"),
        ):
            case(
                f"invalid-{name}", f"INVALID: {why}", signed(raw | change),
                {"signature": True, "payload": False}, reason="bad-application",
            )  # fmt: skip
        ok_until_payload = {"signature": True, "payload": True}
        late = raw | {"sent_at": (SENT - timedelta(minutes=6)).isoformat()}
        case(
            "invalid-late", "INVALID: sent 6 min 40 s before it is received (window: 5 min)",
            signed(late), ok_until_payload | {"time_window": False}, reason="outside-time-window",
        )  # fmt: skip
        case(
            "invalid-addressee", "INVALID: addressed to another city", signed(raw | {"to": "460200"}),
            ok_until_payload | {"addressee": False}, reason="not-addressed-to-us",
        )  # fmt: skip
        outside = raw | {"domains": ["market-regulation", "court-enforcement"]}
        case(
            "invalid-domain", "INVALID: a domain the receiver's agreement does not map",
            signed(outside), ok_until_payload | {"domains": False}, reason="domain-not-agreed",
        )  # fmt: skip


if __name__ == "__main__":
    main()
