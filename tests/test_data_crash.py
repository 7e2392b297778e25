"""kill -9 of the real CLI at every stage of every data writer (creditcert.stages): readers see the
old state or the new one, never a mix, lookups keep working, and a plain re-run converges with no
`data reindex` and no debris left (docs/data.md)."""

from __future__ import annotations

import csv
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from creditcert import config
from creditcert import lookup as records
from creditcert.data import sample
from creditcert.data.index import FILE_STAGES, INDEX_STAGES
from creditcert.data.store import (
    Store,
    current_generation,
    dataset_path,
    index_dir,
    read_file_id,
    subjects_path,
)
from creditcert.errors import DataError, SubjectError

from .conftest import run_cli, transport_export

pytestmark = pytest.mark.slow  # the real CLI in subprocesses: `make test` runs it, `make check` not

ONE_FILE = [s for s in FILE_STAGES if s != "installing"]  # a writer of a single file
NEW = sample.generate_codes(3, np.random.default_rng(41), ["210105"])
AS_OF = date(2026, 7, 1)
NEW_CITY = ("--subjects", "80", "--records", "400", "--seed", "9")


def seen(home: Path) -> dict:
    """What a reader sees: register size, rows per domain, and that a lookup of a subject with
    records across every domain answers."""
    settings = config.load(home)
    with Store(settings.data_dir, settings.catalog) as store:
        codes = store.subject_codes(with_records=None, limit=None)
        rows = {d.code: store.dataset_info(d).rows for d in settings.catalog.domains}
        busy = store.subject_codes(with_records=True, limit=1)[0]
        request = records.resolve_request(settings.catalog, as_of=AS_OF, all_domains=True, years=5)
        assert records.lookup(store, settings, busy, request).subject.credit_code == busy
        registered = {c: store.subject(c) is not None for c in NEW}
    return {"subjects": len(codes), "rows": rows, "registered": registered}


def on_disk(home: Path) -> dict:
    """Row counts of the dataset of record (the Parquet files), never torn."""
    settings = config.load(home)
    rows = {
        d.code: pq.read_metadata(dataset_path(settings.data_dir, d.dataset)).num_rows
        for d in settings.catalog.domains
    }
    return {"subjects": pq.read_metadata(subjects_path(settings.data_dir)).num_rows, "rows": rows}


def assert_converged(home: Path) -> None:
    """The index holds every file as it is, one generation, no journal, no debris."""
    settings = config.load(home)
    data = settings.data_dir
    generation = current_generation(data)
    assert {p.name for p in index_dir(data).iterdir()} == {"CURRENT", f"{generation}.duckdb"}
    assert [p for p in data.rglob("*") if p.name.endswith((".tmp", ".wal"))] == []
    disk = on_disk(home)
    state = seen(home)
    assert (state["subjects"], state["rows"]) == (disk["subjects"], disk["rows"])
    with Store(data, settings.catalog) as store:
        for key, (file_id, _, _) in store._sources.items():
            path = subjects_path(data) if key.startswith("@") else dataset_path(data, key)
            assert read_file_id(path) == file_id, path


def kill(home: Path, stage: str, *args: str) -> None:
    done = run_cli(home, *args, kill_at=stage)
    assert done.returncode == -9, (done.returncode, done.stdout, done.stderr)


def ok(home: Path, *args: str) -> subprocess.CompletedProcess:
    done = run_cli(home, *args)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def register_export(path: Path) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["统一社会信用代码", "企业名称", "成立日期", "登记状态"])
        w.writerows([c, f"沈阳新登记{i}有限公司", "2026-05-01", "存续"] for i, c in enumerate(NEW))
    return path


def with_more(state: dict, domain: str, rows: int) -> dict:
    return {**state, "rows": {**state["rows"], domain: state["rows"][domain] + rows}}


@pytest.mark.parametrize("stage", [f"ingest.{s}" for s in ONE_FILE] + list(INDEX_STAGES))
def test_ingest_killed_at_each_stage(fresh_city, tmp_path, stage):
    home = fresh_city.home
    export = transport_export(fresh_city, tmp_path / "transport.csv")
    old = seen(home)
    new = with_more(old, "transport", 40)
    kill(home, stage, "ingest", "--domain", "transport", str(export))
    assert seen(home) == (new if stage == "index.published" else old)
    assert on_disk(home)["rows"]["transport"] in (
        old["rows"]["transport"],
        new["rows"]["transport"],
    )
    ok(home, "ingest", "--domain", "transport", str(export))
    assert seen(home) == new
    assert_converged(home)


@pytest.mark.parametrize("stage", [f"register.{s}" for s in ONE_FILE] + list(INDEX_STAGES))
def test_register_import_killed_at_each_stage(fresh_city, tmp_path, stage):
    home = fresh_city.home
    export = register_export(tmp_path / "register.csv")
    old = seen(home)
    new = {**old, "subjects": old["subjects"] + 3, "registered": dict.fromkeys(NEW, True)}
    kill(home, stage, "register", "import", str(export))
    assert seen(home) == (new if stage == "index.published" else old)
    ok(home, "register", "import", str(export))
    assert seen(home) == new
    assert_converged(home)


@pytest.mark.parametrize("stage", INDEX_STAGES)
def test_reindex_killed_at_each_stage(fresh_city, stage):
    home = fresh_city.home
    old = seen(home)
    generation = current_generation(fresh_city.settings.data_dir)
    kill(home, stage, "data", "reindex")
    assert seen(home) == old
    expected = generation + 1 if stage == "index.published" else generation
    assert current_generation(fresh_city.settings.data_dir) == expected
    ok(home, "data", "reindex")
    assert seen(home) == old
    assert_converged(home)


@pytest.mark.parametrize("stage", [f"reindex.{s}" for s in ONE_FILE])
def test_file_replaced_behind_the_index_then_reindex_killed(fresh_city, stage):
    """A dataset rewritten by another tool (no id) is refused, not answered from the old index;
    reindex gives it an id; killed while doing so, a re-run still converges."""
    home = fresh_city.home
    s = fresh_city.settings
    path = dataset_path(s.data_dir, "transport")
    table = pq.read_table(path)
    keep = {k: v for k, v in table.schema.metadata.items() if k != b"creditcert.file_id"}
    pq.write_table(table.slice(0, 10).replace_schema_metadata(keep), path)
    with Store(s.data_dir, s.catalog) as store, pytest.raises(DataError, match="changed after"):
        store.dataset_info(s.catalog.domain("transport"))
    kill(home, stage, "data", "reindex")
    ok(home, "data", "reindex")
    assert seen(home)["rows"]["transport"] == 10
    assert_converged(home)


SAMPLE_STAGES = [f"sample.{s}" for s in FILE_STAGES] + list(INDEX_STAGES)


@pytest.mark.parametrize("stage", SAMPLE_STAGES)
def test_sample_generate_killed_at_each_stage(fresh_city, stage):
    """Readers see the old city or the new one, never a mix, however far generation got."""
    home = fresh_city.home
    old = seen(home)
    kill(home, stage, "sample", "generate", *NEW_CITY)
    state = seen(home)
    assert state["subjects"] == (80 if stage == "index.published" else old["subjects"])
    assert state == old or sum(state["rows"].values()) == 400
    ok(home, "sample", "generate", *NEW_CITY)
    state = seen(home)
    assert (state["subjects"], sum(state["rows"].values())) == (80, 400)
    assert_converged(home)


def test_reindex_after_a_killed_generate_never_mixes_two_cities(fresh_city):
    """D23: killed half-way through installing its files, then `data reindex`: the new city
    whole, not the old datasets under the new register."""
    home = fresh_city.home
    kill(home, "sample.installing", "sample", "generate", *NEW_CITY)
    disk = on_disk(home)
    assert disk["subjects"] == 80 and sum(disk["rows"].values()) != 400  # a mix on disk
    ok(home, "data", "reindex")
    state = seen(home)
    assert (state["subjects"], sum(state["rows"].values())) == (80, 400)
    assert_converged(home)


def test_any_writer_finishes_what_another_left(fresh_city, tmp_path):
    """An ingest killed after its dataset was installed; the next writer is a register import:
    it publishes the transport rows too."""
    home = fresh_city.home
    old = seen(home)
    export = transport_export(fresh_city, tmp_path / "transport.csv")
    kill(home, "ingest.installed", "ingest", "--domain", "transport", str(export))
    ok(home, "register", "import", str(register_export(tmp_path / "register.csv")))
    state = seen(home)
    assert state["rows"]["transport"] == old["rows"]["transport"] + 40
    assert state["subjects"] == old["subjects"] + 3
    assert_converged(home)


def test_debris_of_dead_writers_is_removed_by_the_next_writer(fresh_city):
    data = fresh_city.settings.data_dir
    dead = subprocess.Popen(["true"])
    dead.wait()
    debris = [
        data / "records" / f".transport.parquet.{dead.pid}.tmp",
        data / f".subjects.parquet.{dead.pid}.tmp",
        index_dir(data) / f".9.duckdb.{dead.pid}.tmp",
        index_dir(data) / f".9.duckdb.{dead.pid}.tmp.wal",
        index_dir(data) / "9.duckdb",
        data / ".spill" / "duckdb_temp_storage-0.tmp",
    ]
    for path in debris:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left by a crash")
    ok(fresh_city.home, "data", "reindex")
    assert [p for p in debris if p.exists()] == []
    assert_converged(fresh_city.home)


def test_register_lookup_refused_for_a_subject_only_the_crashed_import_added(fresh_city, tmp_path):
    """The old state is whole: a subject the interrupted import added is not yet registered."""
    home = fresh_city.home
    kill(home, "register.installed", "register", "import", str(register_export(tmp_path / "r.csv")))
    s = fresh_city.settings
    request = records.resolve_request(s.catalog, as_of=AS_OF, all_domains=True, years=5)
    with Store(s.data_dir, s.catalog) as store, pytest.raises(SubjectError):
        records.lookup(store, s, NEW[0], request)


def test_every_stage_is_in_the_docs_with_what_a_rerun_does():
    text = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text(encoding="utf-8")
    for stage in [f"<command>.{s}" for s in FILE_STAGES] + list(INDEX_STAGES):
        assert f"| `{stage}`" in text, stage


def _dirty_rows(data: Path) -> int:
    import duckdb

    from creditcert.data.store import generation_path

    con = duckdb.connect(str(generation_path(data, current_generation(data))), read_only=True)
    try:
        return con.execute("SELECT dirty_rows FROM meta").fetchall()[0][0]
    finally:
        con.close()


def test_a_writer_patches_only_its_rows_then_compacts(fresh_city, monkeypatch):
    """A correction (same record id, new content) replaces that row alone in a copy of the index;
    once too much was patched, the next writer builds the index whole again."""
    import duckdb
    import pyarrow as pa

    from creditcert.data import index
    from creditcert.data.schema import RECORD_ARROW_SCHEMA

    from .conftest import CUTOFF

    s = fresh_city.settings
    transport = s.catalog.domain("transport")
    table = pq.read_table(dataset_path(s.data_dir, "transport"))
    first = table.slice(0, 1).to_pylist()[0]
    first["revoked"] = not first["revoked"]
    changed = pa.Table.from_pylist([first], schema=RECORD_ARROW_SCHEMA)
    assert _dirty_rows(s.data_dir) == 0
    with index.writing(s.data_dir, s.catalog, "ingest") as writer:
        con = duckdb.connect()
        con.register("old", table)
        con.register("changed", changed)
        writer.stage(
            "transport",
            con,
            "SELECT * FROM old WHERE record_id <> ? UNION ALL SELECT * FROM changed "
            "ORDER BY credit_code, record_id",
            [first["record_id"]],
            data_cutoff=CUTOFF,
            changed_rows=changed,
        )
    assert _dirty_rows(s.data_dir) == 2  # one row deleted, one inserted: patched, not rebuilt
    with Store(s.data_dir, s.catalog) as store:
        assert store.dataset_info(transport).rows == table.num_rows
        rows = store.records(first["credit_code"], [transport])["transport"]
        [row] = [r for r in rows if r["record_id"] == first["record_id"]]
        assert row["revoked"] == first["revoked"]
    monkeypatch.setattr(index, "COMPACT_MIN", 0)
    monkeypatch.setattr(index, "COMPACT_SHARE", 0.0)
    with index.writing(s.data_dir, s.catalog, "ingest") as writer:
        con = duckdb.connect()
        con.register("old", table)
        writer.stage(
            "transport",
            con,
            "SELECT * FROM old ORDER BY credit_code, record_id",
            [],
            data_cutoff=CUTOFF,
            changed_rows=table.slice(0, 1),  # the row goes back as it was
        )
    assert _dirty_rows(s.data_dir) == 0  # built whole
    assert_converged(fresh_city.home)
