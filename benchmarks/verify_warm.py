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

from creditcert.city import City
from creditcert.model.clock import SHANGHAI
from creditcert.registry import SqliteRegistry
from creditcert.verify.extract import read_qr_texts
from creditcert.verify.verifier import InputKind, Verifier

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
    city = City.open(home)
    now = datetime.now(SHANGHAI)
    registry = SqliteRegistry(city.layout.registry, read_only=True)
    verifier = Verifier(city.trust(at=now, registry=registry), at=now)
    pdf = pdf_path.read_bytes()
    first = verifier.pdf(pdf)
    doc = pypdfium2.PdfDocument(pdf)
    pages = len(doc)
    scan = doc[0].render(scale=300 / 72).to_pil().convert("L")
    doc.close()
    buf = io.BytesIO()
    scan.save(buf, format="PNG")
    png = buf.getvalue()
    qr = read_qr_texts(scan)[0]

    def run_case(case: dict) -> None:
        data = case["input"]
        kind = InputKind(case["kind"])
        verifier.verify(
            data if kind in (InputKind.QR, InputKind.NUMBER) else base64.b64decode(data), kind
        )

    cases = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(HOSTILE.glob("[0-9]*.json"))]
    cases = [c for c in cases if c["kind"] != "bundle"]
    worst = max(median_ms(lambda c=c: run_case(c), 1) for c in cases)
    print(
        json.dumps(
            {
                "verdict": first.verdict.value,
                "pages": pages,
                "pdf_ms": median_ms(lambda: verifier.pdf(pdf), 5),
                "qr_ms": median_ms(lambda: verifier.qr_text(qr), 200),
                "scan_ms": median_ms(lambda: verifier.image(png), 5),
                "hostile_worst_ms": worst,
            }
        )
    )


if __name__ == "__main__":
    main()
