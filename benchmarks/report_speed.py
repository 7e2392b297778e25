"""Warm report issuance in one process, split by stage, next to its floor: WeasyPrint alone
rendering the same HTML in the same run (no PDF/A, no attachments, no signature).

Two cases: *typical* — random subjects with records, all 52 domains, 3 years (the median report);
*heavy* — the subject whose 52-domain, 5-year report counts the records nearest to 74 (11 pages
before the records became one table). Prints a JSON object per case with min/median/max in ms.

    python benchmarks/report_speed.py HOME [--runs 15]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import random
import statistics
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

HEAVY_RECORDS = 74


def spread(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 1),
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
    }


def heavy_subject(store, settings, request, codes) -> str:
    """The subject whose report counts the records nearest to HEAVY_RECORDS."""
    best, best_gap = codes[0], 10**9
    for code in codes:
        n = sum(len(d.records) for d in records.lookup(store, settings, code, request).domains)
        if abs(n - HEAVY_RECORDS) < best_gap:
            best, best_gap = code, abs(n - HEAVY_RECORDS)
            if best_gap == 0:
                break
    return best


def measure(city, store, signer, now, picks, request, runs) -> dict:
    import weasyprint

    settings, renderer = city.settings, city.renderer
    stages: dict[str, list[float]] = {
        k: [] for k in ("lookup", "seal", "render", "sign", "total", "floor")
    }
    pages, sizes, counts, qr_chars = [], [], [], []
    for i in range(runs + 2):
        code = picks[i % len(picks)]
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
        signed = pades.sign_pdf(pdf, signer)
        t4 = time.perf_counter()
        html = renderer.html(doc, qr.text)
        t5 = time.perf_counter()
        rendered = weasyprint.HTML(string=html).render(
            stylesheets=[renderer.stylesheet], font_config=renderer.font_config
        )
        rendered.write_pdf()
        t6 = time.perf_counter()
        if i < 2:  # warm-up
            continue
        for k, v in zip(
            stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, t6 - t5), strict=True
        ):
            stages[k].append(v * 1000)
        pages.append(len(rendered.pages))
        sizes.append(len(signed) / 1024)
        counts.append(doc.records_count)
        qr_chars.append(len(qr.text))
    out = {k: spread(v) for k, v in stages.items()}
    out["ours_over_floor"] = round(
        statistics.median(stages["total"]) / statistics.median(stages["floor"]), 2
    )
    out["pages"] = spread(pages)
    out["pdf_kib"] = spread(sizes)
    out["records"] = spread(counts)
    out["qr_chars"] = spread(qr_chars)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("home")
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    city = City(dataclasses.replace(config.load(args.home), rate_limit_per_day=0))
    settings = city.settings
    now = datetime.now(SHANGHAI)
    if not (city.layout.keys / "current").exists():
        city.keys.init(now)
    signer = city.keys.signer(now)
    store = Store(settings.data_dir, settings.catalog)
    codes = store.subject_codes(with_records=True, limit=None)
    rng = random.Random(3)
    typical = records.resolve_request(settings.catalog, as_of=now.date(), all_domains=True, years=3)
    five = records.resolve_request(settings.catalog, as_of=now.date(), all_domains=True, years=5)
    heavy = heavy_subject(store, settings, five, rng.sample(codes, min(len(codes), 3000)))
    city.renderer  # noqa: B018 — made before timing, as a service would
    gc.collect()
    result = {
        "typical": measure(
            city, store, signer, now, rng.sample(codes, args.runs + 2), typical, args.runs
        ),
        "heavy": measure(city, store, signer, now, [heavy], five, args.runs),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
