"""The remote application (异地申请, docs/partners.md "Remote application"): a COSE_Sign1 that a
partner city sends to the city where an enterprise is registered, asking it to issue that
enterprise's report. Written and read here.

The payload is a CBOR map with text keys (format `creditcert.application/1`): the forwarding
city (`from`, whose signing key signs it), the issuing city (`to`), the enterprise's credit code,
the issuing city's domain codes, the years covered, the as-of day, the report's language, when it
was sent and a random 16-byte nonce that makes it single-use. Reading is strict and bounded: any
other shape is a coded DecodeError (stage `application`), never a trusted value.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime

import cbor2

from creditcert.envelope.cose import Signer, sign1
from creditcert.errors import DecodeError, Reason

FORMAT = "creditcert.application/1"
MEDIA_TYPE = "application/cose"
MAX_REQUEST = 16 * 1024  # bytes of the whole COSE_Sign1; a 64-domain request is about 1.5 KB
MAX_DOMAINS = 64
LANGS = ("zh", "en", "zh-en")
_CITY = re.compile(r"\d{6}", re.ASCII)
_CODE = re.compile(r"[0-9A-Z]{18}", re.ASCII)
_DOMAIN = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
KEYS = ("format", "from", "to", "subject", "domains", "years", "as_of", "lang", "sent_at", "nonce")


@dataclass(frozen=True, slots=True)
class Application:
    """What a partner asks of the issuing city, on behalf of an enterprise it signed in."""

    from_city: str
    to_city: str
    subject_code: str
    domains: tuple[str, ...]  # the issuing city's domain codes
    years: int
    as_of: date
    lang: str
    sent_at: datetime  # with its UTC offset
    nonce: bytes

    @classmethod
    def new(
        cls,
        *,
        from_city: str,
        to_city: str,
        subject_code: str,
        domains: tuple[str, ...],
        years: int,
        as_of: date,
        lang: str,
        sent_at: datetime,
    ) -> Application:
        """A fresh application with a random nonce; the same checks as reading one."""
        app = cls(
            from_city, to_city, subject_code, tuple(domains), years, as_of, lang, sent_at,
            secrets.token_bytes(16),
        )  # fmt: skip
        return read_application(app.to_cbor())

    def to_cbor(self) -> bytes:
        return cbor2.dumps(
            {
                "format": FORMAT,
                "from": self.from_city,
                "to": self.to_city,
                "subject": self.subject_code,
                "domains": list(self.domains),
                "years": self.years,
                "as_of": self.as_of.isoformat(),
                "lang": self.lang,
                "sent_at": self.sent_at.isoformat(timespec="seconds"),
                "nonce": self.nonce,
            },
            canonical=True,
        )


def seal_application(application: Application, signer: Signer) -> bytes:
    """The application signed by the forwarding city's current signing key."""
    return sign1(application.to_cbor(), signer)


def _distinct_domain_codes(domains: object) -> bool:
    return (
        isinstance(domains, list)
        and 1 <= len(domains) <= MAX_DOMAINS
        and all(isinstance(d, str) and _DOMAIN.fullmatch(d) for d in domains)
        and len(set(domains)) == len(domains)
    )


def _times(as_of: object, sent_at: object, bad) -> tuple[date, datetime]:
    """The day the application asks about and the time it was sent (with its UTC offset)."""
    try:
        day, sent = date.fromisoformat(as_of), datetime.fromisoformat(sent_at)
    except (TypeError, ValueError):
        raise bad("as_of / sent_at: ISO 8601 day and time expected") from None
    if sent.utcoffset() is None:
        raise bad("sent_at: the time needs its UTC offset")
    return day, sent


def read_application(payload: bytes) -> Application:
    """The application in a payload (after its signature verified); DecodeError otherwise."""

    def bad(why: str) -> DecodeError:
        return DecodeError("application", Reason.BAD_APPLICATION, why)

    try:
        raw = cbor2.loads(payload)
    except Exception:  # cbor2 raises many types on hostile input
        raise bad("the payload is not CBOR") from None
    if not isinstance(raw, dict) or set(raw) != set(KEYS):
        keys = sorted(map(str, raw)) if isinstance(raw, dict) else type(raw).__name__
        raise bad(f"expected exactly the keys {', '.join(KEYS)}; got {keys}")
    if raw["format"] != FORMAT:
        raise bad(f"format {str(raw['format'])[:40]!r}, expected {FORMAT}")

    def text(key: str, pattern: re.Pattern) -> str:
        value = raw[key]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise bad(f"{key}: {str(value)[:40]!r} is not {pattern.pattern}")
        return value

    domains = raw["domains"]
    if not _distinct_domain_codes(domains):
        raise bad(f"domains: 1 to {MAX_DOMAINS} distinct domain codes expected")
    years = raw["years"]
    if isinstance(years, bool) or not isinstance(years, int) or not 1 <= years <= 5:
        raise bad(f"years: {str(years)[:20]!r} is not 1 to 5")
    if raw["lang"] not in LANGS:
        raise bad(f"lang: {str(raw['lang'])[:20]!r} is not one of {', '.join(LANGS)}")
    nonce = raw["nonce"]
    if not isinstance(nonce, bytes) or len(nonce) != 16:
        raise bad("nonce: 16 bytes expected")
    as_of, sent_at = _times(raw["as_of"], raw["sent_at"], bad)
    return Application(
        text("from", _CITY),
        text("to", _CITY),
        text("subject", _CODE),
        tuple(domains),
        years,
        as_of,
        raw["lang"],
        sent_at,
        nonce,
    )
