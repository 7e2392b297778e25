import csv
import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from creditcert import lookup as records
from creditcert.cli.app import app
from creditcert.data import sample
from creditcert.data.generation import parquet_rows
from creditcert.data.ingest import ingest_file
from creditcert.data.store import (
    Store,
    current_generation,
    dataset_path,
    generation_path,
    read_file_id,
)
from creditcert.errors import DataError, IngestError
from creditcert.model.clock import SHANGHAI

from .conftest import transport_export

NOW = datetime(2026, 7, 1, 9, 30, tzinfo=SHANGHAI)


def export(city, path: Path, rows=300, bad=16, encoding="utf-8", seed=3):
    s = city.settings
    return sample.export_department_file(
        s.data_dir,
        s.catalog,
        s.issuer,
        domain_code="market-regulation",
        rows=rows,
        bad_rows=bad,
        seed=seed,
        as_of=date(2026, 6, 30),
        path=path,
        encoding=encoding,
    )


def run(city, path: Path, **kwargs):
    s = city.settings
    return ingest_file(
        path,
        domain_code="market-regulation",
        catalog=s.catalog,
        data_dir=s.data_dir,
        quarantine_dir=city.home / "quarantine",
        now=NOW,
        **kwargs,
    )


def quarantine_rows(result):
    with open(result.quarantine_file, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_gbk_export_is_detected_validated_and_merged(fresh_city, tmp_path):
    path = tmp_path / "export.csv"
    export(fresh_city, path, encoding="gbk")
    before = read_file_id(dataset_path(fresh_city.settings.data_dir, "market-regulation"))
    result = run(fresh_city, path)
    assert result.encoding == "gb18030"
    assert result.read == 300
    assert result.read == result.accepted + result.quarantined + result.already_present
    assert result.updated == 0
    assert result.quarantined == 16 and result.already_present == 0
    bad = quarantine_rows(result)
    assert len(bad) == 16
    reasons = " | ".join(r["reason"] for r in bad)
    for expected in (
        "check character",
        "not in the subject register",
        "decision_no: missing",
        "not a calendar date",
        "罚酒三杯",
        "fine",
        "duplicate of row",
        "future",
    ):
        assert expected in reasons, expected
    assert all(r["source_file"] == str(path) and int(r["row"]) >= 2 for r in bad)
    assert bad[0]["统一社会信用代码"]  # the original row travels with its reason
    after = read_file_id(dataset_path(fresh_city.settings.data_dir, "market-regulation"))
    assert after != before


def test_reingesting_adds_nothing(fresh_city, tmp_path):
    path = tmp_path / "export.csv"
    export(fresh_city, path)
    first = run(fresh_city, path)
    target = dataset_path(fresh_city.settings.data_dir, "market-regulation")
    size = target.stat().st_size
    again = run(fresh_city, path)
    assert again.accepted == 0
    assert again.already_present == first.accepted
    assert again.quarantined == first.quarantined
    assert target.stat().st_size == size


def test_ingested_records_are_found_by_lookup(fresh_city, tmp_path):
    path = tmp_path / "export.csv"
    export(fresh_city, path, rows=50, bad=0)
    with open(path, encoding="utf-8", newline="") as fh:
        first = next(csv.DictReader(fh))
    result = run(fresh_city, path)
    assert result.accepted == 50 and result.quarantine_file is None
    s = fresh_city.settings
    req = records.resolve_request(
        s.catalog, as_of=date(2026, 7, 1), domains=["market-regulation"], years=5
    )
    with Store(s.data_dir, s.catalog) as st:
        found = records.lookup(st, s, first["统一社会信用代码"], req)
        [dom] = found.domains
        numbers = {r.decision_no for r in dom.records} | set()
        total = len(dom.records) + sum(dom.left_out.values())
        assert total >= 1
        all_rows = st.records(first["统一社会信用代码"], [s.catalog.domain("market-regulation")])
        assert first["行政处罚决定书文号"] in {
            r["decision_no"] for r in all_rows["market-regulation"]
        }
        assert dom.data_cutoff == NOW
        del numbers


def test_xlsx_export_ingests_like_csv(fresh_city, tmp_path):
    path = tmp_path / "export.xlsx"
    export(fresh_city, path, rows=120, bad=8)
    result = run(fresh_city, path)
    assert result.encoding == "xlsx"
    assert (result.read, result.quarantined) == (120, 8)
    assert result.accepted == 112


def test_gbk_file_read_as_utf8_is_a_clear_error_and_changes_nothing(fresh_city, tmp_path):
    path = tmp_path / "export.csv"
    export(fresh_city, path, encoding="gbk")
    target = dataset_path(fresh_city.settings.data_dir, "market-regulation")
    before = target.read_bytes()
    with pytest.raises(IngestError, match=r"export.csv: not valid utf-8 near line \d+.*gbk"):
        run(fresh_city, path, encoding="utf-8")
    assert target.read_bytes() == before


def test_missing_required_column_is_refused(fresh_city, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text(
        "行政相对人名称,统一社会信用代码\n某公司,91110000600037341L\n", encoding="utf-8"
    )
    with pytest.raises(IngestError, match="missing required column.*decision_no"):
        run(fresh_city, path)


def test_corrupt_dataset_is_named_and_left_alone(fresh_city, tmp_path):
    target = dataset_path(fresh_city.settings.data_dir, "market-regulation")
    target.write_bytes(b"PAR1 this is not parquet")
    broken = target.read_bytes()
    path = tmp_path / "export.csv"
    export(fresh_city, path, rows=20, bad=0)
    with pytest.raises(DataError, match="market-regulation.parquet"):
        run(fresh_city, path)
    assert target.read_bytes() == broken


def test_crash_while_writing_keeps_the_old_dataset(fresh_city, tmp_path, monkeypatch):
    import os

    target = dataset_path(fresh_city.settings.data_dir, "market-regulation")
    before = target.read_bytes()
    path = tmp_path / "export.csv"
    export(fresh_city, path, rows=20, bad=0)

    def boom(*args, **kwargs):  # the new dataset, written, cannot be made durable
        raise OSError(28, "disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        run(fresh_city, path)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".")] == []


def test_duckdb_failing_to_write_a_dataset_is_an_os_error_naming_the_file(tmp_path):
    """What DuckDB's COPY raises (a full disk, a path it cannot open) reaches the CLI as the OS
    error it is, which prints one line; nothing is left behind."""
    import duckdb

    from creditcert.data.staging import stage_parquet

    blocked = tmp_path / "dataset.parquet.tmp"
    blocked.mkdir()  # DuckDB cannot open it as a file
    with pytest.raises(OSError) as caught:
        stage_parquet(duckdb.connect(), "SELECT 1 AS x", {}, blocked, {"k": "v"})
    assert caught.value.filename == str(blocked) and "IO Error" in caught.value.strerror
    written = tmp_path / "ok.parquet"
    assert stage_parquet(duckdb.connect(), "SELECT 1 AS x", {}, written, {"k": "it's"}) == 1
    import pyarrow.parquet as pq

    assert pq.read_schema(written).metadata[b"k"] == b"it's"


def test_cli_ingest_json_and_exit_code(fresh_city, tmp_path):
    path = tmp_path / "export.csv"
    export(fresh_city, path, rows=40, bad=4)
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "ingest",
            "--domain",
            "market-regulation",
            str(path),
            "--json",
            "--home",
            str(fresh_city.home),
        ],
    )
    assert res.exit_code == 1  # some rows quarantined
    body = json.loads(res.stdout)
    assert body["read"] == 40 and body["quarantined"] == 4 and body["accepted"] == 36
    missing = runner.invoke(
        app, ["ingest", "--domain", "market-regulation", "nope.csv", "--home", str(fresh_city.home)]
    )
    assert missing.exit_code == 2


def test_running_out_of_memory_is_one_line_and_loses_nothing(fresh_city, tmp_path, monkeypatch):
    """DuckDB's writers are capped (staging.WRITER_MEMORY); when a 1M-row ingest passed the cap
    while it merged (seen with the cap at 640MB), the CLI printed DuckDB's traceback. Running out
    of memory is one line, exit 2, and the published data stays as it was."""
    import duckdb

    from creditcert.data import ingest

    def exhausted(*args, **kwargs):
        raise duckdb.OutOfMemoryException(
            "Out of Memory Error: failed to allocate data of size 64.0 KiB (610.6 MiB/610.3 MiB "
            "used)\n\nPossible solutions:\n* Reducing the number of threads"
        )

    export = transport_export(fresh_city, tmp_path / "t.csv", rows=200)
    transport = fresh_city.settings.catalog.domain("transport")
    with Store(fresh_city.settings.data_dir, fresh_city.settings.catalog) as store:
        before = store.dataset_info(transport).rows
    monkeypatch.setattr(ingest, "_merge", exhausted)
    home = str(fresh_city.settings.home)
    done = CliRunner().invoke(app, ["ingest", "--domain", "transport", str(export), "--home", home])
    assert done.exit_code == 2, done.output
    assert done.output.startswith("error: out of memory (Out of Memory Error: failed to allocate")
    assert len(done.output.strip().splitlines()) == 1 and "Traceback" not in done.output
    with Store(fresh_city.settings.data_dir, fresh_city.settings.catalog) as store:
        assert store.dataset_info(transport).rows == before


def test_the_index_takes_in_exactly_the_ingested_rows_and_no_scratch_is_left(fresh_city, tmp_path):
    """The new rows reach the index as a file it patches from (however many there are), not as
    the whole rewritten dataset; the file goes when the ingest ends."""
    s = fresh_city.settings
    before = parquet_rows(dataset_path(s.data_dir, "market-regulation"))
    path = tmp_path / "export.csv"
    export(fresh_city, path, rows=300, bad=0)
    assert run(fresh_city, path).accepted == 300
    generation = generation_path(s.data_dir, current_generation(s.data_dir))
    con = duckdb.connect(str(generation), read_only=True)
    try:
        [(dirty,)] = con.execute("SELECT dirty_rows FROM meta").fetchall()
        [(indexed_rows,)] = con.execute(
            "SELECT count(*) FROM records WHERE dataset = 'market-regulation'"
        ).fetchall()
    finally:
        con.close()
    assert dirty == 300 and indexed_rows == before + 300
    assert not (s.data_dir / ".spill").exists()
