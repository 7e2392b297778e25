import json
from datetime import date

import duckdb
import pytest
from typer.testing import CliRunner

from creditcert.cli.app import app
from creditcert.data import sample
from creditcert.data.store import Store, dataset_path, subjects_path
from creditcert.rules import codes


def scan(sql, *params):
    return duckdb.connect().execute(sql, list(params)).fetchall()


def test_sample_city_is_realistic(sample_city):
    data = sample_city.settings.data_dir
    subjects = scan("SELECT credit_code, name FROM read_parquet(?)", str(subjects_path(data)))
    assert len(subjects) == 3000
    assert all(codes.validate(c).well_formed for c, _ in subjects)
    assert all(name for _, name in subjects)
    files = [str(dataset_path(data, d.dataset)) for d in sample_city.settings.catalog.domains]
    [(total, repaired, revoked, subjects_hit, domains)] = scan(
        "SELECT count(*), avg((repair_date IS NOT NULL)::INT), avg(revoked::INT), "
        "count(DISTINCT credit_code), count(DISTINCT domain) FROM read_parquet(?)",
        files,
    )
    assert total == 15000
    assert 0.12 < repaired < 0.25  # about a fifth repaired
    assert 0.01 < revoked < 0.04
    assert subjects_hit < 3000 * 0.25  # most subjects are clean
    assert domains == 52
    # every record belongs to a registered subject and carries its evidence fields
    [(orphans, missing)] = scan(
        "SELECT count(*) FILTER (WHERE s.credit_code IS NULL), "
        "count(*) FILTER (WHERE decision_no IS NULL OR authority IS NULL OR facts IS NULL) "
        "FROM read_parquet(?) r LEFT JOIN read_parquet(?) s USING (credit_code)",
        files,
        str(subjects_path(data)),
    )
    assert orphans == 0 and missing == 0
    top = scan(
        "SELECT domain FROM read_parquet(?) GROUP BY domain ORDER BY count(*) DESC LIMIT 4", files
    )
    assert {d for (d,) in top} == {
        "market-regulation",
        "taxation",
        "transport",
        "ecology-environment",
    }
    [(ok,)] = scan(
        "SELECT bool_and(regexp_matches(decision_no, '^沈市监[罚强决]〔20[0-9]{2}〕[0-9]+号$')) "
        "FROM read_parquet(?)",
        files[0],
    )
    assert ok


@pytest.mark.slow
def test_same_seed_same_data(tmp_path, fresh_city):
    """Generated again with the template's parameters (tests/conftest.py), the data is the same."""
    s = fresh_city.settings
    again = tmp_path / "again"
    sample.generate(
        again, s.catalog, s.issuer, subjects=600, records=3000, seed=5, as_of=date(2026, 6, 30)
    )
    q = "SELECT * FROM read_parquet(?) EXCEPT ALL SELECT * FROM read_parquet(?)"
    for d in ("market-regulation", "public-security", "water"):
        assert scan(q, str(dataset_path(s.data_dir, d)), str(dataset_path(again, d))) == []
        assert scan(q, str(dataset_path(again, d)), str(dataset_path(s.data_dir, d))) == []


def test_sample_subjects_cli_splits_clean_and_with_records(sample_city):
    runner = CliRunner()
    home = str(sample_city.home)
    clean = runner.invoke(app, ["sample", "subjects", "--clean", "--limit", "5", "--home", home])
    dirty = runner.invoke(
        app, ["sample", "subjects", "--with-records", "--limit", "5", "--home", home]
    )
    assert clean.exit_code == 0 and dirty.exit_code == 0
    clean_codes, dirty_codes = clean.stdout.split(), dirty.stdout.split()
    assert len(clean_codes) == 5 and len(dirty_codes) == 5
    with Store(sample_city.settings.data_dir, sample_city.settings.catalog) as store:
        domains = sample_city.settings.catalog.domains
        assert all(not any(store.records(c, domains).values()) for c in clean_codes)
        assert all(any(store.records(c, domains).values()) for c in dirty_codes)


@pytest.mark.slow
def test_lookup_cli_table_and_json(sample_city):
    runner = CliRunner()
    home = str(sample_city.home)
    code = runner.invoke(
        app, ["sample", "subjects", "--with-records", "--limit", "1", "--home", home]
    ).stdout.strip()
    table = runner.invoke(app, ["lookup", code, "--all", "--as-of", "2026-07-01", "--home", home])
    assert table.exit_code == 0, table.output
    assert "未发现违法违规记录" in table.stdout and "52 domains" in table.stdout
    js = runner.invoke(
        app,
        ["lookup", code, "--purpose", "bidding", "--as-of", "2026-07-01", "--json", "--home", home],
    )
    body = json.loads(js.stdout)
    assert body["format"] == "creditcert.lookup/1"
    assert len(body["domains"]) == 15
    assert body["subject"]["credit_code"] == code
    missing = runner.invoke(app, ["lookup", "91110000600037341L", "--all", "--home", home])
    assert missing.exit_code != 0
