"""The domain catalog: which domains a city reports on, their counting rules, and purposes.

A catalog is data (TOML, docs/catalog.md). It is parsed once into frozen values and identified by
id, version and a SHA-256 digest over a canonical JSON form of the *resolved* rules, so two files
that differ only in layout or comments share a digest, and any change of a rule changes it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import rfc8785

from creditcert.errors import CatalogError
from creditcert.rules.vocab import Kind, PenaltyType, Tier

FORMAT = 1
_CODE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_RULE_KEYS = {
    "kinds",
    "tiers",
    "excluded_when_alone",
    "fine_threshold",
    "window_years",
    "omit_after_publicity",
}
_DOMAIN_KEYS = {"code", "zh", "en", "department", "dataset", "abbr"} | _RULE_KEYS
_PURPOSE_KEYS = {"zh", "en", "domains", "years", "validity_days"}
_TOP_KEYS = {"format", "id", "version", "zh", "en", "defaults", "domain", "purpose"}
MAX_YEARS = 5  # 565号: a report looks back at most five years


@dataclass(frozen=True, slots=True)
class CountingRules:
    """Which of a domain's records count in a report."""

    kinds: tuple[Kind, ...]
    tiers: tuple[Tier, ...]
    excluded_when_alone: tuple[PenaltyType, ...]
    fine_threshold: int  # yuan
    window_years: int
    omit_after_publicity: bool


@dataclass(frozen=True, slots=True)
class Domain:
    code: str
    zh: str
    en: str
    department: str
    dataset: str
    abbr: str
    rules: CountingRules


@dataclass(frozen=True, slots=True)
class Purpose:
    code: str
    zh: str
    en: str
    domains: tuple[str, ...]
    years: int
    validity_days: int


@dataclass(frozen=True, slots=True)
class Catalog:
    id: str
    version: str
    zh: str
    en: str
    domains: tuple[Domain, ...]
    purposes: tuple[Purpose, ...]
    digest: str  # "sha256:<hex>" over canonical_json()
    source: str  # where it was read from, for messages

    def domain(self, code: str) -> Domain:
        for d in self.domains:
            if d.code == code:
                return d
        raise CatalogError(f"unknown domain {code!r} in catalog {self.id} ({self.source})")

    def purpose(self, code: str) -> Purpose:
        for p in self.purposes:
            if p.code == code:
                return p
        known = ", ".join(p.code for p in self.purposes)
        raise CatalogError(f"unknown purpose {code!r}; this catalog has: {known}")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(d.code for d in self.domains)


def canonical_json(domains: tuple[Domain, ...], purposes: tuple[Purpose, ...], meta: dict) -> bytes:
    """RFC 8785 (JCS) canonical JSON, UTF-8: the bytes the catalog digest is taken over.

    Domains keep their order (it is the report's order); purposes are sorted by code, since their
    order means nothing and maps (TOML tables, CBOR in a bundle) need not keep it. JCS is a
    published standard with libraries in every language, so a partner recomputes the digest
    without copying Python's json module (for this data, ASCII keys and integers only, the bytes
    are those of json.dumps with sorted keys, no whitespace and ensure_ascii off)."""
    body = {
        **meta,
        "domains": [asdict(d) for d in domains],
        "purposes": [asdict(p) for p in sorted(purposes, key=lambda p: p.code)],
    }
    return rfc8785.dumps(body)


def load(path: str | Path) -> Catalog:
    """Read and validate a catalog file; every problem is an error naming the file and field."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalog file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    return parse(raw, source=str(path))


def parse(raw: dict[str, Any], *, source: str) -> Catalog:
    """Validate a catalog's parsed TOML; every problem names the source and the field."""

    def fail(where: str, message: str) -> CatalogError:
        return CatalogError(f"{source}: {where}: {message}")

    only_keys(raw, _TOP_KEYS, "top level", fail)
    if raw.get("format") != FORMAT:
        raise fail("format", f"got {raw.get('format')!r}, expected {FORMAT}")
    meta = {key: _text(raw, key, "top level", fail) for key in ("id", "version", "zh", "en")}
    domains = _domains(raw, fail)
    purposes = _purposes(raw.get("purpose", {}), tuple(d.code for d in domains), fail)
    digest = hashlib.sha256(canonical_json(domains, purposes, meta)).hexdigest()
    return Catalog(
        **meta, domains=domains, purposes=purposes, digest=f"sha256:{digest}", source=source
    )


def _domains(raw: dict[str, Any], fail) -> tuple[Domain, ...]:
    defaults = raw.get("defaults", {})
    only_keys(defaults, _RULE_KEYS, "[defaults]", fail)
    entries = raw.get("domain")
    if not isinstance(entries, list) or not entries:
        raise fail("[[domain]]", "the catalog defines no domain")
    domains: list[Domain] = []
    seen: dict[str, int] = {}
    datasets: dict[str, str] = {}
    for i, entry in enumerate(entries, 1):
        where = f"[[domain]] #{i}"
        if not isinstance(entry, dict):
            raise fail(where, "must be a table")
        code = _text(entry, "code", where, fail)
        where = f"[[domain]] #{i} ({code})"
        only_keys(entry, _DOMAIN_KEYS, where, fail)
        if not _CODE.match(code):
            raise fail(f"{where}.code", "must be a lower-case slug like 'market-regulation'")
        if code in seen:
            raise fail(f"{where}.code", f"duplicate domain code, first defined at #{seen[code]}")
        seen[code] = i
        dataset = _text(entry, "dataset", where, fail)
        if not _CODE.match(dataset):
            raise fail(f"{where}.dataset", "must be a lower-case slug (a file name stem)")
        if dataset in datasets:
            raise fail(
                f"{where}.dataset", f"dataset {dataset!r} already used by {datasets[dataset]}"
            )
        datasets[dataset] = code
        zh = _text(entry, "zh", where, fail)
        domains.append(
            Domain(
                code=code,
                zh=zh,
                en=_text(entry, "en", where, fail),
                department=_text(entry, "department", where, fail),
                dataset=dataset,
                abbr=entry.get("abbr", zh[:2]),
                rules=_rules({**defaults, **entry}, where, fail),
            )
        )
    return tuple(domains)


def _purposes(table: Any, codes: tuple[str, ...], fail) -> tuple[Purpose, ...]:
    if not isinstance(table, dict):
        raise fail("[purpose]", "must be a table of purposes")
    purposes: list[Purpose] = []
    for key, entry in table.items():
        where = f"[purpose.{key}]"
        if not _CODE.match(key):
            raise fail(where, "purpose code must be a lower-case slug")
        only_keys(entry, _PURPOSE_KEYS, where, fail)
        purposes.append(
            Purpose(
                code=key,
                zh=_text(entry, "zh", where, fail),
                en=_text(entry, "en", where, fail),
                domains=_purpose_domains(entry.get("domains"), codes, where, fail),
                years=_int(entry, "years", where, fail, 1, MAX_YEARS),
                validity_days=_int(entry, "validity_days", where, fail, 1, 3660),
            )
        )
    return tuple(purposes)


def _purpose_domains(names: Any, codes: tuple[str, ...], where: str, fail) -> tuple[str, ...]:
    if names == "all":
        return codes
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise fail(f"{where}.domains", 'must be "all" or a non-empty list of domain codes')
    unknown = [n for n in names if n not in codes]
    if unknown:
        raise fail(f"{where}.domains", f"unknown domain(s): {', '.join(unknown)}")
    if len(set(names)) != len(names):
        raise fail(f"{where}.domains", "lists a domain twice")
    return tuple(names)


def domain_json(d: Domain) -> dict[str, Any]:
    """A domain and its counting rules as plain data (the CLI's `domains` JSON)."""
    r = d.rules
    return {
        "code": d.code,
        "zh": d.zh,
        "en": d.en,
        "department": d.department,
        "dataset": d.dataset,
        "rules": {
            "kinds": list(r.kinds),
            "tiers": list(r.tiers),
            "excluded_when_alone": list(r.excluded_when_alone),
            "fine_threshold": r.fine_threshold,
            "window_years": r.window_years,
            "omit_after_publicity": r.omit_after_publicity,
        },
    }


def purpose_json(p: Purpose) -> dict[str, Any]:
    return {
        "code": p.code,
        "zh": p.zh,
        "en": p.en,
        "domains": list(p.domains),
        "years": p.years,
        "validity_days": p.validity_days,
    }


def as_raw(catalog: Catalog) -> dict[str, Any]:
    """The catalog back in the TOML-shaped form parse() takes (used to apply a city's overrides)."""
    domains = []
    for d in catalog.domains:
        rules = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(d.rules).items()}
        fields = {k: getattr(d, k) for k in ("code", "zh", "en", "department", "dataset", "abbr")}
        domains.append({**fields, **rules})
    purposes = {
        p.code: {k: v for k, v in purpose_json(p).items() if k != "code"} for p in catalog.purposes
    }
    meta = {"id": catalog.id, "version": catalog.version, "zh": catalog.zh, "en": catalog.en}
    return {"format": FORMAT, **meta, "domain": domains, "purpose": purposes}


def _rules(entry: dict[str, Any], where: str, fail) -> CountingRules:
    return CountingRules(
        kinds=_enum_list(entry, "kinds", Kind, where, fail, nonempty=True),
        tiers=_enum_list(entry, "tiers", Tier, where, fail, nonempty=True),
        excluded_when_alone=_enum_list(entry, "excluded_when_alone", PenaltyType, where, fail),
        fine_threshold=_int(entry, "fine_threshold", where, fail, 0, 10**9),
        window_years=_int(entry, "window_years", where, fail, 1, MAX_YEARS),
        omit_after_publicity=_bool(entry, "omit_after_publicity", where, fail),
    )


def only_keys(table: Any, allowed: set[str], where: str, fail) -> None:
    """Refuse a non-table or a table with keys outside `allowed`, naming them and the allowed."""
    if not isinstance(table, dict):
        raise fail(where, "must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise fail(
            where, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _text(table: dict, key: str, where: str, fail) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
    return value


def _int(table: dict, key: str, where: str, fail, low: int, high: int) -> int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(f"{where}.{key}", f"must be an integer from {low} to {high}, got {value!r}")
    return value


def _bool(table: dict, key: str, where: str, fail) -> bool:
    value = table.get(key)
    if not isinstance(value, bool):
        raise fail(f"{where}.{key}", f"must be true or false, got {value!r}")
    return value


def _enum_list(table: dict, key: str, enum, where: str, fail, nonempty: bool = False) -> tuple:
    value = table.get(key)
    allowed = ", ".join(m.value for m in enum)
    if not isinstance(value, list) or (nonempty and not value):
        raise fail(
            f"{where}.{key}", f"must be a {'non-empty ' if nonempty else ''}list of: {allowed}"
        )
    try:
        return tuple(enum(v) for v in value)
    except ValueError:
        bad = [v for v in value if v not in {m.value for m in enum}]
        raise fail(f"{where}.{key}", f"unknown value(s) {bad}; allowed: {allowed}") from None
