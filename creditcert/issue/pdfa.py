"""What WeasyPrint's `pdf/a-3b` variant leaves to do before the PDF is written (its `finisher`
hook), so the signed file conforms (docs/report.md §PDF; tests/pdfa.py checks it).

- The Info dictionary gets no /Producer: pyHanko's signing revision writes its own in both the
  Info dictionary and the XMP, and a WeasyPrint one kept beside it would make them disagree.
- Each associated file is listed once in the catalog's /AF (WeasyPrint lists each twice).
- The attachments' /Params dates are the report's issue time, written with its offset
  (WeasyPrint writes the local clock's time marked as UTC).
- The XMP stream is not compressed, so non-PDF tools can read it (PDF/A-1 requires that, and
  PDF/A-3 readers expect it).
- Every stream is deflated once here: pydyf deflates a stream each time it serialises it, and
  the file identifier PDF/A requires is a hash over all objects serialised a second time.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from functools import partial
from typing import Any

# pydyf's own level, so the bytes are the ones pydyf would write (level 6 was 1-2 % bigger and
# no faster within the noise of benchmarks/pdfa_cost.py).
DEFLATE_LEVEL = 9


def finisher(issued_at: datetime):
    """The `finisher=` argument of WeasyPrint's `write_pdf` for a report issued at `issued_at`."""
    return partial(_finish, issued_at=issued_at)


def pdf_date(at: datetime) -> str:
    """A PDF date string (ISO 32000-1 7.9.4) with the time's own UTC offset."""
    offset = at.strftime("%z")
    return f"D:{at:%Y%m%d%H%M%S}{offset[:3]}'{offset[3:]}'"


def _finish(document: Any, pdf: Any, *, issued_at: datetime) -> None:
    import pydyf

    pdf.info.pop("Producer", None)
    if "AF" in pdf.catalog:
        pdf.catalog["AF"] = pydyf.Array(dict.fromkeys(pdf.catalog["AF"]))
    when = pydyf.String(pdf_date(issued_at))
    metadata = _object(pdf, pdf.catalog["Metadata"])
    metadata.compress = False
    for obj in pdf.objects:
        if not isinstance(obj, pydyf.Stream):
            continue
        if obj.extra.get("Type") == "/EmbeddedFile":
            obj.extra["Params"]["CreationDate"] = obj.extra["Params"]["ModDate"] = when
        if obj.compress:
            _deflate_once(obj)


def _object(pdf: Any, reference: bytes) -> Any:
    """The object `reference` (b"12 0 R") points to."""
    return pdf.objects[int(reference.split()[0])]


def _deflate_once(stream: Any) -> None:
    """What pydyf writes for a compressed stream, computed now instead of on each serialisation."""
    from pydyf import _to_bytes  # the item-to-bytes rule pydyf's Stream.data applies

    raw = b"\n".join(_to_bytes(item) for item in stream.stream)
    stream.stream = [zlib.compress(raw, DEFLATE_LEVEL)]
    stream.extra["Filter"] = "/FlateDecode"
    stream.compress = False
