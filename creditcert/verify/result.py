"""What a verifier found: a frozen value with a verdict, the numbered checks with coded reasons,
and the authentic content taken from signed data only (docs/verify.md).

A leaf module: it imports only the model, the envelope's QR summary and the reasons, so the trust
store can return the same shape when it checks a partner's bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from creditcert.envelope.qr import QrSummary
from creditcert.errors import Reason, VerificationFailed
from creditcert.model.document import ReportDocument

if TYPE_CHECKING:
    from creditcert.trust.bundles import Bundle

FORMAT = "creditcert.verification/1"


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

    @property
    def accepted(self) -> bool:
        return self in (Verdict.ACCEPTED, Verdict.ACCEPTED_FOR_SOME_DOMAINS)

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 accepted (fully or for some domains), 1 rejected, 3 cannot decide."""
        return 0 if self.accepted else 1 if self is Verdict.REJECTED else 3


# What a reviewer can do when we could not decide, by the reason of the first undecided check.
HINTS: dict[Reason, str] = {
    Reason.NO_QR: "photograph the QR code closer, straight on and in focus; or verify the PDF, "
    "or type the report number",
    Reason.SEVERAL_QR: "photograph one report's QR code at a time",
    Reason.NOT_AN_IMAGE: "send a PNG or JPEG photo of a page, or the PDF itself",
    Reason.IMAGE_TOO_LARGE: "send a smaller photo (up to a 300-dpi A4 scan), or the PDF",
    Reason.NOT_PDF: "send the PDF file the credit centre issued, or a photo of a page",
    Reason.BAD_PDF: "the PDF is damaged: ask the enterprise for the original file, or verify a "
    "photo of a page or the report number",
    Reason.TOO_LARGE: "send the PDF as issued (reports are far smaller), or a photo of a page",
    Reason.PARTNER_UNAVAILABLE: "ask the operator to fetch the partner's current bundle "
    "(creditcert partner sync, or creditcert partner import of a file it sends), then verify "
    "again",
    Reason.STATUS_UNREACHABLE: "verify the PDF or its QR code (they verify offline, from the "
    "partner's bundle), or try the number again later",
    Reason.CATALOG_MISMATCH: "ask the operator to import the partner's current bundle",
    Reason.OTHER_ISSUER: "verify the PDF or its QR code, or ask the issuing city",
    Reason.NO_REGISTRY: "verify the PDF or its QR code, or verify on the issuing city's service",
}


@dataclass(frozen=True, slots=True)
class Check:
    step: str  # unique within a result, e.g. "issuer.chain.qr"
    status: Status
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class Verification:
    """Deliberately not a bool: look at `verdict`."""

    verdict: Verdict
    checks: tuple[Check, ...]
    number: str | None = None
    qr: QrSummary | None = None  # the QR's signed summary
    document: ReportDocument | None = None  # the signed full document
    bundle: Bundle | None = None  # a partner's bundle, when one was checked

    def __bool__(self) -> bool:
        raise TypeError("a Verification is not a truth value; compare .verdict")

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status in (Status.FAILED, Status.INDETERMINATE))

    @property
    def hint(self) -> str | None:
        """What to try next when we could not decide."""
        if self.verdict is not Verdict.CANNOT_DECIDE:
            return None
        for c in self.checks:
            if c.status is Status.INDETERMINATE and c.reason in HINTS:
                return HINTS[c.reason]
        return None

    def raise_for_status(self) -> None:
        """Raise VerificationFailed unless the verdict is an acceptance (as the CLI's exit 0)."""
        if not self.verdict.accepted:
            detail = "; ".join(f"{c.step}: {c.message}" for c in self.failures[:3])
            raise VerificationFailed(f"{self.verdict}: {detail}")

    def summary(self) -> str:
        """One line: the verdict, the number and what the signed content says."""
        head = f"{self.verdict.value.upper()}  {self.number or ''}".rstrip()
        doc, qr = self.document, self.qr
        if doc is not None:
            return (
                f"{head}: {doc.subject_name} ({doc.subject_code}), {len(doc.domains)} domains, "
                f"{doc.records_count} record(s), issued {doc.issued_at:%Y-%m-%d %H:%M}, "
                f"valid until {doc.valid_until:%Y-%m-%d}"
            )
        if qr is not None:
            return (
                f"{head}: {qr.subject_name} ({qr.subject_code}), period {qr.period_from} – "
                f"{qr.period_to}, {len(qr.domain_counts)} domains, {qr.records_count} record(s)"
            )
        if self.bundle is not None:
            b = self.bundle
            return (
                f"{head}: bundle of {b.name} ({b.issuer_code}), sequence {b.sequence}, "
                f"valid to {b.expires_at:%Y-%m-%d}"
            )
        return head

    def pretty(self) -> str:
        """The summary, every check with its mark, reason and message, and the hint if any."""
        marks = {Status.PASSED: "✓", Status.FAILED: "✗", Status.INDETERMINATE: "?"}
        lines = [self.summary()]
        width = max((len(c.step) for c in self.checks), default=0)
        for c in self.checks:
            mark = marks.get(c.status, "-")
            lines.append(f"  {mark} {c.step:<{width}}  {c.reason:<22} {c.message}")
        if self.hint:
            lines.append(f"  what to try: {self.hint}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "verdict": self.verdict.value,
            "number": self.number,
            "hint": self.hint,
            "checks": [
                {
                    "step": c.step,
                    "status": c.status.value,
                    "reason": c.reason.value,
                    "message": c.message,
                }
                for c in self.checks
            ],
            "summary": _jsonable(self.qr.to_cbor()) if self.qr else None,
            "document": self.document.to_data() if self.document else None,
            "bundle": self.bundle.to_json() if self.bundle else None,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


@dataclass(slots=True)
class Checklist:
    """Collects checks in order; a step id may appear once."""

    checks: list[Check] = field(default_factory=list)
    partial: bool = False  # some domains of a partner's report are outside the agreement

    def add(self, step: str, status: Status, reason: Reason, message: str) -> bool:
        if any(c.step == step for c in self.checks):
            raise ValueError(f"step {step} checked twice")
        self.checks.append(Check(step, status, reason, message))
        return status is Status.PASSED

    def ok(self, step: str, message: str) -> bool:
        return self.add(step, Status.PASSED, Reason.OK, message)

    def fail(self, step: str, reason: Reason, message: str) -> bool:
        return self.add(step, Status.FAILED, reason, message)

    def undecided(self, step: str, reason: Reason, message: str) -> bool:
        return self.add(step, Status.INDETERMINATE, reason, message)

    def verdict(self) -> Verdict:
        if any(c.status is Status.FAILED for c in self.checks):
            return Verdict.REJECTED
        if any(c.status is Status.INDETERMINATE for c in self.checks):
            return Verdict.CANNOT_DECIDE
        return Verdict.ACCEPTED_FOR_SOME_DOMAINS if self.partial else Verdict.ACCEPTED

    def result(self, **content: Any) -> Verification:
        return Verification(self.verdict(), tuple(self.checks), **content)
