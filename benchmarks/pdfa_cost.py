"""What PDF/A-3b costs in the render of the heaviest report: the subject with the most records,
all 52 domains, 5 years. One process, warm; each run lays the HTML out once and then writes it
every way below, interleaved in a rotating order so machine load and warm-up hit them alike.

- layout: WeasyPrint's HTML → pages (shared by every write below)
- floor: write_pdf with no variant, no attachments, no identifier
- issued: write_pdf as creditcert issues it (pdf/a-3b, attachments, /ID, pdfa.finisher)
- pydyf-deflate: the same, but streams deflated by pydyf on each serialisation (the old path)
- no-id: the same as pydyf-deflate without the file identifier (shows what the /ID hash cost)
- tagged: the same as issued, plus pdf_tags=True (structure tree, /MarkInfo)

Prints a Markdown table of min/median/max in ms.

    python benchmarks/pdfa_cost.py HOME [--runs 9]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import statistics
import time
from datetime import datetime

import duckdb

from creditcert import config
from creditcert import lookup as records
from creditcert.city import City
from creditcert.data.store import Store, dataset_path
from creditcert.envelope import qr as qr_format
from creditcert.envelope import report as report_envelope
from creditcert.issue import issuer as issue
from creditcert.issue import pdfa
from creditcert.model.clock import SHANGHAI


def heaviest_subject(data_dir) -> tuple[str, int]:
    """The credit code with the most records over every domain's dataset."""
    glob = str(dataset_path(data_dir, "*"))
    return duckdb.sql(
        f"SELECT credit_code, count(*) n FROM read_parquet('{glob}', union_by_name=true) "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    ).fetchall()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    import weasyprint

    city = City(dataclasses.replace(config.load(args.home), rate_limit_per_day=0))
    settings, now = city.settings, datetime.now(SHANGHAI)
    if not (city.layout.keys / "current").exists():
        city.keys.init(now)
    signer, renderer = city.keys.signer(now), city.renderer
    code, stored = heaviest_subject(settings.data_dir)
    request = records.resolve_request(settings.catalog, as_of=now.date(), all_domains=True, years=5)
    with Store(settings.data_dir, settings.catalog) as store:
        findings = records.lookup(store, settings, code, request)
    doc = issue.build_document(
        findings, settings, number="210100-2611-PDFACOST-0", key_id=signer.kid, issued_at=now
    )
    envelope = report_envelope.seal(doc, signer)
    qr = qr_format.encode(doc, signer, settings.catalog.codes)
    html = renderer.html(doc, qr.text)
    view = json.dumps(doc.to_data(), ensure_ascii=False, indent=1).encode()

    def attachments():
        return [
            weasyprint.Attachment(file_obj=io.BytesIO(envelope), name="report.cose", relationship="Source"),
            weasyprint.Attachment(file_obj=io.BytesIO(view), name="report.json", relationship="Alternative"),
        ]  # fmt: skip

    issued = dict(
        pdf_variant="pdf/a-3b",
        pdf_identifier=doc.number.encode(),
        finisher=pdfa.finisher(doc.issued_at),
    )
    ways = {
        "floor": lambda: {},
        "issued": lambda: {**issued, "attachments": attachments()},
        "pydyf-deflate": lambda: {**issued, "attachments": attachments(), "_old": True},
        "no-id": lambda: {**issued, "attachments": attachments(), "_old": True, "pdf_identifier": False},
        "tagged": lambda: {**issued, "attachments": attachments(), "pdf_tags": True},
    }  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in ("layout", *ways)}
    cpu: dict[str, list[float]] = {k: [] for k in times}  # CPU time: less hit by others' load
    sizes, pages = {}, 0
    deflate_once = pdfa._deflate_once
    for run in range(args.runs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        document = weasyprint.HTML(string=html).render(
            stylesheets=[renderer._css], font_config=renderer._fonts
        )
        layout, layout_cpu = time.perf_counter() - t0, time.process_time() - c0
        pages = len(document.pages)
        names = list(ways)
        for name in names[run % len(names) :] + names[: run % len(names)]:  # rotate the order
            options = ways[name]()
            pdfa._deflate_once = (lambda s: None) if options.pop("_old", False) else deflate_once
            t0, c0 = time.perf_counter(), time.process_time()
            out = document.write_pdf(font_config=renderer._fonts, **options)
            elapsed, elapsed_cpu = time.perf_counter() - t0, time.process_time() - c0
            sizes[name] = len(out)
            if run:  # the first run warms caches
                times[name].append(elapsed * 1000)
                cpu[name].append(elapsed_cpu * 1000)
        if run:
            times["layout"].append(layout * 1000)
            cpu["layout"].append(layout_cpu * 1000)
    pdfa._deflate_once = deflate_once

    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, WeasyPrint {weasyprint.__version__}, load "
        f"{os.getloadavg()[0]:.2f}. Report: {code}, {stored} records stored, "
        f"{sum(len(d.records) for d in findings.domains)} in the report, {pages} pages; "
        f"{args.runs} runs.\n"
    )
    print("| step | min ms | median ms | max ms | CPU median ms | bytes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, values in times.items():
        row = (min(values), statistics.median(values), max(values), statistics.median(cpu[name]))
        size = f"{sizes[name]:,}" if name in sizes else ""
        print(f"| {name} | " + " | ".join(f"{v:,.0f}" for v in row) + f" | {size} |")
    for label, table in (("wall", times), ("CPU", cpu)):
        med = {k: statistics.median(v) for k, v in table.items()}
        render, tags = med["layout"] + med["issued"], med["tagged"] - med["issued"]
        print(
            f"\n{label} medians: render (layout + issued write) {render:,.0f} ms; tagging "
            f"+{tags:,.0f} ms = {tags / render:.1%}; deflating once saves "
            f"{med['pydyf-deflate'] - med['issued']:,.0f} ms; the /ID hash costs "
            f"{med['pydyf-deflate'] - med['no-id']:,.0f} ms with pydyf's deflate"
        )


if __name__ == "__main__":
    main()
