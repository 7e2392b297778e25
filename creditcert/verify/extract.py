"""From the bytes a reviewer has to what the checks need: the QR texts on a photo or on each page
of a PDF, the PDF's signatures and its embedded report.cose.

One pyHanko reader serves the signature and the attachment; pdfium renders the pages for the QR
decoder (pyHanko cannot render), and only what it draws counts (docs/verify.md, "Reading the QR").
Every read is bounded, and every failure is a DecodeError whose reason says what could not be
read.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from creditcert.envelope.report import ATTACHMENT, MAX_ENVELOPE
from creditcert.errors import DecodeError, Reason

MAX_PDF = 64 * 1024 * 1024
MAX_IMAGE_PIXELS = 60_000_000  # a 300-dpi A4 scan is 8.7 MP
MM = 72 / 25.4  # PDF points per millimetre
QR_CORNER_MM = (70, 60)  # our pages print the QR in the bottom-right 70 × 60 mm (docs/report.md)
QR_BOX_PX = 480  # pixels across a QR box read off a page: 4.3 a module at version 17, 3 at 27
MAX_PAGE_IMAGES = 8  # a page with more images is read whole
MIN_SIDE = 300  # no photo copy is made smaller than this, in pixels
MAX_UPSCALED = 24_000_000  # nor larger than this many pixels


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
    """The texts of the QR codes zxing-cpp finds on one grey image (PIL image or array)."""
    import zxingcpp

    return [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def image_qr_texts(data: bytes) -> list[str]:
    """The distinct QR texts on a photo or scan: the image as it is first, then, if no QR was
    found, the copies a poor photo may still give one up on (photo_copies)."""
    gray = _open_gray(data)
    for copy in photo_copies(gray):
        found = read_qr_texts(copy)
        if found:
            return sorted(set(found))
    return []


def _open_gray(data: bytes) -> Any:
    """The image as an 8-bit grey numpy array; DecodeError when it is none or too large."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise DecodeError(
                    "image",
                    Reason.IMAGE_TOO_LARGE,
                    f"{img.width}×{img.height} pixels, at most {MAX_IMAGE_PIXELS:,}",
                )
            img.draft("L", img.size)  # a JPEG decodes straight to grey
            img.load()
            return np.asarray(img if img.mode == "L" else img.convert("L"))
    except Image.DecompressionBombError:
        raise DecodeError(
            "image", Reason.IMAGE_TOO_LARGE, f"more than {MAX_IMAGE_PIXELS:,} pixels"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DecodeError(
            "image", Reason.NOT_AN_IMAGE, f"cannot read the image ({type(exc).__name__})"
        ) from None


def photo_copies(gray: Any) -> Iterator[Any]:
    """The photo as it is, then copies to try when it has no QR: binarised at Otsu's threshold,
    halved (not under MIN_SIDE) and doubled (not over MAX_UPSCALED). The doubled copy reads a
    distant shot whose modules are under ~2 pixels; the other two read what zxing's own local
    binarizer and downscaling may miss."""
    import numpy as np
    from PIL import Image

    yield gray
    yield np.where(gray > otsu_threshold(gray), 255, 0).astype(np.uint8)
    img = Image.fromarray(gray)
    if min(img.size) >= 2 * MIN_SIDE:
        yield np.asarray(img.reduce(2))
    if 4 * img.width * img.height <= MAX_UPSCALED:
        yield np.asarray(img.resize((img.width * 2, img.height * 2), Image.Resampling.BICUBIC))


def otsu_threshold(gray: Any) -> int:
    """The grey level that best splits the image into dark and light (Otsu, 1979)."""
    import numpy as np

    counts = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    below = np.cumsum(counts)
    above = below[-1] - below
    weighted = np.cumsum(counts * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = below * above * (weighted / below - (weighted[-1] - weighted) / above) ** 2
    return int(np.nanargmax(between)) if np.isfinite(between).any() else 127


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


# PDFium is not thread-safe, not even on different documents (pypdfium2's documentation): the
# service verifies in threads, and two renders at once crashed the process. One at a time.
PDFIUM = threading.Lock()


def page_qr_texts(data: bytes) -> list[list[str]]:
    """The QR texts drawn on each page, as pdfium renders them.

    Only what is drawn counts: a QR image is found by where pdfium places its image objects and
    the page is then rendered (everything on it, clipping included) over that box alone, at ~4
    pixels a module. A page where that reads nothing (no image, or a QR drawn with paths) is
    read at its bottom-right corner at 250 dpi (our layout, docs/report.md) and then whole at
    300 dpi. Pages that render the box to the very same pixels share one decode."""
    import pypdfium2

    with PDFIUM:
        try:
            pdf = pypdfium2.PdfDocument(data)
        except Exception:
            return []
        decoded: dict[tuple[tuple[int, ...], bytes], list[str]] = {}
        try:
            texts = []
            for index in range(len(pdf)):
                page = pdf[index]
                try:
                    texts.append(_page_texts(page, decoded))
                finally:
                    page.close()
            return texts
        finally:
            pdf.close()


def _page_texts(page: Any, decoded: dict) -> list[str]:
    """The QR texts on one page: over its images first, then the corner, then the whole page."""
    found: list[str] = []
    for crop, scale in _image_boxes(page):
        grey = _render(page, scale, crop)
        key = (grey.shape, grey.tobytes())
        if key not in decoded:
            decoded[key] = read_qr_texts(grey)
        found += decoded[key]
    if found:
        return found
    width, height = page.get_size()
    corner = (width - QR_CORNER_MM[0] * MM, 0, 0, height - QR_CORNER_MM[1] * MM)
    found = read_qr_texts(_render(page, 250 / 72, corner))
    return found or read_qr_texts(_render(page, 300 / 72))


def _render(page: Any, scale: float, crop: tuple[float, float, float, float] = (0, 0, 0, 0)) -> Any:
    """The page, or the part `crop` leaves, as a grey numpy array. pdfium draws into a grey
    bitmap (5× faster than its grayscale flag, which converts every pixel of a colour one)."""
    import pypdfium2.raw as pdfium

    bitmap = page.render(scale=scale, crop=crop, force_bitmap_format=pdfium.FPDFBitmap_Gray)
    return bitmap.to_numpy()


def _image_boxes(page: Any) -> list[tuple[tuple[float, float, float, float], float]]:
    """Where the page's image objects are drawn, as (crop, scale) for pypdfium2's render: each
    box widened by a tenth for the quiet zone and cut to the page, overlapping boxes merged (one
    QR is read once). Nothing for a rotated page or one with many images: the slow path reads it."""
    import ctypes

    import pypdfium2.raw as pdfium

    if page.get_rotation():
        return []
    x0, y0, x1, y1 = page.get_cropbox()
    edges = [ctypes.c_float() for _ in range(4)]
    boxes: list[list[float]] = []
    for i in range(pdfium.FPDFPage_CountObjects(page.raw)):
        obj = pdfium.FPDFPage_GetObject(page.raw, i)
        if pdfium.FPDFPageObj_GetType(obj) != pdfium.FPDF_PAGEOBJ_IMAGE:
            continue
        if len(boxes) == MAX_PAGE_IMAGES or not pdfium.FPDFPageObj_GetBounds(obj, *edges):
            return []
        left, bottom, right, top = (e.value for e in edges)
        pad = max(right - left, top - bottom) / 10
        box = [max(x0, left - pad), max(y0, bottom - pad), min(x1, right + pad), min(y1, top + pad)]
        if box[0] < box[2] and box[1] < box[3]:
            boxes.append(box)
    return [
        (
            (left - x0, bottom - y0, x1 - right, y1 - top),
            QR_BOX_PX / max(right - left, top - bottom),
        )
        for left, bottom, right, top in _merged(boxes)
    ]


def _merged(boxes: list[list[float]]) -> list[list[float]]:
    """The boxes, every group of overlapping ones replaced by the box around them all."""
    out: list[list[float]] = []
    for box in boxes:
        while hit := [
            o for o in out if o[0] < box[2] and box[0] < o[2] and o[1] < box[3] and box[1] < o[3]
        ]:
            out.remove(hit[0])
            box = [
                min(box[0], hit[0][0]),
                min(box[1], hit[0][1]),
                max(box[2], hit[0][2]),
                max(box[3], hit[0][3]),
            ]
        out.append(box)
    return out
