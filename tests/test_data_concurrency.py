"""Writers never take readers down, readers never break writers (docs/data.md): a Store open
across an ingest and a register import keeps its snapshot while both writers succeed; lookups in
another process answer throughout an ingest, a register import and a reindex; writers wait for
each other; a copied home answers without a reindex."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from creditcert import config
from creditcert import lookup as records
from creditcert.data import sample
from creditcert.data.index import _locked
from creditcert.data.ingest import ingest_file
from creditcert.data.store import Store, current_generation, dataset_path
from creditcert.data.subjects import import_register
from creditcert.model.clock import SHANGHAI

from .conftest import run_cli, transport_export

pytestmark = pytest.mark.slow  # the real CLI in subprocesses: `make test` runs it, `make check` not
ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 7, 1, 9, 30, tzinfo=SHANGHAI)
AS_OF = date(2026, 7, 1)
NEW = sample.generate_codes(2, np.random.default_rng(43), ["210106"])


def test_an_open_store_keeps_its_snapshot_while_writers_publish(fresh_city, tmp_path):
    s = fresh_city.settings
    transport = s.catalog.domain("transport")
    export = transport_export(fresh_city, tmp_path / "transport.csv", seed=23)
    with open(export, encoding="utf-8", newline="") as fh:
        code = next(csv.DictReader(fh))["统一社会信用代码"]
    with Store(s.data_dir, s.catalog) as before:
        rows_before = before.dataset_info(transport).rows
        theirs_before = before.records(code, [transport])["transport"]
    request = records.resolve_request(s.catalog, as_of=AS_OF, all_domains=True, years=5)
    with Store(s.data_dir, s.catalog) as held:  # opened before, not asked about transport yet
        result = ingest_file(
            export,
            domain_code="transport",
            catalog=s.catalog,
            data_dir=s.data_dir,
            quarantine_dir=fresh_city.home / "quarantine",
            now=NOW,
        )
        assert result.accepted == 40
        # the held store answers from its generation: consistent, and without refusing
        assert held.dataset_info(transport).rows == rows_before
        assert held.records(code, [transport])["transport"] == theirs_before
        assert records.lookup(held, s, code, request).subject.credit_code == code
        with Store(s.data_dir, s.catalog) as fresh:
            assert fresh.generation > held.generation
            assert fresh.dataset_info(transport).rows == rows_before + 40
            assert len(fresh.records(code, [transport])["transport"]) > len(theirs_before)

        register = tmp_path / "register.csv"
        with open(register, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["统一社会信用代码", "企业名称", "成立日期", "登记状态"])
            w.writerows([c, "沈阳并发测试有限公司", "2026-05-01", "存续"] for c in NEW)
        imported = import_register(
            register,
            data_dir=s.data_dir,
            catalog=s.catalog,
            quarantine_dir=fresh_city.home / "quarantine",
            now=NOW,
        )
        assert imported.added == 2
        assert held.subject(NEW[0]) is None
        assert records.lookup(held, s, code, request).subject.credit_code == code
        with Store(s.data_dir, s.catalog) as fresh:
            assert fresh.subject(NEW[0]).name == "沈阳并发测试有限公司"
            assert fresh.dataset_info(transport).rows == rows_before + 40


def test_lookups_answer_throughout_ingest_register_import_and_reindex(fresh_city):
    """Another process looks up subjects (a new Store each time) while the CLI writes; every
    lookup must succeed. Prints the latencies; benchmarks/README.md has them at city scale."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "reads_during_writes.py"),
            str(fresh_city.home),
            "200",
            "fresh",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    print(json.dumps(result, ensure_ascii=False))
    assert result["all_failed"] == 0, result
    for phase in ("ingest", "register", "reindex"):
        assert result[phase]["lookups"] > 0 and result[phase]["failed"] == 0, result
    with Store(fresh_city.settings.data_dir, fresh_city.settings.catalog) as store:
        assert store.dataset_info(fresh_city.settings.catalog.domain("transport")).rows >= 200


def test_writers_wait_for_each_other_sample_generate_included(fresh_city):
    """`sample generate` takes the writers' lock: while it is held, it waits and changes nothing."""
    s = fresh_city.settings
    generation = current_generation(s.data_dir)
    before = dataset_path(s.data_dir, "transport").read_bytes()
    with _locked(s.data_dir):
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "creditcert.cli",
                "--home",
                str(fresh_city.home),
                "sample",
                "generate",
                "--subjects",
                "50",
                "--records",
                "200",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)
        assert child.poll() is None
        assert dataset_path(s.data_dir, "transport").read_bytes() == before
        assert current_generation(s.data_dir) == generation
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    with Store(s.data_dir, s.catalog) as store:
        assert len(store.subject_codes(with_records=None, limit=None)) == 50


def test_a_copied_home_answers_without_reindex(fresh_city, tmp_path):
    """cp -a keeps mtimes, cp -r does not: either way the files' ids match the index."""
    request = ["lookup", "--all", "--as-of", AS_OF.isoformat(), "--json"]
    s = fresh_city.settings
    with Store(s.data_dir, s.catalog) as store:
        code = store.subject_codes(with_records=True, limit=1)[0]
    original = run_cli(fresh_city.home, *request[:1], code, *request[1:])
    assert original.returncode == 0, original.stderr
    for flags in ("-a", "-r"):
        copy = tmp_path / f"copy{flags}"
        subprocess.run(["cp", flags, str(fresh_city.home), str(copy)], check=True)
        for path in (copy / "data").rglob("*.parquet"):
            os.utime(path, ns=(1, 1))  # as a restore from backup or rsync without -t might
        answer = run_cli(copy, *request[:1], code, *request[1:])
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout)["domains"] == json.loads(original.stdout)["domains"]
        status = run_cli(copy, "data", "status", "--json")
        assert all(d["problem"] is None for d in json.loads(status.stdout)["datasets"])
    # writing into a copy leaves the original alone
    export = transport_export(fresh_city, tmp_path / "t.csv", rows=10, seed=23)
    assert (
        run_cli(tmp_path / "copy-a", "ingest", "--domain", "transport", str(export)).returncode == 0
    )
    copied = config.load(tmp_path / "copy-a")
    with Store(copied.data_dir, copied.catalog) as a, Store(s.data_dir, s.catalog) as b:
        transport = s.catalog.domain("transport")
        assert a.dataset_info(transport).rows == b.dataset_info(transport).rows + 10


def test_a_reader_that_loses_the_race_with_a_publish_reads_current_again(fresh_city, monkeypatch):
    """A writer deletes the generation it replaced as soon as the next is published; a reader
    that read CURRENT just before finds the file gone and reads CURRENT again."""
    from creditcert.data import store as store_module
    from creditcert.data.index import rebuild_index

    s = fresh_city.settings
    old = current_generation(s.data_dir)
    rebuild_index(s.data_dir, s.catalog)
    assert not (s.data_dir / "index" / f"{old}.duckdb").exists()
    answers = iter([old, old + 1])
    real = store_module.current_generation
    monkeypatch.setattr(
        store_module, "current_generation", lambda data_dir: next(answers, None) or real(data_dir)
    )
    with Store(s.data_dir, s.catalog) as store:
        assert store.generation == old + 1
        assert store.subject_codes(with_records=True, limit=1)
