"""The QR payload: a signed CWT with a compact summary of the report, written and read here.

    CC1: + base45(zlib(COSE_Sign1(CWT claims)))                  the text form
    <BASE>/CC1/ + digits(zlib(COSE_Sign1(CWT claims)))           the URL form

The text form is exactly the stack of the EU Digital COVID Certificate with our own prefix and
summary claim (docs/report.md §3). The URL form carries the same zlib bytes as decimal digits (7
bytes to 17 digits) under the city's web address, so that a phone's scanner opens the
verification page while the QR still verifies offline; the host is never trusted, the signature
decides. An issuer with a base URL writes the URL form; a reader takes both, forever.

The claims are the CWT's iss (the city's admin code), iat and exp (integer seconds), cti (the
report number, UTF-8) and a private claim -65537 holding the summary map. Reading is bounded at
every stage and fails with a coded DecodeError naming the stage.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any
from urllib.parse import urlsplit

import base45
import cbor2

from creditcert.envelope.cose import Signer, sign1
from creditcert.errors import DecodeError, Reason
from creditcert.model.document import ReportDocument

PREFIX = "CC1:"
URL_MARKER = "/CC1/"  # the URL form: <BASE>/CC1/<digits>; found case-insensitively
SUMMARY_VERSION = 1
MAX_TEXT = 4_096  # characters; our payloads are about 500 (text form) or 1,100 (URL form)
CHUNK = 7  # bytes of a full chunk of the URL form's digits
# digits for a chunk of k bytes: ceil(8k·log10 2), the fewest that hold every value of k bytes
CHUNK_DIGITS = {1: 3, 2: 5, 3: 8, 4: 10, 5: 13, 6: 15, 7: 17}
_BYTES_OF_DIGITS = {d: k for k, d in CHUNK_DIGITS.items()}
QR_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
_MARKER = re.compile(re.escape(URL_MARKER), re.IGNORECASE | re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
MAX_COSE = 64 * 1024  # bytes after decompression: zlib bombs stop here


class Claim(IntEnum):
    """CWT claim labels (RFC 8392) and our private summary claim (below -65536, §9.1)."""

    ISS = 1
    EXP = 4
    IAT = 6
    CTI = 7
    SUMMARY = -65537


@dataclass(frozen=True, slots=True)
class QrSummary:
    """What the QR says about a report, compactly: 52 domains cost about 60 bytes."""

    subject_code: str  # sc
    subject_name: str  # sn
    purpose: str  # p ("" for a custom list of domains)
    period_from: str  # pf, YYYY-MM-DD
    period_to: str  # pt
    catalog_id: str  # ci
    catalog_version: str  # cv
    domain_bitmap: bytes  # dm: bit i (MSB first) = the catalog's i-th domain was requested
    domain_counts: tuple[int, ...]  # dc: counted records per requested domain, catalog order
    digest: bytes  # h: SHA-256 of the document's deterministic CBOR
    version: int = SUMMARY_VERSION  # v

    @classmethod
    def of(cls, doc: ReportDocument, catalog_codes: tuple[str, ...]) -> QrSummary:
        bitmap = bytearray((len(catalog_codes) + 7) // 8)
        for code in doc.domains_requested:
            i = catalog_codes.index(code)
            bitmap[i // 8] |= 0x80 >> (i % 8)
        by_code = {d.code: len(d.records) for d in doc.domains}
        return cls(
            subject_code=doc.subject_code,
            subject_name=doc.subject_name,
            purpose=doc.purpose or "",
            period_from=doc.period.start.isoformat(),
            period_to=doc.period.end.isoformat(),
            catalog_id=doc.catalog_id,
            catalog_version=doc.catalog_version,
            domain_bitmap=bytes(bitmap),
            domain_counts=tuple(by_code[c] for c in catalog_codes if c in by_code),
            digest=doc.digest(),
        )

    def to_cbor(self) -> dict[str, Any]:
        return {
            "v": self.version,
            "sc": self.subject_code,
            "sn": self.subject_name,
            "p": self.purpose,
            "pf": self.period_from,
            "pt": self.period_to,
            "ci": self.catalog_id,
            "cv": self.catalog_version,
            "dm": self.domain_bitmap,
            "dc": list(self.domain_counts),
            "h": self.digest,
        }

    @classmethod
    def from_cbor(cls, value: Any) -> QrSummary:
        """The summary from its decoded map; every key must be there with its type."""
        types = {"v": int, "sc": str, "sn": str, "p": str, "pf": str, "pt": str, "ci": str}
        types |= {"cv": str, "dm": bytes, "dc": list, "h": bytes}
        if not isinstance(value, dict) or any(
            not isinstance(value.get(k), t) or isinstance(value.get(k), bool)
            for k, t in types.items()
        ):
            raise ValueError("summary keys or types")
        counts = value["dc"]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
            raise ValueError("domain counts")
        if value["v"] != SUMMARY_VERSION or len(value["h"]) != 32:
            raise ValueError("summary version or digest length")
        return cls(
            value["sc"],
            value["sn"],
            value["p"],
            value["pf"],
            value["pt"],
            value["ci"],
            value["cv"],
            value["dm"],
            tuple(counts),
            value["h"],
            value["v"],
        )

    def domains(self, catalog_codes: tuple[str, ...]) -> list[str]:
        """The requested domain codes, in the order of the catalog named by ci/cv."""
        bitmap = self.domain_bitmap
        return [
            c
            for i, c in enumerate(catalog_codes)
            if i // 8 < len(bitmap) and bitmap[i // 8] & (0x80 >> (i % 8))
        ]

    @property
    def records_count(self) -> int:
        return sum(self.domain_counts)


@dataclass(frozen=True, slots=True)
class QrClaims:
    """The CWT claims of a QR payload."""

    issuer: str  # iss: GB/T 2260 code of the issuing city
    issued_at: int  # iat, seconds since the epoch
    expires: int  # exp
    number: str  # cti, the report number
    summary: QrSummary

    def to_cbor(self) -> bytes:
        return cbor2.dumps(
            {
                Claim.ISS: self.issuer,
                Claim.IAT: self.issued_at,
                Claim.EXP: self.expires,
                Claim.CTI: self.number.encode(),
                Claim.SUMMARY: self.summary.to_cbor(),
            },
            canonical=True,
        )

    @classmethod
    def from_cbor(cls, payload: bytes) -> QrClaims:
        """Claims from a verified payload; raises DecodeError(stage `claims`)."""
        try:
            claims = cbor2.loads(payload)
            iss, iat, exp, cti = (claims[c] for c in (Claim.ISS, Claim.IAT, Claim.EXP, Claim.CTI))
            if not (
                isinstance(iss, str)
                and all(isinstance(t, int) and not isinstance(t, bool) for t in (iat, exp))
                and isinstance(cti, bytes)
            ):
                raise TypeError
            return cls(iss, iat, exp, cti.decode(), QrSummary.from_cbor(claims[Claim.SUMMARY]))
        except Exception:
            raise DecodeError(
                "claims",
                Reason.BAD_CLAIMS,
                "payload is not a creditcert CWT (iss, iat, exp, cti, complete summary)",
            ) from None

    def validity(self, tz) -> tuple[datetime, datetime]:
        return datetime.fromtimestamp(self.issued_at, tz), datetime.fromtimestamp(self.expires, tz)


@dataclass(frozen=True, slots=True)
class QrPayload:
    text: str  # what the QR code holds: <BASE>/CC1/<digits>, or CC1:<base45> without a base URL
    cose: bytes  # the COSE_Sign1 before compression


def encode(
    doc: ReportDocument,
    signer: Signer,
    catalog_codes: tuple[str, ...],
    *,
    base_url: str | None = None,
) -> QrPayload:
    """The signed QR payload of a document: the URL form under base_url (the city's
    Settings.service.base_url), the CC1: text form when there is none."""
    claims = QrClaims(
        issuer=doc.issuer_code,
        issued_at=int(doc.issued_at.timestamp()),
        expires=int(doc.valid_until.timestamp()),
        number=doc.number,
        summary=QrSummary.of(doc, catalog_codes),
    )
    cose = sign1(claims.to_cbor(), signer)
    return QrPayload(text_of(zlib.compress(cose, 9), base_url), cose)


def text_of(compressed: bytes, base_url: str | None = None) -> str:
    """The QR text carrying the zlib bytes: url_prefix(base_url) + digits, or CC1: + base45."""
    if base_url is None:
        return PREFIX + base45.b45encode(compressed).decode("ascii")
    return url_prefix(base_url) + to_digits(compressed)


def url_prefix(base_url: str) -> str:
    """<BASE>/CC1/ with the scheme and host in upper case (RFC 3986 §3.1, §3.2.2: both are
    case-insensitive), so that a usual address stays in the QR alphanumeric set; the path (and
    any user info) is kept as configured, a trailing slash dropped."""
    parts = urlsplit(base_url.rstrip("/"))
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the base URL must be an http(s) URL, got {base_url!r}")
    user, at, host = parts.netloc.rpartition("@")
    return f"{parts.scheme.upper()}://{user}{at}{host.upper()}{parts.path}{URL_MARKER}"


def to_digits(data: bytes) -> str:
    """Bytes as decimal digits: each full chunk of 7 bytes (a big-endian integer) as exactly 17
    digits, a last chunk of k = 1..6 bytes as CHUNK_DIGITS[k] digits, zero-padded."""
    return "".join(
        str(int.from_bytes(data[i : i + CHUNK], "big")).zfill(
            CHUNK_DIGITS[len(data[i : i + CHUNK])]
        )
        for i in range(0, len(data), CHUNK)
    )


def from_digits(digits: str) -> bytes:
    """The bytes of to_digits' output; raises DecodeError(stage `digits`) for anything else."""
    if not _DIGITS.fullmatch(digits):
        raise DecodeError("digits", Reason.BAD_DIGITS, "no decimal digits 0-9 (alone) after /CC1/")
    full = CHUNK_DIGITS[CHUNK]
    tail = len(digits) % full
    if tail and tail not in _BYTES_OF_DIGITS:
        raise DecodeError(
            "digits",
            Reason.BAD_DIGIT_COUNT,
            f"{len(digits)} digits leave {tail} after the 17-digit chunks; a last chunk has "
            f"{', '.join(str(CHUNK_DIGITS[k]) for k in range(1, CHUNK))} digits",
        )
    out = bytearray()
    for i in range(0, len(digits), full):
        chunk = digits[i : i + full]
        size = _BYTES_OF_DIGITS[len(chunk)]
        value = int(chunk)
        if value >> (8 * size):
            raise DecodeError(
                "digits",
                Reason.DIGIT_CHUNK_OVERFLOW,
                f"digits {i + 1}-{i + len(chunk)} are {chunk}, over {256**size - 1:,}, the "
                f"most {size} byte(s) hold",
            )
        out += value.to_bytes(size, "big")
    return bytes(out)


class Mode(StrEnum):
    """A QR segment's mode (ISO/IEC 18004 §7.4)."""

    NUMERIC = "numeric"
    ALPHANUMERIC = "alphanumeric"
    BYTE = "byte"


def segments(text: str) -> list[tuple[Mode, str]]:
    """How the QR symbol codes a text: the URL form as its prefix (alphanumeric when every
    character is in that set, else byte) then its digits (numeric); a CC1: text (even one whose
    base45 happens to hold /CC1/) and any other text as one segment, alphanumeric if it can be."""

    def mode(part: str) -> Mode:
        return Mode.ALPHANUMERIC if set(part) <= QR_ALPHANUMERIC else Mode.BYTE

    marker = None if text.startswith(PREFIX) else _last_marker(text)  # as unwrap reads it
    if marker is not None and _DIGITS.fullmatch(text[marker:]):
        return [(mode(text[:marker]), text[:marker]), (Mode.NUMERIC, text[marker:])]
    return [(mode(text), text)]


def _last_marker(text: str) -> int | None:
    """Where the characters after the last /CC1/ (any case) begin, or None."""
    found = list(_MARKER.finditer(text))
    return found[-1].end() if found else None


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """The COSE_Sign1 bytes inside a QR text, with what each stage found."""

    cose: bytes
    compressed_size: int
    form: str  # how the zlib bytes were carried: "CC1: + base45" or "URL /CC1/ + digits"


def unwrap(text: str) -> Unwrapped:
    """Size, form, base45 or digits, and bounded zlib; raises DecodeError naming the failed
    stage. `CC1:` at the start (case-sensitive) is the text form; otherwise any text holding
    /CC1/ (any case) is the URL form, its digits those after the last /CC1/ up to the end or a
    `?` or `#`. Nothing else of the URL is read: its host is not trusted for anything."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise DecodeError("size", Reason.TOO_LONG, f"QR text longer than {MAX_TEXT} characters")
    text = text.strip()
    if text.startswith(PREFIX):
        form = f"{PREFIX} + base45"
        try:
            compressed = base45.b45decode(text[len(PREFIX) :])
        except Exception:
            raise DecodeError("base45", Reason.BAD_BASE45, "not base45 (RFC 9285)") from None
    elif (marker := _last_marker(text)) is not None:
        form = f"URL {URL_MARKER} + digits"
        compressed = from_digits(re.split(r"[?#]", text[marker:], maxsplit=1)[0])
    else:
        raise DecodeError(
            "prefix",
            Reason.BAD_PREFIX,
            f"starts {text[:4]!r}, expected {PREFIX!r} or a URL holding {URL_MARKER!r}",
        )
    inflater = zlib.decompressobj()
    try:
        cose = inflater.decompress(compressed, MAX_COSE)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("oversized or truncated")
    except (zlib.error, ValueError) as exc:
        raise DecodeError(
            "zlib", Reason.BAD_ZLIB, f"not a complete zlib stream within {MAX_COSE} bytes ({exc})"
        ) from None
    return Unwrapped(cose, len(compressed), form)
