"""Ingest's column-speed paths (creditcert.data.batches, creditcert.data.plain_rows) give what the
row-by-row rules give: the same cells, the same verdicts, the same records, the same quarantine."""

from __future__ import annotations

import csv
import hashlib
import io
import sys
from datetime import date

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditcert.data import batches, plain_rows
from creditcert.data.exports import MAX_CELL_CHARS, ColumnMap
from creditcert.data.ingest import validate_row
from creditcert.data.text import HIDDEN, HIDDEN_IN_TEXT
from creditcert.resources import default_catalog_path
from creditcert.rules import catalog, codes
from creditcert.rules.vocab import Kind
from tests.conftest import NOW_REPORTS
from tests.hostile_inputs import DOMAIN, base_rows, ingest, write_csv

TODAY = date(2026, 7, 1)


# --- splitting: pyarrow.csv reads as the csv module, or declines ------------------------------


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "b", ",", '"', "\n", "\r", " ", "\r\n", '""', "中"]), max_size=30
    )
)
def test_pyarrow_splits_like_the_csv_module_or_declines(tmp_path_factory, pieces):
    body = "".join(pieces)
    path = tmp_path_factory.mktemp("split") / "x.csv"
    path.write_bytes(("h1,h2,h3\n" + body).encode("utf-8"))
    expected = list(csv.reader(io.StringIO("h1,h2,h3\n" + body, newline="")))[1:]
    try:
        got = all_rows(batches.csv_chunks(path, "utf-8", ["h1", "h2", "h3"]))
    except batches.Declined:
        return
    assert got == [r or ["", "", ""] for r in expected]


def all_rows(chunks) -> list[list[str]]:
    return [
        row for chunk in chunks
        for row in chunk.raw(list(range(chunk.first, chunk.first + chunk.cells.num_rows)))
    ]  # fmt: skip


def test_long_rows_make_smaller_batches_on_both_paths(tmp_path, monkeypatch):
    header = ["h1", "h2", "h3"]
    rows = [[f"{n}", "中" * (n % 7) * 40, "x" * 300] for n in range(200)]
    path = write_csv(tmp_path / "long.csv", header, rows)
    monkeypatch.setattr(batches, "BATCH_BYTES", 4_000)
    monkeypatch.setattr(batches, "_BLOCK_BYTES", 2_000)  # pyarrow batches of a few rows
    for chunks in (
        list(batches.csv_chunks(path, "utf-8", header)),
        list(batches.row_chunks(iter(rows), len(header))),
    ):
        assert len(chunks) > 10
        assert [c.first for c in chunks[1:]] == [c.first + c.cells.num_rows for c in chunks[:-1]]
        assert all(c.cells.nbytes < 8_000 for c in chunks)
        assert all_rows(chunks) == rows


def test_a_cell_over_the_limit_is_cut_in_the_cells_and_kept_whole_in_the_row():
    huge = "超" * 50_000
    [chunk] = batches.row_chunks(iter([["a", huge], ["b", "c"]]), 2)
    assert chunk.cells.column("c1").to_pylist() == [huge[: MAX_CELL_CHARS + 1], "c"]
    assert chunk.raw([2]) == [["a", huge]]


def test_gbk_decodes_as_gb18030_wherever_it_decodes():
    for lead in range(0x81, 0xFF):
        for trail in range(0x40, 0xFF):
            pair = bytes([lead, trail])
            try:
                text = pair.decode("gbk")
            except UnicodeDecodeError:
                continue
            assert pair.decode("gb18030") == text, pair.hex()


def test_whitespace_is_what_str_strip_removes():
    spaces = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert set(batches.WHITESPACE) == spaces


@pytest.mark.slow
def test_every_hidden_character_is_suspected_and_found():
    for free in (False, True):
        pattern = HIDDEN_IN_TEXT if free else HIDDEN
        every = [chr(c) for c in range(sys.maxunicode + 1) if c < 0xD800 or c > 0xDFFF]
        cells = pa.array([f"x{c}y" for c in every])
        found = plain_rows.hidden(cells, "facts" if free else "authority")
        assert [c for c, f in zip(every, found, strict=True) if f] == pattern.findall(
            "".join(every)
        )


code_strategy = st.one_of(
    st.text(alphabet=codes.ALPHABET, min_size=17, max_size=17).map(
        lambda first17: first17 + codes.check_character(first17)
    ),
    st.text(alphabet=codes.ALPHABET + "IOSZaX中 ", min_size=16, max_size=19),
)


@given(st.lists(code_strategy, min_size=1, max_size=50))
def test_vectorised_checksums_are_codes_validate_s(cells):
    expected = [
        len(c) == codes.LENGTH
        and all(ch in codes.ALPHABET for ch in c)
        and not any(p.checksum for p in codes.validate(c).problems)
        for c in cells
    ]
    assert plain_rows.checksums(pa.array(cells)).tolist() == expected
    assert plain_rows.checksums(pa.array(["x", *cells]).slice(1)).tolist() == expected


# --- verdicts: SQL vouches only for rows validate_row accepts, with the same record ----------

CELLS = {
    "credit_code": ["91210102MA0Y8K3L0C", "91210102ma0y8k3l0c", " 91210102MA0Y8K3L0C", "9121010",
                    "91210102MA0Y8K3L0D", "Z1210102MA0Y8K3L0C", "99210102MA0Y8K3L0C",
                    "91990102MA0Y8K3L0C", "９1210102MA0Y8K3L0C", ""],
    "subject_name": ["某某公司", " 某某公司\u3000", "", "a\x1bb", "x" * 4001, "a\u202eb"],
    "decision_no": ["沈市监罚〔2025〕1号", "", "  ", "n\u200b"],
    "facts": ["超载运输", "第一行\n第二行\t注", "a\x07", "“引号”—…"],
    "legal_basis": ["", "《条例》第3条", "\xad"],
    "penalty_types": ["罚款", "警告", "警告;罚款", "罚款，罚款", " 警告 ", "罚酒三杯", "fine", "",
                      "吊销许可证件/责令关闭", "没收违法所得、没收非法财物"],
    "penalty_content": ["罚款人民币1280元", ""],
    "fine_wan": ["", "0.128", "88.2", "1,000", "１.5", "-0.5", "1e3", "0.1234567", "20",
                 "1.5万元", "99999999.999999", "100000000", " 3 ", "0.1200000"],
    "fine_yuan": ["", "200000", "199999.99", "1.001", "5元"],
    "decision_date": ["2025-06-30", "2025/6/3", "2025年6月30日", "20250630", "2025-02-29",
                      "2025-13-45", "2099-01-01", "1989-12-31", "1990-01-01", "2026-07-01",
                      "2026-07-02", "2025-06-30 10:30:00", "2025-06-30 24:00", "２０２５-06-30",
                      "", " 2025-06-30", "0999-01-01", "2025-06-30T10:30:59.123456"],
    "publicity_end": ["", "2027-01-01", "2027-02-30", "x"],
    "repair_date": ["", "2026-01-01", "20260101"],
    "authority": ["沈阳市市场监督管理局", ""],
    "source_unit": ["沈阳市市场监督管理局", "\t"],
    "kind": ["", "行政处罚", "penalty", "刑事裁判", "严重失信主体名单", "abnormal-operation",
             "bogus", " 行政强制"],
    "tier": ["", "一般", "serious", "重大"],
    "simplified": ["", "是", "否", "TRUE", "No", "maybe", " 是"],
    "revoked": ["", "y", "0"],
    "disputed": ["", "Yes"],
    "record_id": ["", "rid-1", " rid-2 "],
}  # fmt: skip
FIELDS = list(CELLS)


def code_of(seed: str) -> str:
    first17 = "91210102" + hashlib.sha256(seed.encode()).hexdigest()[:9].upper().translate(
        str.maketrans("IOSVZ", "12345")
    )
    return first17 + codes.check_character(first17)


rows_strategy = st.lists(
    st.fixed_dictionaries({f: st.sampled_from(v) for f, v in CELLS.items()}),
    min_size=1,
    max_size=40,
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(rows_strategy)
def test_sql_vouches_only_for_what_validate_row_accepts_and_agrees(rows):
    domain = catalog.load(default_catalog_path()).domain("market-regulation")
    cells = pa.table({f"c{i}": [r[f] for r in rows] for i, f in enumerate(FIELDS)})
    chunk = batches.Chunk(2, cells, pa.array([False] * len(rows)), None)
    con = duckdb.connect()
    con.register("chunk", plain_rows.prepare(chunk, FIELDS))
    params = {"domain": "market-regulation", "default_kind": "penalty", "today": TODAY}
    got = con.execute(f"SELECT * FROM ({plain_rows.query(FIELDS)}) WHERE plain", params)
    names = [d[0] for d in got.description]
    for found in got.fetchall():
        record = dict(zip(names, found, strict=True))
        expected, problems, check = validate_row(
            rows[record.pop("row_no") - 2], domain, Kind.PENALTY, TODAY
        )
        assert problems == [] and expected is not None
        assert record.pop("plain") and record.pop("legacy_code") == bool(check.problems)
        assert record == expected


def test_plain_rows_are_most_rows_of_a_real_export(fresh_city, tmp_path):
    header, rows = base_rows(fresh_city, tmp_path)
    fields = ColumnMap.load().fields_of(tmp_path / "x.csv", header)
    path = write_csv(tmp_path / "plain.csv", header, rows)
    [chunk] = batches.csv_chunks(path, "utf-8", header)
    con = duckdb.connect()
    con.register("chunk", plain_rows.prepare(chunk, fields))
    params = {"domain": DOMAIN, "default_kind": "penalty", "today": TODAY}
    plain = con.execute(f"SELECT count(*) FROM ({plain_rows.query(fields)}) WHERE plain", params)
    assert plain.fetchall() == [(len(rows),)]


# --- the whole ingest, against an expectation written by hand ---------------------------------


@pytest.mark.slow
def test_a_mixed_file_gives_the_expected_accounting_records_and_quarantine(fresh_city, tmp_path):
    header, rows = base_rows(fresh_city, tmp_path, rows=12)
    col = {h: header.index(h) for h in header}
    code, day, name = col["统一社会信用代码"], col["处罚决定日期"], col["行政相对人名称"]
    rows[1][code] = rows[1][code][:17] + ("1" if rows[1][code][17] != "1" else "2")
    rows[2][col["行政处罚决定书文号"]] = ""
    rows[3][day] = "２０２５年６月３０日"  # good, in full-width digits: validate_row's own path
    rows[4][col["违法事实"]] = "a\x1bb"
    rows[5] = list(rows[0])  # a duplicate of row 2
    rows[6][col["罚款金额（万元）"]] = "-1"
    rows[7][name] = " " + rows[7][name] + "\u3000"  # good: blanks around a name are stripped
    rows[8][day] = "2099-01-01"
    path = write_csv(tmp_path / "mixed.csv", header, rows)
    path.write_bytes(path.read_text(encoding="utf-8").encode("gbk"))

    result = ingest(fresh_city, path, now=NOW_REPORTS)
    assert (result.encoding, result.read, result.accepted, result.quarantined) == (
        "gb18030",
        12,
        6,
        6,
    )
    with open(result.quarantine_file, encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert [(r["row"], r["field"]) for r in lines] == [
        ("3", "credit_code"), ("4", "decision_no"), ("6", "facts"), ("7", "record_id"),
        ("8", "fine_amount"), ("10", "decision_date"),
    ]  # fmt: skip
    reasons = [r["reason"] for r in lines]
    assert reasons[0].startswith(
        f"credit_code: {rows[1][code]} is not in the subject register and fails its checksum"
    )
    assert reasons[1] == "decision_no: missing"
    assert reasons[2].startswith(r"facts: control-character \x1b at character 2")
    assert reasons[3:] == [
        "record_id: duplicate of row 2",
        "fine_amount: '-1' is negative",
        "decision_date: 2099-01-01 is in the future or before 1990",
    ]
    assert [r["统一社会信用代码"] for r in lines] == [rows[i][code] for i in (1, 2, 4, 5, 6, 8)]

    held = duckdb.sql(
        f"SELECT record_id, subject_name, decision_date FROM read_parquet('{result.dataset}')"
    ).fetchall()
    held = {rid: (subject, day) for rid, subject, day in held}
    for i in (0, 3, 7, 9, 10, 11):
        key = f"{DOMAIN}|{rows[i][code]}|{rows[i][col['行政处罚决定书文号']]}"
        rid = f"{DOMAIN}:{hashlib.sha256(key.encode()).hexdigest()[:24]}"
        assert held[rid][0] == rows[i][name].strip()
    assert held[rid][1] == date.fromisoformat(rows[11][day])
    assert date(2025, 6, 30) in {d for _, d in held.values()}

    again = ingest(fresh_city, path, now=NOW_REPORTS)
    assert (again.accepted, again.already_present, again.quarantined) == (0, 6, 6)
