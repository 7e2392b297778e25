"""Building one generation of the DuckDB index, in a file no reader has seen yet (docs/data.md).

A generation holds the register (`subjects`), every dataset's rows in one table sorted by credit
code (`records`), the id, row count and cut-off of each Parquet file it was built from
(`sources`) and one row of bookkeeping (`meta`). It is built whole from the Parquet files
(`build_full`), or from a copy of the published generation by replacing only what changed
(`apply_changes`): rows an ingest added or corrected, or a whole dataset whose file changed.

All values reach SQL as bound parameters; no SQL text is built from user input.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from creditcert.data.schema import (
    CUTOFF_KEY,
    RECORD_COLUMNS,
    SUBJECT_COLUMNS,
    missing_columns,
    select_list,
)
from creditcert.data.store import SUBJECTS_KEY
from creditcert.errors import DataError

FORMAT = 2  # 1 was the single-file index.duckdb, checked by size and mtime
_RECORDS_DDL = (
    "CREATE TABLE records (dataset VARCHAR, "
    + ", ".join(f'"{n}" {t}' for n, t in RECORD_COLUMNS)
    + ")"
)


@dataclass(frozen=True, slots=True)
class Source:
    """One Parquet file as a generation takes it in."""

    key: str  # a dataset name, or SUBJECTS_KEY
    path: Path
    file_id: str


# Rows a writer changed, handed to the index: in memory, or, when more than memory should hold
# (an ingest), a Parquet file the writer keeps until it has published, which DuckDB reads itself.
ChangedRows = pa.Table | Path


def row_count(rows: ChangedRows) -> int:
    return rows.num_rows if isinstance(rows, pa.Table) else parquet_rows(rows)


@dataclass(frozen=True, slots=True)
class Change:
    """A source whose file differs from the published generation's. `rows` (optional) are the
    rows of the new file that are new or replace a row with the same key; usable only when
    the generation holds exactly the file those rows were added to."""

    source: Source
    rows: ChangedRows | None = None


def read_cutoff(path: Path, *, required: bool = True) -> datetime | None:
    """The data cut-off written into a Parquet file's metadata."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    raw = meta.get(CUTOFF_KEY.encode())
    if raw is None:
        if not required:
            return None
        raise DataError(f"{path}: Parquet metadata lacks {CUTOFF_KEY}; rewrite it with ingest")
    return datetime.fromisoformat(raw.decode())


def parquet_rows(path: Path) -> int:
    try:
        return pq.read_metadata(path).num_rows
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None


def describe(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    """Refuse a file that lacks a column of its schema, naming the file."""
    columns = SUBJECT_COLUMNS if source.key == SUBJECTS_KEY else RECORD_COLUMNS
    try:
        found = [
            r[0]
            for r in con.execute(
                "DESCRIBE SELECT * FROM read_parquet(?)", [str(source.path)]
            ).fetchall()
        ]
    except duckdb.Error as exc:
        raise DataError(f"{source.path}: not a readable Parquet file ({exc})") from None
    missing = missing_columns(found, columns)
    if missing:
        raise DataError(f"{source.path}: missing column(s) {', '.join(missing)}")


def indexed(path: Path) -> tuple[dict[str, str], int, int] | None:
    """A generation's sources (key → file id), its record count and rows changed since it was last
    built whole; None when the file is not a readable generation."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        sources = dict(con.execute("SELECT dataset, file_id FROM sources").fetchall())
        [(records,)] = con.execute("SELECT count(*) FROM records").fetchall()
        [(dirty,)] = con.execute("SELECT dirty_rows FROM meta").fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return sources, records, dirty


def _record_source(con, source: Source, rows: int) -> None:
    cutoff = read_cutoff(source.path, required=source.key != SUBJECTS_KEY)
    con.execute(
        "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?)",
        [source.key, source.file_id, rows, cutoff.isoformat() if cutoff else None],
    ).fetchall()


def _set_meta(con, generation: int, dirty: int) -> None:
    con.execute("DELETE FROM meta").fetchall()
    con.execute("INSERT INTO meta VALUES (?, ?, ?)", [FORMAT, generation, dirty]).fetchall()


def _load_subjects(con: duckdb.DuckDBPyConnection, source: Source) -> int:
    con.execute(
        f"CREATE OR REPLACE TABLE subjects AS SELECT {select_list(SUBJECT_COLUMNS)} "
        "FROM read_parquet(?) ORDER BY credit_code",
        [str(source.path)],
    ).fetchall()
    [(count,)] = con.execute("SELECT count(*) FROM subjects").fetchall()
    _record_source(con, source, count)
    return count


# Records sorted at once while building the index: bounds each sort (and what it spills)
# however large the city. Measured on 2 M records under the writers' 512 MB: ranges of 200 k
# records took 12.2 s, of 1 M 8.5 s, one sort 8.2 s (benchmarks/README.md).
RANGE_RECORDS = 1_000_000


def _code_ranges(
    con: duckdb.DuckDBPyConnection, subjects: int, records: int
) -> list[tuple[str, str]]:
    """Consecutive [lo, hi) credit-code ranges covering all codes, each of about RANGE_RECORDS
    records (as many subjects as hold that many on average)."""
    step = max(1_000, subjects * RANGE_RECORDS // max(records, 1))
    cuts = (
        [
            r[0]
            for r in con.execute(
                "SELECT credit_code FROM (SELECT credit_code, row_number() OVER (ORDER BY credit_code) "
                "AS n FROM subjects) WHERE n % ? = 0 ORDER BY credit_code",
                [step],
            ).fetchall()
        ]
        if subjects > step
        else []
    )
    bounds = ["", *cuts, "\U0010ffff"]
    return list(itertools.pairwise(bounds))


def build_full(
    con: duckdb.DuckDBPyConnection, subjects: Source, datasets: list[Source], generation: int
) -> None:
    """Fill a new, empty database with the register and every dataset.

    All records go into one table sorted by credit code, so a subject's lookup across any set of
    domains is one pruned scan (about 1 ms) instead of one scan per domain.
    """
    describe(con, subjects)
    for source in datasets:
        describe(con, source)
    con.execute(
        "CREATE TABLE sources (dataset VARCHAR PRIMARY KEY, file_id VARCHAR, rows BIGINT, "
        "data_cutoff VARCHAR)"
    ).fetchall()
    con.execute(
        "CREATE TABLE meta (format INTEGER, generation BIGINT, dirty_rows BIGINT)"
    ).fetchall()
    count = _load_subjects(con, subjects)
    con.execute(_RECORDS_DDL).fetchall()
    if datasets:
        union = " UNION ALL ".join(
            f"SELECT $ds{i} AS dataset, {select_list(RECORD_COLUMNS)} "
            f"FROM read_parquet($path{i}) WHERE credit_code >= $lo AND credit_code < $hi"
            for i in range(len(datasets))
        )
        params: dict[str, object] = {f"ds{i}": s.key for i, s in enumerate(datasets)}
        params.update({f"path{i}": str(s.path) for i, s in enumerate(datasets)})
        # Sort bucket by bucket (credit-code ranges from the register), so no single sort
        # has to hold all records; the Parquet files are sorted, so each pass reads only
        # the row groups of its range. The table comes out globally sorted. A range is
        # gathered first and sorted as one table: DuckDB's sort over the UNION itself ran
        # out of memory at the writers' cap, where this spills.
        records = sum(parquet_rows(source.path) for source in datasets)
        for lo, hi in _code_ranges(con, count, records):
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE range_rows AS {union}",
                {**params, "lo": lo, "hi": hi},
            ).fetchall()
            con.execute("INSERT INTO records SELECT * FROM range_rows ORDER BY credit_code")
        con.execute("DROP TABLE IF EXISTS range_rows").fetchall()
    counts = dict(con.execute("SELECT dataset, count(*) FROM records GROUP BY dataset").fetchall())
    for source in datasets:
        _record_source(con, source, counts.get(source.key, 0))
    _set_meta(con, generation, 0)


def apply_changes(
    con: duckdb.DuckDBPyConnection,
    changes: Iterable[Change],
    removed: Iterable[str],
    generation: int,
) -> int:
    """Bring a copy of the published generation up to date; returns its rows changed since it
    was last built whole (appended or deleted rows leave the table less well sorted)."""
    [(dirty,)] = con.execute("SELECT dirty_rows FROM meta").fetchall()
    for change in changes:
        describe(con, change.source)
        expected = parquet_rows(change.source.path)
        if change.rows is not None:
            dirty += _apply_rows(con, change.source.key, change.rows)
            if _count(con, change.source.key) == expected:
                _record_source(con, change.source, expected)
                continue
        dirty += _replace_whole(con, change.source)
        if _count(con, change.source.key) != expected:
            raise DataError(f"{change.source.path}: the index did not take in all its rows")
        _record_source(con, change.source, expected)
    for key in removed:
        if key != SUBJECTS_KEY:
            dirty += con.execute("DELETE FROM records WHERE dataset = ?", [key]).fetchall()[0][0]
        con.execute("DELETE FROM sources WHERE dataset = ?", [key]).fetchall()
    _set_meta(con, generation, dirty)
    return dirty


def _count(con, key: str) -> int:
    if key == SUBJECTS_KEY:
        return con.execute("SELECT count(*) FROM subjects").fetchall()[0][0]
    return con.execute("SELECT count(*) FROM records WHERE dataset = ?", [key]).fetchall()[0][0]


def _apply_rows(con, key: str, rows: ChangedRows) -> int:
    """Replace rows by their key (record id, or credit code for the register) and add new ones."""
    con.register(
        "changed_rows", rows if isinstance(rows, pa.Table) else con.read_parquet(str(rows))
    )
    try:
        if key == SUBJECTS_KEY:
            [(deleted,)] = con.execute(
                "DELETE FROM subjects WHERE credit_code IN (SELECT credit_code FROM changed_rows)"
            ).fetchall()
            con.execute(
                f"INSERT INTO subjects SELECT {select_list(SUBJECT_COLUMNS)} FROM changed_rows "
                "ORDER BY credit_code"
            ).fetchall()
        else:
            [(deleted,)] = con.execute(
                "DELETE FROM records WHERE dataset = ? AND record_id IN "
                "(SELECT record_id FROM changed_rows)",
                [key],
            ).fetchall()
            con.execute(
                f"INSERT INTO records SELECT ? AS dataset, {select_list(RECORD_COLUMNS)} "
                "FROM changed_rows ORDER BY credit_code",
                [key],
            ).fetchall()
    finally:
        con.unregister("changed_rows")
    return deleted + row_count(rows)


def _replace_whole(con, source: Source) -> int:
    if source.key == SUBJECTS_KEY:
        return _load_subjects(con, source)
    [(deleted,)] = con.execute("DELETE FROM records WHERE dataset = ?", [source.key]).fetchall()
    [(inserted,)] = con.execute(
        f"INSERT INTO records SELECT ? AS dataset, {select_list(RECORD_COLUMNS)} "
        "FROM read_parquet(?) ORDER BY credit_code",
        [source.key, str(source.path)],
    ).fetchall()
    return deleted + inserted
