"""A full disk in every writing command: one line naming the problem, exit 2, nothing lost.

The real CLI runs with RLIMIT_FSIZE = 0, so the kernel refuses every byte it tries to write
(EFBIG, as a full disk refuses with ENOSPC): Python, SQLite, DuckDB and Arrow all meet the same
wall. Afterwards the city still answers as before.
"""

from __future__ import annotations

import shutil

import pytest

from creditcert import config

from .conftest import city_at, run_cli

pytestmark = pytest.mark.slow  # the real CLI in subprocesses: `make test` runs it, `make check` not


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, issued):
    """Files the commands read: a department export, a register export, a partner's bundle."""
    folder = tmp_path_factory.mktemp("inputs")
    city = issued["city"]
    from creditcert.data import sample

    s = city.settings
    sample.export_department_file(
        s.data_dir, s.catalog, s.issuer, domain_code="transport", rows=20, bad_rows=2, seed=3,
        as_of=issued["busy"][0].document.issued_at.date(), path=folder / "transport.csv",
        encoding="utf-8",
    )  # fmt: skip
    code = issued["busy"][0].document.subject_code
    (folder / "register.csv").write_text(
        "统一社会信用代码,名称,登记状态\n" + f"{code},沈阳新名称有限公司,存续\n", encoding="utf-8"
    )
    return folder


COMMANDS = {
    "ingest": lambda i: ["ingest", "--domain", "transport", str(i / "transport.csv")],
    "register-import": lambda i: ["register", "import", str(i / "register.csv")],
    "reindex": lambda i: ["data", "reindex"],
    "sample-generate": lambda i: ["sample", "generate", "--subjects", "30", "--records", "60"],
    "report": lambda i: ["report", "{busy}", "--purpose", "bidding", "--out", str(i / "r.pdf")],
    "revoke": lambda i: ["revoke", "{number}", "--reason", "wrong purpose"],
    "keys-rotate": lambda i: ["keys", "rotate"],
    "partner-export": lambda i: ["partner", "export", "--out", str(i / "bundle.cose")],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_full_disk_is_one_line_and_loses_nothing(name, inputs, issued, tmp_path):
    home = tmp_path / "city"
    shutil.copytree(issued["home"], home)
    report, pdf = issued["busy"]
    fill = {"busy": report.document.subject_code, "number": report.document.number}
    args = [a.format(**fill) for a in COMMANDS[name](inputs)]
    before = city_at(home).verify(pdf.read_bytes(), at=report.document.issued_at)
    done = run_cli(home, *args, disk_full=True)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    # nothing lost: the city answers as before, and the same command works once there is room
    after = city_at(home).verify(pdf.read_bytes(), at=report.document.issued_at)
    assert after.verdict is before.verdict and after.failures == before.failures
    again = run_cli(home, *args)
    assert again.returncode in (0, 1), again.stderr[-2000:]


def test_init_on_a_full_disk_then_again(tmp_path):
    home = tmp_path / "new"
    done = run_cli(home, "init", "--city", "210100", "--name", "沈阳市", disk_full=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert run_cli(home, "init", "--city", "210100", "--name", "沈阳市").returncode == 0
    assert config.load(home).issuer.admin_code == "210100"
