"""Reading departments' exports: CSV (UTF-8 or GBK) and Excel .xlsx, whatever the export is of.

Record ingest (creditcert.data.ingest) and the subject register import (creditcert.data.subjects)
share this: the column map from export headers to fields, reading rows as strings with the
encoding detected and memory bounded (xlsx: creditcert.data.xlsx), the row error, the checks every
cell gets, strict date and amount parsing, the data directory's write lock, and the quarantine CSV
that keeps every rejected row with its row number, field and reason.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import tomllib
import unicodedata
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from creditcert.data.text import HIDDEN, HIDDEN_IN_TEXT, escaped, visible
from creditcert.data.xlsx import read_xlsx
from creditcert.errors import IngestError
from creditcert.files import remove_debris, temp_path
from creditcert.model.clock import SHANGHAI
from creditcert.resources import ingest_columns_path

MAX_INPUT_BYTES = 2 << 30  # 2 GiB: a department export larger than this is refused
MAX_CELL_CHARS = 4000  # a longer cell quarantines its row
MAX_LINE_CHARS = 16 << 20  # a longer CSV line or cell cannot be held: the file is refused
# Multi-line free text: the only fields where tab and line breaks are data, not tampering.
FREE_TEXT = frozenset({"facts", "legal_basis", "penalty_content"})
_SNIFF_BYTES = 1 << 16
_MAX_REASON_CHARS = 300
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
        return "xlsx", *read_xlsx(path)
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
    # Process-wide, and above the default 131,072, so that one long cell quarantines its row
    # (the row check refuses cells over MAX_CELL_CHARS) instead of aborting the whole file.
    csv.field_size_limit(MAX_LINE_CHARS)
    with open(path, encoding=encoding, errors="strict", newline="") as fh:
        reader = csv.reader(_lines(path, fh))
        try:
            yield from reader
        except UnicodeDecodeError as exc:
            hint = "; try --encoding gbk" if encoding.startswith("utf") else ""
            raise IngestError(
                f"{path}: not valid {encoding} near line {reader.line_num + 1} ({exc.reason}){hint}"
            ) from None
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise IngestError(
                    f"{path}: a cell ending near line {reader.line_num} is longer than "
                    f"{MAX_LINE_CHARS:,} characters, more than ingest holds; fix the export"
                ) from None
            raise IngestError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None


def _lines(path: Path, fh) -> Iterator[str]:
    """The file's lines, each read within MAX_LINE_CHARS so that memory stays bounded."""
    number = 0
    while line := fh.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise IngestError(
                f"{path}: line {number} is longer than {MAX_LINE_CHARS:,} characters, more than "
                "ingest holds; fix the export"
            )
        yield line


# --- validating ------------------------------------------------------------------------------


class RowError(Exception):
    """One problem of one row: the field and a reason people read (never raw control
    characters, never a whole oversized cell)."""

    def __init__(self, field: str, reason: str):
        shown = visible(reason)
        if len(shown) > _MAX_REASON_CHARS:
            shown = shown[: _MAX_REASON_CHARS - 1] + "…"
        self.field, self.reason = field, shown


def check_cells(values: dict[str, str]) -> list[RowError]:
    """What any field can have wrong whatever it holds: more than MAX_CELL_CHARS characters, or a
    character a reader cannot see (control, DEL, C1, bidi and other format characters; tab and
    line breaks are allowed in the multi-line FREE_TEXT fields)."""
    problems = []
    for field, value in values.items():
        if len(value) > MAX_CELL_CHARS:
            problems.append(
                RowError(field, f"longer than {MAX_CELL_CHARS} characters ({len(value):,})")
            )
        hidden = (HIDDEN_IN_TEXT if field in FREE_TEXT else HIDDEN).search(value)
        if hidden:
            problems.append(
                RowError(
                    field,
                    f"control-character {escaped(hidden[0])} at character {hidden.start() + 1} "
                    "(invisible and control characters are refused; remove it at the source)",
                )
            )
    return problems


_DATE = re.compile(
    r"([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?"
    r"(?:[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,6})?)?)?"
    r"|([0-9]{4})([0-9]{2})([0-9]{2})"
)


def parse_date(text: str) -> date | None:
    """A date as departments write it (2025-06-30, 2025/6/30, 2025年6月30日, 20250630), full-width
    digits allowed, a time after it only if it is a real time; None for an empty cell."""
    shown = text.strip()
    if not shown:
        return None
    m = _DATE.fullmatch(unicodedata.normalize("NFKC", shown))
    if not m:
        raise ValueError(f"{shown!r} is not a date like 2025-06-30 (a time after it as 10:30:00)")
    year, month, day, hour, minute, second = (
        (m[1], m[2], m[3], m[4], m[5], m[6]) if m[1] else (m[7], m[8], m[9], None, None, None)
    )
    if hour is not None and not (int(hour) < 24 and int(minute) < 60 and int(second or 0) < 60):
        raise ValueError(f"{shown!r} has a time that is not a time of day")
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise ValueError(f"{shown!r} is not a calendar date") from None


_AMOUNT = re.compile(r"([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]+))?")
_UNITS = {"万元": 10_000, "万": 10_000, "元": 1}
_UNIT_NAMES = {10_000: "万元", 1: "元"}


def parse_amount(text: str, *, unit: int) -> Decimal | None:
    """Yuan, from a cell of a column counted in `unit` yuan (1, or 10 000 for 万元); None for an
    empty cell. Strict: full-width digits are folded, a unit suffix must match the column's,
    thousands separators must group by three, and anything finer than a fen, negative,
    scientific, not a number or 10^12 yuan or more is refused."""
    shown = text.strip()
    if not shown:
        return None
    t = unicodedata.normalize("NFKC", shown)
    for suffix, factor in _UNITS.items():
        if t.endswith(suffix):
            if factor != unit:
                raise ValueError(
                    f"{shown!r} is in {suffix}, but the column is in {_UNIT_NAMES[unit]}"
                )
            t = t[: -len(suffix)].rstrip()
            break
    negative = t.startswith("-")
    m = _AMOUNT.fullmatch(t[1:] if negative else t)
    if not m:
        raise ValueError(
            f"{shown!r} is not an amount like 1,234.5 (digits, a decimal point, commas only "
            "between groups of three)"
        )
    if negative:
        raise ValueError(f"{shown!r} is negative")
    whole, fraction = m[1].replace(",", "").lstrip("0"), (m[2] or "").rstrip("0")
    if len(whole) > 12 or Decimal(whole or 0) * unit >= 10**12:
        raise ValueError(f"{shown!r} is 10^12 yuan or more")
    if len(fraction) > (6 if unit == 10_000 else 2):
        raise ValueError(f"{shown!r} is finer than a fen (0.01 yuan)")
    return (Decimal(f"{whole or 0}.{fraction or 0}") * unit).quantize(Decimal("0.01"))


# --- writing ---------------------------------------------------------------------------------


def neutral(cell: object) -> str:
    """A cell Excel would run as a formula (= + - @ tab CR first) with a quote before it."""
    text = str(cell)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class Quarantine:
    """The quarantine CSV of one input, written as refused rows arrive rather than held.

    List-like (`append((row_number, problems, raw))`, `len`) so that validation collects into it
    as into a list. A row refused after the whole file was read (the register check, duplicates)
    comes with raw None; `close` merges those rows in, in row order, taking each as read from
    the rows `hold` kept aside (on disk) while reading, else from `reread` (by default
    read_rows again): a function of the wanted row numbers, ascending, giving (number, row) for
    each. Until `close` the rows are in temporary files, deleted if the run fails (`discard`,
    and by files.remove_debris after a crash)."""

    def __init__(
        self,
        source: Path,
        encoding: str,
        label: str,
        header: list[str],
        quarantine_dir: Path,
        now: datetime,
        reread: Callable[[list[int]], Iterator[tuple[int, list[str]]]] | None = None,
    ):
        self.source, self.encoding, self.header, self.dir = source, encoding, header, quarantine_dir
        stamp = now.astimezone(SHANGHAI).strftime("%Y%m%dT%H%M%S")
        self.name = f"{label}-{stamp}-{source.stem}"
        self._reread = reread or self._read_again
        self._count = 0
        self._late: list[tuple[int, list[RowError]]] = []
        self._files: list[tuple[Path, TextIO]] = []
        self._held: list[tuple[Path, TextIO]] = []
        self._writer = self._held_writer = None
        weakref.finalize(self, _discard, self._files)
        weakref.finalize(self, _discard, self._held)

    def __len__(self) -> int:
        return self._count

    def append(self, item: tuple[int, list[RowError], list[str] | None]) -> None:
        number, problems, raw = item
        self._count += 1
        if raw is None:
            self._late.append((number, problems))
            return
        if self._writer is None:
            self._writer = self._open()
        self._writer.writerow(self._line(number, problems, raw))

    def hold(self, number: int, raw: list[str]) -> None:
        """Keep a row that may be refused after the read (rows come in ascending order)."""
        if self._held_writer is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = temp_path(self.dir / f"{self.name}-held.csv")
            fh = open(tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
            self._held.append((tmp, fh))
            self._held_writer = csv.writer(fh)
        self._held_writer.writerow([number, *raw])

    def close(self) -> Path | None:
        """Put the quarantine file in place; None when no row was refused."""
        try:
            if not self._count:
                return None
            if self._late:
                self._merge_late()
            tmp, fh = self._files.pop()
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            path, n = self.dir / f"{self.name}.csv", 1
            while path.exists():
                n += 1
                path = self.dir / f"{self.name}-{n}.csv"
            os.replace(tmp, path)
            return path
        finally:
            _discard(self._held)

    def discard(self) -> None:
        """Forget every row so far and delete the temporary files (the input is read again)."""
        _discard(self._files)
        _discard(self._held)
        self._count, self._late, self._writer, self._held_writer = 0, [], None, None

    def _open(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self._files:
            remove_debris(self.dir)  # a killed run's partial quarantine files
        tmp = temp_path(self.dir / f"{self.name}-{len(self._files)}.csv")
        fh = open(tmp, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed in close()
        self._files.append((tmp, fh))
        writer = csv.writer(fh)
        writer.writerow(["source_file", "row", "field", "reason", *map(neutral, self.header)])
        return writer

    def _line(self, number: int, problems: list[RowError], raw: list[str]) -> list[str]:
        cells = [
            str(self.source),
            str(number),
            "; ".join(p.field for p in problems),
            "; ".join(f"{p.field}: {p.reason}" for p in problems),
            *raw,
        ]
        return [neutral(c) for c in cells]

    def _merge_late(self) -> None:
        """Rewrite the rows so far with the late ones, as read, in row order."""
        late = sorted(self._late, key=lambda item: item[0])
        early_file = self._files[-1][0] if self._writer is not None else None
        if early_file is not None:
            self._files[-1][1].flush()
        writer = self._open()
        early = _early_rows(early_file)
        pending = next(early, None)
        raws = self._late_rows([number for number, _ in late])
        for (number, problems), raw in zip(late, raws, strict=True):
            while pending is not None and int(pending[1]) < number:
                writer.writerow(pending)
                pending = next(early, None)
            writer.writerow(self._line(number, problems, raw))
        while pending is not None:
            writer.writerow(pending)
            pending = next(early, None)
        if early_file is not None:
            old = self._files.pop(0)
            old[1].close()
            old[0].unlink()
        self._late = []

    def _late_rows(self, numbers: list[int]) -> Iterator[list[str]]:
        """The rows of `numbers` (ascending) as read: held ones, then the others read again."""
        held_file = None
        if self._held:
            held_file, fh = self._held[-1]
            fh.flush()
        held_numbers = {number for number, _ in _held_rows(held_file)}
        again = self._reread([n for n in numbers if n not in held_numbers])
        held = _held_rows(held_file)
        for n in numbers:
            source = held if n in held_numbers else again
            number, raw = next(source)
            while number != n:
                number, raw = next(source)
            yield raw

    def _read_again(self, numbers: list[int]) -> Iterator[tuple[int, list[str]]]:
        wanted = set(numbers)
        _, _, rows = read_rows(self.source, None if self.encoding == "xlsx" else self.encoding)
        try:
            for number, raw in enumerate(rows, start=2):
                if not wanted:
                    break
                if number in wanted:
                    wanted.discard(number)
                    yield number, raw
        finally:
            rows.close()


def _held_rows(path: Path | None) -> Iterator[tuple[int, list[str]]]:
    if path is None:
        return
    with open(path, encoding="utf-8", newline="") as fh:
        for number, *raw in csv.reader(fh):
            yield int(number), raw


def _early_rows(path: Path | None) -> Iterator[list[str]]:
    if path is None:
        return
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        yield from reader


def _discard(files: list[tuple[Path, TextIO]]) -> None:
    for tmp, fh in files:
        with contextlib.suppress(OSError):  # a full disk refuses what was buffered: it goes
            fh.close()
        tmp.unlink(missing_ok=True)
    files.clear()
