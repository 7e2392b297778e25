"""Issue a special credit report: findings → document → number reserved → sealed envelope and
QR → PDF kept on disk → registry says issued.

One call, `issue_report`, with time, keys and the registry as explicit inputs. The registry says
`issued` only once the PDF is durably on disk; a failed or crashed attempt ends `void` and does
not count toward the rate limit (docs/report.md §7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from creditcert import lookup as records
from creditcert.config import Settings
from creditcert.data.store import Store
from creditcert.envelope import qr as qr_format
from creditcert.envelope import report as report_envelope
from creditcert.errors import IssueError
from creditcert.files import remove_debris, write_atomically
from creditcert.issue import pades
from creditcert.lookup import Findings
from creditcert.model import report_number
from creditcert.model.clock import SHANGHAI
from creditcert.model.document import ReportDocument
from creditcert.registry import Entry, NumberTaken, Registry
from creditcert.stages import reached
from creditcert.trust.keys import Signer

if TYPE_CHECKING:  # the PDF stack (Jinja2, qrcode, WeasyPrint) is imported by those who render
    from creditcert.issue.render import Renderer

DEFAULT_VALIDITY_DAYS = 30  # a report for a custom list of domains
# A pending number older than this is taken for abandoned even when its process cannot be seen
# (another host); rendering and signing take seconds.
PENDING_GRACE = timedelta(minutes=10)
_DRAWS = 5


@dataclass(frozen=True, slots=True)
class IssuedReport:
    document: ReportDocument
    envelope: bytes  # COSE_Sign1 of the document (report.cose)
    qr: qr_format.QrPayload
    pdf: bytes  # PDF/A-3b with the PAdES signature
    path: Path  # where the city keeps it: reports/<number>.pdf


def build_document(
    findings: Findings,
    settings: Settings,
    *,
    number: str,
    key_id: bytes,
    issued_at: datetime,
) -> ReportDocument:
    """The typed report document for findings (pure: no I/O, no clock)."""
    catalog = settings.catalog
    purpose = catalog.purpose(findings.purpose) if findings.purpose else None
    validity = purpose.validity_days if purpose else DEFAULT_VALIDITY_DAYS
    issued = issued_at.astimezone(SHANGHAI).replace(microsecond=0)
    return ReportDocument(
        number=number,
        issuer_code=settings.issuer.admin_code,
        issuer_name=settings.issuer.name,
        issuer_name_en=settings.issuer.name_en,
        key_id=key_id.hex(),
        subject_code=findings.subject.credit_code,
        subject_name=findings.subject.name,
        entity_type=findings.subject.entity_type,
        purpose=purpose.code if purpose else None,
        purpose_zh=purpose.zh if purpose else None,
        purpose_en=purpose.en if purpose else None,
        domains_requested=tuple(d.domain.code for d in findings.domains),
        requested=findings.requested,
        period=findings.period,
        clipped_to_complete_from=findings.clipped_to_complete_from,
        clipped_to_data_cutoff=findings.clipped_to_data_cutoff,
        complete_from=settings.complete_from,
        data_cutoff=findings.data_cutoff.astimezone(SHANGHAI),
        issued_at=issued,
        valid_until=issued + timedelta(days=validity),
        catalog_id=catalog.id,
        catalog_version=catalog.version,
        catalog_digest=catalog.digest,
        repair_policy=findings.repair_policy.value,
        code_warnings=findings.code_warnings,
        domains=tuple(d.section() for d in findings.domains),
    )


def issue_report(
    store: Store,
    settings: Settings,
    signer: Signer,
    registry: Registry,
    raw_code: str,
    request: records.Request,
    *,
    at: datetime,
    renderer: Renderer,
    reports_dir: Path,
    lang: str = "zh-en",
    keep: Callable[[str, bytes], None] | None = None,
) -> IssuedReport:
    """Look up and build the document, reserve its number, seal, render and sign the PDF, keep
    it as reports_dir/<number>.pdf (and through `keep`, on the instances' shared storage), then
    mark the number issued.

    The rate limit is checked before any rendering and again when the number is reserved. Any
    failure after the reservation voids the number; a crash leaves it pending, for `settle`."""
    records.check_not_future(request, at)
    findings = records.lookup(store, settings, raw_code, request)
    purpose = request.purpose
    today = at.astimezone(SHANGHAI).date().isoformat()
    limit = settings.rate_limit_per_day
    registry.check_rate(findings.subject.credit_code, purpose, today, limit)
    doc = _reserve(findings, settings, signer, registry, at, limit)
    reached("report.number-reserved")
    path = pdf_path(reports_dir, doc.number)
    try:
        sealed = report_envelope.seal(doc, signer)
        qr = qr_format.encode(
            doc, signer, settings.catalog.codes, base_url=settings.service.base_url
        )
        pdf = pades.sign_pdf(renderer.render(doc, qr.text, sealed, lang), signer)
        write_atomically(path, pdf)
        if keep is not None:
            keep(doc.number, pdf)
        reached("report.pdf-written")
        if not registry.complete(doc.number):
            raise IssueError(
                f"{doc.number} was voided while its PDF was being made (it took longer than "
                f"{PENDING_GRACE}); issue the report again"
            )
    except BaseException:
        registry.void(doc.number)
        path.unlink(missing_ok=True)
        raise
    reached("report.registered")
    return IssuedReport(doc, sealed, qr, pdf, path)


def _reserve(findings, settings, signer, registry, at, limit) -> ReportDocument:
    """The document under a freshly drawn number, recorded as pending (a taken number is drawn
    again)."""
    for _ in range(_DRAWS):
        number = report_number.new_number(settings.issuer.admin_code, at.astimezone(SHANGHAI))
        doc = build_document(findings, settings, number=number, key_id=signer.kid, issued_at=at)
        try:
            registry.reserve(
                Entry(
                    number=number,
                    issuer=doc.issuer_code,
                    subject_code=doc.subject_code,
                    purpose=doc.purpose,
                    digest=doc.digest().hex(),
                    key_id=doc.key_id,
                    issued_at=doc.issued_at,
                    valid_until=doc.valid_until,
                ),
                rate_limit=limit,
            )
        except NumberTaken:
            continue
        return doc
    raise IssueError(f"could not draw an unused report number in {_DRAWS} tries")


def canonical_number(typed: str) -> str:
    """A typed report number in its canonical form; IssueError if its shape or check character
    is wrong."""
    canonical = report_number.parse(typed)
    if canonical is None:
        raise IssueError(f"{typed!r} is not a report number (shape or check character wrong)")
    return canonical


def pdf_path(reports_dir: Path, number: str) -> Path:
    """Where the city keeps an issued report's PDF (`report get` reads it from there)."""
    return reports_dir / f"{number}.pdf"


def settle(registry: Registry, reports_dir: Path, *, at: datetime) -> list[str]:
    """Void the numbers of issuing attempts that died (docs/report.md §7) and delete what they
    left in reports_dir: a PDF of a number never marked issued, and temporary files."""
    voided = [n for n in registry.abandoned(at=at, grace=PENDING_GRACE) if registry.void(n)]
    for number in voided:
        pdf_path(reports_dir, number).unlink(missing_ok=True)
    remove_debris(reports_dir)
    return voided
