"""Checking a partner's remote application (异地申请) before anything of it is trusted: the same
signature and key checks as a report's, then who sent it, to whom, when, and whether the
agreement covers what it asks (docs/partners.md, "Remote application"). Whether its nonce was
seen before is the registry's to say, when the application is recorded.

    format.application-cose     COSE_Sign1, ES256, kid protected
    issuer.key-known.application  a signing key of a city we trust
    integrity.application-signature
    application.sender          signed by a partner's key, and `from` names that partner
    format.application          a complete creditcert.application/1
    issuer.chain.application, issuer.key-valid-at-issue.application,
    issuer.key-in-service.application   the key at the time the request says it was sent
    application.addressee       `to` is our city
    application.time            sent within the window around now (either side: clocks drift)
    agreement.live              our agreement with the sender is in force today
    application.domains         every requested domain is one of ours the agreement maps
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from creditcert.envelope.application import Application, read_application
from creditcert.errors import DecodeError, PartnerError, Reason
from creditcert.model.clock import SHANGHAI
from creditcert.trust.store import Partner, TrustStore
from creditcert.verify.checks import decode_failed, key_at_issue, signature
from creditcert.verify.result import Checklist, Verification

WINDOW = timedelta(minutes=5)


class ApplicationRefused(PartnerError):
    """An application that failed a check; `result` carries them all."""

    def __init__(self, result: Verification):
        first = result.failures[0] if result.failures else None
        super().__init__(
            f"application {result.verdict}: {first.reason}: {first.message}"
            if first
            else f"application {result.verdict}",
            first.reason if first else None,
        )
        self.result = result


@dataclass(frozen=True, slots=True)
class CheckedApplication:
    """The checks' result; `application` and `partner` are set once the signature held."""

    result: Verification
    application: Application | None = None
    partner: Partner | None = None


def check_application(
    data: bytes, trust: TrustStore, *, at: datetime, window: timedelta = WINDOW
) -> CheckedApplication:
    """Every check of an application received at `at`; nothing is trusted before the signature."""
    cl = Checklist()
    signed = signature(data, trust, cl, "application")
    if signed is None:
        return CheckedApplication(cl.result())
    sender = signed.issuer
    if not isinstance(sender, Partner):
        cl.fail(
            "application.sender",
            Reason.NOT_FROM_A_PARTNER,
            "signed by a key of our own city: applications come from partners",
        )
        return CheckedApplication(cl.result())
    try:
        application = read_application(signed.payload)
    except DecodeError as exc:
        cl.ok("application.sender", f"signed by a key of partner {sender.code}")
        decode_failed(cl, exc, "format.application")
        return CheckedApplication(cl.result())
    if application.from_city != sender.code:
        cl.fail(
            "application.sender",
            Reason.SENDER_MISMATCH,
            f"names {application.from_city} as sender, signed by a key of {sender.code}",
        )
        return CheckedApplication(cl.result())
    cl.ok("application.sender", f"from partner {sender.code} ({sender.name}), signed by its key")
    cl.ok("format.application", f"{application.subject_code}, {len(application.domains)} domains")
    key_at_issue(signed, application.sent_at, cl, "application")
    own = trust.own.code
    if application.to_city == own:
        cl.ok("application.addressee", f"addressed to {own}")
    else:
        cl.fail(
            "application.addressee",
            Reason.NOT_ADDRESSED_TO_US,
            f"addressed to {application.to_city}, we are {own}",
        )
    drift = abs(at - application.sent_at)
    if drift <= window:
        cl.ok("application.time", f"sent {application.sent_at.isoformat()}, within {window}")
    else:
        cl.fail(
            "application.time",
            Reason.OUTSIDE_TIME_WINDOW,
            f"sent {application.sent_at.isoformat()}, received {at.isoformat()}: "
            f"more than {window} apart (check both clocks; send a fresh request)",
        )
    _agreed(sender, application, at, cl)
    return CheckedApplication(cl.result(), application, sender)


def _agreed(sender: Partner, application: Application, at: datetime, cl: Checklist) -> None:
    """Our agreement with the sender is in force, and maps every domain asked for (ours are the
    values of its mapping: the domains of ours the partner recognises)."""
    agreement = sender.agreement
    if agreement is None:
        cl.fail(
            "agreement.live",
            Reason.NO_AGREEMENT,
            f"no mutual-recognition agreement with {sender.code}",
        )
        return
    today = at.astimezone(SHANGHAI).date()
    runs = f"agreement with {sender.code} runs {agreement.start} to {agreement.end}"
    if agreement.live(today):
        cl.ok("agreement.live", runs)
    else:
        reason = Reason.AGREEMENT_ENDED if today > agreement.end else Reason.NOT_LIVE_AT_ISSUE
        cl.fail("agreement.live", reason, f"{runs}; today is {today}")
    agreed = set(agreement.mapping.values())
    outside = [d for d in application.domains if d not in agreed]
    if outside:
        cl.fail(
            "application.domains",
            Reason.DOMAIN_NOT_AGREED,
            f"not in the agreement with {sender.code}: {', '.join(outside)}",
        )
    else:
        cl.ok("application.domains", f"all {len(application.domains)} domains are agreed")
