"""Render a report document to a PDF/A-3b file: Jinja2 + WeasyPrint, QR on every page.

The signed envelope (report.cose) and a JSON view ride along as PDF/A-3 associated files, as
Factur-X e-invoices carry their XML. One Renderer per process reuses the parsed templates,
stylesheet and font configuration (docs/report.md).
"""

from __future__ import annotations

import atexit
import base64
import gc
import io
import json
import logging

import jinja2
import qrcode
from markupsafe import Markup

from creditcert.data.text import visible
from creditcert.errors import RenderError
from creditcert.issue import pdfa
from creditcert.model.document import ReportDocument
from creditcert.resources import templates_dir
from creditcert.rules.vocab import KIND_NAMES, LEFT_OUT_NAMES, Kind, LeftOut

CJK_FAMILIES = ("Noto Serif CJK SC", "Noto Sans CJK SC")
LANGS = ("zh", "en", "zh-en")


def _font_families() -> frozenset[str]:
    from creditcert.issue.fonts import installed

    return frozenset(family for face in installed() for family in face.families)


def qr_png(text: str) -> bytes:
    """The QR symbol: alphanumeric mode (base45 is that alphabet), error correction Q, inside the
    quiet zone of 4 modules ISO/IEC 18004 asks for. qrcode does the coding; the PNG is written by
    PIL from its matrix (qrcode's pure-Python writer took ~15 ms a report), 8-bit grey so that
    WeasyPrint embeds one byte a pixel, not three.

    Each module is exactly 2 × 2 pixels and the page scales the image without smoothing
    (`image-rendering: pixelated`); a raster is drawn once per page for free, where an SVG path of
    ~6,000 squares cost 0.3 s a page. Not 1 pixel a module: poppler interpolates any image it
    enlarges less than 4× whatever /Interpolate says, and at 150 dpi that blur (one pixel drawn
    2.2× wide) kept zbar from reading the page; 2 pixels are drawn about 1:1 at 150 dpi (which
    decoder reads what at which dpi: docs/report.md §3)."""
    import numpy as np
    from PIL import Image

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=4)
    code.add_data(text)
    code.make(fit=True)
    dark = np.array(code.get_matrix(), dtype=bool)  # the quiet zone included
    grey = np.where(dark, 0, 255).astype(np.uint8).repeat(2, axis=0).repeat(2, axis=1)
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="PNG")
    return buf.getvalue()


class Renderer:
    def __init__(self):
        missing = [f for f in CJK_FAMILIES if f not in _font_families()]
        if missing:
            raise RenderError(
                f"CJK font(s) {', '.join(missing)} not installed (Debian: fonts-noto-cjk); "
                "refusing to print boxes instead of Chinese"
            )
        import weasyprint  # heavy: only commands that render pay for it
        from weasyprint.text.fonts import FontConfiguration

        self._weasyprint = weasyprint
        from creditcert.issue import fonts

        self.font_config = FontConfiguration()
        base = templates_dir()
        # The trimmed faces first (creditcert.issue.fonts), the full ones behind them.
        faces = fonts.font_face_css(fonts.trimmed_faces())
        self.stylesheet = weasyprint.CSS(
            string=faces + (base / "report.css").read_text(encoding="utf-8"),
            base_url=str(base),
            font_config=self.font_config,
        )
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(base),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            finalize=_shown,
        )
        self._template = self._env.get_template("report.html.j2")
        self._warm = False

    def html(self, doc: ReportDocument, qr_text: str, lang: str = "zh-en") -> str:
        if lang not in LANGS:
            raise RenderError(f"--lang {lang!r} unknown; allowed: {', '.join(LANGS)}")
        png = base64.b64encode(qr_png(qr_text)).decode()
        zh = lang != "en"
        return self._template.render(
            doc=doc,
            lang=lang,
            qr_src=f"data:image/png;base64,{png}",
            entity_type=_entity_type(doc.entity_type, zh),
            kind_names={k.value: KIND_NAMES[k][0 if zh else 1] for k in Kind},
            leftout_names={r.value: LEFT_OUT_NAMES[r][0 if zh else 1] for r in LeftOut},
            money=lambda v: "" if v is None else f"{float(v):,.2f}",
        )

    def render(
        self, doc: ReportDocument, qr_text: str, envelope: bytes, lang: str = "zh-en"
    ) -> bytes:
        wp = self._weasyprint
        attachments = [
            wp.Attachment(
                file_obj=io.BytesIO(envelope),
                name="report.cose",
                description="Signed report document (COSE_Sign1 over deterministic CBOR)",
                relationship="Source",
            ),
            wp.Attachment(
                file_obj=io.BytesIO(
                    json.dumps(doc.to_data(), ensure_ascii=False, indent=1).encode()
                ),
                name="report.json",
                description="The report document as JSON (unsigned view of report.cose)",
                relationship="Alternative",
            ),
        ]
        with _fail_on_slow_fonts():
            pdf = wp.HTML(string=self.html(doc, qr_text, lang)).write_pdf(
                stylesheets=[self.stylesheet],
                font_config=self.font_config,
                pdf_variant="pdf/a-3b",
                attachments=attachments,
                pdf_identifier=doc.number.encode(),
                uncompressed_pdf=False,
                finisher=pdfa.finisher(doc.issued_at),
            )
        if not self._warm:
            # What the first render loaded (imports, fonts, stylesheets) lives as long as the
            # process: out of the collector's way, later renders spend 4-7 % less in it.
            gc.freeze()
            atexit.register(gc.unfreeze)  # so extension types are freed at exit, not reported
            self._warm = True
        return pdf


def _entity_type(code: str, zh: bool) -> str:
    from creditcert.rules.codes import ENTITY_TYPES

    name = ENTITY_TYPES.get(code[:1], {}).get(code[1:2], "")
    return f"{name} ({code})" if zh and name else code


class _SlowFontHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class _fail_on_slow_fonts:
    """WeasyPrint falls back to fontTools subsetting (5–15× slower) without libharfbuzz-subset0."""

    def __enter__(self):
        self.handler = _SlowFontHandler()
        logging.getLogger("weasyprint").addHandler(self.handler)

    def __exit__(self, *exc):
        logging.getLogger("weasyprint").removeHandler(self.handler)
        slow = [
            m for m in self.handler.messages if "harfbuzz" in m.lower() or "fonttools" in m.lower()
        ]
        if slow and exc[0] is None:
            raise RenderError(
                f"font subsetting fell back to the slow path: {slow[0]} "
                "(install libharfbuzz-subset0)"
            )


def _shown(value: object) -> object:
    """Every text the page prints, with control and bidi characters from department data made
    visible (\\x1b, U+202E): the signed document keeps them as sent, the page never hides any."""
    if isinstance(value, str) and not isinstance(value, Markup):  # Markup: the template's own
        return visible(value, keep="\n\t")
    return value
