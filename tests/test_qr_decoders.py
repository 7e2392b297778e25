"""The printed QR reads in every decoder, on every page.

Two renderers (poppler, pdfium) and two decoders (zxing-cpp, which the verifier uses, and zbar, an
independent one) read every page of reports in all three languages at 150 dpi.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import qrcode
from PIL import Image

from creditcert.issue.render import qr_png
from creditcert.verify import extract

from .conftest import NOW_REPORTS, city_at
from .decoders import DECODERS, RENDERERS, zbar_texts


@pytest.fixture(scope="module")
def reports(tmp_path_factory, _fresh_template):
    """The `issued` busy subject's report in zh and in en (it has zh-en), issued in a copy."""
    home = tmp_path_factory.mktemp("qr") / "city"
    shutil.copytree(_fresh_template, home)
    city = city_at(home, rate_limit_per_day=0)
    city.keys.init(NOW_REPORTS)
    with city.store() as store:
        busy = store.subject_codes(with_records=True, limit=1)[0]
    request = city.request(as_of=NOW_REPORTS.date(), all_domains=True, years=5)
    issued = {lang: city.issue(busy, request, at=NOW_REPORTS, lang=lang) for lang in ("zh", "en")}
    return city, issued


# --- the symbol --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [300, 471, 538, 607, 800])
def test_the_png_is_the_same_symbol_as_before_in_a_4_module_quiet_zone(length):
    """The same version and modules as qrcode's own image of the text (the PNG before this
    change, 2 modules of border), now 4 modules of white around, each module 2 × 2 pixels."""
    text = "CC1:" + ("6BFOXN%TSMAHN-H6K:$ABC" * 40)[: length - 4]
    old = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=1, border=2)
    old.add_data(text)
    old.make(fit=True)
    before = np.asarray(old.make_image().get_image().convert("L")) > 127  # True = white

    img = Image.open(io.BytesIO(qr_png(text)))
    assert img.mode == "L" and img.width == img.height == 2 * (17 + 4 * old.version + 8)
    pixels = np.asarray(img)
    assert set(np.unique(pixels)) <= {0, 255}
    modules = pixels[::2, ::2]
    assert (modules.repeat(2, axis=0).repeat(2, axis=1) == pixels).all()  # sharp 2 × 2 modules
    white = modules > 127
    assert white[:4].all() and white[-4:].all() and white[:, :4].all() and white[:, -4:].all()
    assert (white[2:-2, 2:-2] == before).all()
    big = img.resize((img.width * 2, img.height * 2), Image.Resampling.NEAREST)
    assert zbar_texts(big) == [text]
    assert extract.read_qr_texts(np.asarray(big)) == [text]


# --- every page, every decoder, 150 dpi --------------------------------------------------------


@pytest.mark.parametrize("decoder", sorted(DECODERS))
@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_every_page_of_every_report_reads_at_150_dpi(issued, reports, renderer, decoder):
    """Reports with and without records, in zh-en, zh and en: each page rendered grey at 150 dpi
    gives exactly the report's QR text."""
    _, by_lang = reports
    pdfs = [issued["busy"][0], issued["clean"][0], *by_lang.values()]
    for report in pdfs:
        pages = RENDERERS[renderer](report.pdf, 150)
        assert len(pages) >= 1
        read = [DECODERS[decoder](page) for page in pages]
        assert read == [[report.qr.text]] * len(pages), (report.document.number, read)
