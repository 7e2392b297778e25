"""The audit trail of corrections: every version of a record that a correction replaced.

A department re-sends a record under the same decision number when it is revoked on review,
repaired or amended. Ingest keeps the dataset current and appends the replaced version to
`history/<dataset>.parquet` with the time it was replaced, so the centre can answer "what did a
report issued at time T rest on" (docs/ingest.md, "Corrections").

Ingest writes the history before the dataset. A crash between the two leaves a history entry
whose version is still the live one; such a *pending* entry is never shown, and the next write of
the history drops it (the re-run then records the replacement with its own time). After every
completed ingest the latest history entry of a record differs from the live version, because a
version is only ever replaced by a different one, so "latest entry equals live" means "not yet
applied". Readers read the live dataset first and the history second, which with that order of
writes always gives the old state or the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from creditcert.data.schema import RECORD_COLUMNS, select_list
from creditcert.data.staging import write_parquet
from creditcert.data.store import dataset_path, subjects_path
from creditcert.errors import DataError, SubjectError
from creditcert.files import remove_debris
from creditcert.model.clock import SHANGHAI
from creditcert.rules import codes
from creditcert.rules.catalog import Catalog, Domain

HISTORY_DIR = "history"


def history_path(data_dir: Path, dataset: str) -> Path:
    return data_dir / HISTORY_DIR / f"{dataset}.parquet"


def same_content(a: str, b: str) -> str:
    """SQL: the two relations' rows hold the same version (every record column, NULLs equal)."""
    return " AND ".join(f'{a}."{n}" IS NOT DISTINCT FROM {b}."{n}"' for n, _ in RECORD_COLUMNS)


def _applied(history: str, live: str, where: str = "true") -> str:
    """SQL: the history rows that were applied, i.e. without a pending entry (module doc);
    `where` narrows the history first (a record's entries all belong to one subject)."""
    return (
        f"WITH h AS (SELECT * FROM {history} WHERE {where}), "
        "latest AS (SELECT * FROM h QUALIFY row_number() OVER "
        "  (PARTITION BY domain, record_id ORDER BY superseded_at DESC) = 1), "
        f"pending AS (SELECT l.domain, l.record_id, l.superseded_at FROM latest l JOIN {live} v "
        f"  ON l.record_id = v.record_id AND {same_content('l', 'v')}) "
        "SELECT h.* FROM h ANTI JOIN pending p ON h.domain = p.domain "
        "  AND h.record_id = p.record_id AND h.superseded_at = p.superseded_at"
    )


def append(
    con: duckdb.DuckDBPyConnection,
    superseded: str,
    *,
    data_dir: Path,
    dataset: str,
    now: datetime,
    source: Path,
) -> Path:
    """Add the versions in table `superseded` to the dataset's history, replaced at `now` by
    `source`; called before the dataset itself is rewritten. Returns the history file."""
    path = history_path(data_dir, dataset)
    live = dataset_path(data_dir, dataset)
    remove_debris(path.parent)  # a crashed writer's temporary files (we hold the write lock)
    new = (
        f"SELECT {select_list(RECORD_COLUMNS)}, CAST($now AS TIMESTAMPTZ) AS superseded_at, "
        f"CAST($source AS VARCHAR) AS superseded_by FROM {superseded}"
    )
    params: dict[str, object] = {"now": now, "source": str(source)}
    if path.exists():
        new = f"{_applied('read_parquet($history)', 'read_parquet($live)')} UNION ALL {new}"
        params |= {"history": str(path), "live": str(live)}
    try:
        write_parquet(
            con,
            f"SELECT * FROM ({new}) ORDER BY credit_code, record_id, superseded_at",
            params,
            path,
            data_cutoff=now.astimezone(SHANGHAI).replace(microsecond=0),
        )
    except duckdb.Error as exc:
        raise DataError(f"cannot update the history {path} ({exc}); nothing was changed") from None
    return path


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a record: the live one (`superseded_at` None) or one a correction replaced
    at `superseded_at` with the file `superseded_by`."""

    domain: str
    record: dict[str, Any]
    superseded_at: datetime | None
    superseded_by: str | None

    @property
    def current(self) -> bool:
        return self.superseded_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "record_id": self.record["record_id"],
            "current": self.current,
            "superseded_at": self.superseded_at.isoformat() if self.superseded_at else None,
            "superseded_by": self.superseded_by,
            "record": {k: _plain(v) for k, v in self.record.items()},
        }


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def versions(
    data_dir: Path,
    catalog: Catalog,
    credit_code: str,
    *,
    domains: Sequence[Domain] | None = None,
    at: datetime | None = None,
) -> list[Version]:
    """Every version of a subject's records, oldest first per record; with `at`, only the
    version each record had at that time (a record first ingested after `at` still shows: the
    dataset does not say when a record first arrived, the signed report does)."""
    check = codes.validate(credit_code)
    if not check.acceptable_if_registered:
        raise SubjectError(
            f"{check.code or credit_code!r} is not a valid credit code: {check.describe()}"
        )
    credit_code = check.code
    chosen = domains if domains is not None else catalog.domains
    lives = [p for d in chosen if (p := dataset_path(data_dir, d.dataset)).exists()]
    pasts = [p for d in chosen if (p := history_path(data_dir, d.dataset)).exists()]
    cols = select_list(RECORD_COLUMNS)
    con = duckdb.connect()
    try:  # the live datasets first, then the history: see the module doc
        registered = con.sql(
            "SELECT count(*) FROM read_parquet($s) WHERE credit_code = $code",
            params={"s": str(subjects_path(data_dir)), "code": credit_code},
        ).fetchall()[0][0]
        if not registered:
            raise SubjectError(f"{credit_code} is not in the subject register")
        if not lives:
            return []
        live = con.sql(
            f"SELECT {cols} FROM read_parquet($p) WHERE credit_code = $code",
            params={"p": [str(p) for p in lives], "code": credit_code},
        ).to_arrow_table()
        past = pa.table({})
        if pasts:
            con.register("live_rows", live)
            past = con.sql(
                _applied("read_parquet($h)", "live_rows", "credit_code = $code"),
                params={"h": [str(p) for p in pasts], "code": credit_code},
            ).to_arrow_table()
    except duckdb.Error as exc:
        where = ", ".join(str(p) for p in [subjects_path(data_dir), *lives, *pasts])
        raise DataError(f"cannot read the datasets or their history ({exc}): {where}") from None
    finally:
        con.close()
    chains: dict[tuple[str, str], list[Version]] = {}
    for row in past.to_pylist():
        when, by = row.pop("superseded_at").astimezone(SHANGHAI), row.pop("superseded_by")
        chains.setdefault((row["domain"], row["record_id"]), []).append(
            Version(row["domain"], row, when, by)
        )
    for chain in chains.values():
        chain.sort(key=lambda v: v.superseded_at)
    for row in live.to_pylist():
        chains.setdefault((row["domain"], row["record_id"]), []).append(
            Version(row["domain"], row, None, None)
        )
    out: list[Version] = []
    for key in sorted(chains):
        chain = chains[key]
        if at is not None:
            chain = [v for v in chain if v.superseded_at is None or v.superseded_at > at][:1]
        out.extend(chain)
    return out
