"""Remote application (异地申请, docs/partners.md): both sides of it, over one city.

Forwarding: an enterprise a partner city registers applies here; we sign an application, send it
to the partner's service and keep the report it returns once it verifies here. Issuing: a
partner's signed application is checked, recorded and answered with a report we issue.

This is the orchestration only, reached as `city.applications` (City stays the front door and
does not carry it): the wire is creditcert/trust/remote.py, the envelope
creditcert/envelope/application.py, its checks creditcert/verify/application.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from creditcert.envelope.application import Application, seal_application
from creditcert.errors import CreditcertError, IssueError, PartnerError, SubjectError
from creditcert.files import write_atomically
from creditcert.issue.issuer import IssuedReport, canonical_number, pdf_path
from creditcert.lookup import Request
from creditcert.model.clock import SHANGHAI
from creditcert.registry import ApplicationEntry, Replayed
from creditcert.rules import codes
from creditcert.trust import remote, sync
from creditcert.trust.remote import RemoteReport
from creditcert.verify.application import ApplicationRefused, CheckedApplication, check_application
from creditcert.verify.result import Verdict

if TYPE_CHECKING:
    from creditcert.city import City


class RemoteApplications:
    """One city's remote applications, the ones it forwards and the ones it receives."""

    def __init__(self, city: City):
        self.city = city

    # --- forwarding: our enterprise's application, issued by a partner -------------------------

    def registering_partner(self, code: str) -> str | None:
        """The partner city that registers this credit code, if we have one."""
        return remote.registering_partner(code.strip().upper(), self.city.partners.codes())

    def agreed_domains(self, partner: str, *, at: datetime) -> list:
        """The partner's domains our agreement with it recognises, in its catalog order: what
        an enterprise of that city may ask for here (empty: no usable bundle or agreement)."""
        partners = self.city.partners
        stored = partners.stored(partner, at=at)
        if stored.bundle is None or stored.problem is not None:
            return []
        agreement = partners.agreement(partner, stored.bundle.catalog)
        if agreement is None or not agreement.live(at.astimezone(SHANGHAI).date()):
            return []
        return [d for d in stored.bundle.catalog.domains if d.code in agreement.mapping]

    def apply_remote(
        self,
        code: str,
        *,
        clock: Callable[[], datetime],
        domains: Sequence[str] | None = None,
        years: int = 3,
        lang: str = "zh-en",
        client=None,
    ) -> RemoteReport:
        """Ask the partner city that registers `code` to issue its report (the enterprise signed
        in here): a signed application to the partner's service, and the report it returns,
        verified here before it is kept and handed over. Both registries record the request.
        `clock` is read when the application is signed and again when the report has come."""
        city = self.city
        at = clock()
        check = codes.validate(code)
        if not check.acceptable_if_registered:
            raise SubjectError(f"{check.code!r} is not a valid credit code: {check.describe()}")
        code = check.code
        partner = self.registering_partner(code)
        if partner is None:
            raise PartnerError(f"{code} is registered in no partner city of ours")
        agreed = [d.code for d in self.agreed_domains(partner, at=at)]
        if not agreed:
            raise PartnerError(
                f"no usable bundle of {partner} with an agreement in force: "
                f"creditcert partner sync {partner}; creditcert agreement show {partner}"
            )
        chosen = list(domains) if domains else agreed
        outside = [d for d in chosen if d not in agreed]
        if outside:
            raise PartnerError(f"not in the agreement with {partner}: {', '.join(outside)}")
        state = sync.read_state(city.partners.partner_dir(partner))
        if state is None:
            raise PartnerError(f"no URL for {partner}: creditcert partner add {partner} --url …")
        application = Application.new(
            from_city=city.settings.issuer.admin_code, to_city=partner, subject_code=code,
            domains=tuple(chosen), years=years, as_of=at.astimezone(SHANGHAI).date(),
            lang=lang, sent_at=at,
        )  # fmt: skip
        sealed = seal_application(application, city.keys.signer(at))
        nonce = application.nonce.hex()
        with city.registry() as registry:
            registry.record_application(_entry_of(application, "sent", partner, at))
        try:
            with client or sync.new_client(city.settings.partners) as http:
                answer = remote.send(http, state.url, sealed)
        except PartnerError as exc:
            self.settle(nonce, "failed", detail=str(exc))
            raise
        if isinstance(answer, remote.Refusal):
            self.settle(nonce, "refused", detail=answer.describe())
            raise PartnerError(f"{partner} refused the application: {answer.describe()}")
        result = city.verify(answer, at=clock())
        doc = result.document
        if result.verdict is not Verdict.ACCEPTED or doc is None:
            why = "; ".join(f"{c.reason}: {c.message}" for c in result.failures[:2])
            self.settle(nonce, "failed", detail=f"the returned report does not verify: {why}")
            raise PartnerError(f"the report {partner} returned does not verify here: {why}")
        if doc.subject_code != code or [d.code for d in doc.domains] != chosen:
            self.settle(nonce, "failed", detail="the returned report is not the one asked for")
            raise PartnerError(f"the report {partner} returned is not the one asked for")
        city.layout.remote.mkdir(exist_ok=True)
        write_atomically(pdf_path(city.layout.remote, doc.number), answer)
        self.settle(nonce, "issued", number=doc.number)
        return RemoteReport(partner, doc.number, answer, result)

    def remote_reports(self, code: str) -> list[ApplicationEntry]:
        """The enterprise's applications forwarded from here, newest first."""
        if not self.city.has_registry:
            return []
        with self.city.registry() as registry:
            return registry.applications_of(code.strip().upper(), "sent")

    def remote_pdf(self, code: str, number: str) -> bytes:
        """The kept PDF of a report a partner issued for `code` through us."""
        canonical = canonical_number(number)
        if not any(e.number == canonical for e in self.remote_reports(code)):
            raise IssueError(f"{canonical} is no report of {code} applied for here")
        return pdf_path(self.city.layout.remote, canonical).read_bytes()

    # --- issuing: a partner's application, issued here -----------------------------------------

    def check(self, data: bytes, *, at: datetime) -> CheckedApplication:
        """Every check of a partner's application (signature first), without recording it."""
        return check_application(data, self.city.trust(at=at), at=at)

    def admit(self, data: bytes, *, at: datetime) -> Application:
        """A partner's application that passed every check, recorded (its nonce used up);
        ApplicationRefused with the checks otherwise, Replayed when it was seen before."""
        checked = self.check(data, at=at)
        application = checked.application
        if application is not None and checked.result.verdict.accepted:
            with self.city.registry() as registry:
                registry.record_application(
                    _entry_of(application, "received", application.from_city, at)
                )
            return application
        refused = ApplicationRefused(checked.result)
        if application is not None:  # the sender is known (its signature held): on the record
            entry = _entry_of(application, "received", application.from_city, at)
            with self.city.registry() as registry, contextlib.suppress(Replayed):
                registry.record_application(
                    dataclasses.replace(entry, outcome="refused", detail=str(refused))
                )
        raise refused

    def request_of(self, application: Application, *, at: datetime) -> Request:
        """What an admitted application asks us to report."""
        return self.city.request(
            as_of=application.as_of, domains=application.domains, years=application.years, at=at
        )

    def issue_for_partner(self, data: bytes, *, at: datetime) -> IssuedReport:
        """Admit a partner's application and issue the report it asks for (the service does the
        same with its issuing workers)."""
        application = self.admit(data, at=at)
        nonce = application.nonce.hex()
        try:
            report = self.city.issue(
                application.subject_code,
                self.request_of(application, at=at),
                at=at,
                lang=application.lang,
            )
        except CreditcertError as exc:
            self.settle(nonce, "refused", detail=str(exc))
            raise
        self.settle(nonce, "issued", number=report.document.number)
        return report

    # --- both sides ----------------------------------------------------------------------------

    def settle(self, nonce: str, outcome: str, **what) -> None:
        """Record what became of an application: issued (number=…), refused or failed (detail=…)."""
        with self.city.registry() as registry:
            registry.settle_application(nonce, outcome, **what)


def _entry_of(application: Application, direction: str, partner: str, at: datetime):
    return ApplicationEntry(
        application.nonce.hex(), direction, partner, application.subject_code,
        application.domains, application.sent_at, at,
    )  # fmt: skip
