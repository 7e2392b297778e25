"""Batch issuance speed (issue 10): reports per second of `run_batch` (what `creditcert report
batch` runs) at 1 and 2 workers, for typical subjects (a generated sample city, subjects with
records, a purpose preset), min / median / max of several runs; beside it, in the same run, the
floor: one process issuing the same subjects in a warm `City.issue` loop, and how many cores two
busy loops get at the time (less than 2 on a shared machine: the ceiling for 2 workers).

Each batch run is measured end to end (starting the workers included: what a user waits for)
and steady (first to last report, over the reports after the first). Prints a Markdown table,
or JSON with --json.

    python benchmarks/batch_speed.py [--subjects 3000] [--records 15000] [--reports 12]
                                     [--runs 3] [--purpose bidding] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from creditcert import config
from creditcert.city import City
from creditcert.data import sample
from creditcert.issue.batch import Job, run_batch
from creditcert.model.clock import SHANGHAI


def now() -> datetime:
    return datetime.now(SHANGHAI)


def make_city(scratch: Path, subjects: int, records: int) -> City:
    """A sample city with keys and no rate limit (the runs issue for the same subjects)."""
    home = scratch / "city"
    config.init(home, admin_code="210100", name="沈阳市", name_en="Shenyang")
    settings = config.load(home)
    as_of = now().date() - timedelta(days=1)
    sample.generate(
        settings.data_dir, settings.catalog, settings.issuer,
        subjects=subjects, records=records, seed=11, as_of=as_of,
    )  # fmt: skip
    city = City(dataclasses.replace(settings, rate_limit_per_day=0))
    city.keys.init(now() - timedelta(minutes=1))
    return city


def floor_run(city: City, codes: list[str], purpose: str) -> float:
    """Reports per second of one warm process issuing one report after another."""
    request = city.request(as_of=now().date(), purpose=purpose)
    start = time.perf_counter()
    for code in codes:
        city.issue(code, request, at=now())
    return len(codes) / (time.perf_counter() - start)


def batch_run(city: City, codes: list[str], purpose: str, workers: int, out: Path) -> dict:
    """One batch into a fresh directory: end-to-end and steady reports per second."""
    shutil.rmtree(out, ignore_errors=True)
    request = city.request(as_of=now().date(), purpose=purpose)
    done: list[float] = []
    start = time.perf_counter()
    summary = run_batch(
        city, [Job(n, c) for n, c in enumerate(codes, 1)], out, lambda _: request,
        clock=now, workers=workers, on_line=lambda *_: done.append(time.perf_counter()),
    )  # fmt: skip
    wall = time.perf_counter() - start
    if summary.issued != len(codes):
        raise SystemExit(f"expected {len(codes)} issued, got {summary}")
    return {
        "end_to_end": len(codes) / wall,
        "steady": (len(done) - 1) / (done[-1] - done[0]),
        "first_report_s": done[0] - start,
    }


def _spin(_: int) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - start


def cores_available(n: int) -> float:
    """How many cores the machine gives n busy processes right now (other users' load takes
    its share): n x one loop's time alone / the wall time of n loops side by side."""
    with multiprocessing.get_context("spawn").Pool(n) as pool:
        alone = min(pool.map(_spin, [0]) for _ in range(2))[0]
        start = time.perf_counter()
        pool.map(_spin, range(n))
        return n * alone / (time.perf_counter() - start)


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def triple(s: dict[str, float]) -> str:
    return " / ".join(f"{s[k]:.2f}" for k in ("min", "median", "max"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3000)
    parser.add_argument("--records", type=int, default=15000)
    parser.add_argument("--reports", type=int, default=12, help="reports per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--purpose", default="bidding")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    cores_before = cores_available(2)
    scratch = Path(tempfile.mkdtemp(prefix="batch-speed-"))
    try:
        city = make_city(scratch, args.subjects, args.records)
        with city.store() as store:
            candidates = store.subject_codes(with_records=True, limit=None)
        codes = random.Random(3).sample(candidates, args.reports)
        request = city.request(as_of=now().date(), purpose=args.purpose)
        city.issue(candidates[0], request, at=now())  # warm: renderer, fonts, first render
        results = {"floor (1 process, warm City.issue loop)": {
            "end_to_end": spread([floor_run(city, codes, args.purpose) for _ in range(args.runs)])
        }}  # fmt: skip
        for workers in (1, 2):
            runs = [
                batch_run(city, codes, args.purpose, workers, scratch / "out")
                for _ in range(args.runs)
            ]
            results[f"report batch --workers {workers}"] = {
                key: spread([r[key] for r in runs])
                for key in ("end_to_end", "steady", "first_report_s")
            }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{date.today()}, load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after; "
        f"two busy loops got {cores_before:.1f} cores before, {cores_available(2):.1f} after"
    )
    data = (
        f"sample city of {args.subjects:,} subjects / {args.records:,} records, "
        f"{args.reports} subjects with records, purpose {args.purpose}, {args.runs} runs each"
    )
    if args.json:
        print(json.dumps({"format": "creditcert.bench-batch/1", "machine": machine,
                          "data": data, "results": results}, ensure_ascii=False))  # fmt: skip
        return
    print(f"\nmachine: {machine}\ndata: {data}\n")
    print(
        "| what | reports/s end to end (min / median / max) | reports/s steady | first report s |"
    )
    print("| --- | --- | --- | --- |")
    for what, r in results.items():
        steady = triple(r["steady"]) if "steady" in r else "(same)"
        first = triple(r["first_report_s"]) if "first_report_s" in r else "-"
        print(f"| {what} | {triple(r['end_to_end'])} | {steady} | {first} |")


if __name__ == "__main__":  # the workers import this file: start nothing then
    main()
