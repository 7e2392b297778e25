"""The status of a partner's report number, asked of the partner's own service (docs/partners.md,
"Status of a partner's number").

A typed number carries no signature: only its issuer's registry knows whether it was issued. A
partner's service answers `GET <URL>/api/v1/reports/<number>` with `creditcert.api.status/1`
(status and validity, nothing about the subject). The URL is the one `partner add` recorded;
the HTTP client is the caller's (TLS verified, no redirects: `sync.new_client`). The answer
is read strictly and bounded; anything else is a `PartnerError` that the verifier turns into
*cannot decide*. PDFs and QR codes never come here: they verify offline from the bundle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from creditcert.errors import PartnerError
from creditcert.trust.partners import PartnerStore
from creditcert.trust.sync import bounded_body

STATUS_FORMAT = "creditcert.api.status/1"
STATUSES = ("issued", "revoked", "void", "pending", "unknown")
MAX_ANSWER = 4096  # bytes; an answer is ~200
_FIELDS = {"format", "number", "status", "issued_at", "valid_until", "valid_now"}


@dataclass(frozen=True, slots=True)
class NumberStatus:
    """What the issuing city's registry says of a number; times are set when it is issued."""

    number: str
    status: str
    issued_at: datetime | None
    valid_until: datetime | None


class PartnerStatus:
    """Asks partners' services for the status of their numbers, over an explicit client (with
    none, verification is offline: every question is refused unasked)."""

    def __init__(self, partners: PartnerStore, client, *, timeout: float):
        self.partners = partners
        self.client = client
        self.timeout = timeout

    def ask(self, code: str, number: str) -> NumberStatus:
        """The status of `number` (canonical form) from partner `code`'s service; PartnerError
        when no URL is recorded, the service cannot be reached or its answer is not one."""
        if self.client is None:
            raise PartnerError(f"{code}'s service not asked (verifying offline)")
        state = self.partners.sync_state(code)
        if state is None:
            raise PartnerError(
                f"no URL recorded for {code} (creditcert partner add {code} --url …)"
            )
        url = f"{state.url}/api/v1/reports/{quote(number, safe='')}"
        try:
            with self.client.stream(
                "GET", url, headers={"Accept": "application/json"}, timeout=self.timeout
            ) as answer:
                if answer.status_code != 200:
                    raise PartnerError(f"{url} answered HTTP {answer.status_code}")
                body = bounded_body(answer, MAX_ANSWER, f"{url}: the answer")
        except PartnerError:
            raise
        except Exception as exc:  # httpx's transport errors: refused, timed out, TLS
            raise PartnerError(f"{url}: {type(exc).__name__}: {exc}") from None
        return parse_answer(body, number, source=url)


def parse_answer(body: bytes, number: str, *, source: str) -> NumberStatus:
    """A `creditcert.api.status/1` answer about `number`, read strictly."""

    def refuse(why: str) -> PartnerError:
        return PartnerError(f"{source}: not a {STATUS_FORMAT} answer: {why}")

    try:
        raw = json.loads(body)
    except ValueError:
        raise refuse("not JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != STATUS_FORMAT:
        raise refuse(f"format {raw.get('format') if isinstance(raw, dict) else None!r}")
    missing = _FIELDS - set(raw)  # a later version may add fields; none may be missing
    if missing:
        raise refuse(f"no {', '.join(sorted(missing))}")
    if raw["number"] != number:
        raise refuse(f"it speaks of {raw['number']!r}, not {number}")
    status = raw["status"]
    if status not in STATUSES:
        raise refuse(f"status {status!r}")
    times = []
    for key in ("issued_at", "valid_until"):
        value = raw[key]
        if value is None and status != "issued":  # only an issued number needs its times
            times.append(None)
            continue
        try:
            when = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise refuse(f"{key} {value!r} is not an RFC 3339 time") from None
        if when.tzinfo is None:
            raise refuse(f"{key} {value!r} has no UTC offset")
        times.append(when)
    return NumberStatus(number, status, *times)
