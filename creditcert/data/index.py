"""Writes to a city's data: atomic Parquet files and the derived DuckDB index (docs/data.md).

A Parquet file appears under its name only once complete (temporary file, fsync, rename), and the
index changes in one transaction, committed whole or rolled back; so a crash leaves the previous
version of either in place. The index records the size and mtime of each file it was built from,
which is how the read side (creditcert.data.store) refuses to answer from a stale index.

All values reach SQL as bound parameters; no SQL text is built from user input.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from creditcert.data.schema import (
    CUTOFF_KEY,
    RECORD_COLUMNS,
    ROW_GROUP_SIZE,
    SUBJECT_COLUMNS,
    missing_columns,
    select_list,
)
from creditcert.data.store import INDEX_NAME, SUBJECTS_KEY, dataset_path, subjects_path
from creditcert.errors import DataError
from creditcert.rules.catalog import Catalog


def write_parquet(
    con: duckdb.DuckDBPyConnection,
    query: str,
    params: Sequence[object] | Mapping[str, object],
    path: Path,
    *,
    data_cutoff: datetime,
) -> int:
    """Stream a query's result into a Parquet file atomically; returns the number of rows.

    The file appears under its name only once complete (temporary file, fsync, rename), so a crash
    leaves the previous version in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    reader = con.sql(query, params=params).to_arrow_reader(ROW_GROUP_SIZE)
    schema = reader.schema.with_metadata({CUTOFF_KEY: data_cutoff.isoformat()})
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch, row_group_size=ROW_GROUP_SIZE)
                rows += batch.num_rows
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def read_cutoff(path: Path) -> datetime:
    """The data cut-off written into a dataset's Parquet metadata."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    raw = meta.get(CUTOFF_KEY.encode())
    if raw is None:
        raise DataError(f"{path}: Parquet metadata lacks {CUTOFF_KEY}; rewrite it with ingest")
    return datetime.fromisoformat(raw.decode())


def _signature(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def signature(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, or None when it does not exist."""
    return _signature(path) if path.exists() else None


# Writers cap DuckDB's memory and spill to disk beyond it, so a 10 M-record rebuild or sample
# generation stays within a few GiB on a small machine (DuckDB's default is 80 % of RAM).
WRITER_MEMORY = "2GB"


def bounded(con: duckdb.DuckDBPyConnection, spill_dir: Path) -> duckdb.DuckDBPyConnection:
    """Cap a writing connection's memory; what does not fit spills under spill_dir."""
    spill_dir.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{WRITER_MEMORY}'").fetchall()
    con.execute("SET temp_directory = ?", [str(spill_dir)]).fetchall()
    con.execute("SET preserve_insertion_order = false").fetchall()
    return con


def _open_for_write(index: Path) -> duckdb.DuckDBPyConnection:
    try:
        con = bounded(duckdb.connect(str(index)), index.parent / ".spill")
    except duckdb.Error as exc:
        raise DataError(f"{index}: cannot open the data index for writing ({exc})") from None
    con.execute(
        "CREATE TABLE IF NOT EXISTS sources (dataset VARCHAR PRIMARY KEY, size BIGINT, "
        "mtime_ns BIGINT, rows BIGINT, data_cutoff VARCHAR)"
    ).fetchall()
    return con


@contextmanager
def _index_transaction(index: Path, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A write transaction on the index: committed whole, or rolled back with a DataError."""
    con = _open_for_write(index)
    try:
        con.execute("BEGIN").fetchall()
        yield con
        con.execute("COMMIT").fetchall()
    except duckdb.Error as exc:
        con.execute("ROLLBACK").fetchall()
        raise DataError(f"{index}: {what} failed ({exc}); run `creditcert data reindex`") from None
    finally:
        con.close()


def _describe(con: duckdb.DuckDBPyConnection, path: Path, columns) -> None:
    try:
        found = [
            r[0]
            for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
        ]
    except duckdb.Error as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = missing_columns(found, columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")


def _record_source(con, key: str, path: Path, rows: int, cutoff: datetime | None) -> None:
    size, mtime = _signature(path)
    con.execute(
        "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)",
        [key, size, mtime, rows, cutoff.isoformat() if cutoff else None],
    ).fetchall()


def _load_subjects(con: duckdb.DuckDBPyConnection, subjects: Path) -> int:
    con.execute(
        f"CREATE OR REPLACE TABLE subjects AS SELECT {select_list(SUBJECT_COLUMNS)} "
        "FROM read_parquet(?) ORDER BY credit_code",
        [str(subjects)],
    ).fetchall()
    count = con.execute("SELECT count(*) FROM subjects").fetchall()[0][0]
    _record_source(con, SUBJECTS_KEY, subjects, count, None)
    return count


def refresh_subjects(data_dir: Path, catalog: Catalog) -> None:
    """Reload the register into the index after it was rewritten (or build the index)."""
    index = data_dir / INDEX_NAME
    if not index.exists():
        rebuild_index(data_dir, catalog)
        return
    with _index_transaction(index, "register update") as con:
        _describe(con, subjects_path(data_dir), SUBJECT_COLUMNS)
        _load_subjects(con, subjects_path(data_dir))


def _code_ranges(con: duckdb.DuckDBPyConnection, subjects: int) -> list[tuple[str, str]]:
    """Consecutive [lo, hi) credit-code ranges of about 50 000 subjects each, covering all codes."""
    step = 50_000
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


def rebuild_index(data_dir: Path, catalog: Catalog) -> None:
    """Rebuild the whole index from the register and every domain's Parquet dataset.

    All records go into one table sorted by credit code, so a subject's lookup across any set of
    domains is one pruned scan (about 1 ms) instead of one scan per domain.
    """
    index = data_dir / INDEX_NAME
    sources = []
    subjects = subjects_path(data_dir)
    if not subjects.exists():
        raise DataError(f"subject register missing: {subjects}")
    for domain in catalog.domains:
        path = dataset_path(data_dir, domain.dataset)
        if path.exists():
            sources.append((domain.dataset, path, read_cutoff(path)))
    with _index_transaction(index, "index rebuild") as con:
        _describe(con, subjects, SUBJECT_COLUMNS)
        for _, path, _ in sources:
            _describe(con, path, RECORD_COLUMNS)
        con.execute("DELETE FROM sources").fetchall()
        count = _load_subjects(con, subjects)
        con.execute(
            "CREATE OR REPLACE TABLE records (dataset VARCHAR, "
            + ", ".join(f'"{n}" {t}' for n, t in RECORD_COLUMNS)
            + ")"
        ).fetchall()
        if sources:
            union = " UNION ALL ".join(
                f"SELECT $ds{i} AS dataset, {select_list(RECORD_COLUMNS)} "
                f"FROM read_parquet($path{i}) WHERE credit_code >= $lo AND credit_code < $hi"
                for i in range(len(sources))
            )
            params: dict[str, object] = {f"ds{i}": ds for i, (ds, _, _) in enumerate(sources)}
            params.update({f"path{i}": str(p) for i, (_, p, _) in enumerate(sources)})
            # Sort bucket by bucket (credit-code ranges from the register), so no single sort
            # has to hold all records; the Parquet files are sorted, so each pass reads only
            # the row groups of its range. The table comes out globally sorted.
            for lo, hi in _code_ranges(con, count):
                con.execute(
                    f"INSERT INTO records {union} ORDER BY credit_code",
                    {**params, "lo": lo, "hi": hi},
                ).fetchall()
        for dataset, path, cutoff in sources:
            rows = con.execute(
                "SELECT count(*) FROM records WHERE dataset = ?", [dataset]
            ).fetchall()[0][0]
            _record_source(con, dataset, path, rows, cutoff)


def append_to_index(
    data_dir: Path,
    catalog: Catalog,
    dataset: str,
    fresh: pa.Table,
    previous: tuple[int, int] | None,
) -> None:
    """Add newly ingested rows to the index after their dataset was rewritten.

    `previous` is the dataset file's (size, mtime) before the rewrite. If the index did not match
    that file, it was already stale, so it is rebuilt whole instead of patched.
    """
    index = data_dir / INDEX_NAME
    path = dataset_path(data_dir, dataset)
    with _index_transaction(index, "index update") as con:
        known = con.execute(
            "SELECT size, mtime_ns FROM sources WHERE dataset = ?", [dataset]
        ).fetchall()
        stale = (tuple(known[0]) if known else None) != previous
        if not stale:
            con.register("fresh_arrow", fresh)
            con.execute(
                "INSERT INTO records SELECT ? AS dataset, * FROM fresh_arrow ORDER BY credit_code",
                [dataset],
            ).fetchall()
            [(rows,)] = con.execute(
                "SELECT count(*) FROM records WHERE dataset = ?", [dataset]
            ).fetchall()
            _record_source(con, dataset, path, rows, read_cutoff(path))
    if stale:
        rebuild_index(data_dir, catalog)


def replace_in_index(
    data_dir: Path,
    catalog: Catalog,
    dataset: str,
    fresh: pa.Table,
    previous: tuple[int, int] | None,
) -> None:
    """Put ingested rows into the index when some of them correct records it holds: the old
    row of each record id in `fresh` leaves as the new one arrives, in one transaction, so the
    index never holds two versions of a record. Like append_to_index, a stale index is rebuilt.
    """
    index = data_dir / INDEX_NAME
    path = dataset_path(data_dir, dataset)
    with _index_transaction(index, "index update") as con:
        known = con.execute(
            "SELECT size, mtime_ns FROM sources WHERE dataset = ?", [dataset]
        ).fetchall()
        stale = (tuple(known[0]) if known else None) != previous
        if not stale:
            con.register("fresh_arrow", fresh)
            con.execute(
                "DELETE FROM records WHERE dataset = ? "
                "AND record_id IN (SELECT record_id FROM fresh_arrow)",
                [dataset],
            ).fetchall()
            con.execute(
                "INSERT INTO records SELECT ? AS dataset, * FROM fresh_arrow ORDER BY credit_code",
                [dataset],
            ).fetchall()
            [(rows,)] = con.execute(
                "SELECT count(*) FROM records WHERE dataset = ?", [dataset]
            ).fetchall()
            _record_source(con, dataset, path, rows, read_cutoff(path))
    if stale:
        rebuild_index(data_dir, catalog)
