"""`make bench`: sample generation, subject lookup (warm and cold) and ingest, at city scale, and
hostile department files against their floor on a small city (benchmarks/hostile_files.py).

Prints a Markdown table of results; benchmarks/README.md keeps a copy with the machine it ran on.
Data goes to benchmarks/data/ (ignored by git) and is reused when its parameters match.

    python benchmarks/run.py [--records 10000000] [--subjects 1000000] [--lookups 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
AS_OF = date(2026, 6, 30)


def sh(*args: str, env: dict | None = None) -> tuple[float, int, str]:
    """Run a command; (seconds, peak RSS of that child alone in MiB, stdout)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(args, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        took = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode not in (0, 1):
            sys.exit(f"{' '.join(args)} failed ({child.returncode}):\n{err.read()}")
        return took, usage.ru_maxrss // 1024, out.read()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--subjects", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=300)
    ap.add_argument("--ingest-rows", type=int, default=1_000_000)
    args = ap.parse_args()

    home = HERE / "data" / f"city-{args.subjects}-{args.records}"
    env = {**os.environ, "CREDITCERT_HOME": str(home)}
    cli = str(BIN / "creditcert")
    rows: list[tuple[str, str]] = []
    stamp = home / "generated.json"
    if not stamp.exists():
        shutil.rmtree(home, ignore_errors=True)
        sh(cli, "init", "--city", "210100", "--name", "沈阳市", "--home", str(home))
        cfg = home / "creditcert.toml"  # the bench issues many reports per subject and day
        cfg.write_text(
            cfg.read_text(encoding="utf-8").replace(
                "rate_limit_per_day = 1 ", "rate_limit_per_day = 0 "
            ),
            encoding="utf-8",
        )
        took, peak, _ = sh(
            cli,
            "sample",
            "generate",
            "--subjects",
            str(args.subjects),
            "--records",
            str(args.records),
            "--seed",
            "2025",
            "--as-of",
            AS_OF.isoformat(),
            env=env,
        )
        stamp.write_text(json.dumps({"seconds": took, "peak_mib": peak}))
    gen = json.loads(stamp.read_text())
    size = sum(p.stat().st_size for p in (home / "data").rglob("*") if p.is_file())
    rows.append(
        (
            f"generate {args.records:,} records / {args.subjects:,} subjects",
            f"{gen['seconds']:.1f} s, peak {gen['peak_mib']:,} MiB, on disk {size / 2**30:.2f} GiB",
        )
    )

    # Warm lookups: one process, one open store, random registered subjects, all 52 domains.
    warm = subprocess.run(
        [sys.executable, str(HERE / "lookup_warm.py"), str(home), str(args.lookups)],
        capture_output=True,
        text=True,
        check=True,
    )
    w = json.loads(warm.stdout)
    rows.append(
        (
            f"lookup, 52 domains, warm ({args.lookups} subjects)",
            f"p50 {w['p50_ms']:.2f} ms, p95 {w['p95_ms']:.2f} ms, max {w['max_ms']:.1f} ms",
        )
    )
    rows.append(("  of which the DuckDB query", f"p50 {w['query_p50_ms']:.2f} ms"))
    rows.append(("  open the store (first query included)", f"{w['open_ms']:.0f} ms"))
    rows.append(("  peak memory of that process", f"{w['peak_mib']:,} MiB"))

    # Cold lookups: a new `creditcert lookup` process each time.
    codes = w["sample_codes"][:10]
    cold = []
    peak = 0
    for code in codes:
        took, p, _ = sh(cli, "lookup", code, "--all", "--json", "--as-of", "2026-07-01", env=env)
        cold.append(took)
        peak = max(peak, p)
    rows.append(
        (
            "lookup, 52 domains, cold CLI (10 runs)",
            f"median {statistics.median(cold) * 1000:.0f} ms, peak {peak:,} MiB",
        )
    )

    # Reports: warm in one process (split by stage, beside bare WeasyPrint), then cold CLI calls.
    warm_r = subprocess.run(
        [sys.executable, str(HERE / "report_speed.py"), str(home), "--runs", "15"],
        capture_output=True,
        text=True,
        check=True,
    )
    for case, r in json.loads(warm_r.stdout).items():
        t, f = r["total"], r["floor"]
        rows.append(
            (
                f"report, 52 domains, warm, {case} ({r['records']['median']:.0f} records, "
                f"{r['pages']['median']:.0f} pages, {r['pdf_kib']['max']:.0f} KiB)",
                f"min/median/max {t['min']:.0f}/{t['median']:.0f}/{t['max']:.0f} ms = lookup "
                f"{r['lookup']['median']:.0f} + document/envelope/QR {r['seal']['median']:.0f} + "
                f"PDF/A render {r['render']['median']:.0f} + PAdES {r['sign']['median']:.0f}",
            )
        )
        rows.append(
            (
                "  floor: WeasyPrint alone on the same HTML",
                f"min/median/max {f['min']:.0f}/{f['median']:.0f}/{f['max']:.0f} ms "
                f"(ours = {r['ours_over_floor']:.2f}× the median)",
            )
        )
    cold = []
    for code in w["sample_codes"][:5]:
        took, peak, _ = sh(cli, "report", code, "--all", "--out", str(home / "bench.pdf"), env=env)
        cold.append(took)
    rows.append(
        (
            "report, 52 domains, cold CLI (5 runs)",
            f"min/median/max {min(cold) * 1000:.0f}/{statistics.median(cold) * 1000:.0f}/"
            f"{max(cold) * 1000:.0f} ms, peak {peak:,} MiB",
        )
    )

    # Verification of the last report issued above (cold CLI wrote it to bench.pdf).
    v = json.loads(
        subprocess.run(
            [sys.executable, str(HERE / "verify_warm.py"), str(home), str(home / "bench.pdf")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    rows.append(
        (
            f"verify the report PDF, warm ({v['pages']} pages)",
            f"median {v['pdf_ms']:.0f} ms (verdict {v['verdict']})",
        )
    )
    rows.append(("verify QR text, warm", f"median {v['qr_ms']:.2f} ms"))
    rows.append(("verify a 300-dpi scan of page 1, warm", f"median {v['scan_ms']:.0f} ms"))
    rows.append(("hostile catalogue, slowest of 46 cases", f"{v['hostile_worst_ms']:.0f} ms"))

    # Ingest: a department export of new rows (1 % spoiled) into a copy of the city.
    scratch = HERE / "data" / "ingest-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(home, scratch)
    env2 = {**os.environ, "CREDITCERT_HOME": str(scratch)}
    export = scratch / "export.csv"
    took, _, _ = sh(
        cli,
        "sample",
        "export",
        "--domain",
        "market-regulation",
        "--rows",
        str(args.ingest_rows),
        "--bad-rows",
        str(args.ingest_rows // 100),
        "--encoding",
        "gbk",
        "--out",
        str(export),
        env=env2,
    )
    took, peak, out = sh(
        cli, "ingest", "--domain", "market-regulation", str(export), "--json", env=env2
    )
    result = json.loads(out)
    rows.append(
        (
            f"ingest {result['read']:,}-row GBK CSV (1 % bad rows)",
            f"{took:.1f} s = {result['read'] / took:,.0f} rows/s, peak {peak:,} MiB; "
            f"accepted {result['accepted']:,}, quarantined {result['quarantined']:,}",
        )
    )
    took, _, out = sh(
        cli, "ingest", "--domain", "market-regulation", str(export), "--json", env=env2
    )
    rows.append(
        (
            "re-ingest the same file",
            f"{took:.1f} s, already present {json.loads(out)['already_present']:,}",
        )
    )

    shutil.rmtree(scratch, ignore_errors=True)

    # Hostile department files (issue 9) on a small city of their own, each in a new process,
    # against the same 20 rows as a plain .csv and .xlsx (benchmarks/hostile_files.py).
    hostile = json.loads(
        subprocess.run(
            [sys.executable, str(HERE / "hostile_files.py"), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    for case in hostile["cases"]:
        ms, grew = case["ms"], case["growth_mib"]
        rows.append(
            (
                f"ingest {case['what']} ({case['bytes']:,} B, {case['runs']} runs)",
                f"{ms['min']:.0f} / {ms['median']:.0f} / {ms['max']:.0f} ms, peak RSS "
                f"+{grew['min']:.0f} / {grew['median']:.0f} / {grew['max']:.0f} MiB "
                f"(min / median / max); {case['outcome']}",
            )
        )

    # Lookups in one process while the CLI ingests 500 rows, imports the register and reindexes
    # in others (benchmarks/reads_during_writes.py), each mode on a copy of its own.
    for mode in ("fresh", "follow"):
        shutil.copytree(home, scratch)
        during = json.loads(
            subprocess.run(
                [sys.executable, str(HERE / "reads_during_writes.py"), str(scratch), "500", mode],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        shutil.rmtree(scratch, ignore_errors=True)
        for phase in ("idle", "ingest", "register", "reindex"):
            d = during[phase]
            rows.append(
                (
                    f"lookups ({mode} store) during {phase}"
                    + (f" ({d['writer_s']:.1f} s)" if phase != "idle" else ""),
                    f"{d['lookups']} lookups, {d['failed']} failed; p50 {d['p50_ms']:.0f} ms, "
                    f"p95 {d['p95_ms']:.0f} ms, max {d['max_ms']:.0f} ms",
                )
            )

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, {date.today() + timedelta(0)}\n"
    )
    print("| what | result |\n| --- | --- |")
    for what, result_text in rows:
        print(f"| {what} | {result_text} |")


if __name__ == "__main__":
    random.seed(1)
    main()
