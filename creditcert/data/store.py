"""The data store of one city, read side: subject register and domain datasets, plus an index.

Layout of the data directory (docs/data.md):

    subjects.parquet            the subject register, sorted by credit code
    records/<dataset>.parquet   one violation dataset per domain, sorted by credit code
    index/CURRENT               the number of the published index generation
    index/<generation>.duckdb   derived: the register and all records in DuckDB tables
    index/pending.json          file versions written but not yet in a published generation
    .ingest.lock                serialises writers (never taken by a reader)

Parquet is the dataset of record (what ingest writes and what is exchanged). The DuckDB index is
derived from it because a point lookup on one sorted DuckDB table takes about 1 ms where the same
lookup over 52 Parquet files, or over 52 DuckDB tables in one UNION ALL, takes 20 ms or more
(benchmarks/README.md).

A writer never changes a published generation: it builds the next one beside it and switches
`CURRENT` (creditcert.data.writer). A `Store` opens the generation `CURRENT` names, read-only, and
answers from it until closed, whatever writers do meanwhile: a consistent snapshot. Every Parquet
file carries a random id in its key-value metadata (FILE_ID_KEY) and the index records the id of
each file it was built from, so a file replaced behind the index's back is refused with the
command that fixes it, never answered from stale data; a copied, restored or synced home keeps
its ids and needs no reindex.

All values reach SQL as bound parameters; no SQL text is built from user input.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from creditcert.data.schema import RECORD_NAMES
from creditcert.errors import DataError
from creditcert.rules.catalog import Catalog, Domain

SUBJECTS_KEY = "@subjects"  # the register's row in the index's sources table
SUBJECTS_NAME = "subjects.parquet"
INDEX_DIR = "index"
CURRENT_NAME = "CURRENT"
JOURNAL_NAME = "pending.json"
LOCK_NAME = ".ingest.lock"
LEGACY_INDEX = "index.duckdb"  # the single-file index of creditcert before generations
FILE_ID_KEY = "creditcert.file_id"  # Parquet key-value metadata: the identity of this version
_FILE_ID = re.compile(rb"[0-9a-f]{32}")
_OPEN_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Subject:
    credit_code: str
    name: str
    entity_type: str
    admin_division: str
    registered_on: date
    status: str


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    dataset: str
    path: Path
    rows: int
    data_cutoff: datetime


def subjects_path(data_dir: Path) -> Path:
    return data_dir / SUBJECTS_NAME


def dataset_path(data_dir: Path, dataset: str) -> Path:
    return data_dir / "records" / f"{dataset}.parquet"


def source_path(data_dir: Path, key: str) -> Path:
    """The Parquet file behind one row of the index's sources table."""
    return subjects_path(data_dir) if key == SUBJECTS_KEY else dataset_path(data_dir, key)


def index_dir(data_dir: Path) -> Path:
    return data_dir / INDEX_DIR


def generation_path(data_dir: Path, generation: int) -> Path:
    return index_dir(data_dir) / f"{generation}.duckdb"


def current_generation(data_dir: Path) -> int | None:
    """The published generation, or None when no index was ever published here."""
    try:
        text = (index_dir(data_dir) / CURRENT_NAME).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{index_dir(data_dir) / CURRENT_NAME}: unreadable ({exc})") from None
    if not text.isdigit():
        raise DataError(
            f"{index_dir(data_dir) / CURRENT_NAME}: not a generation number; "
            "run `creditcert data reindex`"
        )
    return int(text)


def pending_ids(data_dir: Path) -> dict[str, set[str]]:
    """File ids written by a writer (running, or interrupted) that no published generation has
    yet taken in: a file carrying one of them is newer than the index, not foreign to it."""
    try:
        raw = json.loads((index_dir(data_dir) / JOURNAL_NAME).read_bytes())
        out: dict[str, set[str]] = {}
        for entry in raw["files"]:
            out.setdefault(entry["key"], set()).add(entry["id"])
        return out
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # unreadable: nothing counts as pending, so a mismatch is refused


def read_file_id(path: Path) -> str | None:
    """The id in a Parquet file's key-value metadata, or None when it carries none.

    Reads only the footer's bytes and finds the key in its Thrift encoding (about 20 µs a file,
    where a full metadata parse takes about 0.7 ms); anything unexpected falls back to pyarrow.
    """
    key = FILE_ID_KEY.encode()
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size < 12:
                raise DataError(f"{path}: not a readable Parquet file (too short)")
            fh.seek(size - 8)
            tail = fh.read(8)
            (length,) = struct.unpack("<I", tail[:4])
            if tail[4:] != b"PAR1" or length > size - 12:
                raise DataError(f"{path}: not a readable Parquet file (no footer)")
            fh.seek(size - 8 - length)
            footer = fh.read(length)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    at = footer.rfind(key)
    if at > 0 and footer[at - 1] == len(key):
        value_at = at + len(key)
        # compact Thrift: field 2 (value), type binary = 0x18, then a one-byte length of 32
        if footer[value_at : value_at + 2] == b"\x18\x20":
            value = footer[value_at + 2 : value_at + 34]
            if _FILE_ID.fullmatch(value):
                return value.decode()
    if key not in footer:
        return None
    try:  # an unusual encoding of the key: let pyarrow parse the footer
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    raw = meta.get(key)
    return raw.decode() if raw is not None and _FILE_ID.fullmatch(raw) else None


def _no_index(data_dir: Path) -> DataError:
    if (data_dir / LEGACY_INDEX).exists():
        return DataError(
            f"{data_dir / LEGACY_INDEX} is the index of an older creditcert; "
            "rebuild it once with `creditcert data reindex`"
        )
    return DataError(
        f"{data_dir}: no data index ({INDEX_DIR}/{CURRENT_NAME}); load data with "
        "`creditcert ingest` or `creditcert sample generate`, or rebuild it with "
        "`creditcert data reindex`"
    )


class Store:
    """Read side of a city's data. Open once, query many times; not shared across processes.

    Answers come from the index generation published when the store was opened, even while a
    writer publishes a newer one (open a new Store to see it): one store never mixes two states.
    """

    def __init__(self, data_dir: Path, catalog: Catalog):
        self.data_dir = data_dir
        self.catalog = catalog
        self.generation, self._con = self._open()
        self._sources: dict[str, tuple[str, int, str | None]] = {
            row[0]: tuple(row[1:])
            for row in self._con.execute(
                "SELECT dataset, file_id, rows, data_cutoff FROM sources"
            ).fetchall()
        }
        self._checked: dict[str, tuple[str, int, str | None]] = {}
        self._check_fresh(SUBJECTS_KEY)

    def _open(self) -> tuple[int, duckdb.DuckDBPyConnection]:
        # A writer deletes the generation it replaced once the next is published; a reader that
        # read CURRENT just before that finds the file gone and reads CURRENT again.
        for _ in range(_OPEN_ATTEMPTS):
            generation = current_generation(self.data_dir)
            if generation is None:
                raise _no_index(self.data_dir)
            path = generation_path(self.data_dir, generation)
            try:
                return generation, duckdb.connect(str(path), read_only=True)
            except duckdb.Error as exc:
                if current_generation(self.data_dir) != generation:
                    continue
                raise DataError(
                    f"{path}: cannot open the data index ({exc}); run `creditcert data reindex`"
                ) from None
        raise DataError(
            f"{self.data_dir}: the data index changed {_OPEN_ATTEMPTS} times while opening"
        )

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_fresh(self, key: str) -> tuple[str, int, str | None]:
        """The index's row for a file, after checking that the file on disk is the version it was
        built from, or a newer one a writer has written since (the snapshot is then the previous
        consistent state). Checked once per store."""
        if key in self._checked:
            return self._checked[key]
        path = source_path(self.data_dir, key)
        try:
            found = read_file_id(path)
        except FileNotFoundError:
            raise DataError(f"dataset file missing: {path}") from None
        source = self._sources.get(key)
        if source is not None and found is not None and found == source[0]:
            self._checked[key] = source
            return source
        newer = found is not None and (
            found in pending_ids(self.data_dir).get(key, ())
            or current_generation(self.data_dir) != self.generation
        )
        if source is None:
            if newer:
                raise DataError(
                    f"{path} is not in the data index yet: its writer is still running, or was "
                    "interrupted (run it again, or any other writer)"
                )
            raise DataError(f"{path} is not in the data index; run `creditcert data reindex`")
        if not newer:
            raise DataError(
                f"{path} changed after the data index was built; run `creditcert data reindex`"
            )
        self._checked[key] = source
        return source

    def subject(self, credit_code: str) -> Subject | None:
        rows = self._con.execute(
            "SELECT * FROM subjects WHERE credit_code = ?", [credit_code]
        ).fetchall()
        return Subject(*rows[0]) if rows else None

    def records(self, credit_code: str, domains: Sequence[Domain]) -> dict[str, list[dict]]:
        """Every record of one subject in the given domains, as dicts keyed by column name."""
        for d in domains:
            self._check_fresh(d.dataset)
        by_dataset = {d.dataset: d.code for d in domains}
        out: dict[str, list[dict]] = {d.code: [] for d in domains}
        rows = self._con.execute(
            "SELECT * FROM records WHERE credit_code = $code AND list_contains($datasets, dataset)",
            {"code": credit_code, "datasets": list(by_dataset)},
        ).fetchall()
        for dataset, *row in rows:
            out[by_dataset[dataset]].append(dict(zip(RECORD_NAMES, row, strict=True)))
        return out

    def data_cutoff(self, domain: Domain) -> datetime:
        """The cut-off of a domain's data as indexed (records() has just checked it is current)."""
        cutoff = self._check_fresh(domain.dataset)[2]
        assert cutoff is not None
        return datetime.fromisoformat(cutoff)

    def dataset_info(self, domain: Domain) -> DatasetInfo:
        _, rows, cutoff = self._check_fresh(domain.dataset)
        assert cutoff is not None
        path = dataset_path(self.data_dir, domain.dataset)
        return DatasetInfo(domain.dataset, path, rows, datetime.fromisoformat(cutoff))

    def subject_codes(self, *, with_records: bool | None, limit: int | None) -> list[str]:
        """Registered codes, all or only those with (or without) any record; sorted."""
        sql = "SELECT credit_code FROM subjects"
        if with_records is not None:
            op = "IN" if with_records else "NOT IN"
            sql += f" WHERE credit_code {op} (SELECT credit_code FROM records)"
        sql += " ORDER BY credit_code LIMIT ?"
        return [
            r[0] for r in self._con.execute(sql, [limit if limit is not None else 2**62]).fetchall()
        ]
