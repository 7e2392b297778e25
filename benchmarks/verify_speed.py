"""Warm verification speed, with its floor, and the smallest dpi at which each decoder reads a page.

    python benchmarks/verify_speed.py [--home CITY] [--subjects N --records N] [--runs N]

Without --home a sample city is generated in a temporary folder. The report is the one of the
subject with the most records, all domains, 5 years (the longest report), issued through City
(registry included, as a reviewer would meet it). Prints Markdown: the machine, the data, min /
median / max of the warm verifications (the PDF, its QR text, a 300-dpi scan of page 1), the
floor measured in the same run (pdfium loading the pages alone; decoding the scan's PNG alone;
zxing alone on it; zxing alone on page 1's QR box; qrcode's coding alone under qr_png), and the dpi table: for poppler and pdfium
rendering every page grey, and zxing-cpp and zbar decoding it, the lowest dpi from which every
dpi of the ladder up to 300 reads every page.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pypdfium2
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.decoders: the renderers and decoders the tests use

from creditcert import config  # noqa: E402
from creditcert.city import City  # noqa: E402
from creditcert.data import sample  # noqa: E402
from creditcert.issue.render import qr_png  # noqa: E402
from creditcert.model.clock import SHANGHAI  # noqa: E402
from creditcert.verify import extract  # noqa: E402
from creditcert.verify.verifier import Verifier  # noqa: E402
from tests.decoders import DECODERS, RENDERERS  # noqa: E402

AT = datetime(2026, 7, 1, 10, 30, tzinfo=SHANGHAI)
LADDER = (60, 72, 80, 90, 100, 110, 120, 135, 150, 175, 200, 250, 300)


def timings(fn, runs: int) -> tuple[float, float, float]:
    """min, median and max in ms of `runs` calls, after one warm-up call."""
    fn()
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        took.append((time.perf_counter() - start) * 1000)
    return min(took), statistics.median(took), max(took)


def qr_coding(text: str) -> None:
    """What qr_png cannot avoid: qrcode choosing the version and mask (as qr_png asks it)."""
    import qrcode

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=4)
    code.add_data(text)
    code.make(fit=True)


def city_home(args: argparse.Namespace, tmp: Path) -> Path:
    if args.home:
        return Path(args.home)
    home = tmp / "city"
    config.init(home, admin_code="210100", name="沈阳市", name_en="Shenyang")
    s = config.load(home)
    sample.generate(
        s.data_dir,
        s.catalog,
        s.issuer,
        subjects=args.subjects,
        records=args.records,
        seed=11,
        as_of=date(2026, 6, 30),
    )
    return home


def longest_report(home: Path):
    """The report of the subject with the most records: all domains, 5 years."""
    city = City.open(home)
    city = City(dataclasses.replace(city.settings, rate_limit_per_day=0))
    if not (city.layout.keys / "current").exists():
        city.keys.init(AT)
    with city.store() as store:
        code, records = store._con.execute(
            "SELECT credit_code, count(*) FROM records GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
        ).fetchone()
    request = city.request(as_of=AT.date(), all_domains=True, years=5)
    return city, city.issue(code, request, at=AT), records


def smallest_dpi(pdf: bytes, text: str) -> dict[tuple[str, str], int | None]:
    """(renderer, decoder) → the lowest dpi of LADDER from which every page reads at every
    higher dpi of LADDER; None when it fails at 300."""
    reads = {
        (r, d): {} for r in sorted(RENDERERS) for d in sorted(DECODERS)
    }  # (r, d) → dpi → all pages read
    for dpi in LADDER:
        for renderer in sorted(RENDERERS):
            pages = RENDERERS[renderer](pdf, dpi)
            for decoder in sorted(DECODERS):
                ok = all(DECODERS[decoder](page) == [text] for page in pages)
                reads[renderer, decoder][dpi] = ok
    out: dict[tuple[str, str], int | None] = {}
    for key, by_dpi in reads.items():
        lowest = None
        for dpi in reversed(LADDER):
            if not by_dpi[dpi]:
                break
            lowest = dpi
        out[key] = lowest
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", help="an existing city home (default: generate a sample city)")
    ap.add_argument("--subjects", type=int, default=20_000)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--no-dpi", action="store_true", help="skip the dpi table (~1 min)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = city_home(args, Path(tmp))
        city, report, records = longest_report(home)
        at = AT + timedelta(days=1)
        with city.registry(read_only=True) as registry:
            verifier = Verifier(city.trust(at=at, registry=registry), at=at)
            rows = measure(verifier, report.pdf, report.qr.text, args.runs)
        dpi = None if args.no_dpi else smallest_dpi(report.pdf, report.qr.text)

    doc = pypdfium2.PdfDocument(report.pdf)
    pages = len(doc)
    doc.close()
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"data: {'--home ' + args.home if args.home else f'{args.subjects:,} subjects / {args.records:,} records'}; "
        f"report of the subject with the most records ({records}): {pages} pages, "
        f"{len(report.pdf):,} bytes, QR text {len(report.qr.text)} characters\n"
    )
    print(f"| warm, {args.runs} runs | min ms | median ms | max ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, (lo, mid, hi) in rows:
        print(f"| {name} | {lo:.1f} | {mid:.1f} | {hi:.1f} |")
    if dpi:
        print("\n| smallest dpi reading every page (ladder " + ", ".join(map(str, LADDER)) + ") |")
        print("| renderer | decoder | dpi |")
        print("| --- | --- | ---: |")
        for (renderer, decoder), lowest in dpi.items():
            print(f"| {renderer} | {decoder} | {lowest or 'not at 300'} |")


def measure(verifier: Verifier, pdf: bytes, text: str, runs: int) -> list[tuple[str, tuple]]:
    doc = pypdfium2.PdfDocument(pdf)
    scan = doc[0].render(scale=300 / 72, grayscale=True).to_pil()
    buf = io.BytesIO()
    scan.save(buf, format="PNG")
    png = buf.getvalue()
    scan_pixels = np.asarray(scan)
    first = doc[0]
    [(crop, scale)] = extract._image_boxes(first)
    box = first.render(scale=scale, crop=crop, grayscale=True).to_numpy()
    first.close()
    doc.close()
    for verdict in (verifier.pdf(pdf).verdict, verifier.image(png).verdict):
        if verdict.value != "accepted":
            sys.exit(f"the benchmark report did not verify: {verdict.value}")

    def load_pages() -> None:
        d = pypdfium2.PdfDocument(pdf)
        for i in range(len(d)):
            d[i].close()
        d.close()

    def decode_png() -> None:
        with Image.open(io.BytesIO(png)) as img:
            img.load()

    return [
        ("verify the PDF", timings(lambda: verifier.pdf(pdf), runs)),
        ("  of which: the QR of every page (extract.page_qr_texts)", timings(lambda: extract.page_qr_texts(pdf), runs)),
        ("  floor: pdfium loading every page, nothing rendered", timings(load_pages, runs)),
        ("  floor: zxing alone on page 1's QR box", timings(lambda: extract.read_qr_texts(box), runs)),
        ("verify the QR text", timings(lambda: verifier.qr_text(text), runs * 10)),
        ("issue side: qr_png, the printed PNG", timings(lambda: qr_png(text), runs)),
        ("  floor: qrcode's coding alone (make)", timings(lambda: qr_coding(text), runs)),
        ("verify a 300-dpi PNG scan of page 1", timings(lambda: verifier.image(png), runs)),
        ("  floor: decoding that PNG alone", timings(decode_png, runs)),
        ("  floor: zxing alone on the decoded scan", timings(lambda: extract.read_qr_texts(scan_pixels), runs)),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
