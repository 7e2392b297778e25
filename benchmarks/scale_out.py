"""The cost of going shared (issue 13): the same generated city, embedded (registry.sqlite, a data
directory) and shared (a PostgreSQL registry, the datasets in an S3-compatible bucket: the real
servers the tests use, started here on loopback), measured side by side in one process.

- lookup: warm `City.lookup` of random subjects (a purpose's domains) — p50 / p95 per call; the
  shared city as an instance normally runs (the bucket checked every 30 s) and with a check of
  the manifest's ETag before every lookup (`refresh_seconds = 0`, the worst case);
- issuance: `City.issue` of reports for distinct subjects, one after another (reports/s; the
  shared city also puts every PDF in the bucket and commits to PostgreSQL).

Each figure is the min / median / max over --runs runs, alternating the cities. Prints Markdown.

    python benchmarks/scale_out.py [--subjects 3000] [--records 15000] [--lookups 400]
        [--reports 6] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from creditcert import config  # noqa: E402
from creditcert.city import City  # noqa: E402
from creditcert.data import sample  # noqa: E402
from creditcert.model.clock import SHANGHAI  # noqa: E402
from tests.pg_server import running_pg  # noqa: E402
from tests.s3_server import running_s3  # noqa: E402

AS_OF = date(2026, 6, 30)


def make_home(root: Path, name: str, *, extra_data: str = "", registry: str = "") -> Path:
    home = root / name
    config.init(home, admin_code="210100", name="沈阳市", name_en="Shenyang")
    path = home / "creditcert.toml"
    text = path.read_text(encoding="utf-8").replace(
        "rate_limit_per_day = 1 ", "rate_limit_per_day = 0 "
    )
    if extra_data:
        text = text.replace('location = "data"', extra_data)
    path.write_text(text + registry, encoding="utf-8")
    return home


def populate(city: City, subjects: int, records: int) -> None:
    s = city.settings
    city.write_data(
        lambda sync: sample.generate(
            s.data_dir, s.catalog, s.issuer, subjects=subjects, records=records, seed=7,
            as_of=AS_OF, sync=sync,
        )
    )  # fmt: skip
    city.keys.init(datetime.now(SHANGHAI))


def lookups(city: City, codes: list[str], n: int) -> list[float]:
    at = datetime.now(SHANGHAI)
    ask = city.request(as_of=at.date(), purpose="bidding")
    rng = random.Random(3)
    times = []
    for _ in range(n):
        code = rng.choice(codes)
        start = time.perf_counter()
        city.lookup(code, ask, at=at)
        times.append(time.perf_counter() - start)
    return times


def issuance(city: City, codes: list[str]) -> float:
    """Reports per second over the given subjects, one after another."""
    start = time.perf_counter()
    for code in codes:
        at = datetime.now(SHANGHAI)
        city.issue(code, city.request(as_of=at.date(), purpose="bidding"), at=at)
    return len(codes) / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread(values: list[float], unit: str, scale: float = 1.0) -> str:
    v = [x * scale for x in values]
    return f"{min(v):.2f} / {statistics.median(v):.2f} / {max(v):.2f} {unit}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=3000)
    parser.add_argument("--records", type=int, default=15000)
    parser.add_argument("--lookups", type=int, default=400)
    parser.add_argument("--reports", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_pg() as pg,
        running_s3(Path(tempfile.mkdtemp(dir=tmp))) as s3,
    ):
        for name, value in s3.env().items():
            os.environ[name] = value
        root = Path(tmp)
        registry = f'\n[registry]\nurl = "{pg.create_database()}"\n'
        location = f"s3://{s3.bucket}/bench"
        cities = {
            "embedded": make_home(root, "embedded"),
            "shared": make_home(root, "shared", registry=registry,
                                extra_data=f'location = "{location}"\nrefresh_seconds = 30'),
            "shared, bucket checked every lookup": make_home(
                root, "checking", registry=registry,
                extra_data=f'location = "{location}"\nrefresh_seconds = 0'),
        }  # fmt: skip
        opened = {}
        for name, home in cities.items():
            city = City.open(home)
            if city.settings.registry_url:
                city.migrate_registry()
            if name != "shared, bucket checked every lookup":
                populate(city, args.subjects, args.records)
            else:  # the same bucket and keys as "shared": another instance of it
                import shutil

                shutil.copytree(cities["shared"] / "keys", home / "keys", dirs_exist_ok=True)
            opened[name] = city
        with opened["embedded"].store() as store:
            codes = store.subject_codes(with_records=True, limit=2000)
        lookup_p = {n: ([], []) for n in opened}
        rates = {n: [] for n in opened if n != "shared, bucket checked every lookup"}
        half = len(codes) // 2
        used = iter(codes[half:])
        for _ in range(args.runs):
            for name, city in opened.items():
                times = lookups(city, codes[:half], args.lookups)
                lookup_p[name][0].append(pct(times, 0.5))
                lookup_p[name][1].append(pct(times, 0.95))
            for name in rates:
                batch = [next(used) for _ in range(args.reports)]
                rates[name].append(issuance(opened[name], batch))
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; city: {args.subjects} subjects, {args.records} records; "
          f"{args.lookups} lookups and {args.reports} reports per run, {args.runs} runs; "
          "PostgreSQL and SeaweedFS on loopback (fsync off); the embedded city is the floor")  # fmt: skip
    print()
    print("| city | lookup p50 (min / median / max) | lookup p95 | issuance |")
    print("| --- | --- | --- | --- |")
    for name in opened:
        p50, p95 = lookup_p[name]
        rate = spread(rates[name], "reports/s") if name in rates else "—"
        print(f"| {name} | {spread(p50, 'ms', 1000)} | {spread(p95, 'ms', 1000)} | {rate} |")


if __name__ == "__main__":
    main()
