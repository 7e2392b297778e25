"""Hostile department files (issue 9): what ingesting each one costs, against the same 20 rows as a
plain .csv and .xlsx measured in the same run (the floor).

The files are those of tests/test_ingest_hostile.py, built by tests/hostile_inputs.py from a real
20-row transport export of a small sample city (600 subjects, 3,000 records, as the tests' own):
a sheet declaring Excel's whole grid (A1:XFD1048576) with 20,000 blank rows (issue 9: under 2 s
and 200 MB) and with 5,000,000 (a bomb, refused), a sharedStrings bomb, a zip bomb, and a CSV with
one 10-million-character cell (that row quarantined, the rest accepted).

Every repetition is a new process ingesting into a new copy of the city; the cases take turns, so
a change in the machine's load falls on all of them alike. Each process imports everything first
(openpyxl included) and measures only the `ingest_file` call: wall time and the growth of peak RSS
(VmHWM, reset just before the call), and the process's peak RSS during the call (imports included,
about 95 MiB of it). A warm-up round, not counted, comes first. Prints a Markdown table, or JSON
with --json (for benchmarks/run.py).

    python benchmarks/hostile_files.py [--repeat 5] [--json]
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
from datetime import date
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # this checkout's creditcert and tests/hostile_inputs.py, in every process
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
NOW = "2026-07-01T10:30:00+08:00"

# key, what, expected outcome
CASES = [
    ("floor-csv", "20 rows, plain .csv (floor)", "accepted 20 of 20"),
    ("floor-xlsx", "20 rows, plain .xlsx (floor)", "accepted 20 of 20"),
    ("dim-20k", "xlsx declaring A1:XFD1048576, 20 rows + 20,000 blank rows", "accepted 20 of 20"),
    ("dim-5m", "xlsx declaring A1:XFD1048576, 20 rows + 5,000,000 blank rows", "refused"),
    ("sst-bomb", "xlsx with a sharedStrings bomb (3,000,000 strings)", "refused"),
    ("zip-bomb", "xlsx zip bomb (2,000,000 rows)", "refused"),
    ("cell-10m", "csv, one cell of 10,000,000 characters", "accepted 19 of 20"),
]


def child(home: str, path: str) -> None:
    """One ingest in this fresh process; prints its cost and outcome as JSON."""
    from datetime import datetime

    import openpyxl  # noqa: F401  (imported lazily by the reader: not the file's cost)

    from creditcert import config
    from creditcert.errors import IngestError
    from tests.hostile_inputs import Peak, ingest

    city = SimpleNamespace(settings=config.load(Path(home)))
    with Peak() as cost:
        try:
            result = ingest(city, Path(path), now=datetime.fromisoformat(NOW))
            outcome = f"accepted {result.accepted} of {result.read}"
        except IngestError as exc:
            outcome = "refused"
            said = str(exc).removeprefix(f"{path}: ")
    print(
        json.dumps(
            {
                "seconds": cost.seconds,
                "growth_mib": cost.growth / 2**20,
                "process_mib": cost.peak / 2**20,
                "outcome": outcome,
                "said": said if outcome == "refused" else "",
            },
            ensure_ascii=False,
        )
    )


def cli(home: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "creditcert.cli", "--home", str(home), *args],
        env=ENV,
        capture_output=True,
        check=True,
    )


def build(scratch: Path) -> tuple[Path, dict[str, Path]]:
    """The template city and one file per case."""
    sys.path.insert(0, str(ROOT))
    from creditcert import config
    from tests import hostile_inputs as h

    template = scratch / "template"
    subprocess.run(
        [sys.executable, "-m", "creditcert.cli", "init", "--city", "210100", "--name", "沈阳市",
         "--home", str(template)],
        env=ENV, capture_output=True, check=True,
    )  # fmt: skip
    cli(template, "sample", "generate", "--subjects", "600", "--records", "3000", "--seed", "5",
        "--as-of", "2026-06-30")  # fmt: skip
    city = SimpleNamespace(settings=config.load(template))
    files = scratch / "files"
    files.mkdir()
    header, rows = h.base_rows(city, files)
    xlsx = h.base_xlsx(city, files)
    return template, {
        "floor-csv": h.write_csv(files / "floor.csv", header, rows),
        "floor-xlsx": xlsx,
        "dim-20k": h.rewrite(xlsx, files / "dim-20k.xlsx", h.whole_sheet_declared(20_000)),
        "dim-5m": h.rewrite(xlsx, files / "dim-5m.xlsx", h.whole_sheet_declared(5_000_000)),
        "sst-bomb": h.rewrite(xlsx, files / "sst-bomb.xlsx", extra=h.sst_bomb()),
        "zip-bomb": h.rewrite(xlsx, files / "zip-bomb.xlsx", h.zip_bomb),
        "cell-10m": h.write_csv(files / "cell-10m.csv", header, h.huge_cell(header, rows)),
    }


def once(template: Path, home: Path, path: Path) -> dict:
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(template, home)
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(home), str(path)],
        capture_output=True,
        env=ENV,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"ingest of {path.name} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    scratch = HERE / "data" / "hostile"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    load_before = os.getloadavg()
    template, files = build(scratch)
    runs: dict[str, list[dict]] = {key: [] for key, *_ in CASES}
    for round_ in range(args.repeat + 1):
        for key, _what, _expected in CASES:
            run = once(template, scratch / "city", files[key])
            if round_:  # the first round warms the page cache and the interpreter's files
                runs[key].append(run)
    results = []
    for key, what, expected in CASES:
        outcomes = {r["outcome"] for r in runs[key]}
        if outcomes != {expected}:
            sys.exit(f"{key}: expected {expected!r}, got {outcomes} ({runs[key][0]['said']})")
        results.append(
            {
                "case": key,
                "what": what,
                "bytes": files[key].stat().st_size,
                "runs": len(runs[key]),
                "outcome": expected,
                "said": runs[key][0]["said"],
                "ms": spread([r["seconds"] * 1000 for r in runs[key]]),
                "growth_mib": spread([r["growth_mib"] for r in runs[key]]),
                "process_mib": spread([r["process_mib"] for r in runs[key]]),
            }
        )
    shutil.rmtree(scratch, ignore_errors=True)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, {date.today()}, load average "
        f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    if args.json:
        print(json.dumps({"machine": machine, "cases": results}, ensure_ascii=False))
        return
    print(f"\nmachine: {machine}\n")
    print(
        "| file | size | outcome | wall ms min / median / max "
        "| peak RSS growth MiB min / median / max | process peak MiB (median) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        outcome = r["said"] if r["outcome"] == "refused" else r["outcome"]
        print(
            f"| {r['what']} | {r['bytes']:,} B | {outcome} | {triple(r['ms'], '.0f')} "
            f"| {triple(r['growth_mib'], '.1f')} | {r['process_mib']['median']:.0f} |"
        )


def triple(s: dict[str, float], fmt: str) -> str:
    return " / ".join(format(s[k], fmt) for k in ("min", "median", "max"))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:4])
    else:
        main()
