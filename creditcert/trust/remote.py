"""Remote application over HTTP, the forwarding side (docs/partners.md, "Remote application"):
which partner registers an enterprise, and sending a signed application to that partner's
service. The orchestration of both sides is creditcert/remote_applications.py; the issuing side
is `city.applications.admit` behind `POST /api/v1/applications`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from creditcert.envelope.application import MEDIA_TYPE
from creditcert.errors import PartnerError
from creditcert.trust.sync import bounded_body
from creditcert.verify.result import Verification

PATH = "/api/v1/applications"
MAX_PDF = 32 * 1024 * 1024  # bytes; a 52-domain report is under 1 MB
MAX_PROBLEM = 16 * 1024
ISSUE_TIMEOUT = 120.0  # seconds to wait for the partner to issue (it may have a queue)


def registering_partner(credit_code: str, partners: list[str]) -> str | None:
    """The partner city whose division registered the code: characters 3–8 of a unified
    social credit code are the registering authority's GB/T 2260 division; a city's code with
    its trailing 00 pairs removed is the prefix of every division in it (230700 → 2307…)."""
    division = credit_code[2:8]
    for city in partners:
        prefix = city
        while prefix.endswith("00") and len(prefix) > 2:
            prefix = prefix[:-2]
        if division.isdigit() and division.startswith(prefix):
            return city
    return None


@dataclass(frozen=True, slots=True)
class RemoteReport:
    """A report a partner issued on an application forwarded from here, verified here."""

    partner: str
    number: str
    pdf: bytes
    verification: Verification


@dataclass(frozen=True, slots=True)
class Refusal:
    """The partner's answer when it did not issue: HTTP status, problem code, reason code (for
    a refused check) and what it said."""

    status: int
    code: str
    reason: str | None
    detail: str

    def describe(self) -> str:
        why = f"{self.reason}: " if self.reason else ""
        return f"HTTP {self.status} {self.code}: {why}{self.detail}".rstrip(": ")


def send(client, base_url: str, sealed: bytes) -> bytes | Refusal:
    """POST the sealed application; the PDF on 201, a Refusal for a problem answer. Transport
    failures and unreadable answers raise PartnerError."""
    url = base_url + PATH
    try:
        with client.stream(
            "POST",
            url,
            content=sealed,
            headers={"Content-Type": MEDIA_TYPE, "Accept": "application/pdf"},
            timeout=ISSUE_TIMEOUT,
        ) as answer:
            limit = MAX_PDF if answer.status_code == 201 else MAX_PROBLEM
            body = bounded_body(answer, limit, "the answer")
            status, kind = answer.status_code, answer.headers.get("content-type", "")
    except PartnerError:
        raise
    except Exception as exc:  # httpx's transport errors: refused, timed out, TLS
        raise PartnerError(f"{url}: {type(exc).__name__}: {exc}") from None
    if status == 201 and kind.startswith("application/pdf"):
        return body
    try:
        problem = json.loads(body)
        return Refusal(
            status,
            str(problem.get("code", "unknown"))[:64],
            str(problem["reason"])[:64] if problem.get("reason") else None,
            str(problem.get("detail") or problem.get("title") or "")[:500],
        )
    except (ValueError, AttributeError):
        raise PartnerError(f"{url} answered HTTP {status} ({kind or 'no type'})") from None
