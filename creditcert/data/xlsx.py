"""Reading an Excel .xlsx export within bounds, whoever made the file.

A workbook is a zip of XML parts: a few kilobytes can inflate to gigabytes, declare a
million-row range that openpyxl pads out, or hold millions of shared strings in memory. Before
openpyxl opens the file, its zip directory and one expat pass over every part check what reading
it will cost (and refuse DTDs, which Excel never writes); then the first sheet is streamed in
openpyxl's read-only mode with its declared dimension ignored, every row counted against the
same bounds. Limits and their reasons: docs/ingest.md.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, ClassVar
from xml.parsers import expat

from creditcert.data.text import visible
from creditcert.errors import IngestError

MAX_PARTS = 10_000
MAX_INFLATED = 512 << 20  # all parts together, inflated
MAX_HELD_PART = 32 << 20  # a part openpyxl holds in memory (shared strings, styles, workbook)
MAX_RATIO = 100  # inflated / compressed, for parts over 1 MiB inflated: a zip bomb
MAX_ROWS = 1 << 20  # Excel's own limit, 1,048,576 rows a sheet
MAX_CELLS = 20_000_000  # cells of a sheet, as written and as openpyxl pads its rows
MAX_STRINGS = 1_000_000  # shared strings
_CHUNK = 1 << 20
_COUNT_FROM = 1 << 20  # parts inflating to less are not counted: they hold too little
_EXPORT_CSV = "save the sheet as CSV instead"


def read_xlsx(path: Path) -> tuple[list[str], Iterator[list[str]]]:
    """(header, data rows as strings) of the first sheet, streamed within the bounds above; cells
    right of the header's last column have no field and are not read."""
    import openpyxl

    fh = open(path, "rb")  # noqa: SIM115 - closed by the row iterator, or below on failure
    try:
        _check_package(path, fh)
        try:  # openpyxl raises whatever a malformed part provokes: any failure is the file's
            book = openpyxl.load_workbook(fh, read_only=True, data_only=True)
            sheet = book.worksheets[0]
            sheet.reset_dimensions()  # a declared A1:XFD1048576 would pad every row
            rows = sheet.iter_rows(values_only=True)
            first = next(rows, None)
        except Exception as exc:
            raise _unreadable(path, exc) from None
    except BaseException:
        fh.close()
        raise
    if first is None:
        book.close()
        fh.close()
        raise IngestError(f"{path}: the first sheet is empty")
    header = [_cell(v) for v in first]
    while header and not header[-1]:
        header.pop()
    return header, _data(path, fh, book, rows, len(header))


def _data(path: Path, fh: BinaryIO, book, rows, width: int) -> Iterator[list[str]]:
    count, cells = 1, width
    try:
        while True:
            try:
                row = next(rows, None)
            except Exception as exc:  # as in read_xlsx
                raise _unreadable(path, exc) from None
            if row is None:
                return
            count += 1
            cells += len(row)
            if count > MAX_ROWS:
                raise IngestError(f"{path}: more than {MAX_ROWS:,} rows; {_EXPORT_CSV}")
            if cells > MAX_CELLS:
                raise IngestError(f"{path}: more than {MAX_CELLS:,} cells; {_EXPORT_CSV}")
            yield [_cell(v) for v in row[:width]] if row else []
    finally:
        book.close()
        fh.close()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unreadable(path: Path, exc: BaseException) -> IngestError:
    detail = visible(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:200]
    return IngestError(
        f"{path}: not a readable .xlsx workbook ({detail}); open and save it in Excel, "
        "or export CSV"
    )


# --- the package check -----------------------------------------------------------------------


class _Refused(Exception):
    """Raised inside the expat pass to stop at the first bound a part breaks."""


class _Enough(Exception):
    """Raised inside the expat pass when the rest of a part cannot break a bound."""


def _check_package(path: Path, fh: BinaryIO) -> None:
    """Refuse what would cost more than the bounds, from the zip directory and one expat pass."""
    try:
        with zipfile.ZipFile(fh) as zf:
            parts = zf.infolist()
            if len(parts) > MAX_PARTS:
                raise _Refused(f"{len(parts):,} parts (at most {MAX_PARTS:,})")
            total = sum(p.file_size for p in parts)
            if total > MAX_INFLATED:
                raise _Refused(
                    f"it inflates to {total >> 20:,} MiB (at most {MAX_INFLATED >> 20} MiB)"
                )
            for p in parts:
                if p.file_size > 1 << 20 and p.file_size > MAX_RATIO * max(p.compress_size, 1):
                    raise _Refused(
                        f"part {visible(p.filename)!r} inflates {p.file_size // max(p.compress_size, 1):,}"
                        f" times (at most {MAX_RATIO}: a zip bomb)"
                    )
            for p in parts:
                _count_part(zf, p)
    except _Refused as exc:
        raise IngestError(f"{path}: refused: {exc}; {_EXPORT_CSV}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as exc:
        raise IngestError(
            f"{path}: not an .xlsx workbook (not a complete zip archive: {exc}); if it is CSV, "
            "name it .csv; if it was cut short, export it again"
        ) from None
    except (RuntimeError, NotImplementedError) as exc:  # encrypted, or an unknown compression
        raise _unreadable(path, exc) from None
    finally:
        fh.seek(0)


def _count_part(zf: zipfile.ZipFile, part: zipfile.ZipInfo) -> None:
    """Refuse a DTD in one part, and count what openpyxl would hold of it, stopping as soon as
    nothing more can break a bound.

    Expat reads up to the root element (a DTD comes before it). A part under 1 MiB inflated can
    hold little, and a worksheet that declares its dimension is only read by the bounded stream;
    otherwise rows, cells and shared strings are counted: openpyxl reads a worksheet without a
    dimension whole when it opens the workbook, keeping a little of every row, and holds every
    shared string. A part that is not XML (an image) stops expat at once; openpyxl would fail on
    it the same way."""
    name = visible(part.filename)
    counter = _PartCounter(name, part.file_size)

    def doctype(*_args) -> None:
        raise _Refused(f"a DTD (XML entity declarations, which Excel never writes) in {name!r}")

    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartElementHandler = counter.start
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    with zf.open(part) as src:
        try:
            while chunk := src.read(_CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except _Enough:
            return
        except expat.ExpatError as exc:
            if part.filename.endswith((".xml", ".rels")):
                raise _Refused(f"malformed XML in {name!r} ({exc})") from None


class _PartCounter:
    """What openpyxl would hold of one part, counted element by element (expat's callback)."""

    NOUNS: ClassVar = {"row": "rows", "c": "cells", "si": "shared strings"}

    def __init__(self, name: str, size: int):
        self.name, self.size = name, size
        self.held = size > MAX_HELD_PART
        self.root: str | None = None
        self.limits = {"row": MAX_ROWS, "c": MAX_CELLS, "si": MAX_STRINGS}
        self.counts = dict.fromkeys(self.limits, 0)

    def start(self, tag: str, _attrs: object) -> None:
        local = tag.rpartition("}")[2]
        if self.root is None:
            self._at_root(local)
        elif local == "dimension" and self.root == "worksheet":
            raise _Enough
        elif local in self.counts:
            self._count(local)

    def _at_root(self, local: str) -> None:
        self.root = local
        if self.held and local != "worksheet":
            raise _Refused(
                f"part {self.name!r} of {self.size >> 20:,} MiB is not a worksheet and "
                f"would be held in memory (at most {MAX_HELD_PART >> 20} MiB)"
            )
        if self.size <= _COUNT_FROM:
            raise _Enough

    def _count(self, local: str) -> None:
        self.counts[local] += 1
        limit = self.limits[local]
        if self.counts[local] > limit:
            raise _Refused(f"more than {limit:,} {self.NOUNS[local]} in {self.name!r}")
        if local == "si" and self.held:
            raise _Refused(
                f"shared strings in {self.name!r} of {self.size >> 20:,} MiB "
                f"(at most {MAX_HELD_PART >> 20} MiB)"
            )
