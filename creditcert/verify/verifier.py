"""Verify a report: its PDF, a photo of a page, the QR text, or a typed number (docs/verify.md).

The verifier is a numbered checklist over decoded values; each input runs the steps below in
order and every step adds a Check with a coded reason. It never raises on hostile input: every
decode is bounded and every failure is a check. What cannot be read is *cannot decide* with a hint
of what to try; what is read and wrong is *rejected*.

QR text   1 format (size, prefix, base45 or digits, zlib, COSE)  2 integrity (known key, signature)
          3 content (claims, issuer named, key at issue)  4 validity  5 status  6 scope
image     0 exactly one QR on the photo, then the QR steps
number    1 shape and check character  2 ours: our registry's status and validity; a partner's:
          its revocation list, our agreement, then its service's answer (status, validity)
PDF       1 readable PDF  2 PAdES  3 report.cose: signature, document, issuer, key
          4 the same QR on every page, the QR steps, QR = envelope  5 status  6 scope
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from creditcert.envelope import qr as qr_format
from creditcert.envelope.report import read_document
from creditcert.errors import DecodeError, PartnerError, Reason
from creditcert.model import report_number
from creditcert.model.clock import SHANGHAI
from creditcert.model.document import ReportDocument
from creditcert.trust.status import PartnerStatus
from creditcert.trust.store import Partner, TrustStore
from creditcert.verify import checks, extract
from creditcert.verify.result import Checklist, Status, Verification

# What a partner's service may answer other than `issued`: the reason and the words for it.
_ONLINE_REFUSALS = {
    "revoked": (Reason.REVOKED, "was revoked"),
    "void": (Reason.VOIDED, "was voided, never issued"),
    "pending": (Reason.NOT_COMPLETED, "is pending: its issuance never completed"),
    "unknown": (Reason.UNKNOWN_NUMBER, "is not in its registry"),
}


class InputKind(StrEnum):
    PDF = "pdf"
    IMAGE = "image"
    QR = "qr"
    NUMBER = "number"

    @classmethod
    def sniff(cls, source: bytes | str) -> InputKind:
        """PDF by its magic bytes, other bytes an image; text with the QR prefix or an http(s)
        URL holding /CC1/ a QR text, other text a typed number."""
        if isinstance(source, bytes):
            return cls.PDF if source.startswith(b"%PDF-") else cls.IMAGE
        text = source.strip()
        if text.upper().startswith(qr_format.PREFIX):
            return cls.QR
        url = (
            text.lower().startswith(("http://", "https://"))
            and qr_format.URL_MARKER in text.upper()
        )
        return cls.QR if url else cls.NUMBER


class Verifier:
    """Verifies against one trust store at one time (both explicit: nothing reads the clock).
    `status` asks partners' services about their typed numbers; without it (the default) a
    verifier never touches the network, and PDFs and QR codes never do in any case."""

    def __init__(self, trust: TrustStore, *, at: datetime, status: PartnerStatus | None = None):
        if at.tzinfo is None:
            raise ValueError("the verification time needs a time zone")
        self.trust = trust
        self.at = at
        self.status = status

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
        cl.ok("format.qr-text", f"{unwrapped.form}, {unwrapped.compressed_size} bytes of zlib")
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
        """A typed number: only its issuer's registry can answer: ours here, a partner's through
        its service (and only under a live agreement)."""
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
            partner = self._number_issuer(number, cl)
            if partner is not None:
                self._partner_number(partner, number, cl)
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

    def _number_issuer(self, number: str, cl: Checklist) -> Partner | None:
        """The partner that issued `number`, or why none can answer for it."""
        code = number[:6]
        partner = next((p for p in self.trust.partners if p.code == code), None)
        if partner is not None:
            cl.ok("issuer.number", f"{number} was issued by {code} ({partner.name}), a partner")
            return partner
        stale = next((u for u in self.trust.unavailable if u.code == code), None)
        if stale is not None and stale.reason is Reason.PARTNER_UNAVAILABLE:
            cl.undecided(
                "issuer.number", stale.reason, f"{number} was issued by {stale.describe()}"
            )
        else:
            cl.undecided(
                "issuer.number",
                Reason.OTHER_ISSUER,
                f"{number} was issued by {code}, not a partner of ours; only that city's "
                "registry can answer",
            )
        return None

    def _partner_number(self, partner: Partner, number: str, cl: Checklist) -> None:
        """A partner's number: its bundle's revocation list and our agreement (offline), then
        the status its service gives, and the validity and agreement at that issue time."""
        if partner.agreement is None:  # no-agreement whatever the times: nothing to ask
            partner.check_scope(self.at, self.at, None, cl)
            return
        partner.check_status(number, None, cl)
        if cl.checks[-1].status is Status.FAILED:  # revoked in its bundle: no need to ask
            return
        step, code = "status.issuer-online", partner.code
        if self.status is None:
            cl.undecided(step, Reason.STATUS_UNREACHABLE, f"{code}'s service not asked (offline)")
            return
        try:
            answer = self.status.ask(code, number)
        except PartnerError as exc:
            cl.undecided(step, Reason.STATUS_UNREACHABLE, f"partner {code}: {exc}")
            return
        if answer.status != "issued" or answer.issued_at is None or answer.valid_until is None:
            reason, words = _ONLINE_REFUSALS.get(answer.status, _ONLINE_REFUSALS["unknown"])
            cl.fail(step, reason, f"{code}'s service says {number} {words}")
            return
        cl.ok(
            step,
            f"{code}'s service says {number} issued {answer.issued_at:%Y-%m-%d %H:%M}, not revoked",
        )
        checks.validity(answer.issued_at, answer.valid_until, self.at, cl)
        partner.check_scope(answer.issued_at, self.at, None, cl)

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
