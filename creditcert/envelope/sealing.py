"""Seal a report: the COSE_Sign1 envelope of the full document and the signed QR payload.

Both are COSE_Sign1 (RFC 9052, CBOR tag 18), ES256, with `{1: -7, 4: kid}` in the protected
header, made with python-cwt. The QR payload is a CWT whose claims carry a compact summary of the
report and the digest of the full document; it is then zlib-compressed, base45-encoded (RFC 9285)
and prefixed with `CC1:`, exactly the stack of the EU Digital COVID Certificate (docs/qr.md).
Times are passed explicitly: nothing here reads the clock.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import base45
import cbor2
from cwt import COSE, COSEKey

from creditcert.model.document import ReportDocument
from creditcert.trust.keys import Signer

QR_PREFIX = "CC1:"
SUMMARY_CLAIM = -65537  # private CWT claim (RFC 8392 §9.1: below -65536) holding the summary
CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_CTI = 1, 4, 6, 7
SUMMARY_VERSION = 1


def _cose_key(signer: Signer):
    return COSEKey.from_pem(signer.private_pem(), alg="ES256", kid=signer.kid)


def sign1(payload: bytes, signer: Signer) -> bytes:
    """COSE_Sign1 over `payload`, kid in the protected header, tagged (18)."""
    return COSE.new().encode(
        payload, _cose_key(signer), protected={1: -7, 4: signer.kid}, unprotected={}
    )


def envelope(doc: ReportDocument, signer: Signer) -> bytes:
    """The signed full document: COSE_Sign1 over its deterministic CBOR (report.cose)."""
    return sign1(doc.to_cbor(), signer)


def summary(doc: ReportDocument, catalog_codes: tuple[str, ...]) -> dict:
    """What the QR carries about a report, compactly (docs/qr.md).

    Domains are positions in the catalog named by `ci`/`cv` (a bitmap of those requested) and one
    count of counted records per requested domain, so 52 domains cost about 60 bytes.
    """
    bitmap = bytearray((len(catalog_codes) + 7) // 8)
    for code in doc.domains_requested:
        i = catalog_codes.index(code)
        bitmap[i // 8] |= 0x80 >> (i % 8)
    by_code = {d.code: len(d.records) for d in doc.domains}
    counts = [by_code[c] for c in catalog_codes if c in by_code]
    return {
        "v": SUMMARY_VERSION,
        "sc": doc.subject_code,
        "sn": doc.subject_name,
        "p": doc.purpose or "",
        "pf": doc.period.start.isoformat(),
        "pt": doc.period.end.isoformat(),
        "ci": doc.catalog_id,
        "cv": doc.catalog_version,
        "dm": bytes(bitmap),
        "dc": counts,
        "h": doc.digest(),
    }


@dataclass(frozen=True, slots=True)
class QrPayload:
    text: str  # CC1:… what the QR code holds
    cose: bytes  # the COSE_Sign1 before compression


def qr_payload(doc: ReportDocument, signer: Signer, catalog_codes: tuple[str, ...]) -> QrPayload:
    claims = {
        CLAIM_ISS: doc.issuer_code,
        CLAIM_IAT: int(doc.issued_at.timestamp()),
        CLAIM_EXP: int(doc.valid_until.timestamp()),
        CLAIM_CTI: doc.number.encode(),
        SUMMARY_CLAIM: summary(doc, catalog_codes),
    }
    cose = sign1(cbor2.dumps(claims, canonical=True), signer)
    text = QR_PREFIX + base45.b45encode(zlib.compress(cose, 9)).decode("ascii")
    return QrPayload(text, cose)
