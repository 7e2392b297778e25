"""report.cose: the signed full document, a COSE_Sign1 over its deterministic CBOR, attached to
the PDF as a PDF/A-3 associated file of this name (docs/report.md §2)."""

from __future__ import annotations

import cbor2

from creditcert.envelope.cose import Signer, sign1
from creditcert.errors import DecodeError, Reason
from creditcert.model.document import FORMAT, ReportDocument, from_data

ATTACHMENT = "report.cose"
MAX_ENVELOPE = 4 * 1024 * 1024  # bytes; a 52-domain report with many records is about 60 KB


def seal(doc: ReportDocument, signer: Signer) -> bytes:
    return sign1(doc.to_cbor(), signer)


def read_document(payload: bytes) -> ReportDocument:
    """The document from a verified envelope payload; raises DecodeError(stage `document`)."""
    try:
        doc = from_data(cbor2.loads(payload))
        if doc.format != FORMAT:
            raise ValueError(doc.format)
        return doc
    except Exception:
        raise DecodeError(
            "document", Reason.BAD_DOCUMENT, "envelope payload is not a report document"
        ) from None
