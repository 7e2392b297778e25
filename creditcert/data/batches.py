"""An export's rows as Arrow batches of string cells, numbered as a spreadsheet shows them.

A CSV file is split by pyarrow.csv, streamed in blocks; GBK/GB18030 is transcoded on the way by
Python's own incremental codec, so the text is exactly what `open(encoding=...)` gives. pyarrow
splits like the csv module for every file it accepts (tests/test_ingest_speed_paths.py compares
them); a file it might split differently, or that ingest must refuse with a line number, is
*declined*: a row with another number of cells than the header, a row too long for one block or
possibly beyond MAX_LINE_CHARS, a BOM that `--encoding utf-8` would keep as text, a byte the
encoding cannot decode. A declined file, and an .xlsx workbook, is read again through
exports.read_rows, whose rows come as the same batches, so that one validation serves all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from creditcert.data import exports

# Rows validated at once: DuckDB runs a batch's query on one thread per 122,880 rows and pays a
# fixed cost per query (1 M rows: 9.5 s in batches of 65,536, 3.4 s of 262,144), while the
# batch's cells are held in memory three times (read, stripped, quarantine's raw rows).
BATCH_ROWS = 131_072
BATCH_BYTES = 64 << 20  # ...or fewer, when the rows are long: a batch holds about this much text
_BLOCK_BYTES = 4 << 20  # pyarrow reads this much at once; a longer row declines the file
# What str.strip() removes (str.isspace, all below U+3001), for RE2.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())


def re2_class(chars: str) -> str:
    """A regex character class of `chars` (ranges written a-b kept) that RE2 reads as Python's
    re reads it: every character escaped as \\x{…}."""
    return "[" + "".join("-" if c == "-" else f"\\x{{{ord(c):x}}}" for c in chars) + "]"


def re2_of(pattern: re.Pattern[str]) -> str:
    """A one-class Python pattern (like text.HIDDEN: `[...]` of literal characters and ranges)
    for RE2 (pyarrow, DuckDB)."""
    body = pattern.pattern
    assert body.startswith("[") and body.endswith("]") and "\\" not in body, body
    return re2_class(body[1:-1])


# pyarrow reads UTF-8 itself (dropping one BOM, as utf-8-sig does); other encodings go through
# Python's codec. GBK decodes every byte sequence it accepts exactly as GB18030 does, twice as
# fast (tests/test_ingest_speed_paths.py), so a GB18030 file is first read as GBK.
_PYARROW_ENCODING = {"utf-8": "utf8", "utf-8-sig": "utf8"}


class Declined(Exception):
    """The fast reader cannot vouch for reading this file as exports.read_rows would."""

    def __init__(self, why: str, *, decoding: bool = False):
        super().__init__(why)
        self.decoding = decoding  # a byte the codec refused: another codec may still read it


def sources(
    path: Path, encoding: str, header: list[str]
) -> Generator[Callable[[], Iterator[Chunk]], Declined, None]:
    """The ways to read a file's data rows, fastest first, each as a function that reads them
    (again, when called again). When one raises Declined, the caller starts over with the next,
    sending the Declined in (`.send`); the last never declines."""
    if encoding != "xlsx":
        fast = "gbk" if encoding == "gb18030" else encoding
        declined = yield partial(csv_chunks, path, fast, header)
        if fast != encoding and declined.decoding:  # not GBK: read it as GB18030
            yield partial(csv_chunks, path, encoding, header)
    yield partial(_read_rows_chunks, path, encoding, len(header))


def _read_rows_chunks(path: Path, encoding: str, width: int) -> Iterator[Chunk]:
    _, _, rows = exports.read_rows(path, None if encoding == "xlsx" else encoding)
    try:
        yield from row_chunks(rows, width)
    finally:
        rows.close()


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive rows: `cells` has the header's width (columns c0, c1, …; missing cells are
    empty), `blank` marks rows without a visible cell, `rows` keeps read_rows' rows as read
    (None: the cells are the row)."""

    first: int  # the row number of the first row; the header is row 1
    cells: pa.Table
    blank: pa.Array
    rows: list[list[str]] | None

    def raw(self, numbers: list[int]) -> list[list[str]]:
        """Rows by number, as read, for the quarantine."""
        if self.rows is not None:
            return [self.rows[n - self.first] for n in numbers]
        taken = self.cells.take(pa.array([n - self.first for n in numbers], pa.int64()))
        return [list(row.values()) for row in taken.to_pylist()]


def names(width: int) -> list[str]:
    return [f"c{i}" for i in range(width)]


def csv_chunks(path: Path, encoding: str, header: list[str]) -> Iterator[Chunk]:
    """The data rows of a CSV file through pyarrow; raises Declined (possibly after some chunks)
    when the file must be read by exports.read_rows instead."""
    if encoding == "utf-8":
        with open(path, "rb") as fh:
            if fh.read(3) == b"\xef\xbb\xbf":
                raise Declined("a BOM read as text")
    width = len(header)
    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(
                autogenerate_column_names=True,
                encoding=_PYARROW_ENCODING.get(encoding, encoding),
                block_size=_BLOCK_BYTES,
            ),
            parse_options=pcsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        yield from _chunks(reader, header)
    except UnicodeError as exc:
        raise Declined(str(exc), decoding=True) from None
    except (pa.ArrowException, OSError) as exc:
        raise Declined(str(exc)) from None


def _chunks(reader: pcsv.CSVStreamingReader, header: list[str]) -> Iterator[Chunk]:
    width, number, pending = len(header), 1, []
    limit = exports.MAX_LINE_CHARS - 3 * width - 2  # quotes and delimiters a line adds at most
    for batch in reader:
        if batch.num_columns != width:
            raise Declined("a row of another width")
        table = pa.Table.from_batches([batch]).rename_columns(names(width))
        if number == 1:
            if [c[0].as_py() for c in table.columns] != header:
                raise Declined("the header reads differently")
            table, number = table.slice(1), 2
        lengths = [pc.utf8_length(c) for c in table.columns]
        if table.num_rows and pc.max(_sum(lengths)).as_py() * 2 > limit:
            raise Declined("a row that may be longer than MAX_LINE_CHARS")
        pending.append(table)
        rows = sum(t.num_rows for t in pending)
        if rows >= BATCH_ROWS or sum(t.nbytes for t in pending) >= BATCH_BYTES:
            yield _chunk(number, pa.concat_tables(pending))
            number, pending = number + rows, []
    if pending:
        yield _chunk(number, pa.concat_tables(pending))


def _sum(arrays: list[pa.Array]) -> pa.Array:
    total = arrays[0]
    for a in arrays[1:]:
        total = pc.add(total, a)
    return total


def _chunk(first: int, table: pa.Table) -> Chunk:
    """The rows whose every cell is blank: a row is a candidate while its cells so far are."""
    table = table.combine_chunks()
    candidates = pa.array(range(table.num_rows), pa.int64())
    for column in table.columns:
        if not len(candidates):
            break
        cells = stripped(column.take(candidates))
        candidates = candidates.filter(pc.equal(pc.binary_length(cells), 0))
    blank = pc.is_in(pa.array(range(table.num_rows), pa.int64()), candidates)
    return Chunk(first, table, blank, None)


def stripped(cells: pa.Array) -> pa.Array:
    """str.strip() of every cell."""
    return pc.utf8_trim(cells, WHITESPACE)


def row_chunks(rows: Iterator[list[str]], width: int) -> Iterator[Chunk]:
    """exports.read_rows' data rows as chunks (the path for .xlsx and declined CSV files), of at
    most BATCH_ROWS rows and about BATCH_BYTES of text (counted as characters) or one row."""
    number, held, chars = 2, [], 0
    for raw in rows:
        held.append(raw)
        chars += sum(map(len, raw))
        if len(held) >= BATCH_ROWS or chars >= BATCH_BYTES:
            yield _row_chunk(number, held, width)
            number, held, chars = number + len(held), [], 0
    if held:
        yield _row_chunk(number, held, width)


def _row_chunk(first: int, rows: list[list[str]], width: int) -> Chunk:
    """The rows as a chunk. A cell longer than MAX_CELL_CHARS refuses its row whatever it holds:
    the cells table keeps only its first MAX_CELL_CHARS + 1 characters (enough to leave the row
    to validate_row, which reads the row as read), so that a huge cell is held once, not copied
    into Arrow and DuckDB."""
    cut = exports.MAX_CELL_CHARS + 1
    columns = [
        pa.array([r[i][:cut] if i < len(r) else "" for r in rows], pa.string())
        for i in range(width)
    ]
    blank = pa.array([not any(c.strip() for c in r) for r in rows], pa.bool_())
    return Chunk(first, pa.table(columns, names=names(width)), blank, rows)
