"""Partner bundles: what a city publishes so partners can verify its reports (docs/partners.md).

A bundle is a COSE_Sign1 made with the city's *root* key over a CBOR map: the city, its root and
signing certificates with the time each was retired or compromised, its domain catalog, the ids
of the reports it revoked and a sequence number. A partner imports it once with the root's
SHA-256 fingerprint, learned out of band; later bundles must chain to that pinned root and carry a
higher sequence. Checking a bundle returns the same Verification shape as checking a report.
Format 2 added the signers' retirement and compromise; format 1 bundles are still read (their
keys have no such times).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from creditcert.config import Settings
from creditcert.envelope.cose import decode_unverified, sign1, verify_with
from creditcert.errors import Reason
from creditcert.registry import Registry
from creditcert.rules import catalog as catalog_mod
from creditcert.rules.catalog import Catalog
from creditcert.trust.keys import KeyState, KeyStore, fingerprint, kid_of, role_problem
from creditcert.verify.result import Checklist, Verification

BUNDLE_FORMAT = "creditcert.bundle/2"
READABLE_FORMATS = ("creditcert.bundle/1", BUNDLE_FORMAT)
MAX_BUNDLE = 1 << 20
BUNDLE_DAYS = 30  # a bundle is republished at least monthly
MAX_BUNDLE_DAYS = 31  # a bundle claiming a longer validity is refused
_SIGNER_KEYS = {"certificate", "retired_at", "compromised_at"}
MAX_SEQUENCE = 2**53  # sequences stay exact in every language's numbers


def revocation_id(number: str) -> bytes:
    """What a bundle lists for a revoked report: the first 16 bytes of SHA-256 of its canonical
    number (UTF-8, upper case, with dashes)."""
    return hashlib.sha256(number.encode()).digest()[:16]


def normalise_pin(text: str) -> str:
    """A pinned fingerprint as 64 lower-case hex digits (colons, spaces and case ignored)."""
    return re.sub(r"[^0-9a-f]", "", text.lower())


@dataclass(frozen=True, slots=True)
class Bundle:
    issuer_code: str
    name: str
    name_en: str
    sequence: int
    issued_at: datetime
    expires_at: datetime
    root: x509.Certificate
    signers: tuple[x509.Certificate, ...]
    catalog: Catalog
    revoked: frozenset[bytes]
    states: dict[bytes, KeyState]  # kid → retirement and compromise (format 2)

    def valid_at(self, when: datetime) -> bool:
        return self.issued_at <= when < self.expires_at

    def to_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer_code,
            "name": self.name,
            "name_en": self.name_en,
            "sequence": self.sequence,
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "root_sha256": fingerprint(self.root),
            "signers": len(self.signers),
            "catalog": {"id": self.catalog.id, "version": self.catalog.version},
            "revoked": len(self.revoked),
        }


def export_bundle(
    settings: Settings, keys: KeyStore, registry: Registry, *, now: datetime, sequence: int
) -> bytes:
    """Our bundle, signed with the root key (which must be at hand for this). A signer whose
    certificate or state cannot be read is left out (`keys list` names it)."""
    der = serialization.Encoding.DER
    signers = []
    for entry in keys.entries():
        if entry.certificate is None or entry.problem:
            continue
        item = {"certificate": entry.certificate.public_bytes(der)}
        for key in ("retired_at", "compromised_at"):
            when = getattr(entry.state, key)
            if when is not None:
                item[key] = when.isoformat()
        signers.append(item)
    body = {
        "format": BUNDLE_FORMAT,
        "issuer": settings.issuer.admin_code,
        "name": settings.issuer.name,
        "name_en": settings.issuer.name_en,
        "sequence": sequence,
        "issued_at": now.isoformat(),
        "expires_at": (now + timedelta(days=BUNDLE_DAYS)).isoformat(),
        "root": keys.root().public_bytes(der),
        "signers": signers,
        "catalog": catalog_mod.as_raw(settings.catalog),
        "catalog_digest": settings.catalog.digest,
        "revoked": sorted(revocation_id(n) for n in registry.revoked_numbers()),
    }
    return sign1(cbor2.dumps(body, canonical=True), keys.root_signer())


def peek_issuer(data: bytes) -> str | None:
    """The issuer a bundle claims, before any check: only to find where its pin is kept."""
    try:
        body = cbor2.loads(decode_unverified(data[:MAX_BUNDLE]).payload)
        issuer = body.get("issuer") if isinstance(body, dict) else None
    except Exception:
        return None
    return issuer if isinstance(issuer, str) and re.fullmatch(r"\d{6}", issuer) else None


def verify_bundle(data: bytes, pin: str, *, at: datetime, after_sequence: int = 0) -> Verification:
    """Check a bundle against a pinned root fingerprint, in the order of docs/partners.md."""
    cl = Checklist()
    if len(data) > MAX_BUNDLE:
        cl.fail("format.bundle", Reason.TOO_LARGE, f"{len(data):,} bytes, at most {MAX_BUNDLE:,}")
        return cl.result()
    try:
        message = decode_unverified(data)
        body = cbor2.loads(message.payload)
        if not isinstance(body, dict) or body.get("format") not in READABLE_FORMATS:
            raise ValueError(f"not a {' or '.join(READABLE_FORMATS)} map")
        root = x509.load_der_x509_certificate(body["root"])
    except Exception as exc:  # DecodeError, EOFError, nesting, or a body that is not a bundle
        cl.fail("format.bundle", Reason.MALFORMED, f"not a creditcert bundle ({exc})"[:300])
        return cl.result()
    cl.ok("format.bundle", f"{body['format']}, {len(data):,} bytes")
    pinned = normalise_pin(pin)
    if fingerprint(root) != pinned:
        cl.fail(
            "trust.pin",
            Reason.PIN_MISMATCH,
            f"root fingerprint {fingerprint(root)} is not the pinned {pinned}",
        )
        return cl.result()
    cl.ok("trust.pin", f"root {pinned[:16]}… is the pinned one")
    if not verify_with(message, root):
        cl.fail(
            "integrity.bundle-signature",
            Reason.BAD_SIGNATURE,
            "bundle signature does not verify with the pinned root",
        )
        return cl.result()
    cl.ok("integrity.bundle-signature", "signed by the pinned root")
    try:
        bundle = _content(body, root)
    except _Refused as exc:
        cl.fail("format.bundle-content", exc.reason, str(exc))
        return cl.result()
    cl.ok(
        "format.bundle-content",
        f"{bundle.name} ({bundle.issuer_code}): {len(bundle.signers)} signing key(s), "
        f"catalog {bundle.catalog.id} {bundle.catalog.version}, {len(bundle.revoked)} revoked",
    )
    if bundle.valid_at(at):
        cl.ok(
            "validity.bundle", f"valid {bundle.issued_at:%Y-%m-%d} to {bundle.expires_at:%Y-%m-%d}"
        )
    else:
        cl.fail(
            "validity.bundle",
            Reason.NOT_VALID_NOW,
            f"bundle valid {bundle.issued_at.isoformat()} to {bundle.expires_at.isoformat()}, "
            f"not at {at.isoformat()}",
        )
    if bundle.sequence > after_sequence:
        cl.ok("status.sequence", f"sequence {bundle.sequence} after {after_sequence}")
    else:
        cl.fail(
            "status.sequence",
            Reason.STALE_SEQUENCE,
            f"bundle sequence {bundle.sequence} is not newer than {after_sequence}",
        )
    return cl.result(bundle=bundle)


class _Refused(Exception):
    def __init__(self, reason: Reason, message: str):
        super().__init__(message)
        self.reason = reason


def _content(body: dict, root: x509.Certificate) -> Bundle:
    """Every field typed and in range; a signer must be certified by the root."""

    def need(key: str, kind: type) -> Any:
        value = body.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _Refused(
                Reason.BAD_CONTENT, f"{key}: expected {kind.__name__}, got {value!r:.60}"
            )
        return value

    issuer, name, name_en = need("issuer", str), need("name", str), need("name_en", str)
    if not re.fullmatch(r"\d{6}", issuer) or not name.strip():
        raise _Refused(Reason.BAD_CONTENT, f"issuer {issuer!r} is not a 6-digit code with a name")
    sequence = need("sequence", int)
    if not 0 < sequence < MAX_SEQUENCE:
        raise _Refused(Reason.BAD_CONTENT, f"sequence {sequence} outside 1 … 2^53")
    issued, expires = (
        _time(need("issued_at", str), "issued_at"),
        _time(need("expires_at", str), "expires_at"),
    )
    if not timedelta(0) < expires - issued <= timedelta(days=MAX_BUNDLE_DAYS):
        raise _Refused(
            Reason.BAD_CONTENT,
            f"validity {issued:%Y-%m-%d} to {expires:%Y-%m-%d} is not 1 second to "
            f"{MAX_BUNDLE_DAYS} days",
        )
    revoked = need("revoked", list)
    if not all(isinstance(r, bytes) and len(r) == 16 for r in revoked):
        raise _Refused(Reason.BAD_CONTENT, "revoked: expected 16-byte byte strings")
    signers, states = _signers(need("signers", list), root, body["format"])
    try:
        catalog = catalog_mod.parse(need("catalog", dict), source=f"bundle of {issuer}")
    except Exception as exc:  # a hostile catalog map may fail in any of parse's steps
        raise _Refused(Reason.BAD_CATALOG, f"bundle catalog refused: {exc}") from None
    if catalog.digest != body.get("catalog_digest"):
        raise _Refused(Reason.BAD_CATALOG, "bundle catalog does not match its digest")
    return Bundle(
        issuer,
        name,
        name_en,
        sequence,
        issued,
        expires,
        root,
        signers,
        catalog,
        frozenset(revoked),
        states,
    )


def _time(text: str, key: str) -> datetime:
    """RFC 3339 with a UTC offset (a naive time is refused: whose clock would it be?)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _Refused(Reason.BAD_CONTENT, f"{key}: {exc}") from None
    if when.tzinfo is None:
        raise _Refused(Reason.BAD_CONTENT, f"{key}: {text!r} has no UTC offset")
    return when


def _signers(
    items: list, root: x509.Certificate, version: str
) -> tuple[tuple[x509.Certificate, ...], dict[bytes, KeyState]]:
    """Format 1: DER certificates. Format 2: maps of `certificate` with optional `retired_at`
    and `compromised_at`. Each a signing certificate issued directly by the root."""
    certs, states = [], {}
    for n, item in enumerate(items):
        times: dict[str, datetime] = {}
        if version == BUNDLE_FORMAT:
            if not isinstance(item, dict) or not set(item) <= _SIGNER_KEYS:
                raise _Refused(
                    Reason.BAD_CONTENT, f"signers[{n}]: expected a map of {sorted(_SIGNER_KEYS)}"
                )
            for key in ("retired_at", "compromised_at"):
                if key in item:
                    value = item[key]
                    if not isinstance(value, str):
                        raise _Refused(Reason.BAD_CONTENT, f"signers[{n}].{key}: expected text")
                    times[key] = _time(value, f"signers[{n}].{key}")
            item = item.get("certificate")
        try:
            cert = x509.load_der_x509_certificate(item)
            cert.verify_directly_issued_by(root)
        except Exception as exc:
            raise _Refused(
                Reason.BAD_CONTENT,
                f"signers[{n}]: not a certificate issued by the root ({type(exc).__name__})",
            ) from None
        problem = role_problem(cert, "signer")
        if problem:
            raise _Refused(Reason.BAD_CONTENT, f"signers[{n}] {problem}")
        certs.append(cert)
        states[kid_of(cert)] = KeyState(times.get("retired_at"), times.get("compromised_at"))
    return tuple(certs), states
