"""Corrections are data, not duplicates (issue 9, D2): a re-sent record with changed content
replaces the live version, the replaced one is kept with the time it was replaced, conflicting
versions in one file are quarantined, issued reports stay as signed, and a crash converges."""

import csv
import json
import shutil
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from creditcert.cli.app import app
from creditcert.data import sample
from creditcert.data.history import history_path
from creditcert.data.ingest import ingest_file
from creditcert.data.store import Store, dataset_path
from creditcert.model.clock import SHANGHAI
from creditcert.verify.result import Verdict
from tests.conftest import NOW_REPORTS, city_at, run_cli

NOW = datetime(2026, 7, 2, 9, 0, tzinfo=SHANGHAI)
DOMAIN = "market-regulation"
FIELDS = (
    "record_id",
    "credit_code",
    "subject_name",
    "decision_no",
    "facts",
    "legal_basis",
    "penalty_types",
    "penalty_content",
    "fine_amount",
    "decision_date",
    "publicity_end",
    "authority",
    "source_unit",
    "kind",
    "tier",
    "simplified",
    "repair_date",
    "revoked",
    "disputed",
)


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "、".join(value)
    return str(value)


def write_export(path: Path, records: list[dict]) -> Path:
    """A department export that re-sends records, under the field names the column map knows."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        writer.writerows([cell(r[f]) for f in FIELDS] for r in records)
    return path


def live(home: Path, domain: str = DOMAIN) -> dict[str, dict]:
    rows = pq.read_table(dataset_path(home / "data", domain)).to_pylist()
    return {r["record_id"]: r for r in rows}


def fined(home: Path, n: int) -> list[dict]:
    """n fined penalty records of different subjects, as the dataset holds them."""
    out, codes = [], set()
    for r in live(home).values():
        if "fine" in r["penalty_types"] and not r["revoked"] and r["credit_code"] not in codes:
            out.append(r)
            codes.add(r["credit_code"])
    return out[:n]


def ingest(city, path: Path, now: datetime = NOW, domain: str = DOMAIN):
    s = city.settings
    return ingest_file(
        path,
        domain_code=domain,
        catalog=s.catalog,
        data_dir=s.data_dir,
        quarantine_dir=s.home / "quarantine",
        now=now,
    )


def counts(result) -> tuple[int, int, int, int, int]:
    r = result
    assert r.read == r.accepted + r.updated + r.quarantined + r.already_present
    return r.read, r.accepted, r.updated, r.quarantined, r.already_present


def reasons(result) -> dict[int, str]:
    with open(result.quarantine_file, encoding="utf-8-sig", newline="") as fh:
        return {int(r["row"]): r["reason"] for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_a_correction_replaces_the_record_and_keeps_the_old_version(fresh_city, tmp_path):
    same, revoked, amended = fined(fresh_city.home, 3)
    rows_before = len(live(fresh_city.home))
    fix = write_export(
        tmp_path / "fix.csv",
        [
            same,
            {**revoked, "revoked": True},
            {**amended, "fine_amount": Decimal("34400.00"), "facts": "更正后的违法事实"},
        ],
    )
    result = ingest(fresh_city, fix)
    assert counts(result) == (3, 0, 2, 0, 1)
    assert result.history == history_path(fresh_city.settings.data_dir, DOMAIN)
    assert result.to_json()["format"] == "creditcert.ingest/2" and result.to_json()["updated"] == 2

    now_live = live(fresh_city.home)
    assert len(now_live) == rows_before
    assert now_live[revoked["record_id"]]["revoked"] is True
    assert now_live[amended["record_id"]]["fine_amount"] == Decimal("34400.00")
    kept = {r["record_id"]: r for r in pq.read_table(result.history).to_pylist()}
    assert set(kept) == {revoked["record_id"], amended["record_id"]}
    assert kept[revoked["record_id"]]["revoked"] is False
    assert kept[amended["record_id"]]["fine_amount"] == amended["fine_amount"]
    assert kept[amended["record_id"]]["superseded_at"] == NOW
    assert kept[amended["record_id"]]["superseded_by"] == str(fix)

    s = fresh_city.settings
    with Store(s.data_dir, s.catalog) as store:  # the index holds the new version only
        [row] = [
            r
            for r in store.records(revoked["credit_code"], [s.catalog.domain(DOMAIN)])[DOMAIN]
            if r["record_id"] == revoked["record_id"]
        ]
        assert row["revoked"] is True
        assert store.dataset_info(s.catalog.domain(DOMAIN)).rows == rows_before

    city = city_at(fresh_city.home)
    code = revoked["credit_code"]
    chain = [v for v in city.record_history(code) if v.record["record_id"] == revoked["record_id"]]
    assert [(v.record["revoked"], v.superseded_at) for v in chain] == [(False, NOW), (True, None)]
    [before] = [
        v
        for v in city.record_history(code, domains=[DOMAIN], at=NOW - timedelta(seconds=1))
        if v.record["record_id"] == revoked["record_id"]
    ]
    assert before.record["revoked"] is False and not before.current

    again = ingest(fresh_city, fix, now=NOW + timedelta(hours=1))  # an identical re-send
    assert counts(again) == (3, 0, 0, 0, 3) and again.history is None
    assert pq.read_table(result.history).num_rows == 2

    later = NOW + timedelta(days=1)  # the revocation itself is withdrawn: back to the first
    back = ingest(fresh_city, write_export(tmp_path / "back.csv", [revoked]), now=later)
    assert counts(back) == (1, 0, 1, 0, 0)
    chain = [v for v in city.record_history(code) if v.record["record_id"] == revoked["record_id"]]
    assert [(v.record["revoked"], v.superseded_at) for v in chain] == [
        (False, NOW),
        (True, later),
        (False, None),
    ]


@pytest.mark.slow
def test_a_resent_export_row_revoked_with_a_new_fine_is_applied(fresh_city, tmp_path):
    """The findings' reproduction: the department's own columns, no id column (the id is
    derived from code and decision number), 是否撤销=是 and another fine on the re-send."""
    s = fresh_city.settings
    orig = tmp_path / "10-orig.csv"
    sample.export_department_file(
        s.data_dir,
        s.catalog,
        s.issuer,
        domain_code=DOMAIN,
        rows=5,
        bad_rows=0,
        seed=7,
        as_of=date(2026, 6, 30),
        path=orig,
    )
    assert counts(ingest(fresh_city, orig)) == (5, 5, 0, 0, 0)
    with open(orig, encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    rows = [[*r, "否"] for r in rows]
    rows[0][-1], rows[0][header.index("罚款金额（万元）")] = "是", "3.44"
    corrected = tmp_path / "10-corrected.csv"
    with open(corrected, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([[*header, "是否撤销"], *rows])
    result = ingest(fresh_city, corrected, now=NOW + timedelta(hours=1))
    assert counts(result) == (5, 0, 1, 0, 4)
    [now_live] = [r for r in live(fresh_city.home).values() if r["decision_no"] == rows[0][2]]
    assert now_live["revoked"] is True and now_live["fine_amount"] == Decimal("34400.00")
    [old] = pq.read_table(result.history).to_pylist()
    assert old["revoked"] is False and old["record_id"] == now_live["record_id"]


def test_conflicting_versions_in_one_file_are_quarantined_together(fresh_city, tmp_path):
    first, twice, moved = fined(fresh_city.home, 3)
    other = moved["credit_code"]
    path = write_export(
        tmp_path / "mixed.csv",
        [
            {**first, "revoked": True},  # row 2
            twice,  # row 3
            {**first, "fine_amount": Decimal("1.00")},  # row 4: another version of row 2
            twice,  # row 5: the same version again
            {**first, "record_id": moved["record_id"], "credit_code": first["credit_code"]},
        ],  # row 6: an existing id given to another subject's record
    )
    before = live(fresh_city.home)
    result = ingest(fresh_city, path)
    assert counts(result) == (5, 0, 0, 4, 1)
    why = reasons(result)
    assert set(why) == {2, 4, 5, 6}
    for row in (2, 4):
        assert why[row].startswith("record_id: conflicting-versions: rows 2, 4 ")
        assert first["record_id"] in why[row]
    assert why[5] == "record_id: duplicate of row 3"
    assert why[6].startswith(f"record_id: record-id-conflict: {moved['record_id']}")
    assert live(fresh_city.home) == before
    assert live(fresh_city.home)[moved["record_id"]]["credit_code"] == other
    assert not history_path(fresh_city.settings.data_dir, DOMAIN).exists()


def counted_ids(city, code: str, request) -> set[str]:
    return {
        r.record_id for d in city.lookup(code, request, at=NOW_REPORTS).domains for r in d.records
    }


@pytest.mark.slow
def test_a_correction_shows_at_once_and_leaves_issued_reports_as_signed(issued, tmp_path):
    home = tmp_path / "city"
    shutil.copytree(issued["home"], home)
    city = city_at(home, rate_limit_per_day=0)
    report, _ = issued["busy"]
    pdf = (home / "busy.pdf").read_bytes()
    code = report.document.subject_code
    request = city.request(as_of=NOW_REPORTS.date(), all_domains=True, years=5)
    section = next(s for s in report.document.domains if s.records)
    target = section.records[0].record_id
    assert target in counted_ids(city, code, request)

    original = live(home, section.code)[target]
    fix = write_export(tmp_path / "revoked.csv", [{**original, "revoked": True}])
    at = NOW_REPORTS + timedelta(hours=1)
    assert counts(ingest(city, fix, now=at, domain=section.code)) == (1, 0, 1, 0, 0)

    assert target not in counted_ids(city, code, request)  # lookup: the new state, at once
    assert (home / "busy.pdf").read_bytes() == pdf  # the report: as issued, and still genuine
    verified = city.verify(pdf, at=at + timedelta(minutes=5))
    assert verified.verdict is Verdict.ACCEPTED

    args = ["--home", str(home), "data", "history", code, "--domain", section.code]
    result = CliRunner().invoke(app, [*args, "--json", "--at", NOW_REPORTS.isoformat()])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    docs = (Path(__file__).resolve().parents[1] / "docs" / "cli-json.md").read_text()
    assert f"`{body['format']}`" in docs
    [then] = [v for v in body["versions"] if v["record_id"] == target]
    assert then["record"]["revoked"] is False and then["superseded_at"] == at.isoformat()

    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0 and f"replaced {at:%Y-%m-%d %H:%M:%S}" in table.stdout
    unknown = CliRunner().invoke(app, [*args[:4], "91110000600037341L"])
    assert unknown.exit_code == 2 and "not in the subject register" in unknown.output


@pytest.mark.slow
def test_kill_between_history_and_dataset_converges(fresh_city, tmp_path):
    home = fresh_city.home
    a, b = fined(home, 2)
    fix = write_export(tmp_path / "fix.csv", [{**a, "revoked": True}, {**b, "disputed": True}])
    dataset = dataset_path(home / "data", DOMAIN)
    before = dataset.read_bytes()
    args = ("ingest", "--domain", DOMAIN, str(fix))

    killed = run_cli(home, *args, kill_at="ingest.history-written")
    assert killed.returncode == -9, killed.stderr
    assert dataset.read_bytes() == before  # the old state: the history entries are pending
    pending = pq.read_table(history_path(home / "data", DOMAIN)).to_pylist()
    assert len(pending) == 2
    city = city_at(home)
    assert all(v.current for v in city.record_history(a["credit_code"], domains=[DOMAIN]))
    request = city.request(as_of=date(2026, 7, 1), domains=[DOMAIN], years=5)
    assert city.lookup(a["credit_code"], request, at=NOW_REPORTS)  # readers still answer

    rerun = run_cli(home, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert "updated 2," in rerun.stdout
    kept = pq.read_table(history_path(home / "data", DOMAIN)).to_pylist()
    assert sorted(r["record_id"] for r in kept) == sorted([a["record_id"], b["record_id"]])
    assert live(home)[a["record_id"]]["revoked"] is True
    chain = city.record_history(a["credit_code"], domains=[DOMAIN])
    mine = [v for v in chain if v.record["record_id"] == a["record_id"]]
    assert [v.record["revoked"] for v in mine] == [False, True]
    assert mine[0].superseded_at > pending[0]["superseded_at"]  # replaced when it really was
