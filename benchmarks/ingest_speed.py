"""Ingest at column speed (issue 10): `creditcert ingest --json` of a GBK CSV with 1 % bad rows,
made as benchmarks/run.py makes it (`sample export --bad-rows rows/100 --encoding gbk`), into a
fresh copy of a sample city each run; rows/s and the child's peak RSS (wait4 ru_maxrss),
min/median/max over --repeat runs, against a floor measured in the same run: pyarrow.csv only
transcoding and splitting the same file, no validation.

    python benchmarks/ingest_speed.py [--subjects 100000] [--records 1000000] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLI = str(Path(sys.executable).parent / "creditcert")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's creditcert
DOMAIN = "market-regulation"


def run(*args: str, home: Path) -> tuple[float, int, str]:
    """(seconds, peak RSS of the child in MiB, stdout)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        args, stdout=subprocess.PIPE, env={**ENV, "CREDITCERT_HOME": str(home)}, text=True
    )
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"{' '.join(args)} failed")
    return took, usage.ru_maxrss // 1024, out


def city(subjects: int, records: int, rows: int) -> tuple[Path, Path]:
    """The sample city and its export, made once under benchmarks/data/ (git-ignored)."""
    home = HERE / "data" / f"city-{subjects}-{records}"
    export = HERE / "data" / f"export-{subjects}-{records}-{rows}.csv"
    if not (home / "data" / "subjects.parquet").exists():
        shutil.rmtree(home, ignore_errors=True)
        run(CLI, "init", "--city", "210100", "--name", "沈阳市", "--home", str(home), home=home)
        run(CLI, "sample", "generate", "--subjects", str(subjects), "--records", str(records),
            "--seed", "2025", "--as-of", "2026-06-30", home=home)  # fmt: skip
    if not export.exists():
        run(CLI, "sample", "export", "--domain", DOMAIN, "--rows", str(rows), "--bad-rows",
            str(rows // 100), "--encoding", "gbk", "--out", str(export), home=home)  # fmt: skip
    return home, export


FLOOR = """
import sys, pyarrow as pa, pyarrow.csv as pcsv
width = len(open(sys.argv[1], encoding="gbk").readline().split(","))
reader = pcsv.open_csv(sys.argv[1],
    read_options=pcsv.ReadOptions(autogenerate_column_names=True, encoding="gbk",
                                  block_size=4 << 20),
    parse_options=pcsv.ParseOptions(newlines_in_values=True),
    convert_options=pcsv.ConvertOptions(column_types={f"f{i}": pa.string() for i in range(width)}))
print(sum(b.num_rows for b in reader) - 1)
"""


def stats(values: list[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=100_000)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    home, export = city(args.subjects, args.records, args.rows)
    scratch = HERE / "data" / "ingest-speed-scratch"
    rates, peaks, floors, floor_peaks, result = [], [], [], [], {}
    for _ in range(args.repeat):  # the floor and the ingest take turns
        took, peak, out = run(sys.executable, "-c", FLOOR, str(export), home=home)
        floors.append(int(out) / took)
        floor_peaks.append(peak)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(home, scratch)
        took, peak, out = run(
            CLI, "ingest", "--domain", DOMAIN, str(export), "--json", home=scratch
        )
        result = json.loads(out)
        rates.append(result["read"] / took)
        peaks.append(peak)
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"data: {args.subjects:,} subjects / {args.records:,} records; export "
          f"{export.stat().st_size / 2**20:,.0f} MiB GBK, {result['read']:,} rows "
          f"(accepted {result['accepted']:,}, quarantined {result['quarantined']:,})\n")  # fmt: skip
    print(f"| {args.repeat} runs | rows/s min / median / max | peak RSS MiB min / median / max |")
    print("|---|---|---|")
    print(f"| creditcert ingest --json | {stats(rates, ',.0f')} | {stats(peaks, ',.0f')} |")
    print(f"| floor: pyarrow.csv transcode + split | {stats(floors, ',.0f')} | "
          f"{stats(floor_peaks, ',.0f')} |")  # fmt: skip


if __name__ == "__main__":
    main()
