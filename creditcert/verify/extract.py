"""From the bytes a reviewer has to what the checks need: the QR texts on a photo or on each page
of a PDF, the PDF's signatures and its embedded report.cose.

One pyHanko reader serves the signature and the attachment; pdfium renders the pages for the QR
decoder (pyHanko cannot render). Every read is bounded, and every failure is a DecodeError whose
reason says what could not be read.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from creditcert.envelope.report import ATTACHMENT, MAX_ENVELOPE
from creditcert.errors import DecodeError, Reason

MAX_PDF = 64 * 1024 * 1024
MAX_IMAGE_PIXELS = 60_000_000  # a 300-dpi A4 scan is 8.7 MP
MM = 72 / 25.4  # PDF points per millimetre
QR_CORNER_MM = (70, 60)  # our pages print the QR in the bottom-right 70 × 60 mm (docs/report.md)


@contextmanager
def quiet_library_logs(
    names: Sequence[str] = ("pyhanko", "pyhanko_certvalidator"),
) -> Iterator[list[str]]:
    """Keep a library's log lines (pyHanko logs whole tracebacks while rejecting a tampered
    file) off stderr; the caller may put them into a check's message."""
    caught: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record.getMessage())

    handler = Collect(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in names]
    saved = [(lg.propagate, lg.handlers[:]) for lg in loggers]
    for lg in loggers:
        lg.handlers = [handler]
        lg.propagate = False
    try:
        yield caught
    finally:
        for lg, (propagate, handlers) in zip(loggers, saved, strict=True):
            lg.handlers = handlers
            lg.propagate = propagate


def read_qr_texts(image: Any) -> list[str]:
    """The texts of the QR codes zxing-cpp finds on one image (PIL image or array)."""
    import zxingcpp

    return [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def image_qr_texts(data: bytes) -> list[str]:
    """The distinct QR texts on a photo or scan."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise DecodeError(
                    "image",
                    Reason.IMAGE_TOO_LARGE,
                    f"{img.width}×{img.height} pixels, at most {MAX_IMAGE_PIXELS:,}",
                )
            img.load()
            return sorted(set(read_qr_texts(img.convert("L"))))
    except Image.DecompressionBombError:
        raise DecodeError(
            "image", Reason.IMAGE_TOO_LARGE, f"more than {MAX_IMAGE_PIXELS:,} pixels"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DecodeError(
            "image", Reason.NOT_AN_IMAGE, f"cannot read the image ({type(exc).__name__})"
        ) from None


def open_pdf(data: bytes):
    """A pyHanko reader over a report PDF; DecodeError when it is not one we can read."""
    if len(data) > MAX_PDF:
        raise DecodeError("pdf", Reason.TOO_LARGE, f"{len(data):,} bytes, at most {MAX_PDF:,}")
    if not data.startswith(b"%PDF-"):
        raise DecodeError("pdf", Reason.NOT_PDF, "the file does not start with %PDF-")
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        with quiet_library_logs():
            reader = PdfFileReader(io.BytesIO(data), strict=False)
            encrypted = reader.encrypted
            reader.root  # noqa: B018 - parse the catalog now: a broken file fails here
    except Exception as exc:
        raise DecodeError(
            "pdf", Reason.BAD_PDF, f"not a readable PDF ({type(exc).__name__})"
        ) from None
    if encrypted:
        raise DecodeError("pdf", Reason.ENCRYPTED, "the PDF is encrypted; reports never are")
    return reader


def embedded_envelope(reader) -> bytes:
    """The bytes of the report.cose attachment (PDF/A-3 associated file)."""
    try:
        with quiet_library_logs():
            names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
            for i in range(0, len(names), 2):
                if str(names[i]) != ATTACHMENT:
                    continue
                stream = names[i + 1]["/EF"]["/F"].get_object()
                if int(stream.get("/Length", 0)) > MAX_ENVELOPE:
                    raise ValueError("too large")
                envelope = stream.data
                if len(envelope) > MAX_ENVELOPE:
                    raise ValueError("too large")
                return envelope
    except Exception as exc:
        raise DecodeError(
            "envelope", Reason.BAD_ENVELOPE, f"cannot read {ATTACHMENT} ({type(exc).__name__})"
        ) from None
    raise DecodeError("envelope", Reason.NO_ENVELOPE, f"no {ATTACHMENT} attached")


def page_qr_texts(data: bytes) -> list[list[str]]:
    """The QR texts on each page. Our layout puts the QR in the bottom-right corner, so that
    corner is read first at 250 dpi (a tenth of the page's pixels); a page where nothing is found
    there is read whole at 300 dpi."""
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(data)
    except Exception:
        return []
    try:
        texts = []
        for page in pdf:
            width, height = page.get_size()
            crop = (width - QR_CORNER_MM[0] * MM, 0, 0, height - QR_CORNER_MM[1] * MM)
            found = read_qr_texts(page.render(scale=250 / 72, crop=crop).to_pil().convert("L"))
            if not found:
                found = read_qr_texts(page.render(scale=300 / 72).to_pil().convert("L"))
            texts.append(found)
        return texts
    finally:
        pdf.close()
