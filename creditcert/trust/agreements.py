"""Mutual-recognition agreements: a partner, the days it runs and how the partner's domain codes
map onto ours (docs/partners.md). Only mapped domains of a partner's report are recognised."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date

from creditcert.errors import PartnerError
from creditcert.rules.catalog import Catalog, only_keys

FORMAT = 1


@dataclass(frozen=True, slots=True)
class Agreement:
    partner: str
    start: date
    end: date
    mapping: dict[str, str]  # partner's domain code → ours

    def live(self, day: date) -> bool:
        return self.start <= day <= self.end


def parse_agreement(text: str, *, source: str, ours: Catalog, theirs: Catalog) -> Agreement:
    """An agreement file (TOML): format, partner, start, end and [mapping] their-code = "ours"."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PartnerError(f"{source}: not valid TOML: {exc}") from None
    only_keys(
        raw,
        {"format", "partner", "start", "end", "mapping"},
        "top level",
        lambda where, msg: PartnerError(f"{source}: {where}: {msg}"),
    )
    if raw.get("format") != FORMAT:
        raise PartnerError(f"{source}: format: got {raw.get('format')!r}, expected {FORMAT}")
    partner = raw.get("partner")
    if not isinstance(partner, str) or not re.fullmatch(r"\d{6}", partner):
        raise PartnerError(f"{source}: partner: got {partner!r:.40}, expected a 6-digit city code")
    start, end, mapping = raw.get("start"), raw.get("end"), raw.get("mapping")
    if not (isinstance(start, date) and isinstance(end, date) and start <= end):
        raise PartnerError(f"{source}: start and end must be dates with start <= end")
    if not isinstance(mapping, dict) or not mapping:
        raise PartnerError(f"{source}: [mapping] must map partner domain codes to ours")
    for their, our in mapping.items():
        if their not in theirs.codes:
            raise PartnerError(f"{source}: mapping: {their!r} is not in the partner's catalog")
        if our not in ours.codes:
            raise PartnerError(f"{source}: mapping: {their} = {our!r}, not in our catalog")
    return Agreement(partner, start, end, dict(mapping))
