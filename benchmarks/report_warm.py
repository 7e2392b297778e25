"""Warm report issuance in one process: all 52 domains, random subjects, split by stage.

Prints JSON with medians (ms) of lookup, build+seal (document, envelope, QR), render (PDF/A),
sign (PAdES) and total, and of WeasyPrint alone rendering the same HTML (the floor).
"""

from __future__ import annotations

import dataclasses
import json
import random
import statistics
import sys
import time
from datetime import datetime

from creditcert import config
from creditcert import lookup as records
from creditcert.city import City
from creditcert.data.store import Store
from creditcert.envelope import qr as qr_format
from creditcert.envelope import report as report_envelope
from creditcert.issue import issuer as issue
from creditcert.issue import pades
from creditcert.model.clock import SHANGHAI


def main() -> None:
    home, n = sys.argv[1], int(sys.argv[2])
    city = City(dataclasses.replace(config.load(home), rate_limit_per_day=0))
    settings = city.settings
    now = datetime.now(SHANGHAI)
    if not (city.layout.keys / "current").exists():
        city.keys.init(now)
    signer = city.keys.signer(now)
    renderer = city.renderer
    store = Store(settings.data_dir, settings.catalog)
    codes = store.subject_codes(with_records=True, limit=None)
    picks = random.Random(3).sample(codes, n + 3)
    request = records.resolve_request(settings.catalog, as_of=now.date(), all_domains=True, years=3)
    import weasyprint

    stages: dict[str, list[float]] = {
        k: [] for k in ("lookup", "seal", "render", "sign", "total", "weasyprint")
    }
    pages, qr_len = [], []
    for i, code in enumerate(picks):
        t0 = time.perf_counter()
        findings = records.lookup(store, settings, code, request)
        t1 = time.perf_counter()
        doc = issue.build_document(
            findings,
            settings,
            number=f"210100-2611-BENCH{i:03d}-0",
            key_id=signer.kid,
            issued_at=now,
        )
        env = report_envelope.seal(doc, signer)
        qr = qr_format.encode(doc, signer, settings.catalog.codes)
        t2 = time.perf_counter()
        pdf = renderer.render(doc, qr.text, env)
        t3 = time.perf_counter()
        pades.sign_pdf(pdf, signer)
        t4 = time.perf_counter()
        html = renderer.html(doc, qr.text)
        t5 = time.perf_counter()
        wdoc = weasyprint.HTML(string=html).render(
            stylesheets=[renderer._css], font_config=renderer._fonts
        )
        wdoc.write_pdf()
        t6 = time.perf_counter()
        if i < 3:  # warm-up
            continue
        for k, v in (
            ("lookup", t1 - t0),
            ("seal", t2 - t1),
            ("render", t3 - t2),
            ("sign", t4 - t3),
            ("total", t4 - t0),
            ("weasyprint", t6 - t5),
        ):
            stages[k].append(v * 1000)
        pages.append(len(wdoc.pages))
        qr_len.append(len(qr.text))
    med = {k: statistics.median(v) for k, v in stages.items()}
    med["ratio_to_weasyprint"] = med["total"] / med["weasyprint"]
    med["pages_median"] = statistics.median(pages)
    med["qr_chars_max"] = max(qr_len)
    print(json.dumps(med))


if __name__ == "__main__":
    main()
