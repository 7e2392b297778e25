"""Hostile department files, as the findings' appendix of issue 9 made them: a real export, with
its sheet XML rewritten or parts added. Shared by tests/test_ingest_hostile.py and
benchmarks/hostile_files.py, so it imports neither pytest nor the fixtures: `city` is anything
with `.settings` (the tests' City or the library's)."""

from __future__ import annotations

import csv
import time
import zipfile
from datetime import date, datetime
from pathlib import Path

from creditcert.data import sample
from creditcert.data.ingest import IngestResult, ingest_file

DOMAIN = "transport"
SHEET = "xl/worksheets/sheet1.xml"
MAIN_NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def ingest(city, path: Path, *, now: datetime, **kwargs) -> IngestResult:
    """`path` ingested into the city's transport domain, quarantine in the city's home."""
    s = city.settings
    return ingest_file(
        path,
        domain_code=DOMAIN,
        catalog=s.catalog,
        data_dir=s.data_dir,
        quarantine_dir=s.home / "quarantine",
        now=now,
        **kwargs,
    )


def base_rows(city, tmp_path: Path, rows: int = 20) -> tuple[list[str], list[list[str]]]:
    """A real department export (header, rows) to spoil."""
    path = tmp_path / "base.csv"
    s = city.settings
    sample.export_department_file(
        s.data_dir, s.catalog, s.issuer, domain_code=DOMAIN, rows=rows, bad_rows=0, seed=31,
        as_of=date(2026, 6, 30), path=path,
    )  # fmt: skip
    with open(path, encoding="utf-8", newline="") as fh:
        header, *body = csv.reader(fh)
    return header, body


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def base_xlsx(city, tmp_path: Path) -> Path:
    path = tmp_path / "base.xlsx"
    s = city.settings
    sample.export_department_file(
        s.data_dir, s.catalog, s.issuer, domain_code=DOMAIN, rows=20, bad_rows=0, seed=31,
        as_of=date(2026, 6, 30), path=path,
    )  # fmt: skip
    return path


def rewrite(src: Path, dst: Path, sheet=lambda xml: xml, extra: dict[str, bytes] | None = None):
    """`src` with its first sheet's XML passed through `sheet` and `extra` parts added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, sheet(data) if info.filename == SHEET else data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def whole_sheet_declared(blank_rows: int):
    """The sheet declares Excel's whole grid, A1:XFD1048576, and holds `blank_rows` empty rows
    after its data (what made the old reader allocate the declared grid)."""
    return lambda xml: xml.replace(
        b"<sheetViews>", b'<dimension ref="A1:XFD1048576"/><sheetViews>'
    ).replace(b"</sheetData>", b"<row/>" * blank_rows + b"</sheetData>")


def zip_bomb(xml: bytes) -> bytes:
    return xml.replace(b"</sheetData>", b"<row><c><v>1</v></c></row>" * 2_000_000 + b"</sheetData>")


def sst_bomb(n: int = 3_000_000) -> dict[str, bytes]:
    strings = b"<si><t>x</t></si>" * n
    return {"xl/sharedStrings.xml": b"<sst " + MAIN_NS + b">" + strings + b"</sst>"}


def padded(xml: bytes) -> bytes:
    """Every row with one cell in the last column, XFD, which openpyxl pads rows out to."""
    rows = b"".join(
        b'<row r="%d"><c r="XFD%d"><v>1</v></c></row>' % (i, i) for i in range(22, 5000)
    )
    return xml.replace(b"</sheetData>", rows + b"</sheetData>")


def many(tag: bytes, n: int, dimension: bool = False):
    """`n` copies of `tag` appended to the sheet, which declares its dimension or not."""
    declared = b'<dimension ref="A1:M21"/><sheetViews>' if dimension else b"<sheetViews>"
    return lambda xml: xml.replace(b"<sheetViews>", declared).replace(
        b"</sheetData>", tag * n + b"</sheetData>"
    )


def huge_cell(header: list[str], rows: list[list[str]]) -> list[list[str]]:
    """The rows with one 10-million-character cell (30 MB of UTF-8) in the fourth row's facts."""
    rows = [list(r) for r in rows]
    rows[3][header.index("违法事实")] = "超载" * 5_000_000
    return rows


class Peak:
    """Wall time and peak resident memory of a block, in this process (Linux: VmHWM is reset
    through /proc/self/clear_refs)."""

    def __enter__(self):
        Path("/proc/self/clear_refs").write_text("5")
        self.before, self.start = _hwm(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.peak = _hwm()
        self.growth = self.peak - self.before


def _hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no VmHWM")
