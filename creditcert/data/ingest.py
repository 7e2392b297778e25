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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from creditcert.data import batches, history, plain_rows
from creditcert.data.exports import (
    ColumnMap,
    Quarantine,
    RowError,
    check_cells,
    parse_amount,
    parse_date,
    read_rows,
)
from creditcert.data.index import Sync, Writer, writing
from creditcert.data.schema import RECORD_ARROW_SCHEMA, RECORD_COLUMNS, select_list
from creditcert.data.staging import bounded, stage_parquet
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
    sync: Sync | None = None,
) -> IngestResult:
    """Validate every row of `path` and merge the good ones into the domain's dataset (with
    `sync`, in the working copy of an object store, published there too)."""
    domain = catalog.domain(domain_code)
    columns = columns or ColumnMap.load()
    register = subjects_path(data_dir)
    if sync is None:  # else the register may only arrive with the pull
        _need(register)
    enc, header, rows = read_rows(path, encoding)
    rows.close()  # read again, in batches (creditcert.data.batches)
    fields = columns.fields_of(path, header)
    target = dataset_path(data_dir, domain.dataset)
    rules = _Rules(fields, domain, default_kind, now.astimezone(SHANGHAI).date())
    with writing(data_dir, catalog, "ingest", sync=sync) as writer:
        _need(register)
        con = bounded(duckdb.connect(), writer.scratch)
        _load_known(con, register, target)
        attempts = batches.sources(path, enc, header)
        source = next(attempts)
        while True:
            bad = Quarantine(
                path, enc, domain.code, header, quarantine_dir, now, partial(_rows_at, source)
            )
            try:
                read = _validated(con, source(), rules, bad)
                break
            except batches.Declined as declined:
                bad.discard()
                source = attempts.send(declined)
        attempts.close()
        _drop_repeats(con, bad)
        _judge(con, register, target)
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


def _need(register: Path) -> None:
    if not register.exists():
        raise IngestError(f"no subject register at {register}; load the register before records")


@dataclass(frozen=True, slots=True)
class _Rules:
    """What validating a row of this file needs."""

    fields: list[str | None]
    domain: Domain
    default_kind: Kind
    today: date

    def params(self) -> dict[str, Any]:
        return {
            "domain": self.domain.code,
            "default_kind": self.default_kind.value,
            "today": self.today,
        }


def _load_known(con: duckdb.DuckDBPyConnection, register: Path, target: Path) -> None:
    """The register's codes and the dataset's records, which rows are checked against."""
    try:
        con.execute(
            "CREATE TEMP TABLE registered AS SELECT DISTINCT credit_code FROM read_parquet($r)",
            {"r": str(register)},
        ).fetchall()
        existing, params = _records(target)
        con.execute(
            f"CREATE TEMP TABLE existing AS SELECT record_id FROM ({existing})", params
        ).fetchall()
    except duckdb.Error as exc:
        raise _unreadable(register, target, exc) from None
    con.execute(
        f"CREATE TEMP TABLE incoming_all ({', '.join(f'{n} {t}' for n, t in _INCOMING_COLUMNS)}, plain BOOLEAN)"
    ).fetchall()


def _unreadable(register: Path, target: Path, exc: duckdb.Error) -> DataError:
    return DataError(f"cannot read {register} or {target} ({exc}); nothing was changed")


def _records(target: Path) -> tuple[str, dict[str, str]]:
    """SQL (and its parameters) of the dataset's records; none when there is no dataset yet."""
    if target.exists():
        return f"SELECT {select_list(RECORD_COLUMNS)} FROM read_parquet($target)", {
            "target": str(target)
        }
    return f"SELECT {select_list(RECORD_COLUMNS)} FROM (SELECT NULL) WHERE false", {}


def _judge(con: duckdb.DuckDBPyConnection, register: Path, target: Path) -> None:
    """Each row's verdict against what the city holds (table verdicts, view incoming: the rows
    with their verdict). Only the dataset's records whose id the file gives are read whole."""
    existing, params = _records(target)
    try:
        con.execute(
            "CREATE TEMP TABLE verdicts AS "
            f"WITH e AS (SELECT * FROM ({existing}) "
            "  WHERE record_id IN (SELECT record_id FROM incoming_all)) "
            "SELECT i.row_no, CASE "
            "WHEN i.credit_code NOT IN (SELECT credit_code FROM registered) THEN 'unregistered' "
            "WHEN e.record_id IS NULL THEN 'new' "
            "WHEN e.credit_code IS DISTINCT FROM i.credit_code "
            "  OR e.decision_no IS DISTINCT FROM i.decision_no THEN 'conflict' "
            f"WHEN {history.same_content('e', 'i')} THEN 'present' "
            "ELSE 'updated' END AS verdict "
            "FROM incoming_all i LEFT JOIN e USING (record_id)",
            params,
        ).fetchall()
    except duckdb.Error as exc:
        raise _unreadable(register, target, exc) from None
    con.execute(
        "CREATE TEMP VIEW incoming AS "
        "SELECT i.*, v.verdict FROM incoming_all i JOIN verdicts v USING (row_no)"
    ).fetchall()


def _validated(
    con: duckdb.DuckDBPyConnection, chunks: Iterable[batches.Chunk], rules: _Rules, bad: Quarantine
) -> int:
    """Every row of `chunks` checked: the good ones into incoming_all, the bad ones into `bad`;
    returns how many rows were read. Plain rows are checked in SQL (creditcert.data.plain_rows),
    the others by validate_row. Rows that may be refused later are held in `bad`."""
    con.execute("DELETE FROM incoming_all").fetchall()
    sql, params = plain_rows.query(rules.fields), rules.params()
    names = ", ".join(n for n, _ in _INCOMING_COLUMNS)
    read = 0
    for chunk in chunks:
        span = {"lo": chunk.first, "hi": chunk.first + chunk.cells.num_rows - 1}
        con.register("chunk", plain_rows.prepare(chunk, rules.fields))
        [(inserted,)] = con.execute(f"INSERT INTO incoming_all BY NAME {sql}", params).fetchall()
        con.unregister("chunk")
        read += inserted
        others = [n for (n,) in con.execute(_NOT_PLAIN, span).fetchall()]
        if others:
            con.execute(
                "DELETE FROM incoming_all WHERE row_no BETWEEN $lo AND $hi AND NOT plain", span
            ).fetchall()
            good = _checked_in_python(others, chunk.raw(others), rules, bad)
            con.register("good", pa.Table.from_pylist(good, schema=_INCOMING))
            con.execute(f"INSERT INTO incoming_all SELECT {names}, true FROM good").fetchall()
            con.unregister("good")
        held = [n for (n,) in con.execute(_MAYBE_LATE, span).fetchall()]
        for number, raw in zip(held, chunk.raw(held), strict=True):
            bad.hold(number, raw)
    return read


def _checked_in_python(
    numbers: list[int], raws: list[list[str]], rules: _Rules, bad: Quarantine
) -> list[dict[str, Any]]:
    """validate_row for the rows SQL left: their records; the refused ones go to `bad`."""
    good = []
    for number, raw in zip(numbers, raws, strict=True):
        values = {f: raw[i] for i, f in enumerate(rules.fields) if f and i < len(raw)}
        record, problems, check = validate_row(
            values, rules.domain, rules.default_kind, rules.today
        )
        if record is None:
            bad.append((number, problems, raw))
            continue
        record["row_no"] = number
        record["legacy_code"] = bool(check.problems)
        good.append(record)
    return good


_NOT_PLAIN = (
    "SELECT row_no FROM incoming_all WHERE row_no BETWEEN $lo AND $hi AND NOT plain ORDER BY row_no"
)
# The rows of a chunk that a later check may refuse: unregistered, an id the dataset holds, an id
# given by another row of the file (its first row, if in an earlier chunk, is read again).
# Each lookup is a semi join on the chunk's own ids, so that the tables of the whole file and the
# dataset are scanned, not hashed, once a chunk.
_MAYBE_LATE = (
    "WITH c AS (SELECT row_no, credit_code, record_id FROM incoming_all "
    "  WHERE row_no BETWEEN $lo AND $hi) "
    "SELECT row_no FROM c WHERE credit_code NOT IN (SELECT credit_code FROM registered) "
    "OR record_id IN (SELECT record_id FROM existing SEMI JOIN c USING (record_id)) "
    "OR record_id IN (SELECT record_id FROM incoming_all SEMI JOIN c USING (record_id) "
    "  GROUP BY record_id HAVING count(*) > 1) "
    "ORDER BY row_no"
)


def _drop_repeats(con: duckdb.DuckDBPyConnection, bad: Quarantine) -> None:
    """Record ids the file gives twice: the same content again is a duplicate of its first row;
    different content makes every version's row refused (the file does not say which is
    current). Only the first row of a plain repeat stays in incoming_all."""
    repeats = con.execute(
        "WITH f AS (SELECT record_id, min(row_no) AS first FROM incoming_all GROUP BY record_id "
        "  HAVING count(*) > 1), "
        f"d AS (SELECT i.row_no, i.record_id, f.first, {history.same_content('i', 'x')} AS same "
        "  FROM incoming_all i JOIN f USING (record_id) JOIN incoming_all x ON x.row_no = f.first) "
        "SELECT row_no, record_id, first, same, bool_or(NOT same) OVER (PARTITION BY record_id) "
        "FROM d ORDER BY row_no"
    ).fetchall()
    versions: dict[str, list[int]] = {}
    for number, rid, first, same, conflicting in repeats:
        if conflicting and (number == first or not same):
            versions.setdefault(rid, []).append(number)
        elif number != first:
            bad.append((number, [RowError("record_id", f"duplicate of row {first}")], None))
    for rid, given in versions.items():
        rows_text = ", ".join(map(str, given))
        reason = RowError(
            "record_id",
            f"conflicting-versions: rows {rows_text} give different versions of record {rid}; "
            "send only the current one",
        )
        for number in given:
            bad.append((number, [reason], None))
    dropped = [n for n, _, first, _, conflicting in repeats if conflicting or n != first]
    if dropped:
        con.register("dropped", pa.table({"row_no": pa.array(dropped, pa.int64())}))
        con.execute(
            "DELETE FROM incoming_all WHERE row_no IN (SELECT row_no FROM dropped)"
        ).fetchall()
        con.unregister("dropped")


def _rows_at(
    source: Callable[[], Iterator[batches.Chunk]], numbers: list[int]
) -> Iterator[tuple[int, list[str]]]:
    """Rows of the file by number (ascending), read again the way it was read."""
    i = 0
    for chunk in source():
        if i == len(numbers):
            return
        end = chunk.first + chunk.cells.num_rows
        here = [n for n in numbers[i:] if n < end]
        yield from zip(here, chunk.raw(here), strict=True)
        i += len(here)


def _quarantine_late(con: duckdb.DuckDBPyConnection, bad: Quarantine) -> None:
    """Rows refused only against what the city holds: an unregistered subject, or a record id
    already used by another subject or decision."""
    late = con.execute(
        "SELECT row_no, verdict, credit_code, record_id FROM incoming "
        "WHERE verdict IN ('unregistered', 'conflict') ORDER BY row_no"
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
_INCOMING_COLUMNS = (*RECORD_COLUMNS, ("row_no", "BIGINT"), ("legacy_code", "BOOLEAN"))


def _merge(con, target: Path, now: datetime, writer: Writer, domain: Domain) -> None:
    """Rewrite the dataset with the new and corrected rows (sorted; a corrected record's old row
    leaves as its new one arrives); the writer installs it and publishes the index when
    ingest_file's `writing` block ends. Everything stays in DuckDB, which spills what does not
    fit in its memory (one table sorted: a sort over a UNION of the old and new rows ran out of
    memory at DuckDB's cap where this does not)."""
    cols = select_list(RECORD_COLUMNS)
    con.execute(
        f"CREATE TEMP TABLE merged AS SELECT {cols} FROM incoming "
        "WHERE verdict IN ('new', 'updated')"
    ).fetchall()
    for drop in ("VIEW incoming", "TABLE verdicts", "TABLE incoming_all", "TABLE existing"):
        con.execute(f"DROP {drop}").fetchall()  # their memory is the sort's
    # The index patches exactly these rows (or rebuilds, past COMPACT_SHARE of its records):
    # written to a file DuckDB reads, so that a million of them need no memory.
    changed = writer.scratch / f"changed-{domain.dataset}.parquet"
    stage_parquet(con, "SELECT * FROM merged", {}, changed, {})
    if target.exists():
        con.execute(
            f"INSERT INTO merged SELECT {cols} FROM read_parquet($old) "
            "ANTI JOIN (SELECT record_id FROM merged) USING (record_id)",
            {"old": str(target)},
        ).fetchall()
    writer.stage(
        domain.dataset,
        con,
        "SELECT * FROM merged ORDER BY credit_code, record_id",
        {},
        data_cutoff=now.astimezone(SHANGHAI).replace(microsecond=0),
        changed_rows=changed,
    )
