"""Shared fixtures: a hand-made city with records chosen to exercise every rule, and a sample city."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from creditcert import config
from creditcert.city import City as CityApi
from creditcert.data import sample
from creditcert.data.index import rebuild_index
from creditcert.data.schema import CUTOFF_KEY, RECORD_ARROW_SCHEMA
from creditcert.data.store import dataset_path, subjects_path
from creditcert.issue import pades
from creditcert.lookup import Request
from creditcert.model.clock import SHANGHAI
from creditcert.stages import ENV as KILL_AT

from . import cli_process
from .pdfa import assert_pdfa3b

AS_OF = date(2026, 7, 1)
CUTOFF = datetime(2026, 6, 30, 2, 0, tzinfo=SHANGHAI)
CLEAN = "91210102MA0000001G"  # filled in by make_codes below
LEGACY = "91350203M0001QKT19"  # a legal pre-2016 code that fails the check character


def record(code: str, domain: str, n: int, **overrides) -> dict:
    """One well-formed record; tests override the fields their rule looks at."""
    row = {
        "record_id": f"{domain}-{code}-{n}",
        "credit_code": code,
        "subject_name": "name",
        "domain": domain,
        "kind": "penalty",
        "tier": "general",
        "simplified": False,
        "decision_no": f"沈市监罚〔2025〕{n}号",
        "authority": "沈阳市市场监督管理局",
        "source_unit": "沈阳市市场监督管理局",
        "decision_date": date(2025, 3, 1),
        "penalty_types": ["fine"],
        "penalty_content": "罚款人民币5000元",
        "fine_amount": Decimal("5000.00"),
        "facts": "超出核准登记的经营范围从事经营活动",
        "legal_basis": "《中华人民共和国行政处罚法》第28条",
        "publicity_end": date(2026, 3, 1),
        "repair_date": None,
        "revoked": False,
        "disputed": False,
    }
    row.update(overrides)
    return row


def write_records(data_dir: Path, dataset: str, rows: list[dict]) -> None:
    schema = RECORD_ARROW_SCHEMA.with_metadata({CUTOFF_KEY: CUTOFF.isoformat()})
    table = pa.Table.from_pylist(rows, schema=schema)
    path = dataset_path(data_dir, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def write_subjects(data_dir: Path, subjects: list[tuple[str, str]]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "credit_code": [c for c, _ in subjects],
            "name": [n for _, n in subjects],
            "entity_type": [c[:2] for c, _ in subjects],
            "admin_division": [c[2:8] for c, _ in subjects],
            "registered_on": pa.array([date(2010, 5, 1)] * len(subjects), pa.date32()),
            "status": ["active"] * len(subjects),
        }
    )
    pq.write_table(table, subjects_path(data_dir))


@dataclass
class City:
    home: Path
    settings: config.Settings
    codes: dict[str, str]


def new_home(tmp: Path, **kwargs) -> Path:
    home = tmp / "city"
    config.init(home, admin_code="210100", name="沈阳市", name_en="Shenyang", **kwargs)
    return home


@pytest.fixture
def hand_city(tmp_path: Path) -> City:
    """A tiny city whose records each trip exactly one rule (see tests/test_records.py)."""
    home = new_home(tmp_path)
    settings = config.load(home)
    import numpy as np

    generated = sample.generate_codes(3, np.random.default_rng(5), ["210102"])
    names = {"clean": generated[0], "busy": generated[1], "legacy": LEGACY, "other": generated[2]}
    write_subjects(
        settings.data_dir,
        [
            (names["clean"], "沈阳恒达建材有限公司"),
            (names["busy"], "沈阳瑞祥物流有限公司"),
            (names["legacy"], "厦门市老字号贸易有限公司"),
            (names["other"], "和平区老李记餐馆"),
        ],
    )
    busy = names["busy"]
    write_records(
        settings.data_dir,
        "market-regulation",
        [
            record(busy, "market-regulation", 1),  # counted
            record(busy, "market-regulation", 2, revoked=True),
            record(busy, "market-regulation", 3, decision_date=date(2019, 5, 1)),
            record(busy, "market-regulation", 4, decision_date=date(2021, 10, 1)),  # counted in 5y
            record(
                busy,
                "market-regulation",
                5,
                penalty_types=["warning"],
                fine_amount=None,
                penalty_content="警告",
                tier="minor",
            ),
            record(busy, "market-regulation", 6, fine_amount=Decimal("800.00")),  # < 1000
            record(busy, "market-regulation", 7, repair_date=date(2025, 9, 1)),  # 已修复
            record(
                busy,
                "market-regulation",
                8,
                kind="abnormal-operation",
                penalty_types=[],
                fine_amount=None,
                penalty_content="列入经营异常名录",
            ),
            record(
                busy, "market-regulation", 9, disputed=True, penalty_types=["fine", "confiscation"]
            ),
            record(busy, "market-regulation", 10, decision_date=date(2026, 7, 5)),  # after as-of
            record(names["legacy"], "market-regulation", 11),
        ],
    )
    write_records(
        settings.data_dir,
        "transport",
        [
            record(busy, "transport", 1, tier="minor", simplified=True),  # tier not counted
            record(busy, "transport", 2, fine_amount=Decimal("150.00")),  # below 200
            record(busy, "transport", 3, fine_amount=Decimal("20000.00")),
        ],
    )
    write_records(
        settings.data_dir,
        "taxation",
        [record(busy, "taxation", 1, decision_date=date(2022, 3, 1))],  # outside 3-year window
    )
    write_records(
        settings.data_dir,
        "housing-fund",
        [
            record(busy, "housing-fund", 1, publicity_end=date(2026, 1, 1)),  # publicity ended
            record(busy, "housing-fund", 2, kind="criminal", penalty_types=[], fine_amount=None),
        ],
    )
    write_records(settings.data_dir, "public-security", [])
    rebuild_index(settings.data_dir, settings.catalog)
    return City(home, settings, names)


def generated_home(tmp: Path, *, subjects: int, records: int, seed: int) -> Path:
    """A new city home with sample data current as of 2026-06-30."""
    home = new_home(tmp)
    settings = config.load(home)
    sample.generate(
        settings.data_dir,
        settings.catalog,
        settings.issuer,
        subjects=subjects,
        records=records,
        seed=seed,
        as_of=date(2026, 6, 30),
    )
    return home


@pytest.fixture(scope="session")
def sample_city(tmp_path_factory) -> City:
    """A generated city, shared by tests that only read it."""
    home = generated_home(tmp_path_factory.mktemp("sample"), subjects=3000, records=15000, seed=11)
    return City(home, config.load(home), {})


@pytest.fixture(scope="session")
def _fresh_template(tmp_path_factory) -> Path:
    return generated_home(tmp_path_factory.mktemp("template"), subjects=600, records=3000, seed=5)


@pytest.fixture
def fresh_city(tmp_path, _fresh_template) -> City:
    """A small generated city of the test's own (a copy), for tests that change data."""
    home = tmp_path / "city"
    shutil.copytree(_fresh_template, home)
    return City(home, config.load(home), {})


NOW_REPORTS = datetime(2026, 7, 1, 10, 30, tzinfo=SHANGHAI)


def city_at(home: Path, **overrides) -> CityApi:
    """The library's front door on a test home, with settings overridden (e.g. no rate limit)."""
    city = CityApi.open(home)
    if overrides:
        city = CityApi(dataclasses.replace(city.settings, **overrides))
    return city


@pytest.fixture(scope="session")
def issued(tmp_path_factory, _fresh_template):
    """A city with keys and two issued reports (one with records, one clean), shared by the
    verification tests; tests that revoke or otherwise change it use their own copies."""
    home = tmp_path_factory.mktemp("pdf") / "city"
    shutil.copytree(_fresh_template, home)
    city = city_at(home, rate_limit_per_day=0)
    city.keys.init(NOW_REPORTS)
    out = {}
    with city.store() as store:
        busy = store.subject_codes(with_records=True, limit=1)[0]
        clean = store.subject_codes(with_records=False, limit=1)[0]
    request = city.request(as_of=NOW_REPORTS.date(), all_domains=True, years=5)
    for name, code in (("busy", busy), ("clean", clean)):
        report = city.issue(code, request, at=NOW_REPORTS)
        path = home / f"{name}.pdf"
        path.write_bytes(report.pdf)
        out[name] = (report, path)
    out["city"], out["home"], out["settings"] = city, home, city.settings
    out["renderer"] = city.renderer
    return out


def reports_in_a_copy(home: Path, template: Path, langs) -> tuple[CityApi, str, Request, dict]:
    """A copy of the sample city with keys, and the all-domain, 5-year report of its busiest
    subject issued in each language: (city, code, request, {lang: IssuedReport})."""
    shutil.copytree(template, home)
    city = city_at(home, rate_limit_per_day=0)
    city.keys.init(NOW_REPORTS)
    with city.store() as store:
        code = store.subject_codes(with_records=True, limit=1)[0]
    request = city.request(as_of=NOW_REPORTS.date(), all_domains=True, years=5)
    issued = {lang: city.issue(code, request, at=NOW_REPORTS, lang=lang) for lang in langs}
    return city, code, request, issued


@pytest.fixture(autouse=True, scope="session")
def _every_pdf_is_pdfa3b():
    """Every PDF issued in-process is PDF/A-3b before and after its PAdES signature
    (tests/pdfa.py); the CLI's files are checked where the tests read them."""
    sign = pades.sign_pdf

    def checked(pdf, signer, **kwargs):
        assert_pdfa3b(pdf)
        signed = sign(pdf, signer, **kwargs)
        assert_pdfa3b(signed)
        return signed

    patch = pytest.MonkeyPatch()
    patch.setattr(pades, "sign_pdf", checked)
    yield
    patch.undo()


def run_cli(
    home: Path, *args: str, kill_at: str | None = None, disk_full: bool = False
) -> subprocess.CompletedProcess:
    """The real CLI in its own process; with `kill_at` it is SIGKILLed at that named stage
    (creditcert/stages.py), which the caller checks by `returncode == -9`; with `disk_full` the
    kernel refuses every byte it writes (RLIMIT_FSIZE 0: EFBIG, as a full disk gives ENOSPC).

    The process is forked from a server that has imported the CLI once (multiprocessing's
    forkserver), not a fresh interpreter: the ~60 runs of the crash suites would otherwise spend a
    minute importing. It is still its own process with its own stdout, stderr, environment, exit
    status and SIGKILL. A disk-full run gets a fresh interpreter: its output must go to pipes,
    which RLIMIT_FSIZE does not limit (tests/test_architecture.py times a fresh one too)."""
    env = {k: v for k, v in os.environ.items() if k != KILL_AT}
    if kill_at:
        env[KILL_AT] = kill_at
    argv = ["--home", str(home), *args]
    if disk_full:
        return subprocess.run(
            [sys.executable, "-m", "creditcert.cli", *argv],
            capture_output=True, text=True, env=env, check=False, timeout=120,
            preexec_fn=_no_room,
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cli-") as scratch:
        out, err = Path(scratch, "stdout"), Path(scratch, "stderr")
        out.touch()
        err.touch()
        child = _CLI_PROCESSES.Process(target=cli_process.run, args=(argv, env, out, err))
        child.start()
        child.join(120)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(["creditcert", *argv], 120)
        return subprocess.CompletedProcess(
            ["creditcert", *argv], child.exitcode, out.read_text(), err.read_text()
        )


_CLI_PROCESSES = multiprocessing.get_context("forkserver")
_CLI_PROCESSES.set_forkserver_preload(["tests.cli_process"])


def _no_room() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def transport_export(city, path: Path, *, rows: int = 40, seed: int = 17) -> Path:
    """A transport department's export (CSV) of `rows` new, valid records for a test city."""
    s = city.settings
    sample.export_department_file(
        s.data_dir, s.catalog, s.issuer, domain_code="transport", rows=rows, bad_rows=0,
        seed=seed, as_of=date(2026, 6, 30), path=path,
    )  # fmt: skip
    return path
