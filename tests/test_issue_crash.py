"""The registry says "issued" only when the PDF exists (issue 9, D4 and D21): the real CLI killed
at each issuing stage, in-process failures, an unwritable --out, `report get`, the rate limit
after void and revoke, and parallel reports for one subject."""

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from creditcert.errors import IssueError
from creditcert.issue import issuer
from creditcert.model import report_number
from creditcert.model.clock import SHANGHAI
from creditcert.registry import Entry, RateLimited, SqliteRegistry
from creditcert.verify.result import Verdict
from creditcert.verify.verifier import InputKind

from .conftest import city_at, run_cli

pytestmark = pytest.mark.slow  # the real CLI in subprocesses: `make test` runs it, `make check` not


def clock() -> datetime:
    """The CLI reads the real clock, so the library calls beside it do too."""
    return datetime.now(SHANGHAI)


@pytest.fixture(scope="module")
def keyed_template(tmp_path_factory, _fresh_template):
    """A small city with keys valid now and the default rate limit of 1."""
    home = tmp_path_factory.mktemp("crash") / "city"
    shutil.copytree(_fresh_template, home)
    city_at(home).keys.init(clock() - timedelta(hours=1))
    return home


@pytest.fixture
def home(tmp_path, keyed_template):
    copy = tmp_path / "city"
    shutil.copytree(keyed_template, copy)
    return copy


def subject(home) -> str:
    with city_at(home).store() as store:
        return store.subject_codes(with_records=True, limit=1)[0]


def rows(home) -> dict[str, str]:
    """number → status, straight from the registry file."""
    con = sqlite3.connect(home / "registry.sqlite")
    try:
        return dict(con.execute("SELECT number, status FROM reports").fetchall())
    finally:
        con.close()


def verdict(home, number):
    return city_at(home).verify(number, at=clock(), kind=InputKind.NUMBER).verdict


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


@contextmanager
def zombie_pid() -> Iterator[int]:
    """A child that has exited and is not yet reaped, as an orphaned worker stays under an init
    that never reaps: `kill(pid, 0)` still succeeds for it."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    stat = Path(f"/proc/{pid}/stat")
    while stat.read_bytes().rpartition(b")")[2].split()[0] != b"Z":
        time.sleep(0.01)
    try:
        yield pid
    finally:
        os.waitpid(pid, 0)


STAGES = ["report.number-reserved", "report.pdf-written", "report.registered"]


@pytest.mark.parametrize("stage", STAGES)
def test_a_report_killed_at_each_stage_never_leaves_an_issued_number_without_its_pdf(home, stage):
    code = subject(home)
    killed = run_cli(home, "report", code, "--purpose", "bidding", kill_at=stage)
    assert killed.returncode == -9, killed.stderr
    (number, status), *more = rows(home).items()
    assert not more
    pdf = home / "reports" / f"{number}.pdf"
    if stage == "report.registered":  # the commit happened: a real, retrievable report
        assert status == "issued" and pdf.exists()
        assert verdict(home, number) is Verdict.ACCEPTED
        city = city_at(home)
        with pytest.raises(RateLimited):  # it counts, as an issued report should
            city.issue(code, city.request(as_of=clock().date(), purpose="bidding"), at=clock())
        out = home / "lost-and-found.pdf"
        got = run_cli(home, "report", "get", number, "--out", str(out))
        assert got.returncode == 0, got.stderr
        assert out.read_bytes() == pdf.read_bytes()
        return
    assert status == "pending" and pdf.exists() == (stage == "report.pdf-written")
    assert verdict(home, number) is Verdict.REJECTED  # never accepted without a completed PDF
    debris = home / "reports" / f".{number}.pdf.{dead_pid()}.tmp"  # a crashed writer's temporary
    debris.parent.mkdir(exist_ok=True)
    debris.write_bytes(b"%PDF-half")
    again = run_cli(home, "report", code, "--purpose", "bidding")  # rate limit 1: not used up
    assert again.returncode == 0, again.stderr
    after = rows(home)
    assert after.pop(number) == "void" and list(after.values()) == ["issued"]
    reports = sorted(p.name for p in (home / "reports").iterdir())
    assert reports == [f"{next(iter(after))}.pdf"]  # the void PDF and the debris are gone
    result = city_at(home).verify(number, at=clock(), kind=InputKind.NUMBER)
    assert result.verdict is Verdict.REJECTED
    assert {c.reason.value for c in result.checks} >= {"voided"}
    with pytest.raises(IssueError, match="void"):
        city_at(home).report_pdf(number, at=clock())


def test_a_failure_after_the_number_was_drawn_voids_it_and_frees_the_rate_limit(home, monkeypatch):
    city = city_at(home)
    code = subject(home)
    request = city.request(as_of=clock().date(), purpose="bidding")

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(issuer.pades, "sign_pdf", disk_full)
    with pytest.raises(OSError, match="No space"):
        city.issue(code, request, at=clock())
    monkeypatch.undo()
    [(number, status)] = rows(home).items()
    assert status == "void" and not (home / "reports" / f"{number}.pdf").exists()
    assert verdict(home, number) is Verdict.REJECTED
    report = city.issue(code, request, at=clock())  # the void number did not use the limit
    assert rows(home)[report.document.number] == "issued" and report.path.exists()


def test_pending_numbers_are_voided_when_their_process_is_gone_or_the_grace_has_passed(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    now = datetime(2026, 7, 1, 10, 0, tzinfo=SHANGHAI)
    numbers = ("ALIVE", "DEAD", "ZOMBIE", "FAR-RECENT", "FAR-OLD")
    with SqliteRegistry(tmp_path / "registry.sqlite") as reg:
        for n in numbers:
            reg.reserve(Entry(n, "210100", n, "bidding", "00", "k", now, now), rate_limit=0)
    old = (now - issuer.PENDING_GRACE - timedelta(seconds=1)).isoformat()
    con = sqlite3.connect(tmp_path / "registry.sqlite", isolation_level=None)
    with zombie_pid() as zombie:
        for n, owner in {
            "DEAD": f"{socket.gethostname()}:{dead_pid()}",
            "ZOMBIE": f"{socket.gethostname()}:{zombie}",
            "FAR-RECENT": "another-node:1",
            "FAR-OLD": "another-node:2",
        }.items():
            con.execute("UPDATE reports SET owner = ? WHERE number = ?", (owner, n))
        con.execute("UPDATE reports SET issued_at = ? WHERE number = 'FAR-OLD'", (old,))
        con.close()
        (reports / "DEAD.pdf").write_bytes(b"%PDF- never handed out")
        with SqliteRegistry(tmp_path / "registry.sqlite") as reg:
            assert sorted(issuer.settle(reg, reports, at=now)) == ["DEAD", "FAR-OLD", "ZOMBIE"]
            assert not (reports / "DEAD.pdf").exists()
            assert {n: reg.get(n).status for n in numbers} == {
                "ALIVE": "pending",  # this very process: still at work
                "DEAD": "void",
                "ZOMBIE": "void",  # exited, never reaped: not at work either
                "FAR-RECENT": "pending",  # another host, within the grace period
                "FAR-OLD": "void",
            }
            assert not reg.complete("DEAD")  # a voided number can never become issued
            assert reg.revoked_numbers() == ["DEAD", "FAR-OLD", "ZOMBIE"]  # partners refuse them


def test_unwritable_out_still_issues_and_report_get_and_revoke_behave(home):
    code = subject(home)
    (home / "afile").write_text("not a directory")
    bad = run_cli(home, "report", code, "--purpose", "bidding", "--out", str(home / "afile/x.pdf"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.count("error:") == 1 and "report get" in bad.stderr
    [(number, status)] = rows(home).items()
    assert status == "issued"
    city = city_at(home)
    entry, pdf = city.report_pdf(number, at=clock())
    assert entry.number == number and pdf == (home / "reports" / f"{number}.pdf").read_bytes()
    with pytest.raises(IssueError, match="not at"):
        city.report_pdf(number, at=entry.valid_until + timedelta(seconds=1))
    with pytest.raises(IssueError, match="not in this city's registry"):
        city.report_pdf(report_number.new_number("210100", clock()), at=clock())
    request = city.request(as_of=clock().date(), purpose="bidding")
    with pytest.raises(RateLimited):
        city.issue(code, request, at=clock())
    city.revoke(number, reason="issued for the wrong purpose", at=clock())
    refused = run_cli(home, "report", "get", number, "--out", str(home / "again.pdf"))
    assert refused.returncode == 2 and "revoked" in refused.stderr
    assert not (home / "again.pdf").exists()
    corrected = city.issue(code, request, at=clock())  # a revoked report frees its place
    assert rows(home) == {number: "revoked", corrected.document.number: "issued"}


def test_parallel_reports_for_one_subject_respect_the_rate_limit_exactly(home):
    config = home / "creditcert.toml"
    text = config.read_text()
    config.write_text(text.replace("rate_limit_per_day = 1", "rate_limit_per_day = 2"))
    code = subject(home)
    with ThreadPoolExecutor(6) as pool:
        runs = list(
            pool.map(lambda _: run_cli(home, "report", code, "--purpose", "bidding"), range(6))
        )
    assert sorted(r.returncode for r in runs) == [0, 0, 2, 2, 2, 2], [r.stderr for r in runs]
    assert all("rate limit" in r.stderr for r in runs if r.returncode == 2)
    issued = [r.stdout.split()[1] for r in runs if r.returncode == 0]
    assert len(set(issued)) == 2
    assert rows(home) == dict.fromkeys(issued, "issued")  # no pending or void rows left
    assert sorted(p.name for p in (home / "reports").iterdir()) == sorted(
        f"{n}.pdf" for n in issued
    )
