"""One function per check, each over decoded values, each adding its steps to a Checklist.

Step ids are unique within a result: a check made for both the QR and the envelope carries the
part as a suffix (`issuer.chain.qr`, `issuer.chain.envelope`). docs/verify.md lists every step.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from creditcert.envelope.cose import Sign1, decode_unverified, verify_with
from creditcert.envelope.qr import QrClaims
from creditcert.errors import DecodeError, Reason
from creditcert.model.clock import SHANGHAI
from creditcert.trust.keys import kid_of
from creditcert.trust.store import Issuer, TrustStore
from creditcert.verify.extract import quiet_library_logs
from creditcert.verify.result import Checklist


@dataclass(frozen=True, slots=True)
class Signed:
    """A COSE_Sign1 whose signature verified with a trusted issuer's key."""

    kid: bytes
    certificate: x509.Certificate
    payload: bytes
    issuer: Issuer


def _outside_any_event_loop(function, *args):
    """`function(*args)`, in a thread of its own when this one runs an asyncio event loop.

    pyHanko's synchronous validation starts its own loop (`asyncio.run`), which raises when the
    calling thread already runs one (an async web handler, a notebook, a Playwright script): a
    genuine PDF would then be rejected as pades-invalid."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def decode_failed(cl: Checklist, error: DecodeError, step: str | None = None) -> None:
    """A decoding failure as a check: unreadable inputs are undecided, invalid ones failed."""
    undecided = {
        Reason.NO_QR,
        Reason.SEVERAL_QR,
        Reason.NOT_AN_IMAGE,
        Reason.IMAGE_TOO_LARGE,
        Reason.NOT_PDF,
        Reason.BAD_PDF,
        Reason.TOO_LARGE,
    }
    name = step or f"format.{error.stage}"
    (cl.undecided if error.reason in undecided else cl.fail)(name, error.reason, str(error))


def signature(
    data: bytes, trust: TrustStore, cl: Checklist, part: str, claimed_issuer: str | None = None
) -> Signed | None:
    """Structure, header rules, a known key and a valid signature (steps format.<part>-cbor/-cose,
    issuer.key-known.<part>, integrity.<part>-signature)."""
    try:
        message: Sign1 = decode_unverified(data)
    except DecodeError as exc:
        decode_failed(cl, exc, f"format.{part}-{exc.stage}")
        return None
    kid = message.kid
    cl.ok(f"format.{part}-cose", f"COSE_Sign1, ES256, kid {kid.hex()}")
    candidates = trust.candidates(kid)
    step = f"issuer.key-known.{part}"
    if not candidates:
        stale = trust.unavailable_for(kid, claimed_issuer)
        if stale is not None:
            cl.undecided(
                step,
                stale.reason,
                f"kid {kid.hex()} is not a key we can use now; {stale.describe()}",
            )
        else:
            cl.fail(
                step,
                Reason.UNKNOWN_KEY,
                f"kid {kid.hex()} is not a signing key of any known city ({trust.describe()})",
            )
        return None
    cl.ok(step, f"kid {kid.hex()} is a signing key of {candidates[0][0].code}")
    for issuer, cert in candidates:
        if verify_with(message, cert):
            cl.ok(
                f"integrity.{part}-signature",
                f"signature valid for key {kid.hex()} of {issuer.code} ({issuer.label})",
            )
            return Signed(kid, cert, message.payload, issuer)
    cl.fail(
        f"integrity.{part}-signature",
        Reason.BAD_SIGNATURE,
        f"signature does not verify with key {kid.hex()}",
    )
    return None


def key_at_issue(signed: Signed, issued: datetime, cl: Checklist, part: str) -> None:
    """The signing certificate is signed by the issuer's pinned root (signature and issuer name;
    its role was checked when it was loaded), was valid when the report was issued, and had not
    been retired or compromised by then. The time compared is the issue time the document
    states: a forger holding an old key can backdate it, which no time check can catch
    (docs/verify.md, "Retired and compromised keys")."""
    try:
        signed.certificate.verify_directly_issued_by(signed.issuer.root)
        cl.ok(
            f"issuer.chain.{part}",
            f"signing certificate issued by the root of {signed.issuer.code}",
        )
    except Exception:
        cl.fail(
            f"issuer.chain.{part}",
            Reason.NOT_ISSUED_BY_ROOT,
            "signing certificate is not signed by the pinned root",
        )
    cert = signed.certificate
    span = f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}"
    if cert.not_valid_before_utc <= issued <= cert.not_valid_after_utc:
        cl.ok(
            f"issuer.key-valid-at-issue.{part}",
            f"key valid {span}, report issued {issued:%Y-%m-%d}",
        )
    else:
        cl.fail(
            f"issuer.key-valid-at-issue.{part}",
            Reason.KEY_NOT_VALID_AT_ISSUE,
            f"report issued {issued:%Y-%m-%d}, key valid {span}",
        )
    step = f"issuer.key-in-service.{part}"
    state = signed.issuer.states.get(signed.kid)
    refused = state.refusal(issued) if state else None
    if refused:
        cl.fail(step, refused[0], f"report issued {issued.isoformat()}, {refused[1]}")
    else:
        cl.ok(step, f"key {signed.kid.hex()} in service when the report was issued")


def issuer_named(claimed: str, number: str, signed: Signed, cl: Checklist, part: str) -> None:
    """The city a report names (QR iss or the document's issuer_code, and the number's prefix)
    is the city whose key signed it: a partner cannot issue in our name."""
    if claimed == signed.issuer.code and number.startswith(f"{claimed}-"):
        cl.ok(f"issuer.iss.{part}", f"names {claimed}, the signing city")
    else:
        cl.fail(
            f"issuer.iss.{part}",
            Reason.ISSUER_MISMATCH,
            f"names {claimed!r} (number {number}), signed by a key of {signed.issuer.code}",
        )


def validity(issued: datetime, expires: datetime, at: datetime, cl: Checklist) -> None:
    """issued ≤ at < expires, at the caller's time."""
    if issued <= at < expires:
        cl.ok("validity.period", f"valid {issued:%Y-%m-%d} to {expires:%Y-%m-%d}")
    elif at < issued:
        cl.fail(
            "validity.period",
            Reason.NOT_YET_VALID,
            f"issued {issued.isoformat()}, after {at.isoformat()}",
        )
    else:
        cl.fail(
            "validity.period",
            Reason.EXPIRED,
            f"expired {expires.isoformat()}, checked at {at.isoformat()}",
        )


def qr_claims(cose: bytes, trust: TrustStore, cl: Checklist) -> tuple[QrClaims, Signed] | None:
    """The QR's signature, claims, issuer and key (validity is the caller's: a PDF takes it from
    the signed document)."""
    signed = signature(cose, trust, cl, "qr", _peek_iss(cose))
    if signed is None:
        return None
    try:
        claims = QrClaims.from_cbor(signed.payload)
    except DecodeError as exc:
        decode_failed(cl, exc)
        return None
    cl.ok("format.claims", f"report {claims.number}")
    issuer_named(claims.issuer, claims.number, signed, cl, "qr")
    key_at_issue(signed, claims.validity(SHANGHAI)[0], cl, "qr")
    return claims, signed


def _peek_iss(cose: bytes) -> str | None:
    """The QR's iss before its signature is checked: only to name an unavailable partner."""
    import cbor2

    try:
        value = cbor2.loads(decode_unverified(cose).payload).get(1)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def pades(reader, trust: TrustStore, at: datetime, cl: Checklist) -> bytes | None:
    """Exactly one PAdES signature, by a trusted key, intact, valid at `at` and covering the whole
    file; returns the signer's kid."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    with quiet_library_logs() as logged:
        try:
            sigs = reader.embedded_signatures
        except Exception as exc:
            cl.fail(
                "integrity.pades",
                Reason.PADES_INVALID,
                f"signature unreadable ({type(exc).__name__})",
            )
            return None
        if len(sigs) != 1:
            cl.fail(
                "integrity.pades", Reason.SIGNATURE_COUNT, f"{len(sigs)} signatures, expected 1"
            )
            return None
        try:
            signer = x509.load_der_x509_certificate(sigs[0].signer_cert.dump())
        except Exception as exc:
            cl.fail(
                "integrity.pades",
                Reason.PADES_INVALID,
                f"no readable signer ({type(exc).__name__})",
            )
            return None
        kid = kid_of(signer)
        known = trust.candidates(kid)
        if not known:
            stale = trust.unavailable_for(kid)
            if stale is not None:
                cl.undecided(
                    "issuer.pades-signer",
                    stale.reason,
                    f"PDF signed by key {kid.hex()}; {stale.describe()}",
                )
            else:
                cl.fail(
                    "issuer.pades-signer",
                    Reason.UNKNOWN_KEY,
                    f"PDF signed by key {kid.hex()}, not a key of any known city",
                )
            return None
        issuer = known[0][0]
        cl.ok("issuer.pades-signer", f"PDF signed by key {kid.hex()} of {issuer.code}")
        root = asn1_x509.Certificate.load(issuer.root.public_bytes(serialization.Encoding.DER))
        try:
            status = _outside_any_event_loop(
                validate_pdf_signature,
                sigs[0],
                ValidationContext(trust_roots=[root], allow_fetching=False, moment=at),
            )
        except Exception as exc:
            cl.fail(
                "integrity.pades",
                Reason.PADES_INVALID,
                f"signature not verifiable ({type(exc).__name__})",
            )
            return None
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    if status.intact and status.valid and whole:
        cl.ok("integrity.pades", "PAdES signature valid and covering the whole file")
    else:
        note = f"; pyHanko: {logged[-1][:160]}" if logged else ""
        cl.fail(
            "integrity.pades",
            Reason.PADES_INVALID,
            f"intact={status.intact}, valid={status.valid}, coverage={status.coverage.name}; "
            f"expected an intact, valid signature over the entire file{note}",
        )
    return kid
