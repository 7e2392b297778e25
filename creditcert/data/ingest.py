"""Ingest departments' exports (CSV in UTF-8 or GBK, Excel .xlsx) into a domain's dataset.

Every row is validated; good rows are merged into the domain's Parquet dataset (sorted, written
atomically) and appended to the lookup index; every bad row goes to a quarantine CSV with its row
number, field and reason, together with the row as it was read. Nothing is lost:
read = accepted + updated + quarantined + already present, always. A record's id is stable (the
file's own id column, or a digest of domain, code and decision number), so re-ingesting a file adds
nothing, and a re-sent record with changed content (revoked on review, repaired, amended) is a
correction: it replaces the live version, which moves to the history (creditcert.data.history).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from creditcert.data import history
from creditcert.data.exports import (
    ColumnMap,
    Quarantine,
    RowError,
    check_cells,
    parse_amount,
    parse_date,
    read_rows,
)
from creditcert.data.index import Writer, bounded, writing
from creditcert.data.schema import RECORD_ARROW_SCHEMA, RECORD_COLUMNS, select_list
from creditcert.data.store import dataset_path, subjects_path
from creditcert.errors import DataError, IngestError
from creditcert.model.clock import SHANGHAI
from creditcert.rules import codes
from creditcert.rules.catalog import Catalog, Domain
from creditcert.rules.vocab import KIND_BY_ZH, PENALTY_BY_ZH, TIER_BY_ZH, Kind, PenaltyType, Tier
from creditcert.stages import reached

_SPLIT = re.compile(r"[;；、,，/|]+")
_SERIOUS = {PenaltyType.LICENSE_REVOCATION, PenaltyType.CLOSURE, PenaltyType.DETENTION}
_TRUE = {"是", "true", "1", "y", "yes"}
_FALSE = {"否", "false", "0", "n", "no", ""}


@dataclass(frozen=True, slots=True)
class IngestResult:
    source: Path
    domain: str
    encoding: str
    read: int
    accepted: int
    updated: int  # corrections: records re-sent with changed content, now current
    quarantined: int
    already_present: int
    legacy_codes: int  # accepted rows whose registered code fails a checksum
    quarantine_file: Path | None
    dataset: Path
    history: Path | None  # where the replaced versions went, when there were corrections

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "creditcert.ingest/2",
            "source": str(self.source),
            "domain": self.domain,
            "encoding": self.encoding,
            "read": self.read,
            "accepted": self.accepted,
            "updated": self.updated,
            "quarantined": self.quarantined,
            "already_present": self.already_present,
            "legacy_codes": self.legacy_codes,
            "quarantine_file": str(self.quarantine_file) if self.quarantine_file else None,
            "dataset": str(self.dataset),
            "history": str(self.history) if self.history else None,
        }


# --- validating ------------------------------------------------------------------------------


def _bool(text: str, field: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise RowError(field, f"{text!r} is not 是/否 or true/false")


def _enum(text: str, field: str, by_zh: dict, enum, default=None):
    t = text.strip()
    if not t:
        if default is None:
            raise RowError(field, "missing")
        return default
    if t in by_zh:
        return by_zh[t]
    try:
        return enum(t)
    except ValueError:
        allowed = "、".join(by_zh)
        raise RowError(field, f"unknown value {t!r}; allowed: {allowed}") from None


def derive_tier(
    kind: Kind, simplified: bool, types: list[PenaltyType], fine: Decimal | None
) -> Tier:
    """Decree 36 tiers when the export carries none: see docs/ingest.md."""
    if kind in (Kind.SERIOUS_DISHONESTY, Kind.CRIMINAL):
        return Tier.SERIOUS
    if simplified or (types and set(types) <= {PenaltyType.WARNING, PenaltyType.CRITICISM}):
        return Tier.MINOR
    if _SERIOUS & set(types) or (fine is not None and fine >= 200_000):
        return Tier.SERIOUS
    return Tier.GENERAL


def validate_row(
    values: dict[str, str], domain: Domain, default_kind: Kind, today: date
) -> tuple[dict[str, Any] | None, list[RowError], codes.CodeCheck | None]:
    """A record ready for the dataset, or the list of everything wrong with the row."""
    row = _Row(values, check_cells(values))
    out: dict[str, Any] = {"domain": domain.code}
    check = codes.validate(values.get("credit_code", ""))
    if not check.code:
        row.problem("credit_code", "missing")
    elif not check.acceptable_if_registered:
        row.problem("credit_code", f"{check.code}: {check.describe()}")
    out["credit_code"] = check.code
    for field in ("subject_name", "decision_no", "authority", "source_unit", "facts"):
        out[field] = row.text(field)
    out["legal_basis"] = row.text("legal_basis", required=False)
    out["penalty_content"] = row.text("penalty_content", required=False)
    kind = row.parsed("kind", _enum, values.get("kind", ""), "kind", KIND_BY_ZH, Kind, default_kind)
    out["kind"] = kind
    for flag in ("simplified", "revoked", "disputed"):
        out[flag] = row.parsed(flag, _bool, values.get(flag, ""), flag)
    out.update(_dates(row, today))
    types = _penalty_types(row, kind)
    out["penalty_types"] = [t.value for t in types]
    fine = row.parsed("fine_amount", _fine, values)
    if PenaltyType.FINE in types and fine is None and not row.has("fine_amount"):
        row.problem("fine_amount", "罚款 without an amount")
    out["fine_amount"] = fine
    tier_text = values.get("tier", "")
    if tier_text.strip():
        out["tier"] = row.parsed("tier", _enum, tier_text, "tier", TIER_BY_ZH, Tier)
    elif kind is not None and out["simplified"] is not None:
        out["tier"] = derive_tier(kind, out["simplified"], types, fine)
    rid = values.get("record_id", "").strip()
    if not rid and out["decision_no"] and check.code:
        digest = hashlib.sha256(f"{domain.code}|{check.code}|{out['decision_no']}".encode())
        rid = f"{domain.code}:{digest.hexdigest()[:24]}"
    out["record_id"] = rid
    if row.problems:
        return None, row.problems, check
    return out, [], check


class _Row:
    """One row's cells and the problems found in them so far, so every check can add to them."""

    def __init__(self, values: dict[str, str], problems: list[RowError]):
        self.values, self.problems = values, problems

    def problem(self, field: str, reason: str) -> None:
        self.problems.append(RowError(field, reason))

    def has(self, field: str) -> bool:
        return any(p.field == field for p in self.problems)

    def text(self, field: str, required: bool = True) -> str:
        value = self.values.get(field, "").strip()
        if required and not value:
            self.problem(field, "missing")
        return value

    def parsed(self, field: str, fn, *args):
        """fn(*args), or None with the problem recorded against `field`."""
        try:
            return fn(*args)
        except RowError as exc:
            self.problems.append(exc)
        except (ValueError, InvalidOperation) as exc:
            self.problem(field, str(exc))
        return None


def _dates(row: _Row, today: date) -> dict[str, date | None]:
    decided = row.parsed("decision_date", parse_date, row.values.get("decision_date", ""))
    if decided is None and not row.has("decision_date"):
        row.problem("decision_date", "missing")
    elif decided is not None and not date(1990, 1, 1) <= decided <= today:
        row.problem("decision_date", f"{decided} is in the future or before 1990")
    return {
        "decision_date": decided,
        "publicity_end": row.parsed(
            "publicity_end", parse_date, row.values.get("publicity_end", "")
        ),
        "repair_date": row.parsed("repair_date", parse_date, row.values.get("repair_date", "")),
    }


def _penalty_types(row: _Row, kind: Kind | None) -> list[PenaltyType]:
    types: list[PenaltyType] = []
    for part in _SPLIT.split(row.values.get("penalty_types", "")):
        if part.strip():
            t = row.parsed(
                "penalty_types", _enum, part, "penalty_types", PENALTY_BY_ZH, PenaltyType
            )
            if t is not None and t not in types:
                types.append(t)
    if kind == Kind.PENALTY and not types and not row.has("penalty_types"):
        row.problem("penalty_types", "missing (an administrative penalty needs 处罚类别)")
    return types


def _fine(values: dict[str, str]) -> Decimal | None:
    wan = values.get("fine_wan", "")
    if wan.strip():
        return parse_amount(wan, unit=10_000)
    return parse_amount(values.get("fine_yuan", ""), unit=1)


# --- writing ---------------------------------------------------------------------------------


def ingest_file(
    path: Path,
    *,
    domain_code: str,
    catalog: Catalog,
    data_dir: Path,
    quarantine_dir: Path,
    now: datetime,
    encoding: str | None = None,
    default_kind: Kind = Kind.PENALTY,
    columns: ColumnMap | None = None,
) -> IngestResult:
    """Validate every row of `path` and merge the good ones into the domain's dataset."""
    domain = catalog.domain(domain_code)
    columns = columns or ColumnMap.load()
    today = now.astimezone(SHANGHAI).date()
    register = subjects_path(data_dir)
    if not register.exists():
        raise IngestError(f"no subject register at {register}; load the register before records")
    enc, header, rows = read_rows(path, encoding)
    fields = columns.fields_of(path, header)

    bad = Quarantine(path, enc, domain.code, header, quarantine_dir, now)
    incoming, read, versions = _validated(rows, fields, domain, default_kind, today, bad)

    target = dataset_path(data_dir, domain.dataset)
    with writing(data_dir, catalog, "ingest") as writer:
        con = bounded(duckdb.connect(), data_dir / ".spill")
        con.register("incoming_arrow", incoming)
        con.register("conflicting", pa.table({"conflicting_id": pa.array(versions, pa.string())}))
        try:
            con.execute(
                "CREATE TEMP TABLE incoming AS SELECT i.*, CASE "
                "WHEN c.conflicting_id IS NOT NULL THEN 'conflicting-versions' "
                "WHEN s.credit_code IS NULL THEN 'unregistered' "
                "WHEN e.record_id IS NULL THEN 'new' "
                "WHEN e.credit_code IS DISTINCT FROM i.credit_code "
                "  OR e.decision_no IS DISTINCT FROM i.decision_no THEN 'conflict' "
                f"WHEN {history.same_content('e', 'i')} THEN 'present' "
                "ELSE 'updated' END AS verdict "
                "FROM incoming_arrow i LEFT JOIN conflicting c ON c.conflicting_id = i.record_id "
                "LEFT JOIN (SELECT DISTINCT credit_code FROM read_parquet($register)) s "
                "  USING (credit_code) "
                f"LEFT JOIN ({_existing_sql(target)}) e USING (record_id)",
                {"register": str(register)} | ({"target": str(target)} if target.exists() else {}),
            ).fetchall()
        except duckdb.Error as exc:
            raise DataError(
                f"cannot read {register} or {target} ({exc}); nothing was changed"
            ) from None
        _quarantine_late(con, bad)
        [(accepted, updated, already, legacy)] = con.execute(
            "SELECT count(*) FILTER (verdict = 'new'), count(*) FILTER (verdict = 'updated'), "
            "count(*) FILTER (verdict = 'present'), "
            "count(*) FILTER (verdict IN ('new', 'updated') AND legacy_code) FROM incoming"
        ).fetchall()
        quarantine_file = bad.close()
        kept = None
        if updated:  # the replaced versions are saved before they are replaced
            con.execute(
                "CREATE TEMP TABLE superseded AS SELECT * FROM read_parquet($target) "
                "SEMI JOIN (SELECT record_id FROM incoming WHERE verdict = 'updated') "
                "USING (record_id)",
                {"target": str(target)},
            ).fetchall()
            kept = history.append(
                con,
                "superseded",
                data_dir=data_dir,
                dataset=domain.dataset,
                now=now,
                source=path,
            )
            reached("ingest.history-written")
        if accepted or updated:
            _merge(con, target, now, writer, domain)
        con.close()
    assert read == accepted + updated + len(bad) + already, "every row read is accounted for"
    return IngestResult(
        source=path,
        domain=domain.code,
        encoding=enc,
        read=read,
        accepted=accepted,
        updated=updated,
        quarantined=len(bad),
        already_present=already,
        legacy_codes=legacy,
        quarantine_file=quarantine_file,
        dataset=target,
        history=kept,
    )


def _fingerprint(record: dict[str, Any]) -> int:
    """Which version of a record a row gives, to tell a repeated row from a conflicting one."""
    return hash(tuple(tuple(v) if isinstance(v, list) else v for v in record.values()))


def _existing_sql(target: Path) -> str:
    cols = select_list(RECORD_COLUMNS)
    if target.exists():
        return f"SELECT {cols} FROM read_parquet($target)"
    return f"SELECT {cols} FROM incoming_arrow WHERE false"


def _validated(
    rows: Iterable[list[str]],
    fields: list[str | None],
    domain: Domain,
    default_kind: Kind,
    today: date,
    bad: Quarantine,
) -> tuple[pa.Table, int, dict[str, list[tuple[int, list[str] | None]]]]:
    """The valid rows as a table, how many rows were read, and the record ids given twice with
    different content (all their rows quarantined); every other bad row goes to `bad`."""
    batches: list[pa.RecordBatch] = []
    chunk: list[dict[str, Any]] = []
    first_seen: dict[str, tuple[int, int]] = {}  # record id -> (row, fingerprint of its content)
    versions: dict[str, list[tuple[int, list[str] | None]]] = {}  # ids given twice, differently
    read = 0
    for number, raw in enumerate(rows, start=2):  # row 1 is the header, as a spreadsheet shows
        if not any(cell.strip() for cell in raw):
            continue
        read += 1
        values = {f: raw[i] for i, f in enumerate(fields) if f and i < len(raw)}
        record, problems, check = validate_row(values, domain, default_kind, today)
        if record is not None and record["record_id"] in first_seen:
            rid = record["record_id"]
            first, fingerprint = first_seen[rid]
            if fingerprint != _fingerprint(record):
                versions.setdefault(rid, [(first, None)]).append((number, raw))
                continue
            problems, record = [RowError("record_id", f"duplicate of row {first}")], None
        if record is None:
            bad.append((number, problems, raw))
            continue
        first_seen[record["record_id"]] = (number, _fingerprint(record))
        record["row_no"] = number
        record["legacy_code"] = bool(check.problems)
        chunk.append(record)
        if len(chunk) >= 50_000:
            batches.append(pa.RecordBatch.from_pylist(chunk, schema=_INCOMING))
            chunk = []
    batches.append(pa.RecordBatch.from_pylist(chunk, schema=_INCOMING))
    for rid, given in versions.items():
        rows_text = ", ".join(str(n) for n, _ in given)
        reason = RowError(
            "record_id",
            f"conflicting-versions: rows {rows_text} give different versions of record {rid}; "
            "send only the current one",
        )
        for n, raw in given:
            bad.append((n, [reason], raw))
    return pa.Table.from_batches(batches, schema=_INCOMING), read, versions


def _quarantine_late(con: duckdb.DuckDBPyConnection, bad: Quarantine) -> None:
    """Rows refused only against what the city holds: an unregistered subject, or a record id
    already used by another subject or decision."""
    late = con.execute(
        "SELECT row_no, verdict, credit_code, record_id FROM incoming "
        "WHERE verdict IN ('unregistered', 'conflict')"
    ).fetchall()
    for number, verdict, code, rid in late:
        if verdict == "unregistered":
            check = codes.validate(code)
            also = f" and fails its checksum: {check.describe()}" if check.problems else ""
            reason = RowError("credit_code", f"{code} is not in the subject register{also}")
        else:
            reason = RowError(
                "record_id",
                f"record-id-conflict: {rid} already holds a record of another subject or "
                "decision number; give this record its own id",
            )
        bad.append((number, [reason], None))


_INCOMING = pa.schema(
    [*RECORD_ARROW_SCHEMA, pa.field("row_no", pa.int64()), pa.field("legacy_code", pa.bool_())]
)


def _merge(con, target: Path, now: datetime, writer: Writer, domain: Domain) -> None:
    """Rewrite the dataset with the new and corrected rows (sorted; a corrected record's old row
    leaves as its new one arrives); the writer installs it and publishes the index, patched with
    exactly these rows, when ingest_file's `writing` block ends."""
    cols = select_list(RECORD_COLUMNS)
    fresh = con.sql(
        f"SELECT {cols} FROM incoming WHERE verdict IN ('new', 'updated') "
        "ORDER BY credit_code, record_id"
    ).to_arrow_table()
    con.register("fresh", fresh)
    previous = target.exists()
    old = (
        f"SELECT {cols} FROM read_parquet($old) ANTI JOIN fresh USING (record_id) UNION ALL "
        if previous
        else ""
    )
    writer.stage(
        domain.dataset,
        con,
        f"{old}SELECT * FROM fresh ORDER BY credit_code, record_id",
        {"old": str(target)} if previous else {},
        data_cutoff=now.astimezone(SHANGHAI).replace(microsecond=0),
        changed_rows=fresh,
    )
