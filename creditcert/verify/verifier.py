"""Verify a report: its PDF, a photo of a page, the QR text, or a typed number (docs/verify.md).

The verifier is a numbered checklist over decoded values; each input runs the steps below in
order and every step adds a Check with a coded reason. It never raises on hostile input: every
decode is bounded and every failure is a check. What cannot be read is *cannot decide* with a hint
of what to try; what is read and wrong is *rejected*.

QR text   1 format (size, prefix, base45, zlib, COSE)  2 integrity (known key, signature)
          3 content (claims, issuer named, key at issue)  4 validity  5 status  6 scope
image     0 exactly one QR on the photo, then the QR steps
number    1 shape and check character  2 our registry: status and validity
PDF       1 readable PDF  2 PAdES  3 report.cose: signature, document, issuer, key
          4 the same QR on every page, the QR steps, QR = envelope  5 status  6 scope
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from creditcert.envelope import qr as qr_format
from creditcert.envelope.report import read_document
from creditcert.errors import DecodeError, Reason
from creditcert.model import report_number
from creditcert.model.clock import SHANGHAI
from creditcert.model.document import ReportDocument
from creditcert.trust.store import TrustStore
from creditcert.verify import checks, extract
from creditcert.verify.result import Checklist, Verification


class InputKind(StrEnum):
    PDF = "pdf"
    IMAGE = "image"
    QR = "qr"
    NUMBER = "number"

    @classmethod
    def sniff(cls, source: bytes | str) -> InputKind:
        """PDF by its magic bytes, other bytes an image; text with the QR prefix a QR text,
        other text a typed number."""
        if isinstance(source, bytes):
            return cls.PDF if source.startswith(b"%PDF-") else cls.IMAGE
        return cls.QR if source.strip().upper().startswith(qr_format.PREFIX) else cls.NUMBER


class Verifier:
    """Verifies against one trust store at one time (both explicit: nothing reads the clock)."""

    def __init__(self, trust: TrustStore, *, at: datetime):
        if at.tzinfo is None:
            raise ValueError("the verification time needs a time zone")
        self.trust = trust
        self.at = at

    def verify(self, source: bytes | str, kind: InputKind | None = None) -> Verification:
        """Any input: PDF or image bytes, QR text or a typed number (`kind` sniffed if not given)."""
        kind = kind or InputKind.sniff(source)
        if kind in (InputKind.PDF, InputKind.IMAGE):
            data = source if isinstance(source, bytes) else source.encode()
            return self.pdf(data) if kind is InputKind.PDF else self.image(data)
        text = source if isinstance(source, str) else source.decode(errors="replace")
        return self.qr_text(text) if kind is InputKind.QR else self.number(text)

    def qr_text(self, text: str) -> Verification:
        cl = Checklist()
        claims = self._qr(text, cl)
        return cl.result(
            number=claims.number if claims else None, qr=claims.summary if claims else None
        )

    def _qr(self, text: str, cl: Checklist) -> qr_format.QrClaims | None:
        decoded = self._qr_claims(text, cl)
        if decoded is None:
            return None
        claims, signed = decoded
        issued, expires = claims.validity(SHANGHAI)
        checks.validity(issued, expires, self.at, cl)
        signed.issuer.check_status(claims.number, claims.summary.digest, cl)
        domains = signed.issuer.qr_domains(claims.summary, cl)
        signed.issuer.check_scope(issued, self.at, domains, cl)
        return claims

    def _qr_claims(
        self, text: str, cl: Checklist
    ) -> tuple[qr_format.QrClaims, checks.Signed] | None:
        """Format, integrity and content of a QR text (steps 1–3)."""
        try:
            unwrapped = qr_format.unwrap(text)
        except DecodeError as exc:
            checks.decode_failed(cl, exc)
            return None
        cl.ok(
            "format.qr-text",
            f"{qr_format.PREFIX} + base45, {unwrapped.compressed_size} bytes of zlib",
        )
        return checks.qr_claims(unwrapped.cose, self.trust, cl)

    def image(self, data: bytes) -> Verification:
        cl = Checklist()
        try:
            texts = extract.image_qr_texts(data)
        except DecodeError as exc:
            checks.decode_failed(cl, exc)
            return cl.result()
        if len(texts) != 1:
            reason = Reason.SEVERAL_QR if texts else Reason.NO_QR
            cl.undecided(
                "format.qr-found", reason, f"found {len(texts)} different QR codes, expected one"
            )
            return cl.result()
        cl.ok("format.qr-found", "one QR code")
        found = self._qr(texts[0], cl)
        return cl.result(
            number=found.number if found else None, qr=found.summary if found else None
        )

    def number(self, typed: str) -> Verification:
        """A typed number: only its issuer's registry can answer, and only ours is at hand."""
        cl = Checklist()
        number = report_number.parse(typed)
        if number is None:
            cl.fail(
                "format.number",
                Reason.BAD_NUMBER,
                f"{typed[:40]!r} is not a report number (shape or check character wrong)",
            )
            return cl.result()
        cl.ok("format.number", number)
        own = self.trust.own
        if not number.startswith(own.code):
            cl.undecided(
                "issuer.number",
                Reason.OTHER_ISSUER,
                f"{number} was issued by {number[:6]}; only that city's registry can answer",
            )
            return cl.result(number=number)
        if own.registry is None:
            cl.undecided(
                "status.registry",
                Reason.NO_REGISTRY,
                "a number can only be checked against the issuer's registry, and none is at hand",
            )
            return cl.result(number=number)
        entry = own.check_status(number, None, cl)
        if entry is not None:
            checks.validity(entry.issued_at, entry.valid_until, self.at, cl)
        return cl.result(number=number)

    def pdf(self, data: bytes) -> Verification:
        cl = Checklist()
        # 1. a readable PDF
        try:
            reader = extract.open_pdf(data)
        except DecodeError as exc:
            checks.decode_failed(cl, exc)
            return cl.result()
        cl.ok("format.pdf", "readable PDF")
        # 2. the PAdES signature
        pades_kid = checks.pades(reader, self.trust, self.at, cl)
        # 3. the embedded, signed document, signed by the key that signed the PDF
        signed, doc = self._embedded(reader, cl)
        if doc is not None and signed is not None:
            checks.issuer_named(doc.issuer_code, doc.number, signed, cl, "envelope")
            checks.key_at_issue(signed, doc.issued_at, cl, "envelope")
            if pades_kid is not None and pades_kid != signed.kid:
                cl.fail(
                    "consistency.pades-envelope",
                    Reason.SIGNER_MISMATCH,
                    f"PDF signed by {pades_kid.hex()}, envelope by {signed.kid.hex()}",
                )
        # 4. the QR on every page, and that it speaks of the embedded document
        claims = self._page_qrs(data, cl)
        digest = doc.digest() if doc is not None else None  # CBOR-encodes the document: once
        if claims is not None and doc is not None:
            if claims.summary.digest == digest and claims.number == doc.number:
                cl.ok("consistency.qr-envelope", "QR digest and number match the embedded document")
            else:
                cl.fail(
                    "consistency.qr-envelope",
                    Reason.QR_ENVELOPE_MISMATCH,
                    "the QR speaks of another document than the one embedded",
                )
        # 5–6. validity, status and scope, from the signed document (else from the QR)
        if doc is not None:
            checks.validity(doc.issued_at, doc.valid_until, self.at, cl)
        elif claims is not None:
            checks.validity(*claims.validity(SHANGHAI), self.at, cl)
        if doc is not None and signed is not None:
            signed.issuer.check_status(doc.number, digest, cl)
            signed.issuer.check_scope(doc.issued_at, self.at, list(doc.domains_requested), cl)
        return cl.result(number=doc.number if doc else None, document=doc)

    def _embedded(
        self, reader: object, cl: Checklist
    ) -> tuple[checks.Signed | None, ReportDocument | None]:
        """The attached report.cose: its signature checked first, then its document read."""
        try:
            envelope = extract.embedded_envelope(reader)
            cl.ok("format.envelope", f"report.cose attached ({len(envelope):,} bytes)")
            signed = checks.signature(envelope, self.trust, cl, "envelope")
        except DecodeError as exc:
            checks.decode_failed(cl, exc)
            return None, None
        if signed is None:
            return None, None
        try:
            doc = read_document(signed.payload)
        except DecodeError as exc:
            checks.decode_failed(cl, exc)
            return signed, None
        cl.ok("format.document", f"report {doc.number}")
        return signed, doc

    def _page_qrs(self, data: bytes, cl: Checklist) -> qr_format.QrClaims | None:
        """The claims of the one QR every page must carry, or None."""
        pages = extract.page_qr_texts(data)
        distinct = {t for page in pages for t in page}
        if not pages or any(len(page) != 1 for page in pages) or len(distinct) != 1:
            cl.fail(
                "consistency.qr-pages",
                Reason.QR_PAGES_DIFFER,
                f"{len(pages)} page(s), QR codes per page {[len(p) for p in pages]}, "
                f"{len(distinct)} distinct; expected the same single QR on every page",
            )
            return None
        cl.ok("consistency.qr-pages", f"the same QR on all {len(pages)} page(s)")
        decoded = self._qr_claims(distinct.pop(), cl)
        return decoded[0] if decoded else None
