"""Lookups answering while writers publish: latency of lookups in one process during an ingest,
a register import and a `data reindex` run by the CLI in others (docs/data.md, generations).

Two kinds of reader: `fresh` opens a Store for each lookup (as `creditcert lookup` and
`City.store()` do); `follow` keeps one Store open and opens a new one when `index/CURRENT` names
another generation (what a long-running service would do). Either sees each generation as soon as
it is published. Prints JSON: per phase (idle, ingest, register, reindex) the number of lookups,
failures, p50, p95 and max in ms, and each writer's wall time.

    python benchmarks/reads_during_writes.py HOME [ROWS] [fresh|follow]   # HOME is changed
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent


def reader(home: str, stop: str, out: str, mode: str) -> None:
    """The child: look up random subjects until `stop` exists; (start, seconds, error) each."""
    from creditcert import config
    from creditcert import lookup as records
    from creditcert.data.store import Store, current_generation

    settings = config.load(home)
    with Store(settings.data_dir, settings.catalog) as store:
        codes = store.subject_codes(with_records=True, limit=None)
    request = records.resolve_request(
        settings.catalog, as_of=date(2026, 7, 1), all_domains=True, years=5
    )
    rng = random.Random(3)
    done = []
    kept = Store(settings.data_dir, settings.catalog) if mode == "follow" else None
    while not os.path.exists(stop):
        code = rng.choice(codes)
        t0 = time.time()
        error = None
        try:
            if kept is None:
                with Store(settings.data_dir, settings.catalog) as store:
                    records.lookup(store, settings, code, request)
            else:
                if current_generation(settings.data_dir) != kept.generation:
                    kept.close()
                    kept = Store(settings.data_dir, settings.catalog)
                records.lookup(kept, settings, code, request)
        except Exception as exc:  # every failure is counted, whatever it is
            error = f"{type(exc).__name__}: {exc}"
        done.append((t0, time.time() - t0, error))
        if len(done) == 5:
            Path(stop).with_name("ready").touch()
    Path(out).write_text(json.dumps(done))


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] if values else 0.0


def cli(home: Path, *args: str) -> tuple[float, float, str]:
    start = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "creditcert.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        sys.exit(f"{args} failed ({done.returncode}): {done.stderr}")
    return start, time.time(), done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""


def main() -> None:
    home = Path(sys.argv[1]).resolve()
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    mode = sys.argv[3] if len(sys.argv) > 3 else "fresh"
    scratch = Path(tempfile.mkdtemp())
    export = scratch / "export.csv"
    cli(home, "sample", "export", "--domain", "transport", "--rows", str(rows), "--seed", "97",
        "--out", str(export))  # fmt: skip
    register = scratch / "register.csv"
    with open(export, encoding="utf-8", newline="") as fh:  # rename some of its subjects
        subjects = {row[1]: row[0] for row in list(csv.reader(fh))[1:]}
    with open(register, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["统一社会信用代码", "企业名称", "成立日期", "登记状态"])
        out.writerows(
            [c, f"{n}(更名)", "2010-05-01", "存续"] for c, n in list(subjects.items())[:100]
        )
    stop, out = scratch / "stop", scratch / "lookups.json"
    child = subprocess.Popen(
        [sys.executable, __file__, "--reader", str(home), str(stop), str(out), mode],
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
    )
    try:  # the reader stops with this process, whatever happens to the writers
        while not (scratch / "ready").exists():  # the reader's own start-up
            if child.poll() is not None:
                sys.exit("the reader died")
            time.sleep(0.1)
        time.sleep(2)
        phases = {"idle": (time.time() - 2, time.time(), "")}
        phases["ingest"] = cli(home, "ingest", "--domain", "transport", str(export))
        time.sleep(1)
        phases["register"] = cli(home, "register", "import", str(register))
        time.sleep(1)
        phases["reindex"] = cli(home, "data", "reindex")
        time.sleep(1)
    finally:
        stop.touch()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    done = json.loads(out.read_text())
    result: dict[str, object] = {"mode": mode, "rows": rows}
    for name, (a, b, said) in phases.items():
        inside = [(d, e) for t, d, e in done if t + d >= a and t <= b]
        result[name] = {
            "writer": said,
            "writer_s": round(b - a, 2),
            "lookups": len(inside),
            "failed": sum(1 for _, e in inside if e),
            "errors": sorted({e for _, e in inside if e})[:3],
            "p50_ms": round(pct([d * 1000 for d, _ in inside], 50), 1),
            "p95_ms": round(pct([d * 1000 for d, _ in inside], 95), 1),
            "max_ms": round(max((d * 1000 for d, _ in inside), default=0), 1),
        }
    result["all_lookups"] = len(done)
    result["all_failed"] = sum(1 for *_, e in done if e)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    if sys.argv[1] == "--reader":
        reader(*sys.argv[2:6])
    else:
        main()
