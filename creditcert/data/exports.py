"""Reading departments' exports: CSV (UTF-8 or GBK) and Excel .xlsx, whatever the export is of.

Record ingest (creditcert.data.ingest) and the subject register import (creditcert.data.subjects)
share this: the column map from export headers to fields, reading rows as strings with the
encoding detected, the row error and date parsing, the data directory's write lock, and the
quarantine CSV that keeps every rejected row with its row number, field and reason.
"""

from __future__ import annotations

import csv
import fcntl
import re
import tomllib
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from creditcert.errors import IngestError
from creditcert.model.clock import SHANGHAI
from creditcert.resources import ingest_columns_path

MAX_INPUT_BYTES = 2 << 30  # 2 GiB: a department export larger than this is refused
MAX_CELL_CHARS = 4000
_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Export header → record field, read from domains/ingest-columns.toml."""

    by_header: dict[str, str]
    required: tuple[str, ...]

    @classmethod
    def load(cls, path: Path | None = None, *, register: bool = False) -> ColumnMap:
        """The record columns, or with `register` the subject register's columns."""
        path = path or ingest_columns_path()
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
            if register:
                fields, required = raw["register"], ("credit_code", "name")
            else:
                fields, required = raw["fields"], tuple(raw["required"]["columns"])
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
            raise IngestError(f"{path}: not a valid column map ({exc})") from None
        by_header = {fold(alias): field for field, aliases in fields.items() for alias in aliases}
        return cls(by_header, required)

    def fields_of(self, path: Path, header: list[str]) -> list[str | None]:
        """The field of each column of a file's header; a missing required field is an error."""
        fields = [self.by_header.get(fold(h)) for h in header]
        missing = [f for f in self.required if f not in fields]
        if missing:
            raise IngestError(
                f"{path}: missing required column(s) for {', '.join(missing)}; found "
                f"{', '.join(h for h in header if h)} (column names: domains/ingest-columns.toml)"
            )
        return fields


def fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


# --- reading ---------------------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    """utf-8-sig for a BOM, utf-8 when the first 64 KiB decode as UTF-8, else GB18030 (⊃ GBK)."""
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and len(head) == _SNIFF_BYTES:
            return "utf-8"  # a character cut by the sniff window, not a wrong encoding
        return "gb18030"


def read_rows(path: Path, encoding: str | None) -> tuple[str, list[str], Iterator[list[str]]]:
    """(encoding used, header, data rows as strings) of a CSV or .xlsx file."""
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if path.stat().st_size > MAX_INPUT_BYTES:
        raise IngestError(f"{path}: larger than {MAX_INPUT_BYTES >> 30} GiB; split the export")
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        return "xlsx", *_read_xlsx(path)
    if path.suffix.lower() == ".xls":
        raise IngestError(f"{path}: legacy .xls is not supported; save it as .xlsx or CSV")
    enc = encoding or detect_encoding(path)
    try:
        "".encode(enc)
    except LookupError:
        raise IngestError(f"--encoding {enc!r} is not an encoding Python knows") from None
    rows = _read_csv(path, enc)
    try:
        header = next(rows)
    except StopIteration:
        raise IngestError(f"{path}: the file is empty") from None
    return enc, header, rows


def _read_csv(path: Path, encoding: str) -> Iterator[list[str]]:
    with open(path, encoding=encoding, errors="strict", newline="") as fh:
        reader = csv.reader(fh)
        try:
            yield from reader
        except UnicodeDecodeError as exc:
            hint = "; try --encoding gbk" if encoding.startswith("utf") else ""
            raise IngestError(
                f"{path}: not valid {encoding} near line {reader.line_num + 1} ({exc.reason}){hint}"
            ) from None
        except csv.Error as exc:
            raise IngestError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None


def _read_xlsx(path: Path) -> tuple[list[str], Iterator[list[str]]]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise IngestError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    try:
        header = [_cell(v) for v in next(rows)]
    except StopIteration:
        raise IngestError(f"{path}: the first sheet is empty") from None

    def data() -> Iterator[list[str]]:
        try:
            for row in rows:
                yield [_cell(v) for v in row]
        finally:
            book.close()

    return header, data()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- validating ------------------------------------------------------------------------------


class RowError(Exception):
    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason


def parse_date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    m = re.fullmatch(
        r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?", text
    ) or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    if not m:
        raise ValueError(f"{text!r} is not a date like 2025-06-30")
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar date") from None


# --- writing ---------------------------------------------------------------------------------


@contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".ingest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_quarantine(
    source: Path,
    encoding: str,
    label: str,
    header: list[str],
    bad,
    quarantine_dir: Path,
    now: datetime,
) -> Path | None:
    """One line per bad row: where, which fields, why, then the row exactly as it was read."""
    if not bad:
        return None
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.astimezone(SHANGHAI).strftime("%Y%m%dT%H%M%S")
    path = quarantine_dir / f"{label}-{stamp}-{source.stem}.csv"
    n = 1
    while path.exists():
        n += 1
        path = quarantine_dir / f"{label}-{stamp}-{source.stem}-{n}.csv"
    bad = sorted(bad, key=lambda b: b[0])
    reread = {number for number, _, raw in bad if raw is None}
    if reread:  # rows rejected after parsing: fetch them again rather than keep every row
        _, _, rows = read_rows(source, None if encoding == "xlsx" else encoding)
        originals = {n: raw for n, raw in enumerate(rows, start=2) if n in reread}
        bad = [(n, p, raw if raw is not None else originals[n]) for n, p, raw in bad]
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source_file", "row", "field", "reason", *header])
        for number, problems, raw in bad:
            writer.writerow(
                [
                    str(source),
                    number,
                    "; ".join(p.field for p in problems),
                    "; ".join(f"{p.field}: {p.reason}" for p in problems),
                    *raw,
                ]
            )
    return path
