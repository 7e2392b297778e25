"""The QR payload: a signed CWT with a compact summary of the report, written and read here.

    CC1: + base45(zlib(COSE_Sign1(CWT claims)))

exactly the stack of the EU Digital COVID Certificate with our own prefix and summary claim
(docs/report.md §3). The claims are the CWT's iss (the city's admin code), iat and exp (integer
seconds), cti (the report number, UTF-8) and a private claim -65537 holding the summary map.
Reading is bounded at every stage and fails with a coded DecodeError naming the stage.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

import base45
import cbor2

from creditcert.envelope.cose import Signer, sign1
from creditcert.errors import DecodeError, Reason
from creditcert.model.document import ReportDocument

PREFIX = "CC1:"
SUMMARY_VERSION = 1
MAX_TEXT = 4_096  # characters; our payloads are about 500
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
    text: str  # CC1:… what the QR code holds
    cose: bytes  # the COSE_Sign1 before compression


def encode(doc: ReportDocument, signer: Signer, catalog_codes: tuple[str, ...]) -> QrPayload:
    """The signed QR payload of a document."""
    claims = QrClaims(
        issuer=doc.issuer_code,
        issued_at=int(doc.issued_at.timestamp()),
        expires=int(doc.valid_until.timestamp()),
        number=doc.number,
        summary=QrSummary.of(doc, catalog_codes),
    )
    cose = sign1(claims.to_cbor(), signer)
    return QrPayload(PREFIX + base45.b45encode(zlib.compress(cose, 9)).decode("ascii"), cose)


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """The COSE_Sign1 bytes inside a QR text, with what each stage found."""

    cose: bytes
    compressed_size: int


def unwrap(text: str) -> Unwrapped:
    """Size, prefix, base45 and bounded zlib; raises DecodeError naming the failed stage."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise DecodeError("size", Reason.TOO_LONG, f"QR text longer than {MAX_TEXT} characters")
    text = text.strip()
    if not text.startswith(PREFIX):
        raise DecodeError("prefix", Reason.BAD_PREFIX, f"starts {text[:4]!r}, expected {PREFIX!r}")
    try:
        compressed = base45.b45decode(text[len(PREFIX) :])
    except Exception:
        raise DecodeError("base45", Reason.BAD_BASE45, "not base45 (RFC 9285)") from None
    inflater = zlib.decompressobj()
    try:
        cose = inflater.decompress(compressed, MAX_COSE)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("oversized or truncated")
    except (zlib.error, ValueError) as exc:
        raise DecodeError(
            "zlib", Reason.BAD_ZLIB, f"not a complete zlib stream within {MAX_COSE} bytes ({exc})"
        ) from None
    return Unwrapped(cose, len(compressed))
