"""What a subject's public credit record holds, domain by domain, for a period.

This is the library call behind lookups and reports. It applies every rule of the field — the
period clipped to the data-complete date and to each domain's window, revoked decisions, kinds and
tiers a domain counts, penalties left out when alone, fine thresholds, publicity, the city's repair
policy — and accounts for every record it leaves out, by reason, so a report can state honestly
what it covers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from creditcert.config import RepairPolicy, Settings
from creditcert.data.store import Store, Subject
from creditcert.errors import RequestError, SubjectError
from creditcert.model.clock import SHANGHAI
from creditcert.model.document import DomainSection, Period, RecordEntry, plain
from creditcert.rules import codes
from creditcert.rules.catalog import MAX_YEARS, Catalog, CountingRules, Domain
from creditcert.rules.vocab import Kind, LeftOut, PenaltyType

LOOKUP_FORMAT = "creditcert.lookup/1"


@dataclass(frozen=True, slots=True)
class Request:
    """A resolved request: the domains to cover and the period asked for, as of a day."""

    domains: tuple[Domain, ...]
    period: Period
    as_of: date
    purpose: str | None


@dataclass(frozen=True, slots=True)
class DomainFindings:
    domain: Domain
    period: Period  # the period this domain actually covers
    clipped_by_window: bool  # True when the domain's window shortened the period
    data_cutoff: datetime
    records: tuple[RecordEntry, ...]  # newest first, as the report states them
    left_out: dict[LeftOut, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.records

    def section(self) -> DomainSection:
        """This domain's section of a report document."""
        return DomainSection(
            code=self.domain.code,
            zh=self.domain.zh,
            en=self.domain.en,
            department=self.domain.department,
            period=self.period,
            clipped_by_window=self.clipped_by_window,
            data_cutoff=self.data_cutoff.astimezone(SHANGHAI),
            records=self.records,
            left_out=tuple((reason.value, n) for reason, n in self.left_out.items()),
        )


@dataclass(frozen=True, slots=True)
class Findings:
    """The answer to "what does this subject's public credit record hold", with its accounting."""

    subject: Subject
    code_warnings: tuple[str, ...]
    purpose: str | None
    as_of: date
    requested: Period
    period: Period  # after clipping to the data-complete date and to the data cut-off
    clipped_to_complete_from: bool
    clipped_to_data_cutoff: bool  # True when the period asked for ran past the data cut-off
    repair_policy: RepairPolicy
    catalog: Catalog
    domains: tuple[DomainFindings, ...]

    @property
    def data_cutoff(self) -> datetime:
        """The oldest cut-off among the domains: the report is complete up to here."""
        return min(d.data_cutoff for d in self.domains)

    def to_json(self) -> dict[str, Any]:
        """Stable JSON view (docs/lookup-json.md)."""
        return {
            "format": LOOKUP_FORMAT,
            "subject": {
                "credit_code": self.subject.credit_code,
                "name": self.subject.name,
                "entity_type": self.subject.entity_type,
                "admin_division": self.subject.admin_division,
                "status": self.subject.status,
            },
            "code_warnings": list(self.code_warnings),
            "purpose": self.purpose,
            "as_of": self.as_of.isoformat(),
            "requested": plain(self.requested),
            "period": plain(self.period),
            "clipped_to_complete_from": self.clipped_to_complete_from,
            "clipped_to_data_cutoff": self.clipped_to_data_cutoff,
            "data_cutoff": self.data_cutoff.isoformat(),
            "repair_policy": self.repair_policy.value,
            "catalog": {
                "id": self.catalog.id,
                "version": self.catalog.version,
                "digest": self.catalog.digest,
            },
            "domains": [_domain_json(d) for d in self.domains],
        }


def _domain_json(d: DomainFindings) -> dict[str, Any]:
    return {
        "code": d.domain.code,
        "status": "clean" if d.clean else "records",
        "period": plain(d.period),
        "clipped_by_window": d.clipped_by_window,
        "data_cutoff": d.data_cutoff.isoformat(),
        "records": plain(d.records),  # the report document's own encoding of each record
        "left_out": {reason.value: n for reason, n in d.left_out.items()},
    }


def _period(start: date, end: date) -> Period:
    """The days from start to end, or a RequestError when it starts after it ends."""
    if start > end:
        raise RequestError(f"period starts {start} after it ends {end}")
    return Period(start, end)


def years_back(as_of: date, years: int) -> date:
    """First day of the `years`-year period ending on as_of (29 Feb falls back to 28 Feb)."""
    try:
        anniversary = as_of.replace(year=as_of.year - years)
    except ValueError:
        anniversary = as_of.replace(year=as_of.year - years, day=28)
    return anniversary + timedelta(days=1)


def resolve_request(
    catalog: Catalog,
    *,
    as_of: date,
    purpose: str | None = None,
    domains: Sequence[str] | None = None,
    all_domains: bool = False,
    years: int | None = None,
    start: date | None = None,
    end: date | None = None,
) -> Request:
    """Turn what a user asked for into domains and a period, or say exactly what is wrong."""
    chosen = [x for x in (purpose is not None, bool(domains), all_domains) if x]
    if len(chosen) != 1:
        raise RequestError("choose exactly one of a purpose, a list of domains, or all domains")
    preset = catalog.purpose(purpose) if purpose is not None else None
    if preset:
        picked = tuple(catalog.domain(c) for c in preset.domains)
    elif all_domains:
        picked = catalog.domains
    else:
        unknown = [c for c in domains if c not in catalog.codes]
        if unknown:
            raise RequestError(
                f"unknown domain(s) {', '.join(unknown)}; `creditcert domains list` shows the codes"
            )
        picked = tuple(catalog.domain(c) for c in dict.fromkeys(domains))

    if years is not None and (start is not None or end is not None):
        raise RequestError("give either a number of years or a from/to period, not both")
    if start is not None or end is not None:
        if start is None:
            raise RequestError("a period needs a start date (--from)")
        period = _period(start, end or as_of)
    else:
        n = years if years is not None else (preset.years if preset else 3)
        if not 1 <= n <= MAX_YEARS:
            raise RequestError(f"years must be from 1 to {MAX_YEARS}, got {n}")
        period = _period(years_back(as_of, n), as_of)
    if period.end > as_of:
        raise RequestError(f"period ends {period.end}, after the as-of date {as_of}")
    earliest = years_back(as_of, MAX_YEARS)
    if period.start < earliest:
        raise RequestError(
            f"period starts {period.start}; a report looks back at most {MAX_YEARS} years "
            f"(from {earliest})"
        )
    return Request(picked, period, as_of, preset.code if preset else None)


def check_not_future(request: Request, at: datetime) -> None:
    """A lookup or report is about days that have happened: its as-of day is at most the day of
    `at` (the issuing clock) in Beijing."""
    today = at.astimezone(SHANGHAI).date()
    if request.as_of > today:
        raise RequestError(
            f"as-of date {request.as_of} is after today ({today}, Beijing): a report cannot "
            "certify days that have not happened; give --as-of today or earlier"
        )


def last_complete_day(cutoff: datetime) -> date:
    """The last day the data covers in full: the day before the one it was extracted on
    (records carry only a decision date, so the extraction day itself is incomplete)."""
    return cutoff.astimezone(SHANGHAI).date() - timedelta(days=1)


def find_subject(store: Store, raw_code: str) -> tuple[Subject, tuple[str, ...]]:
    """The registered subject for a code, and warnings about a legacy code's checksums.

    A malformed or unregistered code is an error: a typo must never yield a clean result.
    """
    check = codes.validate(raw_code)
    if not check.acceptable_if_registered:
        raise SubjectError(
            f"{check.code or raw_code!r} is not a valid credit code: {check.describe()}"
        )
    subject = store.subject(check.code)
    if subject is None:
        extra = f" (and it is not well formed: {check.describe()})" if check.problems else ""
        raise SubjectError(
            f"{check.code} is not in the subject register{extra}; "
            "a report is only issued for a registered subject"
        )
    warnings = tuple(
        f"legacy code accepted because it is registered: {p.message}" for p in check.problems
    )
    return subject, warnings


def lookup(store: Store, settings: Settings, raw_code: str, request: Request) -> Findings:
    """Per-domain findings for one registered subject; see the module docstring for the rules.

    The period ends at the last day the data covers in full: with domains of different cut-offs,
    the earliest one (docs/report.md §1). The clock is the caller's: City.lookup and issue_report
    refuse an as-of day after it (check_not_future)."""
    subject, warnings = find_subject(store, raw_code)
    if request.period.end < settings.complete_from:
        raise RequestError(
            f"period ends {request.period.end}, before the data is complete "
            f"({settings.complete_from}); nothing can be reported for it"
        )
    rows = store.records(subject.credit_code, request.domains)
    cutoff = min(store.data_cutoff(d) for d in request.domains)
    last = last_complete_day(cutoff)
    if request.period.start > last:
        raise RequestError(
            f"period starts {request.period.start}, after the data cut-off "
            f"({cutoff:%Y-%m-%d %H:%M}, complete to {last}); nothing can be reported for it"
        )
    covered = _period(
        max(request.period.start, settings.complete_from), min(request.period.end, last)
    )
    findings = []
    for domain in request.domains:
        window_start = years_back(request.as_of, domain.rules.window_years)
        period = _period(max(covered.start, window_start), covered.end)
        counted, left_out = _apply_rules(
            rows[domain.code], domain.rules, period, request.as_of, settings.repair_policy
        )
        findings.append(
            DomainFindings(
                domain=domain,
                period=period,
                clipped_by_window=window_start > covered.start,
                data_cutoff=store.data_cutoff(domain),
                records=counted,
                left_out=left_out,
            )
        )
    return Findings(
        subject=subject,
        code_warnings=warnings,
        purpose=request.purpose,
        as_of=request.as_of,
        requested=request.period,
        period=covered,
        clipped_to_complete_from=covered.start != request.period.start,
        clipped_to_data_cutoff=covered.end != request.period.end,
        repair_policy=settings.repair_policy,
        catalog=settings.catalog,
        domains=tuple(findings),
    )


def _apply_rules(
    rows: list[dict], rules: CountingRules, period: Period, as_of: date, policy: RepairPolicy
) -> tuple[tuple[RecordEntry, ...], dict[LeftOut, int]]:
    counted: list[RecordEntry] = []
    left_out: Counter[LeftOut] = Counter()
    for row in rows:
        reason = why_left_out(row, rules, period, as_of, policy)
        if reason is None:
            counted.append(_record(row, as_of))
        else:
            left_out[reason] += 1
    counted.sort(key=lambda r: (r.decision_date, r.record_id), reverse=True)
    ordered = {reason: left_out[reason] for reason in LeftOut if left_out[reason]}
    return tuple(counted), ordered


def why_left_out(
    row: dict, rules: CountingRules, period: Period, as_of: date, policy: RepairPolicy
) -> LeftOut | None:
    """The first rule (in LeftOut order) that keeps a record out of the report, or None."""
    if row["revoked"]:
        return LeftOut.REVOKED
    if row["decision_date"] not in period:
        return LeftOut.OUTSIDE_PERIOD
    if row["kind"] not in rules.kinds:
        return LeftOut.KIND_NOT_COUNTED
    if row["tier"] not in rules.tiers:
        return LeftOut.TIER_NOT_COUNTED
    types = set(row["penalty_types"] or ())
    if row["kind"] == Kind.PENALTY and types and types <= set(rules.excluded_when_alone):
        return LeftOut.EXCLUDED_PENALTY_ALONE
    fine_only = types - set(rules.excluded_when_alone) == {PenaltyType.FINE}
    fine = row["fine_amount"]
    if fine_only and fine is not None and fine < rules.fine_threshold:
        return LeftOut.BELOW_FINE_THRESHOLD
    if rules.omit_after_publicity and row["publicity_end"] and row["publicity_end"] < as_of:
        return LeftOut.PUBLICITY_ENDED
    repaired = row["repair_date"] is not None and row["repair_date"] <= as_of
    if repaired and policy is RepairPolicy.OMIT:
        return LeftOut.REPAIRED
    return None


def _record(row: dict, as_of: date) -> RecordEntry:
    """A counted row as the report states it: plain values, the fine as a decimal string."""
    repair = row["repair_date"] if row["repair_date"] and row["repair_date"] <= as_of else None
    fine = row["fine_amount"]
    return RecordEntry(
        record_id=row["record_id"],
        kind=Kind(row["kind"]).value,
        tier=row["tier"],
        simplified=bool(row["simplified"]),
        decision_no=row["decision_no"],
        authority=row["authority"],
        source_unit=row["source_unit"],
        decision_date=row["decision_date"],
        penalty_types=tuple(PenaltyType(t).value for t in row["penalty_types"] or ()),
        penalty_content=row["penalty_content"] or "",
        fine_amount=None if fine is None else f"{fine:.2f}",
        facts=row["facts"],
        legal_basis=row["legal_basis"] or "",
        publicity_end=row["publicity_end"],
        repaired=repair is not None,
        repair_date=repair,
        disputed=bool(row["disputed"]),
    )
