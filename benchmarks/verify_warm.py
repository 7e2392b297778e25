"""Warm verification in one process: a report PDF, its QR text, a 300-dpi scan of page 1, and
the slowest hostile case of the published catalogue. Prints JSON of medians in ms."""

from __future__ import annotations

import base64
import io
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import pypdfium2

from creditcert import config
from creditcert.model.clock import SHANGHAI
from creditcert.registry import SqliteRegistry
from creditcert.verify import verifier as verify

HOSTILE = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "hostile"


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    home, pdf_path = sys.argv[1], Path(sys.argv[2])
    settings = config.load(home)
    now = datetime.now(SHANGHAI)
    trust = verify.trust_from_home(
        settings, SqliteRegistry(settings.home / "registry.sqlite"), now=now
    )
    pdf = pdf_path.read_bytes()
    first = verify.verify_pdf(pdf, trust, at=now)
    doc = pypdfium2.PdfDocument(pdf)
    pages = len(doc)
    scan = doc[0].render(scale=300 / 72).to_pil().convert("L")
    doc.close()
    buf = io.BytesIO()
    scan.save(buf, format="PNG")
    png = buf.getvalue()
    qr = verify.read_qr_texts([scan])[0][0]

    def run_case(case: dict) -> None:
        data = case["input"]
        if case["kind"] == "qr":
            verify.verify_qr_text(data, trust, at=now)
        elif case["kind"] == "number":
            verify.verify_number(data, trust)
        elif case["kind"] == "image":
            verify.verify_image(base64.b64decode(data), trust, at=now)
        else:
            verify.verify_pdf(base64.b64decode(data), trust, at=now)

    cases = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(HOSTILE.glob("[0-9]*.json"))]
    worst = max(median_ms(lambda c=c: run_case(c), 1) for c in cases)
    print(
        json.dumps(
            {
                "verdict": first.verdict.value,
                "pages": pages,
                "pdf_ms": median_ms(lambda: verify.verify_pdf(pdf, trust, at=now), 5),
                "qr_ms": median_ms(lambda: verify.verify_qr_text(qr, trust, at=now), 200),
                "scan_ms": median_ms(lambda: verify.verify_image(png, trust, at=now), 5),
                "hostile_worst_ms": worst,
            }
        )
    )


if __name__ == "__main__":
    main()
