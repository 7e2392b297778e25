"""Parquet files written whole and made durable (a temporary name, fsync, then the rename), and
the DuckDB connections writers use: capped in memory, spilling to disk beyond it. The writer
(creditcert.data.index) stages datasets and the register through here."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from pathlib import Path

import duckdb

from creditcert import files
from creditcert.data.schema import CUTOFF_KEY, ROW_GROUP_SIZE
from creditcert.data.store import FILE_ID_KEY

# Writers cap DuckDB's memory and spill to disk beyond it (DuckDB's default is 80 % of RAM), so
# that an ingest of 1 M rows stays under 1 GiB in all (benchmarks/README.md: at 512 MB, 1 M rows
# into the 10 M-record city peaked at 1,008-1,025 MiB, at 448 MB 960 MiB). Every writer's large
# query is one DuckDB spills: COPY writes sorted files, sorts read a single table.
WRITER_MEMORY = "448MB"


def scratch_dir(data_dir: Path) -> Path:
    """Writers' scratch space: DuckDB's spill files and the changed rows a writer hands the index.
    Emptied when a writer ends (index.writing) and, after a crash, when the next starts."""
    return data_dir / ".spill"


def bounded(con: duckdb.DuckDBPyConnection, spill_dir: Path) -> duckdb.DuckDBPyConnection:
    """Cap a writing connection's memory; what does not fit spills under spill_dir."""
    spill_dir.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{WRITER_MEMORY}'").fetchall()
    con.execute("SET temp_directory = ?", [str(spill_dir)]).fetchall()
    con.execute("SET preserve_insertion_order = false").fetchall()
    con.execute("SET enable_progress_bar = false").fetchall()
    return con


def stage_parquet(
    con: duckdb.DuckDBPyConnection,
    query: str,
    params: Sequence[object] | Mapping[str, object],
    tmp: Path,
    metadata: dict[str, str],
) -> int:
    """Write a query's result into a complete, fsynced Parquet file; returns its row count.
    DuckDB writes it itself (COPY), so a sort larger than the writer's memory spills to disk
    instead of failing as a sort streamed out through Arrow does."""
    tmp.parent.mkdir(parents=True, exist_ok=True)
    meta = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in metadata.items())
    try:
        [(rows,)] = con.execute(
            f"COPY ({query}) TO {_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd, "
            f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}, KV_METADATA {{{meta}}})",
            params,
        ).fetchall()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    except duckdb.IOException as exc:  # a full disk, say: the OS error it is, for the CLI's line
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OSError(errno.EIO, str(exc).strip().splitlines()[0], str(tmp)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows


def _literal(text: str) -> str:
    """A SQL string literal (COPY's target and options take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def file_metadata(data_cutoff: datetime | None, file_id: str) -> dict[str, str]:
    meta = {FILE_ID_KEY: file_id}
    if data_cutoff is not None:
        meta[CUTOFF_KEY] = data_cutoff.isoformat()
    return meta


def write_parquet(
    con: duckdb.DuckDBPyConnection,
    query: str,
    params: Sequence[object] | Mapping[str, object],
    path: Path,
    *,
    data_cutoff: datetime,
) -> int:
    """Write a Parquet file the index does not read, atomically (temporary file, fsync, rename);
    the register and datasets go through `Writer.stage` instead."""
    tmp = files.temp_path(path)
    rows = stage_parquet(con, query, params, tmp, file_metadata(data_cutoff, secrets.token_hex(16)))
    os.replace(tmp, path)
    files.fsync_dir(path.parent)
    return rows
