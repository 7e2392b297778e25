"""Ingest at column speed (issue 10): `creditcert ingest --json` of a GBK CSV with 1 % bad rows,
made as benchmarks/run.py makes it (`sample export --bad-rows rows/100 --encoding gbk`), into a
fresh copy of a sample city each run; rows/s and the child's peak RSS (wait4 ru_maxrss),
min/median/max over --repeat runs, against a floor measured in the same run: pyarrow.csv only
transcoding and splitting the same file, no validation. With --baseline DIR (another checkout,
e.g. `git archive main | tar -x -C DIR`), its ingest takes turns with this one's on the same
file, and both must give the same counts.

    python benchmarks/ingest_speed.py [--subjects 100000] [--records 1000000] [--rows 1000000]
        [--repeat 3] [--baseline DIR]
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


def run(*args: str, home: Path, root: Path = ROOT) -> tuple[float, int, str]:
    """(seconds, peak RSS of the child in MiB, stdout), running the creditcert of `root`."""
    start = time.perf_counter()
    env = {**ENV, "PYTHONPATH": str(root), "CREDITCERT_HOME": str(home)}
    child = subprocess.Popen(args, stdout=subprocess.PIPE, env=env, text=True)
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
    ap.add_argument("--baseline", type=Path, help="another checkout's ingest, run in turn")
    args = ap.parse_args()
    home, export = city(args.subjects, args.records, args.rows)
    scratch = HERE / "data" / "ingest-speed-scratch"
    roots = {"creditcert ingest --json": ROOT}
    if args.baseline:
        roots = {f"baseline ({args.baseline})": args.baseline.resolve(), **roots}
    rates = {name: [] for name in [*roots, "floor"]}
    peaks = {name: [] for name in rates}
    results = {}
    for _ in range(args.repeat):  # the floor and the ingests take turns
        took, peak, out = run(sys.executable, "-c", FLOOR, str(export), home=home)
        rates["floor"].append(int(out) / took)
        peaks["floor"].append(peak)
        for name, root in roots.items():
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.copytree(home, scratch)
            took, peak, out = run(
                CLI, "ingest", "--domain", DOMAIN, str(export), "--json", home=scratch, root=root
            )
            result = json.loads(out)
            results[name] = {k: v for k, v in result.items() if isinstance(v, int)}
            rates[name].append(result["read"] / took)
            peaks[name].append(peak)
    shutil.rmtree(scratch, ignore_errors=True)
    if len({json.dumps(r, sort_keys=True) for r in results.values()}) != 1:
        sys.exit(f"the ingests disagree: {results}")
    result = results["creditcert ingest --json"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"data: {args.subjects:,} subjects / {args.records:,} records; export "
          f"{export.stat().st_size / 2**20:,.0f} MiB GBK, {result['read']:,} rows "
          f"(accepted {result['accepted']:,}, quarantined {result['quarantined']:,})\n")  # fmt: skip
    print(f"| {args.repeat} runs | rows/s min / median / max | peak RSS MiB min / median / max |")
    print("|---|---|---|")
    for name in rates:
        label = "floor: pyarrow.csv transcode + split" if name == "floor" else name
        print(f"| {label} | {stats(rates[name], ',.0f')} | {stats(peaks[name], ',.0f')} |")


if __name__ == "__main__":
    main()
