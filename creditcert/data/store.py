"""The data store of one city, read side: subject register and domain datasets, plus an index.

Layout of the data directory (docs/data.md):

    subjects.parquet            the subject register, sorted by credit code
    records/<dataset>.parquet   one violation dataset per domain, sorted by credit code
    index.duckdb                derived: the register and all records in DuckDB tables sorted by code

Parquet is the dataset of record (what ingest writes and what is exchanged). The DuckDB index is
derived from it because a point lookup on one sorted DuckDB table takes about 1 ms where the same
lookup over 52 Parquet files, or over 52 DuckDB tables in one UNION ALL, takes 20 ms or more
(benchmarks/README.md). The index remembers the size and
mtime of each file it was built from; a lookup on a dataset that changed since is refused with the
command that fixes it, never answered from stale data. Writing (atomic Parquet files, building and
updating the index) is creditcert.data.index.

All values reach SQL as bound parameters; no SQL text is built from user input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from creditcert.data.schema import RECORD_NAMES
from creditcert.errors import DataError
from creditcert.rules.catalog import Catalog, Domain

INDEX_NAME = "index.duckdb"
SUBJECTS_KEY = "@subjects"  # the register's row in the index's sources table
SUBJECTS_NAME = "subjects.parquet"


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


class Store:
    """Read side of a city's data. Open once, query many times; not shared across processes."""

    def __init__(self, data_dir: Path, catalog: Catalog):
        self.data_dir = data_dir
        self.catalog = catalog
        index = data_dir / INDEX_NAME
        if not index.exists():
            raise DataError(
                f"{data_dir}: no data index ({INDEX_NAME}); load data with `creditcert ingest` or "
                "`creditcert sample generate`, or rebuild it with `creditcert data reindex`"
            )
        try:
            self._con = duckdb.connect(str(index), read_only=True)
        except duckdb.Error as exc:
            raise DataError(f"{index}: cannot open the data index ({exc})") from None
        self._sources = {
            row[0]: row[1:]
            for row in self._con.execute(
                "SELECT dataset, size, mtime_ns, rows, data_cutoff FROM sources"
            ).fetchall()
        }
        self._paths: dict[str, str] = {SUBJECTS_KEY: str(subjects_path(data_dir))}
        self._check_fresh(SUBJECTS_KEY)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_fresh(self, key: str) -> tuple:
        """The index's row for a file, after checking the file is the one it was built from."""
        path = self._paths.get(key)
        if path is None:
            path = self._paths[key] = str(dataset_path(self.data_dir, key))
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise DataError(f"dataset file missing: {path}") from None
        source = self._sources.get(key)
        if source is None:
            raise DataError(f"{path} is not in the data index; run `creditcert data reindex`")
        if source[:2] != (st.st_size, st.st_mtime_ns):
            raise DataError(
                f"{path} changed after the data index was built; run `creditcert data reindex`"
            )
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
        return datetime.fromisoformat(self._sources[domain.dataset][3])

    def dataset_info(self, domain: Domain) -> DatasetInfo:
        _, _, rows, cutoff = self._check_fresh(domain.dataset)
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
