"""Two renderers and two QR decoders, to check that a printed report reads in more than the one
the verifier uses: poppler (`pdftoppm`) and pdfium render; zxing-cpp and zbar decode.

zbar runs as its command-line tool (`zbarimg`, Debian zbar-tools) in a process of its own: an
implementation that shares no code with the verifier's and needs no Python binding.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pypdfium2
from PIL import Image

from creditcert.verify.extract import read_qr_texts


def zbar_texts(image: Image.Image | bytes) -> list[str]:
    """The QR texts zbarimg reads on an image (PIL image, or the bytes of an image file)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image"
        if isinstance(image, bytes):
            path.write_bytes(image)
        else:
            image.save(path, format="PNG")
        run = subprocess.run(
            ["zbarimg", "--raw", "--quiet", "--nodbus", "-Sdisable", "-Sqrcode.enable", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    if run.returncode not in (0, 4):  # 4: no symbol found
        raise RuntimeError(f"zbarimg failed ({run.returncode}): {run.stderr.strip()}")
    return run.stdout.splitlines()


def zxing_texts(image: Image.Image | bytes) -> list[str]:
    """The QR texts zxing-cpp reads on an image, in one plain pass (no fallback copies)."""
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    return read_qr_texts(np.asarray(image.convert("L")))


DECODERS = {"zxing": zxing_texts, "zbar": zbar_texts}


def poppler_pages(pdf: bytes, dpi: float, pages: int | None = None) -> list[Image.Image]:
    """The pages (the first `pages`, or all) rendered grey by poppler at `dpi`."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.pdf"
        source.write_bytes(pdf)
        last = ["-l", str(pages)] if pages else []
        subprocess.run(
            ["pdftoppm", "-gray", "-r", str(dpi), *last, str(source), str(Path(tmp) / "page")],
            check=True,
            capture_output=True,
        )
        images = []
        for path in sorted(Path(tmp).glob("page-*.pgm")):
            with Image.open(path) as img:
                images.append(img.copy())
        return images


def pdfium_pages(pdf: bytes, dpi: float, pages: int | None = None) -> list[Image.Image]:
    """The pages (the first `pages`, or all) rendered grey by pdfium at `dpi`."""
    doc = pypdfium2.PdfDocument(pdf)
    try:
        count = min(len(doc), pages or len(doc))
        return [doc[i].render(scale=dpi / 72, grayscale=True).to_pil() for i in range(count)]
    finally:
        doc.close()


RENDERERS = {"poppler": poppler_pages, "pdfium": pdfium_pages}
