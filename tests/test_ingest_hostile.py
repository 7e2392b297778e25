"""Hostile department files (issue 9, classes 9-11): bounded, parsed strictly, and unable to attack
the people who read the data or the quarantine. The hostile files are built in
tests/hostile_inputs.py (benchmarks/hostile_files.py times the same files)."""

from __future__ import annotations

import csv
import io
import sys
import unicodedata
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from creditcert.cli.render import print_findings
from creditcert.data import exports, sample, xlsx
from creditcert.data.exports import check_cells, neutral, parse_amount, parse_date
from creditcert.data.index import rebuild_index
from creditcert.data.store import dataset_path, read_file_id
from creditcert.data.text import HIDDEN
from creditcert.errors import IngestError
from tests import hostile_inputs
from tests.conftest import NOW_REPORTS, city_at, record, run_cli, write_records
from tests.hostile_inputs import (
    DOMAIN,
    Peak,
    base_rows,
    base_xlsx,
    huge_cell,
    many,
    padded,
    rewrite,
    sst_bomb,
    whole_sheet_declared,
    write_csv,
    zip_bomb,
)


def ingest(city, path: Path, **kwargs):
    return hostile_inputs.ingest(city, path, now=NOW_REPORTS, **kwargs)


def state(city) -> tuple:
    """What an ingest may change: the dataset and the quarantine directory (with temporaries)."""
    q = city.home / "quarantine"
    return (
        read_file_id(dataset_path(city.settings.data_dir, DOMAIN)),
        sorted(p.name for p in q.iterdir()) if q.exists() else [],
    )


def quarantined(result) -> list[dict[str, str]]:
    with open(result.quarantine_file, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# --- class 9 (D12): .xlsx bounded after decompression and streamed ----------------------------


@pytest.mark.slow
def test_a_sheet_declaring_a_million_rows_finishes_in_bounded_time_and_memory(fresh_city, tmp_path):
    hostile = rewrite(
        base_xlsx(fresh_city, tmp_path),
        tmp_path / "dim-20k-blank.xlsx",
        whole_sheet_declared(20_000),
    )
    assert hostile.stat().st_size < 10_000
    with Peak() as cost:
        result = ingest(fresh_city, hostile)
    assert (result.read, result.accepted) == (20, 20)
    print(f"{hostile.stat().st_size:,} bytes: {cost.seconds:.2f} s, +{cost.growth >> 20} MiB")
    assert cost.growth < 100 << 20  # the time is a benchmark's (benchmarks/hostile_files.py)


UNBOMB = {"MAX_RATIO": 10**6}  # to reach the bound behind the zip-bomb check


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "sheet", "extra", "limits", "expected"),
    [
        ("zip bomb", zip_bomb, None, {}, "inflates"),
        ("sharedStrings bomb", lambda x: x, sst_bomb(), {}, "inflates"),
        (
            "shared strings",
            lambda x: x,
            sst_bomb(100_000),
            {"MAX_STRINGS": 1000, **UNBOMB},
            "1,000 shared",
        ),
        ("held part", lambda x: x, sst_bomb(), UNBOMB, "held in memory"),
        ("inflated total", lambda x: x, sst_bomb(), {"MAX_INFLATED": 1 << 20}, "inflates to"),
        ("rows", many(b"<row/>", 2000), None, {"MAX_ROWS": 1000}, "more than 1,000 rows;"),
        ("cells", many(b"<row><c/></row>", 2000, True), None, {"MAX_CELLS": 1000}, "1,000 cells;"),
        (
            "rows counted before opening",
            many(b"<row/>", 200_000),
            None,
            {"MAX_ROWS": 1000, **UNBOMB},
            "more than 1,000 rows in 'xl/worksheets/sheet1.xml'",
        ),
        (
            "cells counted before opening",
            many(b"<row><c/></row>", 100_000),
            None,
            {"MAX_CELLS": 1000, **UNBOMB},
            "more than 1,000 cells in",
        ),
        (
            "streamed despite a dimension",
            many(b"<row/>", 200_000, True),
            None,
            {"MAX_ROWS": 1000, **UNBOMB},
            "more than 1,000 rows;",
        ),
        ("padded cells", padded, None, {}, "20,000,000 cells"),
        ("parts", lambda x: x, None, {"MAX_PARTS": 3}, "parts (at most 3)"),
    ],
)
def test_bombs_and_oversized_workbooks_are_refused_quickly(
    fresh_city, tmp_path, monkeypatch, case, sheet, extra, limits, expected
):
    for name, value in limits.items():
        monkeypatch.setattr(xlsx, name, value)
    hostile = rewrite(base_xlsx(fresh_city, tmp_path), tmp_path / "hostile.xlsx", sheet, extra)
    before = state(fresh_city)
    with pytest.raises(IngestError) as err:
        ingest(fresh_city, hostile)
    message = str(err.value)
    assert message.startswith(f"{hostile}: ") and "\n" not in message
    assert expected in message, message
    assert state(fresh_city) == before


# --- class 10 (D13): unreadable inputs are one line, exit 2, nothing changed -------------------


DTD_SHEETS = {
    "billion laughs": b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]>',
    "xxe": b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>',
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", ["csv named xlsx", "truncated zip", "corrupt member", "billion laughs", "xxe"]
)
def test_unreadable_workbooks_are_one_line_and_change_nothing(fresh_city, tmp_path, case):
    base = base_xlsx(fresh_city, tmp_path)
    hostile = tmp_path / "hostile.xlsx"
    if case == "csv named xlsx":
        header, rows = base_rows(fresh_city, tmp_path)
        write_csv(hostile, header, rows)
    elif case == "truncated zip":
        hostile.write_bytes(base.read_bytes()[:3000])
    elif case == "corrupt member":
        data = bytearray(base.read_bytes())
        start = data.index(b"xl/worksheets/sheet1.xml") + 40  # inside the deflated sheet
        data[start : start + 64] = bytes(64)
        hostile.write_bytes(bytes(data))
    else:
        entity = b"&lol3;" if case == "billion laughs" else b"&xxe;"
        rewrite(
            base,
            hostile,
            lambda xml: DTD_SHEETS[case] + xml.replace(b"<sheetData>", b"<sheetData>" + entity),
        )
    before = state(fresh_city)
    with pytest.raises(IngestError) as err:
        ingest(fresh_city, hostile)
    message = str(err.value)
    assert message.startswith(f"{hostile}: ") and "\n" not in message, message
    assert state(fresh_city) == before
    if case == "billion laughs":  # and through the real CLI: one line on stderr, exit 2
        done = run_cli(fresh_city.home, "ingest", "--domain", DOMAIN, str(hostile))
        assert done.returncode == 2 and done.stderr.startswith("error: ")
        assert "Traceback" not in done.stderr and "hostile.xlsx" in done.stderr
        assert "a DTD (XML entity declarations" in " ".join(done.stderr.split())
        assert state(fresh_city) == before


def test_a_failure_after_rows_were_quarantined_leaves_no_quarantine_file(fresh_city, tmp_path):
    header, rows = base_rows(fresh_city, tmp_path, rows=100)
    rows[0][8] = "not a date"  # quarantined, written at once...
    path = write_csv(tmp_path / "late-gbk.csv", header, rows)
    assert path.stat().st_size > 16_384  # ...then, beyond what is decoded at once, a GBK line
    with open(path, "ab") as fh:
        fh.write("，".join(rows[2]).encode("gbk") + b"\n")
    before = state(fresh_city)
    with pytest.raises(IngestError, match="not valid utf-8 near line"):
        ingest(fresh_city, path, encoding="utf-8")
    assert state(fresh_city) == before


# --- class 9 (D20): one oversized CSV cell quarantines its row, not the file ------------------


@pytest.mark.slow
def test_a_10_mb_cell_quarantines_only_its_row_in_bounded_memory(fresh_city, tmp_path):
    header, rows = base_rows(fresh_city, tmp_path)
    path = write_csv(tmp_path / "10MB-field.csv", header, huge_cell(header, rows))
    with Peak() as cost:
        result = ingest(fresh_city, path)
    print(f"{path.stat().st_size:,} bytes: {cost.seconds:.2f} s, +{cost.growth >> 20} MiB")
    assert (result.read, result.accepted, result.quarantined) == (20, 19, 1)
    [bad] = quarantined(result)
    assert bad["row"] == "5" and bad["field"] == "facts"
    assert bad["reason"] == "facts: longer than 4000 characters (10,000,000)"
    # The line, its cell and the quarantine line as read and written (about +150 MiB), not
    # copies of the cell in Arrow and DuckDB (they took it to +371 MiB).
    assert cost.growth < 256 << 20


def test_a_line_beyond_what_ingest_holds_is_one_line(fresh_city, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "MAX_LINE_CHARS", 10_000)
    header, rows = base_rows(fresh_city, tmp_path)
    rows[3][3] = "x" * 20_000
    path = write_csv(tmp_path / "long.csv", header, rows)
    with pytest.raises(IngestError, match=r"line 5 is longer than 10,000 characters"):
        ingest(fresh_city, path)
    rows[3][3] = "x\n" * 10_000  # a quoted cell of many short lines
    write_csv(path, header, rows)
    with pytest.raises(IngestError, match=r"a cell ending near line \d+ is longer than 10,000"):
        ingest(fresh_city, path)


# --- class 11 (D17): quarantine cells never run as formulas -----------------------------------


def test_quarantine_cells_cannot_run_as_formulas(fresh_city, tmp_path):
    header, rows = base_rows(fresh_city, tmp_path)
    name, day, facts = (header.index(h) for h in ("行政相对人名称", "处罚决定日期", "违法事实"))
    rows[0][name] = '=HYPERLINK("http://evil/","click")'
    rows[0][day] = "=1+1"
    rows[1][facts], rows[1][day] = "+cmd|' /C calc'!A0", "-2+3"
    rows[2][facts], rows[2][day] = "@SUM(1)", "\t=1"
    rows[3][facts], rows[3][day] = "\r=1", "2025-02-30"
    path = write_csv(
        tmp_path / "formulas.csv", [*header, "=extra"], [[*row, "-extra"] for row in rows]
    )
    result = ingest(fresh_city, path)
    assert result.quarantined == 4
    with open(result.quarantine_file, encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.reader(fh))
    cells = [c for line in lines for c in line]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert '\'=HYPERLINK("http://evil/","click")' in cells and "'=extra" in lines[0]
    assert neutral("=1+1") == "'=1+1" and neutral("fine_amount: x") == "fine_amount: x"


# --- class 11 (D18): control and bidi characters quarantined, never printed raw ----------------


def test_the_hidden_character_class_is_every_control_and_format_character():
    expected = {
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zl", "Zp")
    }
    found = set(HIDDEN.findall("".join(map(chr, range(sys.maxunicode + 1)))))
    assert found == expected, (
        f"update creditcert/data/text.py for Unicode {unicodedata.unidata_version}"
    )


def test_control_characters_are_quarantined_and_never_echoed(fresh_city, tmp_path):
    header, rows = base_rows(fresh_city, tmp_path)
    col = {
        h: header.index(h)
        for h in ("统一社会信用代码", "行政相对人名称", "违法事实", "行政处罚决定书文号")
    }
    code = rows[0][col["统一社会信用代码"]]
    rows[0][col["统一社会信用代码"]] = code[:5] + "\x00" + code[5:]
    rows[1][col["违法事实"]] = "超载\x1b[31m运输\x07"
    rows[2][col["行政相对人名称"]] += "\u202e"
    rows[3][col["行政处罚决定书文号"]] += "\u200b"
    rows[4][col["行政相对人名称"]] += "\t"
    rows[5][col["违法事实"]] = "第一行\n第二行\t（附注）"  # multi-line free text is data
    rows[6][col["违法事实"]] += "\x85"  # C1
    path = write_csv(tmp_path / "ctrl.csv", header, rows)
    result = ingest(fresh_city, path)
    bad = {int(r["row"]): r for r in quarantined(result)}
    assert sorted(bad) == [2, 3, 4, 5, 6, 8]
    expected = {
        2: ("credit_code", r"\x00"),
        3: ("facts", r"\x1b"),
        4: ("subject_name", "U+202E"),
        5: ("decision_no", "U+200B"),
        6: ("subject_name", r"\x09"),
        8: ("facts", r"\x85"),
    }
    for number, (field, shown) in expected.items():
        assert f"{field}: control-character {shown} at character" in bad[number]["reason"]
    for r in bad.values():
        assert not HIDDEN.search(r["reason"]) and not HIDDEN.search(r["field"])
    assert result.accepted == 14


def test_lookup_never_prints_stored_department_text_raw(hand_city):
    busy = hand_city.codes["busy"]
    hostile = "超载\x1b[2J\x00运输\u202e[bold]"
    write_records(
        hand_city.settings.data_dir,
        "transport",
        [record(busy, "transport", 1, facts=hostile, decision_no="沈\x07罚〔2025〕1号")],
    )
    rebuild_index(hand_city.settings.data_dir, hand_city.settings.catalog)
    city = city_at(hand_city.home)
    findings = city.lookup(
        busy, city.request(as_of=date(2026, 7, 1), domains=[DOMAIN]), at=NOW_REPORTS
    )
    out = io.StringIO()
    print_findings(Console(file=out, width=400, color_system=None), findings)
    text = out.getvalue()
    assert not HIDDEN.search(text.replace("\n", ""))
    assert r"\x1b[2J\x00" in text and "U+202E[bold]" in text and r"\x07" in text


# --- class 11 (D19): amounts and dates parse strictly, with readable reasons -------------------


@pytest.mark.parametrize(
    ("text", "unit", "yuan"),
    [
        ("1,000.5", 10_000, "10005000.00"),
        ("1,234,567.89", 1, "1234567.89"),
        ("0.5", 10_000, "5000.00"),
        ("1.5万元", 10_000, "15000.00"),
        ("3万", 10_000, "30000.00"),
        ("200元", 1, "200.00"),
        ("１.５", 10_000, "15000.00"),
        ("１，０００", 1, "1000.00"),
        ("0.000001", 10_000, "0.01"),
        ("12.30", 1, "12.30"),
        ("  7 ", 1, "7.00"),
        ("", 1, None),
    ],
)
def test_amounts_that_parse(text, unit, yuan):
    assert parse_amount(text, unit=unit) == (Decimal(yuan) if yuan else None)


@pytest.mark.parametrize(
    ("text", "unit", "reason"),
    [
        ("1,5", 10_000, "commas only between groups of three"),
        ("1,0000", 1, "groups of three"),
        (",100", 1, "not an amount"),
        ("1e3", 10_000, "not an amount"),
        ("NaN", 1, "not an amount"),
        ("Infinity", 1, "not an amount"),
        ("12abc", 1, "not an amount"),
        ("1.5万元 整", 10_000, "not an amount"),
        ("١٢٣", 1, "not an amount"),
        ("-0.5", 10_000, "is negative"),
        ("0.0000001", 10_000, "finer than a fen"),
        ("0.001", 1, "finer than a fen"),
        ("1.5万元", 1, "in 万元, but the column is in 元"),
        ("200元", 10_000, "in 元, but the column is in 万元"),
        ("100000000", 10_000, "10^12 yuan or more"),
        ("1" * 40, 1, "10^12 yuan or more"),
    ],
)
def test_amounts_refused_with_a_reason_people_read(text, unit, reason):
    with pytest.raises(ValueError) as err:
        parse_amount(text, unit=unit)
    assert reason in str(err.value) and "class" not in str(err.value)


@given(st.decimals(min_value=0, max_value=Decimal("999999999999.99"), places=2))
def test_every_amount_in_range_reads_back_in_any_spelling(amount):
    for text in (f"{amount}", f"{amount:,}", f"{amount:,}元", f"{amount:f}".translate(_FULL)):
        assert parse_amount(text, unit=1) == amount


@given(st.text(max_size=30))
def test_any_text_is_an_amount_in_range_or_a_readable_value_error(text):
    try:
        amount = parse_amount(text, unit=10_000)
    except ValueError as exc:
        assert repr(text.strip()) in str(exc)
        return
    assert amount is None or (0 <= amount < 10**12 and amount == amount.quantize(Decimal("0.01")))


_FULL = str.maketrans("0123456789.,", "０１２３４５６７８９．，")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01", date(2025, 3, 1)),
        ("2025/3/1", date(2025, 3, 1)),
        ("2025年3月1日", date(2025, 3, 1)),
        ("2025.3.1", date(2025, 3, 1)),
        ("20250301", date(2025, 3, 1)),
        ("2025-03-01 10:00:00", date(2025, 3, 1)),
        ("2025-03-01T23:59", date(2025, 3, 1)),
        ("２０２５/３/１", date(2025, 3, 1)),
        ("２０２５－０３－０１", date(2025, 3, 1)),
        ("", None),
    ],
)
def test_dates_that_parse(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2025-03-01 garbage!", "not a date"),
        ("2025-03-01 25:00", "not a time of day"),
        ("2025-03-01 10:61", "not a time of day"),
        ("٢٠٢٥/٣/١", "not a date"),
        ("45717", "not a date"),
        ("2025-02-30", "not a calendar date"),
        ("=1+1", "not a date"),
    ],
)
def test_dates_refused(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_date(text)


def test_cell_checks_name_the_field_and_never_echo_what_they_refuse():
    long, hidden = check_cells({"facts": "x" * 5000 + "\x1b"})
    assert long.field == hidden.field == "facts"
    assert long.reason == "longer than 4000 characters (5,001)"
    assert hidden.reason.startswith(r"control-character \x1b at character 5001")
    [tab] = check_cells({"authority": "ok\tok"})
    assert tab.field == "authority" and tab.reason.startswith(r"control-character \x09")
    assert check_cells({"facts": "line\nline\ttab\r\n"}) == []


def test_rows_refused_after_the_read_are_merged_into_the_quarantine_in_row_order(
    fresh_city, tmp_path
):
    path = tmp_path / "faults.xlsx"
    s = fresh_city.settings
    sample.export_department_file(
        s.data_dir, s.catalog, s.issuer, domain_code=DOMAIN, rows=80, bad_rows=16, seed=3,
        as_of=date(2026, 6, 30), path=path,
    )  # fmt: skip
    result = ingest(fresh_city, path)
    rows = quarantined(result)
    numbers = [int(r["row"]) for r in rows]
    assert len(rows) == result.quarantined == 16 and numbers == sorted(numbers)
    late = [r for r in rows if "not in the subject register" in r["reason"]]
    assert late and all(r["统一社会信用代码"] for r in late)  # fetched again from the workbook
    assert not list((fresh_city.home / "quarantine").glob(".*"))


def test_a_killed_runs_partial_quarantine_file_is_removed_by_the_next(fresh_city, tmp_path):
    header, rows = base_rows(fresh_city, tmp_path)
    rows[0][header.index("统一社会信用代码")] = "not a code"
    q = fresh_city.home / "quarantine"
    q.mkdir(exist_ok=True)
    dead = q / ".transport-20260701T000000-x-0.csv.999999999.tmp"  # pid 999999999 runs nowhere
    dead.write_text("partial")
    result = ingest(fresh_city, write_csv(tmp_path / "one-bad.csv", header, rows))
    assert result.quarantined == 1 and not dead.exists()
    assert [p.name for p in q.iterdir() if p.name.endswith(".tmp")] == []
