"""Verify a report: QR text, an image of a page, the PDF, or a typed report number.

The verifier is a numbered checklist. Each step yields a Check with a status (passed, failed,
indeterminate, skipped), a stable reason code and a message saying what was found and what was
expected; the result is a frozen value with a verdict and the authentic content, taken only from
signed data. It never raises on hostile input: every decode is bounded and every failure is a
check (docs/verify.md). This slice trusts the city's own keys; partner cities come next.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import base45
import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cwt import COSE, COSEKey

from creditcert.envelope.sealing import QR_PREFIX, SUMMARY_CLAIM
from creditcert.errors import CreditcertError
from creditcert.model import document as document_mod
from creditcert.model import report_number as numbers
from creditcert.model.clock import SHANGHAI
from creditcert.registry import Registry
from creditcert.trust.keys import kid_of

MAX_QR_TEXT = 4_096  # characters; our payloads are ~500
MAX_COSE = 64 * 1024  # bytes after decompression (zlib bombs stop here)
MAX_ENVELOPE = 4 * 1024 * 1024  # report.cose inside a PDF
MAX_PDF = 64 * 1024 * 1024
MAX_IMAGE_PIXELS = 60_000_000  # a 300-dpi A4 scan is 8.7 MP


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INDETERMINATE = "indeterminate"
    SKIPPED = "skipped"


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    ACCEPTED_FOR_SOME_DOMAINS = "accepted-for-some-domains"
    REJECTED = "rejected"
    CANNOT_DECIDE = "cannot-decide"


@dataclass(frozen=True, slots=True)
class Check:
    step: str  # e.g. "integrity.qr-signature"
    status: Status
    reason: str  # stable code, e.g. "ok", "bad-prefix", "expired"
    message: str


class VerificationFailed(CreditcertError):
    """Raised by Verification.raise_for_status() for callers who want an exception."""


@dataclass(frozen=True, slots=True)
class Verification:
    """What a verifier found. Deliberately not a bool: look at `verdict`."""

    verdict: Verdict
    checks: tuple[Check, ...]
    number: str | None = None
    summary: dict[str, Any] | None = None  # the QR's signed summary
    document: document_mod.ReportDocument | None = None  # the signed full document

    def __bool__(self) -> bool:
        raise TypeError("a Verification is not a truth value; compare .verdict")

    def raise_for_status(self) -> None:
        if self.verdict is not Verdict.ACCEPTED:
            failed = [c for c in self.checks if c.status is not Status.PASSED]
            detail = "; ".join(f"{c.step}: {c.message}" for c in failed[:3])
            raise VerificationFailed(f"report {self.verdict}: {detail}")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "creditcert.verification/1",
            "verdict": self.verdict.value,
            "number": self.number,
            "checks": [
                {"step": c.step, "status": c.status.value, "reason": c.reason, "message": c.message}
                for c in self.checks
            ],
            "summary": _jsonable(self.summary) if self.summary else None,
            "document": self.document.to_data() if self.document else None,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class KnownIssuer:
    """A city whose reports we can check: its pinned root and published signing certificates."""

    code: str
    root: x509.Certificate
    signers: tuple[x509.Certificate, ...]
    own: bool = True
    registry: Registry | None = None  # our own registry: status of our reports
    revoked: frozenset[bytes] = frozenset()  # a partner's revocation list (truncated hashes)
    catalog: Any = None  # a partner's catalog (Catalog): the order of its domains
    agreement: Any = None  # our agreement with a partner (partners.Agreement), if any


@dataclass(frozen=True, slots=True)
class Trust:
    """Whom we believe: our own city and the partners whose bundles we imported."""

    issuers: tuple[KnownIssuer, ...]

    def candidates(self, kid: bytes) -> list[tuple[KnownIssuer, x509.Certificate]]:
        # kids can collide: every certificate with that kid is a candidate
        return [(i, c) for i in self.issuers for c in i.signers if kid_of(c) == kid]

    @property
    def own(self) -> KnownIssuer:
        return next(i for i in self.issuers if i.own)


class _Checklist:
    def __init__(self):
        self.checks: list[Check] = []

    def add(self, step: str, status: Status, reason: str, message: str) -> bool:
        self.checks.append(Check(step, status, reason, message))
        return status is Status.PASSED

    def ok(self, step: str, message: str) -> bool:
        return self.add(step, Status.PASSED, "ok", message)

    def fail(self, step: str, reason: str, message: str) -> bool:
        return self.add(step, Status.FAILED, reason, message)

    partial = False  # some domains of a partner's report are outside the agreement

    def verdict(self) -> Verdict:
        if any(c.status is Status.FAILED for c in self.checks):
            return Verdict.REJECTED
        if any(c.status is Status.INDETERMINATE for c in self.checks):
            return Verdict.CANNOT_DECIDE
        return Verdict.ACCEPTED_FOR_SOME_DOMAINS if self.partial else Verdict.ACCEPTED


@dataclass(slots=True)
class _Signed:
    kid: bytes
    certificate: x509.Certificate
    payload: bytes
    issuer: KnownIssuer


def _verify_cose(data: bytes, trust: Trust, cl: _Checklist, what: str) -> _Signed | None:
    """Structure, header rules and signature of a COSE_Sign1; None once a check failed."""
    try:
        obj = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises many types on hostile input, RecursionError too
        cl.fail(f"format.{what}-cbor", "bad-cbor", f"not CBOR ({type(exc).__name__})")
        return None
    if not (isinstance(obj, cbor2.CBORTag) and obj.tag == 18):
        cl.fail(
            f"format.{what}-cose",
            "not-cose-sign1",
            f"got {type(obj).__name__}, expected a COSE_Sign1 (CBOR tag 18)",
        )
        return None
    body = obj.value
    if not (
        isinstance(body, list)
        and len(body) == 4
        and isinstance(body[0], bytes)
        and isinstance(body[1], dict)
        and isinstance(body[2], bytes)
        and isinstance(body[3], bytes)
    ):
        cl.fail(
            f"format.{what}-cose",
            "bad-cose-structure",
            "expected [protected bstr, unprotected map, payload bstr, signature bstr]",
        )
        return None
    try:
        protected = cbor2.loads(body[0]) if body[0] else {}
    except Exception:
        protected = None
    if not isinstance(protected, dict):
        cl.fail(f"format.{what}-cose", "bad-protected-header", "protected header is not a map")
        return None
    if protected.get(1) != -7:
        cl.fail(
            f"format.{what}-cose",
            "unsupported-algorithm",
            f"algorithm {protected.get(1)!r}, expected -7 (ES256)",
        )
        return None
    kid = protected.get(4)
    if not isinstance(kid, bytes):
        where = "only in the unprotected header" if 4 in body[1] else "missing"
        cl.fail(
            f"format.{what}-cose",
            "kid-not-protected",
            f"kid {where}; expected it in the protected header",
        )
        return None
    cl.ok(f"format.{what}-cose", f"COSE_Sign1, ES256, kid {kid.hex()}")
    candidates = trust.candidates(kid)
    if not candidates:
        known = ", ".join(i.code for i in trust.issuers)
        cl.fail(
            "issuer.key-known",
            "unknown-key",
            f"kid {kid.hex()} is not a signing key of any known city ({known})",
        )
        return None
    for issuer, cert in candidates:
        pem = cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        try:
            payload = COSE.new().decode(data, keys=[COSEKey.from_pem(pem, alg="ES256", kid=kid)])
        except Exception:
            continue
        cl.ok(
            f"integrity.{what}-signature",
            f"signature valid for key {kid.hex()} of {issuer.code}{'' if issuer.own else ' (partner)'}",
        )
        return _Signed(kid, cert, payload, issuer)
    cl.fail(
        f"integrity.{what}-signature",
        "bad-signature",
        f"signature does not verify with key {kid.hex()}",
    )
    return None


def _check_key(signed: _Signed, issued: datetime, cl: _Checklist) -> None:
    try:
        signed.certificate.verify_directly_issued_by(signed.issuer.root)
        cl.ok(
            "issuer.chain", f"signing certificate issued by the pinned root of {signed.issuer.code}"
        )
    except Exception:
        cl.fail(
            "issuer.chain",
            "not-issued-by-root",
            "signing certificate is not signed by the pinned root",
        )
    cert = signed.certificate
    if cert.not_valid_before_utc <= issued <= cert.not_valid_after_utc:
        cl.ok(
            "issuer.key-valid-at-issue",
            f"key valid {cert.not_valid_before_utc:%Y-%m-%d} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d}, report issued {issued:%Y-%m-%d}",
        )
    else:
        cl.fail(
            "issuer.key-valid-at-issue",
            "key-not-valid-at-issue",
            f"report issued {issued:%Y-%m-%d}, key valid {cert.not_valid_before_utc:%Y-%m-%d} "
            f"to {cert.not_valid_after_utc:%Y-%m-%d}",
        )


def _check_status(number: str, digest: bytes | None, issuer: KnownIssuer, cl: _Checklist) -> None:
    if not issuer.own:
        from creditcert.trust.partners import revocation_id

        if revocation_id(number) in issuer.revoked:
            cl.fail(
                "status.revocation-list",
                "revoked",
                f"{number} is on {issuer.code}'s revocation list",
            )
        else:
            cl.ok("status.revocation-list", f"{number} is not on {issuer.code}'s revocation list")
        return
    if issuer.registry is None:
        cl.add("status.registry", Status.SKIPPED, "no-registry", "no registry to consult")
        return
    entry = issuer.registry.get(number)
    if entry is None:
        cl.fail("status.registry", "unknown-number", f"{number} is not in the issuer's registry")
    elif entry.status == "revoked":
        cl.fail("status.registry", "revoked", f"{number} was revoked")
    elif digest is not None and entry.digest != digest.hex():
        cl.fail(
            "status.registry",
            "digest-mismatch",
            f"registry holds digest {entry.digest[:16]}…, the report {digest.hex()[:16]}…",
        )
    else:
        cl.ok("status.registry", f"{number} issued {entry.issued_at:%Y-%m-%d %H:%M}, not revoked")


def _qr_claims(
    text: str, trust: Trust, at: datetime, cl: _Checklist
) -> tuple[dict | None, _Signed | None]:
    # 1. format: prefix, size, base45, zlib (bounded), COSE
    if not isinstance(text, str) or len(text) > MAX_QR_TEXT:
        cl.fail("format.size", "too-long", f"QR text longer than {MAX_QR_TEXT} characters")
        return None, None
    text = text.strip()
    if not text.startswith(QR_PREFIX):
        cl.fail("format.prefix", "bad-prefix", f"starts {text[:4]!r}, expected {QR_PREFIX!r}")
        return None, None
    cl.ok("format.prefix", QR_PREFIX)
    try:
        compressed = base45.b45decode(text[len(QR_PREFIX) :])
    except Exception:
        cl.fail("format.base45", "bad-base45", "not base45 (RFC 9285)")
        return None, None
    cl.ok("format.base45", f"{len(compressed)} bytes")
    inflater = zlib.decompressobj()
    try:
        cose = inflater.decompress(compressed, MAX_COSE)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("oversized or truncated")
    except (zlib.error, ValueError) as exc:
        cl.fail(
            "format.zlib", "bad-zlib", f"not a complete zlib stream within {MAX_COSE} bytes ({exc})"
        )
        return None, None
    cl.ok("format.zlib", f"{len(cose)} bytes")
    # 2. integrity: signature with a known key of the issuer
    signed = _verify_cose(cose, trust, cl, "qr")
    if signed is None:
        return None, None
    # 3. content: a CWT with our claims
    try:
        claims = cbor2.loads(signed.payload)
        summary = claims[SUMMARY_CLAIM]
        iat, exp, cti, iss = claims[6], claims[4], claims[7], claims[1]
        if not (
            isinstance(iat, int)
            and isinstance(exp, int)
            and isinstance(cti, bytes)
            and isinstance(summary, dict)
            and isinstance(summary.get("h"), bytes)
        ):
            raise TypeError
    except Exception:
        cl.fail(
            "format.claims",
            "bad-claims",
            "payload is not a creditcert CWT (iss, iat, exp, cti, summary)",
        )
        return None, None
    cl.ok("format.claims", f"report {cti.decode(errors='replace')}")
    if iss != signed.issuer.code:
        cl.fail(
            "issuer.iss", "issuer-mismatch", f"iss {iss!r}, signed by a key of {signed.issuer.code}"
        )
    issued = datetime.fromtimestamp(iat, SHANGHAI)
    _check_key(signed, issued, cl)
    # 4. validity: iat <= at < exp
    if iat <= at.timestamp() < exp:
        cl.ok(
            "validity.period",
            f"valid {issued:%Y-%m-%d} to {datetime.fromtimestamp(exp, SHANGHAI):%Y-%m-%d}",
        )
    elif at.timestamp() < iat:
        cl.fail(
            "validity.period",
            "not-yet-valid",
            f"issued {issued.isoformat()}, after {at.isoformat()}",
        )
    else:
        cl.fail(
            "validity.period",
            "expired",
            f"expired {datetime.fromtimestamp(exp, SHANGHAI).isoformat()}, checked at {at.isoformat()}",
        )
    return claims, signed


def verify_qr_text(text: str, trust: Trust, *, at: datetime) -> Verification:
    """Verify the text a phone read from the QR (offline; the registry only adds status)."""
    cl = _Checklist()
    claims, signed = _qr_claims(text, trust, at, cl)
    number = None
    if claims is not None:
        number = claims[7].decode(errors="replace")
        summary = claims[SUMMARY_CLAIM]
        _check_status(number, summary["h"], signed.issuer, cl)
        _check_partner(
            signed.issuer,
            datetime.fromtimestamp(claims[6], SHANGHAI),
            at,
            _qr_domains(summary, signed.issuer, cl),
            cl,
        )
    return Verification(
        cl.verdict(), tuple(cl.checks), number, claims[SUMMARY_CLAIM] if claims else None
    )


def read_qr_texts(images: Sequence[Any]) -> list[list[str]]:
    """The QR texts zxing-cpp finds on each image (PIL images or arrays)."""
    import zxingcpp

    return [
        [b.text for b in zxingcpp.read_barcodes(img) if b.format.name == "QRCode"] for img in images
    ]


def verify_image(data: bytes, trust: Trust, *, at: datetime) -> Verification:
    """Verify a photo or scan of a page: exactly one report QR must be on it."""
    from PIL import Image, UnidentifiedImageError

    cl = _Checklist()
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                cl.fail(
                    "format.image",
                    "image-too-large",
                    f"{img.width}×{img.height} pixels, at most {MAX_IMAGE_PIXELS:,}",
                )
                return Verification(cl.verdict(), tuple(cl.checks))
            img.load()
            texts = read_qr_texts([img.convert("L")])[0]
    except Image.DecompressionBombError:
        cl.fail("format.image", "image-too-large", f"more than {MAX_IMAGE_PIXELS:,} pixels")
        return Verification(cl.verdict(), tuple(cl.checks))
    except (UnidentifiedImageError, OSError) as exc:
        cl.fail("format.image", "not-an-image", f"cannot read the image ({type(exc).__name__})")
        return Verification(cl.verdict(), tuple(cl.checks))
    distinct = sorted(set(texts))
    if len(distinct) != 1:
        cl.fail(
            "format.qr-found",
            "no-qr" if not distinct else "several-qr",
            f"found {len(distinct)} different QR codes, expected exactly one",
        )
        return Verification(cl.verdict(), tuple(cl.checks))
    cl.ok("format.qr-found", "one QR code")
    inner = verify_qr_text(distinct[0], trust, at=at)
    return Verification(_merge(cl, inner.checks), tuple(cl.checks), inner.number, inner.summary)


def _merge(cl: _Checklist, checks: Sequence[Check]) -> Verdict:
    cl.checks.extend(checks)
    return cl.verdict()


def verify_number(typed: str, trust: Trust) -> Verification:
    """Look a typed report number up in the issuer's registry."""
    cl = _Checklist()
    number = numbers.parse(typed)
    if number is None:
        cl.fail(
            "format.number",
            "bad-number",
            f"{typed[:40]!r} is not a report number (shape or check character wrong)",
        )
        return Verification(cl.verdict(), tuple(cl.checks))
    cl.ok("format.number", number)
    if not number.startswith(trust.own.code):
        cl.add(
            "issuer.number",
            Status.INDETERMINATE,
            "other-issuer",
            f"{number} was issued by {number[:6]}, ask that city's registry",
        )
        return Verification(cl.verdict(), tuple(cl.checks), number)
    if trust.own.registry is None:
        cl.add(
            "status.registry",
            Status.INDETERMINATE,
            "no-registry",
            "a number can only be checked against the issuer's registry, and none is at hand",
        )
    else:
        _check_status(number, None, trust.own, cl)
    return Verification(cl.verdict(), tuple(cl.checks), number)


def verify_pdf(
    data: bytes, trust: Trust, *, at: datetime, rasterise: Callable[[bytes], list] | None = None
) -> Verification:
    """Verify a report PDF: PAdES signature, embedded envelope, the QR on every page, and that
    all three speak of the same report."""
    cl = _Checklist()
    if len(data) > MAX_PDF:
        cl.fail("format.pdf", "too-large", f"{len(data):,} bytes, at most {MAX_PDF:,}")
        return Verification(cl.verdict(), tuple(cl.checks))
    if not data.startswith(b"%PDF-"):
        cl.fail("format.pdf", "not-pdf", "the file does not start with %PDF-")
        return Verification(cl.verdict(), tuple(cl.checks))
    pades_kid = _check_pades(data, trust, at, cl)
    envelope = _embedded_envelope(data, cl)
    doc = signed = None
    if envelope is not None:
        signed = _verify_cose(envelope, trust, cl, "envelope")
        if signed is not None:
            try:
                doc = document_mod.from_data(cbor2.loads(signed.payload))
                cl.ok("format.document", f"report {doc.number}")
            except Exception:
                cl.fail(
                    "format.document", "bad-document", "envelope payload is not a report document"
                )
            if doc is not None:
                _check_key(signed, doc.issued_at, cl)
                if pades_kid is not None and pades_kid != signed.kid:
                    cl.fail(
                        "consistency.pades-envelope",
                        "signer-mismatch",
                        f"PDF signed by {pades_kid.hex()}, envelope by {signed.kid.hex()}",
                    )
    texts = _page_qr_texts(data, rasterise)
    found = {t for page in texts for t in page}
    if not texts or any(len(page) != 1 for page in texts) or len(found) != 1:
        cl.fail(
            "consistency.qr-pages",
            "qr-pages-differ",
            f"{len(texts)} page(s), QR codes per page {[len(p) for p in texts]}, "
            f"{len(found)} distinct; expected the same single QR on every page",
        )
    else:
        cl.ok("consistency.qr-pages", f"the same QR on all {len(texts)} page(s)")
        claims, _ = _qr_claims(found.pop(), trust, at, cl)
        if claims is not None and doc is not None:
            summary = claims[SUMMARY_CLAIM]
            if summary["h"] == doc.digest() and claims[7] == doc.number.encode():
                cl.ok("consistency.qr-envelope", "QR digest and number match the embedded document")
            else:
                cl.fail(
                    "consistency.qr-envelope",
                    "qr-envelope-mismatch",
                    "the QR speaks of another document than the one embedded",
                )
    if doc is not None and signed is not None:
        _check_status(doc.number, doc.digest(), signed.issuer, cl)
        _check_partner(signed.issuer, doc.issued_at, at, list(doc.domains_requested), cl)
    return Verification(cl.verdict(), tuple(cl.checks), doc.number if doc else None, None, doc)


MM = 72 / 25.4  # PDF points per millimetre
QR_CORNER_MM = (70, 60)  # our pages print the QR in the bottom-right 70 × 60 mm (docs/report.md)


def _page_qr_texts(data: bytes, rasterise: Callable[[bytes], list] | None) -> list[list[str]]:
    """The QR texts on each page. Our layout puts the QR in the bottom-right corner, so that corner
    is read first at 250 dpi (a tenth of the page's pixels); a page where nothing is found there
    is read whole at 300 dpi."""
    if rasterise is not None:
        return read_qr_texts(rasterise(data))
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(data)
    except Exception:
        return []
    try:
        texts = []
        for page in pdf:
            width, height = page.get_size()
            crop = (width - QR_CORNER_MM[0] * MM, 0, 0, height - QR_CORNER_MM[1] * MM)
            corner = page.render(scale=250 / 72, crop=crop).to_pil().convert("L")
            found = read_qr_texts([corner])[0]
            if not found:
                found = read_qr_texts([page.render(scale=300 / 72).to_pil().convert("L")])[0]
            texts.append(found)
        return texts
    finally:
        pdf.close()


def _check_pades(data: bytes, trust: Trust, at: datetime, cl: _Checklist) -> bytes | None:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted:
            cl.fail("format.pdf", "encrypted", "the PDF is encrypted; reports never are")
            return None
        reader.root  # noqa: B018 - parse the catalog now: a broken file fails here
    except Exception as exc:
        cl.fail("format.pdf", "bad-pdf", f"not a readable PDF ({type(exc).__name__})")
        return None
    cl.ok("format.pdf", "readable PDF")
    try:
        sigs = reader.embedded_signatures
    except Exception as exc:
        cl.fail("integrity.pades", "pades-invalid", f"signature unreadable ({type(exc).__name__})")
        return None
    if len(sigs) != 1:
        cl.fail("integrity.pades", "signature-count", f"{len(sigs)} signatures, expected 1")
        return None
    try:
        signer = x509.load_der_x509_certificate(sigs[0].signer_cert.dump())
    except Exception as exc:
        cl.fail("integrity.pades", "pades-invalid", f"no readable signer ({type(exc).__name__})")
        return None
    kid = kid_of(signer)
    known = trust.candidates(kid)
    if not known:
        cl.fail(
            "issuer.pades-signer",
            "unknown-key",
            f"PDF signed by key {kid.hex()}, not a key of any known city",
        )
        return None
    issuer = known[0][0]
    cl.ok("issuer.pades-signer", f"PDF signed by key {kid.hex()} of {issuer.code}")
    root = asn1_x509.Certificate.load(issuer.root.public_bytes(serialization.Encoding.DER))
    try:
        status = validate_pdf_signature(
            sigs[0], ValidationContext(trust_roots=[root], allow_fetching=False, moment=at)
        )
    except Exception as exc:
        cl.fail(
            "integrity.pades", "pades-invalid", f"signature not verifiable ({type(exc).__name__})"
        )
        return None
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    if status.intact and status.valid and whole:
        cl.ok("integrity.pades", "PAdES signature valid and covering the whole file")
    else:
        cl.fail(
            "integrity.pades",
            "pades-invalid",
            f"intact={status.intact}, valid={status.valid}, coverage={status.coverage.name}; "
            "expected an intact, valid signature over the entire file",
        )
    return kid


def _embedded_envelope(data: bytes, cl: _Checklist) -> bytes | None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
        for i in range(0, len(names), 2):
            if str(names[i]) == "report.cose":
                stream = names[i + 1]["/EF"]["/F"]
                raw = stream.get_object()
                if int(raw.get("/Length", 0)) > MAX_ENVELOPE:
                    raise ValueError("too large")
                envelope = raw.data
                if len(envelope) > MAX_ENVELOPE:
                    raise ValueError("too large")
                cl.ok("format.envelope", f"report.cose attached ({len(envelope):,} bytes)")
                return envelope
    except Exception as exc:
        cl.fail(
            "format.envelope", "bad-envelope", f"cannot read report.cose ({type(exc).__name__})"
        )
        return None
    cl.fail("format.envelope", "no-envelope", "no report.cose attached")
    return None


def trust_from_home(settings, registry: Registry | None, *, now: datetime) -> Trust:
    """Our own city (pinned root, every signing key it made, its registry) and every partner whose
    bundle we imported and that is still valid at `now`, with our agreement with it."""
    from creditcert.trust.keys import KeyStore
    from creditcert.trust.partners import PartnerError, PartnerStore

    keys = KeyStore(settings.home / "keys", settings.issuer.admin_code, settings.issuer.name)
    issuers = [
        KnownIssuer(
            settings.issuer.admin_code,
            keys.root(),
            tuple(keys.certificates()),
            own=True,
            registry=registry,
        )
    ]
    partners = PartnerStore(settings.home, settings.catalog)
    for code in partners.codes():
        try:
            bundle = partners.bundle(code, now=now)
        except PartnerError:
            continue  # an expired or broken bundle: its reports are from an unknown key
        issuers.append(
            KnownIssuer(
                code,
                bundle.root,
                bundle.signers,
                own=False,
                revoked=bundle.revoked,
                catalog=bundle.catalog,
                agreement=partners.agreement(code, bundle.catalog),
            )
        )
    return Trust(tuple(issuers))


def _qr_domains(summary: dict, issuer: KnownIssuer, cl: _Checklist) -> list[str] | None:
    """The domain codes a QR's bitmap names, in the issuer's catalog order."""
    if issuer.own:
        return None
    cat = issuer.catalog
    if (summary.get("ci"), summary.get("cv")) != (cat.id, cat.version):
        cl.add(
            "scope.catalog",
            Status.INDETERMINATE,
            "catalog-mismatch",
            f"QR names catalog {summary.get('ci')} {summary.get('cv')}, the partner's bundle "
            f"carries {cat.id} {cat.version}",
        )
        return None
    bitmap = summary.get("dm", b"")
    return [
        c
        for i, c in enumerate(cat.codes)
        if i // 8 < len(bitmap) and bitmap[i // 8] & (0x80 >> (i % 8))
    ]


def _check_partner(
    issuer: KnownIssuer, issued: datetime, at: datetime, domains: list[str] | None, cl: _Checklist
) -> None:
    """A partner's report counts only under a live agreement, and only for mapped domains."""
    if issuer.own:
        return
    agreement = issuer.agreement
    if agreement is None:
        cl.fail(
            "agreement.live", "no-agreement", f"no mutual-recognition agreement with {issuer.code}"
        )
        return
    if not agreement.live(issued.date()):
        cl.fail(
            "agreement.live",
            "not-live-at-issue",
            f"issued {issued:%Y-%m-%d}, agreement runs {agreement.start} to {agreement.end}",
        )
    elif not agreement.live(at.astimezone(SHANGHAI).date()):
        cl.fail(
            "agreement.live",
            "agreement-ended",
            f"agreement with {issuer.code} runs {agreement.start} to {agreement.end}",
        )
    else:
        cl.ok(
            "agreement.live", f"agreement with {issuer.code}, {agreement.start} to {agreement.end}"
        )
    if domains is None:
        return
    mapped = [f"{d}→{agreement.mapping[d]}" for d in domains if d in agreement.mapping]
    missing = [d for d in domains if d not in agreement.mapping]
    if not mapped:
        cl.fail(
            "scope.domains",
            "no-domain-recognised",
            f"none of the report's {len(domains)} domains is covered by the agreement",
        )
        return
    cl.partial = bool(missing)
    cl.ok(
        "scope.domains",
        f"{len(mapped)} of {len(domains)} domains recognised"
        + (f"; not covered: {', '.join(missing)}" if missing else ""),
    )
