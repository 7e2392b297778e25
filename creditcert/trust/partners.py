"""Partner cities: signed bundles of keys and catalog, and mutual-recognition agreements.

A bundle (docs/partners.md) is a COSE_Sign1 made with the city's *root* key over a CBOR map: the
city, its root and signing certificates, its domain catalog, the numbers of reports it revoked
(as truncated hashes) and a sequence number. A partner imports it once with the root's SHA-256
fingerprint, learned out of band; later bundles must chain to that pinned root and carry a higher
sequence. An agreement names the partner, its dates and how the partner's domain codes map onto
ours.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cwt import COSE, COSEKey

from creditcert.config import Settings
from creditcert.envelope.sealing import sign1
from creditcert.errors import CreditcertError
from creditcert.registry import SqliteRegistry
from creditcert.rules import catalog as catalog_mod
from creditcert.rules.catalog import Catalog
from creditcert.trust.keys import KeyStore, fingerprint, kid_of

BUNDLE_FORMAT = "creditcert.bundle/1"
MAX_BUNDLE = 1 << 20
BUNDLE_DAYS = 30  # a bundle is republished at least monthly


class PartnerError(CreditcertError):
    """A bundle or agreement is refused: the message says why, `reason` is a stable code."""

    def __init__(self, message: str, reason: str = "refused"):
        super().__init__(message)
        self.reason = reason


def revocation_id(number: str) -> bytes:
    """What a bundle lists for a revoked report: the first 16 bytes of SHA-256 of its number."""
    return hashlib.sha256(number.encode()).digest()[:16]


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


def export_bundle(
    settings: Settings, keys: KeyStore, registry: SqliteRegistry, *, now: datetime, sequence: int
) -> bytes:
    """Our bundle, signed with the root key (which must be at hand for this)."""
    der = serialization.Encoding.DER
    revoked = [revocation_id(n) for n in registry.revoked_numbers()]
    body = {
        "format": BUNDLE_FORMAT,
        "issuer": settings.issuer.admin_code,
        "name": settings.issuer.name,
        "name_en": settings.issuer.name_en,
        "sequence": sequence,
        "issued_at": now.isoformat(),
        "expires_at": (now + timedelta(days=BUNDLE_DAYS)).isoformat(),
        "root": keys.root().public_bytes(der),
        "signers": [c.public_bytes(der) for c in keys.certificates()],
        "catalog": catalog_mod.as_raw(settings.catalog),
        "catalog_digest": settings.catalog.digest,
        "revoked": sorted(revoked),
    }
    return sign1(cbor2.dumps(body, canonical=True), keys.root_signer())


def unsafe_parse_bundle_without_verifying(data: bytes) -> dict:
    """The bundle's claims before any signature check: only to find the root to check against."""
    obj = cbor2.loads(data)
    if not (
        isinstance(obj, cbor2.CBORTag)
        and obj.tag == 18
        and isinstance(obj.value, list)
        and len(obj.value) == 4
        and isinstance(obj.value[2], bytes)
    ):
        raise PartnerError("not a COSE_Sign1 bundle", "malformed")
    body = cbor2.loads(obj.value[2])
    if not isinstance(body, dict) or body.get("format") != BUNDLE_FORMAT:
        raise PartnerError(f"not a {BUNDLE_FORMAT} bundle", "malformed")
    return body


def verify_bundle(
    data: bytes, pinned_fingerprint: str, *, now: datetime, after_sequence: int = 0
) -> Bundle:
    """Check a bundle against a pinned root fingerprint; every failure is a PartnerError."""
    if len(data) > MAX_BUNDLE:
        raise PartnerError(f"bundle larger than {MAX_BUNDLE} bytes", "too-large")
    try:
        body = unsafe_parse_bundle_without_verifying(data)
        root = x509.load_der_x509_certificate(body["root"])
    except PartnerError:
        raise
    except Exception as exc:
        raise PartnerError(f"malformed bundle ({type(exc).__name__})", "malformed") from None
    pin = re.sub(r"[^0-9a-f]", "", pinned_fingerprint.lower())
    if fingerprint(root) != pin:
        raise PartnerError(
            f"root fingerprint {fingerprint(root)} is not the pinned {pin}", "pin-mismatch"
        )
    pem = root.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        COSE.new().decode(data, keys=[COSEKey.from_pem(pem, alg="ES256", kid=kid_of(root))])
    except Exception:
        raise PartnerError(
            "bundle signature does not verify with the pinned root", "bad-signature"
        ) from None
    try:
        signers = tuple(x509.load_der_x509_certificate(d) for d in body["signers"])
        for cert in signers:
            cert.verify_directly_issued_by(root)
        issued = datetime.fromisoformat(body["issued_at"])
        expires = datetime.fromisoformat(body["expires_at"])
        catalog = catalog_mod.parse(body["catalog"], source=f"bundle of {body['issuer']}")
    except CreditcertError as exc:
        raise PartnerError(f"bundle catalog refused: {exc}", "bad-catalog") from None
    except Exception as exc:
        raise PartnerError(
            f"bundle content refused ({type(exc).__name__}: {exc})", "bad-content"
        ) from None
    if catalog.digest != body["catalog_digest"]:
        raise PartnerError("bundle catalog does not match its digest", "bad-catalog")
    if not issued <= now < expires:
        raise PartnerError(
            f"bundle valid {issued:%Y-%m-%d} to {expires:%Y-%m-%d}, not at {now:%Y-%m-%d}",
            "not-valid-now",
        )
    if body["sequence"] <= after_sequence:
        raise PartnerError(
            f"bundle sequence {body['sequence']} is not newer than {after_sequence}",
            "stale-sequence",
        )
    return Bundle(
        body["issuer"],
        body["name"],
        body["name_en"],
        body["sequence"],
        issued,
        expires,
        root,
        signers,
        catalog,
        frozenset(body["revoked"]),
    )


@dataclass(frozen=True, slots=True)
class Agreement:
    partner: str
    start: date
    end: date
    mapping: dict[str, str]  # partner's domain code → ours

    def live(self, day: date) -> bool:
        return self.start <= day <= self.end


def parse_agreement(text: str, *, source: str, ours: Catalog, theirs: Catalog) -> Agreement:
    """An agreement file (TOML): partner, start, end and [mapping] their-code = "our-code"."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PartnerError(f"{source}: not valid TOML: {exc}") from None
    catalog_mod.only_keys(
        raw,
        {"format", "partner", "start", "end", "mapping"},
        "top level",
        lambda where, msg: PartnerError(f"{source}: {where}: {msg}"),
    )
    if raw.get("format") != 1:
        raise PartnerError(f"{source}: format: got {raw.get('format')!r}, expected 1")
    start, end, mapping = raw.get("start"), raw.get("end"), raw.get("mapping")
    if not (isinstance(start, date) and isinstance(end, date) and start <= end):
        raise PartnerError(f"{source}: start and end must be dates with start <= end")
    if not isinstance(mapping, dict) or not mapping:
        raise PartnerError(f"{source}: [mapping] must map partner domain codes to ours")
    for their, our in mapping.items():
        if their not in theirs.codes:
            raise PartnerError(f"{source}: mapping: {their!r} is not in the partner's catalog")
        if our not in ours.codes:
            raise PartnerError(f"{source}: mapping: {their} = {our!r}, not in our catalog")
    return Agreement(str(raw.get("partner")), start, end, dict(mapping))


class PartnerStore:
    """<home>/partners/<code>/: bundle.cose, pin (root fingerprint), agreement.toml."""

    def __init__(self, home: Path, ours: Catalog):
        self.dir = home / "partners"
        self.ours = ours

    def import_bundle(self, data: bytes, *, pin: str | None, now: datetime) -> Bundle:
        body_issuer = unsafe_parse_bundle_without_verifying(data).get("issuer", "")
        if not re.fullmatch(r"\d{6}", str(body_issuer)):
            raise PartnerError("bundle names no 6-digit issuer")
        where = self.dir / body_issuer
        pinned = (where / "pin").read_text().strip() if (where / "pin").exists() else None
        if pinned and pin and pin.lower() != pinned:
            raise PartnerError(f"{body_issuer} is pinned to {pinned}; refusing another root")
        if not (pinned or pin):
            raise PartnerError(f"first import of {body_issuer}: give --fingerprint of its root")
        previous = self.bundle(body_issuer, now=now, check_time=False) if pinned else None
        bundle = verify_bundle(
            data, pinned or pin, now=now, after_sequence=previous.sequence if previous else 0
        )
        where.mkdir(parents=True, exist_ok=True)
        (where / "bundle.cose").write_bytes(data)
        (where / "pin").write_text(fingerprint(bundle.root) + "\n")
        return bundle

    def bundle(self, code: str, *, now: datetime, check_time: bool = True) -> Bundle | None:
        where = self.dir / code
        if not (where / "bundle.cose").exists():
            return None
        pin = (where / "pin").read_text().strip()
        data = (where / "bundle.cose").read_bytes()
        if check_time:
            return verify_bundle(data, pin, now=now)
        body = unsafe_parse_bundle_without_verifying(data)
        return verify_bundle(data, pin, now=datetime.fromisoformat(body["issued_at"]))

    def add_agreement(self, text: str, *, source: str, now: datetime) -> Agreement:
        probe = tomllib.loads(text).get("partner", "")
        bundle = self.bundle(str(probe), now=now)
        if bundle is None:
            raise PartnerError(f"{source}: partner {probe!r} unknown: import its bundle first")
        agreement = parse_agreement(text, source=source, ours=self.ours, theirs=bundle.catalog)
        (self.dir / agreement.partner / "agreement.toml").write_text(text, encoding="utf-8")
        return agreement

    def agreement(self, code: str, theirs: Catalog) -> Agreement | None:
        path = self.dir / code / "agreement.toml"
        if not path.exists():
            return None
        return parse_agreement(
            path.read_text(encoding="utf-8"), source=str(path), ours=self.ours, theirs=theirs
        )

    def end_agreement(self, code: str, *, on: date, now: datetime) -> Agreement:
        """End an agreement on a day (reports issued after it are no longer recognised)."""
        bundle = self.bundle(code, now=now, check_time=False)
        current = self.agreement(code, bundle.catalog) if bundle else None
        if current is None:
            raise PartnerError(f"no agreement with {code}")
        if not current.start <= on <= current.end:
            raise PartnerError(f"{on} is outside the agreement ({current.start} to {current.end})")
        path = self.dir / code / "agreement.toml"
        text = re.sub(
            r"(?m)^end\s*=.*$", f"end = {on.isoformat()}", path.read_text(encoding="utf-8")
        )
        ended = parse_agreement(text, source=str(path), ours=self.ours, theirs=bundle.catalog)
        path.write_text(text, encoding="utf-8")
        return ended

    def codes(self) -> list[str]:
        return sorted(p.name for p in self.dir.glob("*") if (p / "bundle.cose").exists())
