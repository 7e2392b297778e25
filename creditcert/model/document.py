"""The report document: the single source of truth of a special credit report (docs/report.md).

Everything a PDF shows is rendered from this value, and its deterministic CBOR encoding is what
gets signed. It holds only plain values (strings, ints, bools, dates) and imports nothing of
creditcert's, so a verifier can rebuild it from the signed bytes alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import cbor2

FORMAT = "creditcert.report/1"


@dataclass(frozen=True, slots=True)
class Period:
    """A closed interval of days. Whoever takes one from a user checks start <= end."""

    start: date
    end: date

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """One counted record as the report states it, and as the lookup produces it."""

    record_id: str
    kind: str
    tier: str
    simplified: bool
    decision_no: str
    authority: str
    source_unit: str
    decision_date: date
    penalty_types: tuple[str, ...]
    penalty_content: str
    fine_amount: str | None  # yuan, decimal string: no float ever enters the document
    facts: str
    legal_basis: str
    publicity_end: date | None
    repaired: bool
    repair_date: date | None
    disputed: bool


@dataclass(frozen=True, slots=True)
class DomainSection:
    code: str
    zh: str
    en: str
    department: str
    period: Period
    clipped_by_window: bool
    data_cutoff: datetime
    records: tuple[RecordEntry, ...]
    left_out: tuple[tuple[str, int], ...]  # (reason code, count), in rule order

    @property
    def clean(self) -> bool:
        return not self.records


@dataclass(frozen=True, slots=True)
class ReportDocument:
    number: str
    issuer_code: str
    issuer_name: str
    issuer_name_en: str
    key_id: str  # hex of the signing certificate's 8-byte kid
    subject_code: str
    subject_name: str
    entity_type: str
    purpose: str | None
    purpose_zh: str | None
    purpose_en: str | None
    domains_requested: tuple[str, ...]
    requested: Period
    period: Period
    clipped_to_complete_from: bool
    complete_from: date
    data_cutoff: datetime
    issued_at: datetime  # Beijing time
    valid_until: datetime
    catalog_id: str
    catalog_version: str
    catalog_digest: str
    repair_policy: str
    code_warnings: tuple[str, ...]
    domains: tuple[DomainSection, ...]
    format: str = FORMAT
    # Added in place within format /1: present only when true, so a document issued before the
    # field existed keeps its exact bytes (and digest) when rebuilt and re-encoded.
    clipped_to_data_cutoff: bool = False

    @property
    def records_count(self) -> int:
        return sum(len(d.records) for d in self.domains)

    @property
    def clean_count(self) -> int:
        return sum(1 for d in self.domains if d.clean)

    def to_data(self) -> dict[str, Any]:
        """Plain data (str, int, bool, None, lists, maps): the content of CBOR and JSON alike."""
        data = plain(self)
        if not self.clipped_to_data_cutoff:
            del data["clipped_to_data_cutoff"]
        return data

    def to_cbor(self) -> bytes:
        """RFC 8949 core deterministic encoding: the same document gives the same bytes."""
        return cbor2.dumps(self.to_data(), canonical=True)

    def digest(self) -> bytes:
        return hashlib.sha256(self.to_cbor()).digest()


def plain(value: Any) -> Any:
    """The plain data of a document value (a whole document, a section, a record, a period)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: plain(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


def from_data(data: dict[str, Any]) -> ReportDocument:
    """Rebuild a document from its plain data (after its signature was checked)."""
    d = dict(data)

    def period(p: dict) -> Period:
        return Period(date.fromisoformat(p["start"]), date.fromisoformat(p["end"]))

    def opt_date(text: str | None) -> date | None:
        return date.fromisoformat(text) if text else None

    def section(s: dict) -> DomainSection:
        records = tuple(
            RecordEntry(
                **{
                    **r,
                    "decision_date": date.fromisoformat(r["decision_date"]),
                    "penalty_types": tuple(r["penalty_types"]),
                    "publicity_end": opt_date(r["publicity_end"]),
                    "repair_date": opt_date(r["repair_date"]),
                }
            )
            for r in s["records"]
        )
        return DomainSection(
            **{
                **s,
                "period": period(s["period"]),
                "data_cutoff": datetime.fromisoformat(s["data_cutoff"]),
                "records": records,
                "left_out": tuple((k, n) for k, n in s["left_out"]),
            }
        )

    d["requested"] = period(d["requested"])
    d["period"] = period(d["period"])
    d["complete_from"] = date.fromisoformat(d["complete_from"])
    for key in ("data_cutoff", "issued_at", "valid_until"):
        d[key] = datetime.fromisoformat(d[key])
    d["domains_requested"] = tuple(d["domains_requested"])
    d["code_warnings"] = tuple(d["code_warnings"])
    d["domains"] = tuple(section(s) for s in d["domains"])
    return ReportDocument(**d)
