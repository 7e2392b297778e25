"""The subject register: import the market-supervision register export into subjects.parquet.

Reports exist only for registered subjects, so the register is loaded before any record. An import
adds new subjects and updates the name, status and date of known ones (the export is the
authority); bad rows go to quarantine exactly as in record ingest. A legacy code that fails its
checksum is accepted here, with a count: the register is where such codes become legitimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from creditcert.data.exports import (
    ColumnMap,
    Quarantine,
    RowError,
    check_cells,
    parse_date,
    read_rows,
)
from creditcert.data.index import Sync, writing
from creditcert.data.schema import SUBJECT_ARROW_SCHEMA, SUBJECT_COLUMNS, select_list
from creditcert.data.staging import bounded
from creditcert.data.store import SUBJECTS_KEY, subjects_path
from creditcert.errors import DataError
from creditcert.model.clock import SHANGHAI
from creditcert.rules import codes
from creditcert.rules.catalog import Catalog

STATUS_BY_TEXT = {
    "存续": "active",
    "在业": "active",
    "开业": "active",
    "正常": "active",
    "active": "active",
    "注销": "cancelled",
    "cancelled": "cancelled",
    "吊销": "revoked",
    "吊销,未注销": "revoked",
    "吊销，未注销": "revoked",
    "revoked": "revoked",
}


@dataclass(frozen=True, slots=True)
class RegisterImport:
    source: Path
    encoding: str
    read: int
    added: int
    updated: int
    unchanged: int
    quarantined: int
    legacy_codes: int
    quarantine_file: Path | None
    register: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "creditcert.register-import/1",
            "source": str(self.source),
            "encoding": self.encoding,
            "read": self.read,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "legacy_codes": self.legacy_codes,
            "quarantine_file": str(self.quarantine_file) if self.quarantine_file else None,
            "register": str(self.register),
        }


def _subject_row(values: dict[str, str]) -> tuple[dict[str, Any] | None, list[RowError], bool]:
    problems = check_cells(values)
    check = codes.validate(values.get("credit_code", ""))
    if not check.code:
        problems.append(RowError("credit_code", "missing"))
    elif not check.acceptable_if_registered:
        problems.append(RowError("credit_code", f"{check.code}: {check.describe()}"))
    name = values.get("name", "").strip()
    if not name:
        problems.append(RowError("name", "missing"))
    registered_on: date | None = None
    try:
        registered_on = parse_date(values.get("registered_on", ""))
    except ValueError as exc:
        problems.append(RowError("registered_on", str(exc)))
    status_text = "".join(values.get("status", "").split()) or "存续"
    status = STATUS_BY_TEXT.get(status_text)
    if status is None:
        allowed = "、".join(k for k in STATUS_BY_TEXT if not k.isascii())
        problems.append(RowError("status", f"unknown status {status_text!r}; allowed: {allowed}"))
    if problems:
        return None, problems, False
    row = {
        "credit_code": check.code,
        "name": name,
        "entity_type": check.code[:2],
        "admin_division": check.code[2:8],
        "registered_on": registered_on,
        "status": status,
    }
    return row, [], bool(check.problems)


def import_register(
    path: Path,
    *,
    data_dir: Path,
    catalog: Catalog,
    quarantine_dir: Path,
    now: datetime,
    encoding: str | None = None,
    columns: ColumnMap | None = None,
    sync: Sync | None = None,
) -> RegisterImport:
    """Merge a register export into subjects.parquet and publish the index with it (atomically:
    readers see the old register or the new one)."""
    columns = columns or ColumnMap.load(register=True)
    enc, header, rows = read_rows(path, encoding)
    fields = columns.fields_of(path, header)
    good: list[dict[str, Any]] = []
    bad = Quarantine(path, enc, "register", header, quarantine_dir, now)
    seen: dict[str, int] = {}
    read = legacy = 0
    for number, raw in enumerate(rows, start=2):
        if not any(cell.strip() for cell in raw):
            continue
        read += 1
        values = {f: raw[i] for i, f in enumerate(fields) if f and i < len(raw)}
        row, problems, is_legacy = _subject_row(values)
        if row is not None and row["credit_code"] in seen:
            row, problems = (
                None,
                [RowError("credit_code", f"duplicate of row {seen[row['credit_code']]}")],
            )
        if row is None:
            bad.append((number, problems, raw))
            continue
        seen[row["credit_code"]] = number
        good.append(row)
        legacy += is_legacy

    target = subjects_path(data_dir)
    with writing(data_dir, catalog, "register", sync=sync) as writer:
        con = bounded(duckdb.connect(), writer.scratch)
        con.register("incoming", pa.Table.from_pylist(good, schema=SUBJECT_ARROW_SCHEMA))
        cols = select_list(SUBJECT_COLUMNS)
        old = (
            f"SELECT {cols} FROM read_parquet($old)"
            if target.exists()
            else (f"SELECT {cols} FROM incoming WHERE false")
        )
        params = {"old": str(target)} if target.exists() else {}
        try:
            changed = con.sql(
                f"SELECT i.*, o.credit_code IS NULL AS added "
                f"FROM incoming i LEFT JOIN ({old}) o USING (credit_code) "
                "WHERE o.credit_code IS NULL OR o.name IS DISTINCT FROM i.name "
                "OR o.status IS DISTINCT FROM i.status "
                "OR o.registered_on IS DISTINCT FROM i.registered_on",
                params=params,
            ).to_arrow_table()
            added = sum(changed.column("added").to_pylist())
            updated = changed.num_rows - added
            if added or updated:
                writer.stage(
                    SUBJECTS_KEY,
                    con,
                    f"SELECT {cols} FROM incoming UNION ALL SELECT * FROM ({old}) "
                    "WHERE credit_code NOT IN (SELECT credit_code FROM incoming) "
                    "ORDER BY credit_code",
                    params,
                    data_cutoff=now.astimezone(SHANGHAI).replace(microsecond=0),
                    changed_rows=changed.drop_columns(["added"]),
                )
        except duckdb.Error as exc:
            raise DataError(f"{target}: cannot read the subject register ({exc})") from None
        finally:
            con.close()
        quarantine_file = bad.close()
    return RegisterImport(
        source=path,
        encoding=enc,
        read=read,
        added=added,
        updated=updated,
        unchanged=len(good) - added - updated,
        quarantined=len(bad),
        legacy_codes=legacy,
        quarantine_file=quarantine_file,
        register=target,
    )
