"""`creditcert report batch` (issue 10): many reports through worker processes, each issued once
through the ordinary path, a manifest written as it goes, and a batch killed at any point (or
stopped with Ctrl-C) resumed by running it again, with nothing issued twice."""

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from creditcert.issue.batch import (
    FORMAT,
    JOURNAL,
    TABLE,
    BatchInputError,
    Manifest,
    read_jobs,
    read_manifest,
)
from creditcert.issue.pool import BatchReason
from creditcert.stages import ENV as KILL_AT

from .conftest import city_at, run_cli

ROOT = Path(__file__).resolve().parents[1]
UNREGISTERED = "91210102MA0000001G"  # passes the batch's code check, is in no register


@pytest.fixture
def home(tmp_path, issued):
    """A copy of a city with keys (the shared `issued` city is never changed)."""
    copy = tmp_path / "city"
    shutil.copytree(issued["home"], copy)
    return copy


def subjects(home: Path, n: int) -> list[str]:
    with city_at(home).store() as store:
        return store.subject_codes(with_records=True, limit=n)


def registry(home: Path, purpose: str) -> dict[str, list[tuple[str, str]]]:
    """subject → [(number, status)] for reports of a purpose, straight from the registry file."""
    con = sqlite3.connect(home / "registry.sqlite")
    try:
        rows = con.execute(
            "SELECT subject_code, number, status FROM reports WHERE purpose IS ? ORDER BY number",
            (purpose,),
        ).fetchall()
    finally:
        con.close()
    found: dict[str, list[tuple[str, str]]] = {}
    for code, number, status in rows:
        found.setdefault(code, []).append((number, status))
    return found


def input_file(tmp_path: Path, lines: list[str], name: str = "codes.txt") -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def assert_each_issued_once(home: Path, out: Path, codes: list[str], purpose: str) -> None:
    """Registry, manifest and output directory agree: one issued report per code, no other."""
    held = registry(home, purpose)
    issued = {c: [n for n, s in held.get(c, []) if s == "issued"] for c in codes}
    assert all(len(numbers) == 1 for numbers in issued.values()), held
    assert not [s for rows in held.values() for _, s in rows if s == "pending"], held
    last = {line.code: line for line in read_manifest(out) if line.status != "skipped"}
    assert {c: last[c].number for c in codes} == {c: n[0] for c, n in issued.items()}
    assert all(last[c].status == "issued" for c in codes)
    pdfs = sorted(p.name for p in out.glob("*.pdf"))
    assert pdfs == sorted(f"{n[0]}.pdf" for n in issued.values())
    for numbers in issued.values():
        kept = (home / "reports" / f"{numbers[0]}.pdf").read_bytes()
        assert (out / f"{numbers[0]}.pdf").read_bytes() == kept
    table = list(csv.DictReader((out / TABLE).open(encoding="utf-8")))
    assert {r["code"]: r["number"] for r in table if r["status"] == "issued"} == {
        c: n[0] for c, n in issued.items()
    }


# --- input and manifest, in process --------------------------------------------------------------


def test_the_input_is_a_list_of_codes_or_a_csv_with_a_credit_code_column():
    plain = read_jobs(b"91110000600037341L\n\n  91110000600037341l \n", name="f")
    assert [(j.line, j.code, j.purpose) for j in plain] == [
        (1, "91110000600037341L", None),
        (3, "91110000600037341L", None),  # normalised, so a duplicate is seen as one
    ]
    table = "\ufeffname,credit_code,purpose\n甲,91110000600037341L,bidding\n乙,BAD,\n"
    rows = read_jobs(table.encode(), name="f")
    assert [(j.line, j.code, j.purpose) for j in rows] == [
        (2, "91110000600037341L", "bidding"),
        (3, "BAD", None),
    ]
    with pytest.raises(BatchInputError, match="needs a credit_code column; its header has code, x"):
        read_jobs(b"code,x\n1,2\n", name="f")
    with pytest.raises(BatchInputError, match="f: not UTF-8"):
        read_jobs("91110000600037341L".encode("utf-16"), name="f")


def test_a_manifest_line_torn_by_a_crash_is_dropped_and_the_table_rebuilt(tmp_path):
    started = {"format": FORMAT, "batch": "b1", "line": 1, "code": "C1", "scope": "bidding",
               "status": "started", "at": "2026-11-24T10:00:00+08:00"}  # fmt: skip
    issued = {**started, "status": "issued", "number": "N1", "file": "N1.pdf"}
    journal = tmp_path / JOURNAL
    journal.write_bytes(
        b"".join(json.dumps(x).encode() + b"\n" for x in (started, issued)) + b'{"format": "cr'
    )
    manifest = Manifest(tmp_path)
    try:
        assert manifest.progress.issued(("C1", "bidding"))
        with pytest.raises(BatchInputError, match="another batch is writing there"):
            Manifest(tmp_path)
    finally:
        manifest.close()
    assert journal.read_bytes().endswith(b"}\n")
    assert [line.status for line in read_manifest(tmp_path)] == ["started", "issued"]
    rows = list(csv.reader((tmp_path / TABLE).open(encoding="utf-8")))
    assert rows == [["code", "scope", "number", "file", "status", "reason"],
                    ["C1", "bidding", "N1", "N1.pdf", "issued", ""]]  # fmt: skip


def test_every_batch_reason_and_the_manifest_format_are_documented():
    report = (ROOT / "docs" / "report.md").read_text(encoding="utf-8")
    for reason in BatchReason:
        assert f"| `{reason.value}` | {reason.meaning} |" in report, reason
    assert f"`{FORMAT}`" in (ROOT / "docs" / "cli-json.md").read_text(encoding="utf-8")


# --- the real CLI -------------------------------------------------------------------------------


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_2(home, tmp_path):
    out = str(tmp_path / "out")
    cases = [
        ([str(tmp_path / "missing.txt")], "missing.txt: cannot read"),
        ([input_file(tmp_path, ["code,name", "x,y"], "t.csv")], "needs a credit_code column"),
        ([input_file(tmp_path, [subjects(home, 1)[0]])], "choose --purpose, --domains or --all"),
        ([input_file(tmp_path, ["x"]), "--purpose", "nope"], "nope"),
    ]
    for args, message in cases:
        done = run_cli(home, "report", "batch", *args, "--out", out, *(
            [] if "--purpose" in args or "choose" in message else ["--purpose", "bidding"]))  # fmt: skip
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
    assert not registry(home, "bidding")


@pytest.mark.slow
def test_a_batch_issues_each_code_once_and_records_each_failure(home, tmp_path):
    codes = subjects(home, 3)
    lines = [codes[0], "=1+2", codes[1], UNREGISTERED, codes[2], codes[0].lower()]
    out = tmp_path / "out"
    done = run_cli(home, "report", "batch", input_file(tmp_path, lines), "--out", str(out),
                   "--purpose", "bidding", "--workers", "2")  # fmt: skip
    assert done.returncode == 1, done.stderr  # some failed
    assert "3 issued" in done.stdout and "2 failed" in done.stdout
    assert_each_issued_once(home, out, codes, "bidding")
    others = {(line.line, line.status, line.reason) for line in read_manifest(out)} - {
        (line.line, line.status, None) for line in read_manifest(out)
    }
    assert others == {
        (2, "failed", "invalid-code"),
        (4, "failed", "no-such-subject"),
        (6, "skipped", "duplicate"),
    }
    table = (out / TABLE).read_text(encoding="utf-8")
    assert "'=1+2,bidding,,,failed,invalid-code" in table  # no formula for a spreadsheet to run
    # verification accepts what the batch wrote
    verdict = city_at(home).verify((out / f"{registry(home, 'bidding')[codes[0]][0][0]}.pdf")
                                   .read_bytes(), at=_now()).verdict  # fmt: skip
    assert verdict.accepted
    # the same command again issues nothing more: the failures are tried again, and fail again
    again = run_cli(home, "report", "batch", input_file(tmp_path, lines), "--out", str(out),
                    "--purpose", "bidding", "--workers", "2")  # fmt: skip
    assert again.returncode == 1 and "3 issued before" in again.stdout, again.stdout
    assert_each_issued_once(home, out, codes, "bidding")


@pytest.mark.slow
def test_a_csv_purpose_column_overrides_the_flag_row_by_row(home, tmp_path):
    codes = subjects(home, 2)
    table = ["name,credit_code,purpose", f"甲,{codes[0]},financing", f"乙,{codes[1]},"]
    out = tmp_path / "out"
    done = run_cli(home, "report", "batch", input_file(tmp_path, table, "s.csv"), "--out",
                   str(out), "--purpose", "awards", "--workers", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert list(registry(home, "financing")) == [codes[0]]
    assert list(registry(home, "awards")) == [codes[1]]
    assert {(line.code, line.scope) for line in read_manifest(out) if line.status == "issued"} == {
        (codes[0], "financing"),
        (codes[1], "awards"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["batch.started", "batch.report-done"])
def test_a_batch_killed_midway_resumes_without_issuing_anything_twice(home, tmp_path, stage):
    codes = subjects(home, 3)
    args = ("report", "batch", input_file(tmp_path, codes), "--out", str(tmp_path / "out"),
            "--purpose", "bidding", "--workers", "2")  # fmt: skip
    killed = run_cli(home, *args, kill_at=stage)
    assert killed.returncode == -9, killed.stderr
    issued = [
        c for c, rows in registry(home, "bidding").items() if ("issued" in dict(rows).values())
    ]
    assert len(issued) < 3
    resumed = run_cli(home, *args)
    assert resumed.returncode == 0, resumed.stderr
    assert_each_issued_once(home, tmp_path / "out", codes, "bidding")


@pytest.mark.slow
def test_a_report_issued_by_a_worker_that_then_died_is_recovered_not_issued_again(home, tmp_path):
    """Every worker is killed right after the registry says issued, before the batch hears of
    it: the batch finds each report in the registry and copies the kept PDF."""
    codes = subjects(home, 2)
    out = tmp_path / "out"
    done = run_cli(home, "report", "batch", input_file(tmp_path, codes), "--out", str(out),
                   "--purpose", "bidding", "--workers", "2", kill_at="report.registered")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_each_issued_once(home, out, codes, "bidding")
    outcomes = [line.reason for line in read_manifest(out) if line.status != "started"]
    assert outcomes == ["recovered", "recovered"]


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(home, tmp_path):
    """One worker, so that a subject is still waiting when Ctrl-C comes after the first."""
    codes = subjects(home, 3)
    out = tmp_path / "out"
    args = ["report", "batch", input_file(tmp_path, codes), "--out", str(out),
            "--purpose", "bidding", "--workers", "1"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != KILL_AT}
    proc = subprocess.Popen([sys.executable, "-m", "creditcert.cli", "--home", str(home), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    deadline = time.monotonic() + 90
    while not _issued_lines(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 130, stderr
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    lines = read_manifest(out)
    started = {line.code for line in lines if line.status == "started"}
    recorded = {line.code for line in lines if line.status == "issued"}
    assert started == recorded and len(recorded) < 3  # what the workers had begun, they finished
    resumed = run_cli(home, *args)
    assert resumed.returncode == 0, resumed.stderr
    assert_each_issued_once(home, out, codes, "bidding")


def _issued_lines(out: Path) -> int:
    try:
        return sum(line.status == "issued" for line in read_manifest(out))
    except (FileNotFoundError, BatchInputError):
        return 0


def _now():
    from datetime import datetime

    from creditcert.model.clock import SHANGHAI

    return datetime.now(SHANGHAI)
