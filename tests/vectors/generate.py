"""Regenerate the format vectors in this folder from the documented rules.

    python tests/vectors/generate.py

The catalog vector's canonical bytes and digest are computed here *without* creditcert's catalog
module, straight from docs/catalog.md, so the test comparing the two is a check by a second
implementation. The code vectors come from the check-character formula of GB 32100 written out
independently (weights 3^i mod 31), not from creditcert.codes.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULES = (
    "kinds",
    "tiers",
    "excluded_when_alone",
    "fine_threshold",
    "window_years",
    "omit_after_publicity",
)


def canonical_catalog(raw: dict) -> bytes:
    defaults = raw.get("defaults", {})
    domains = []
    for d in raw["domain"]:
        merged = {**defaults, **d}
        domains.append(
            {
                "code": d["code"],
                "zh": d["zh"],
                "en": d["en"],
                "department": d["department"],
                "dataset": d["dataset"],
                "abbr": d.get("abbr", d["zh"][:2]),
                "rules": {k: merged[k] for k in RULES},
            }
        )
    codes = [d["code"] for d in raw["domain"]]
    purposes = [
        {
            "code": code,
            "zh": p["zh"],
            "en": p["en"],
            "domains": codes if p["domains"] == "all" else p["domains"],
            "years": p["years"],
            "validity_days": p["validity_days"],
        }
        for code, p in sorted(raw["purpose"].items())
    ]
    body = {
        "id": raw["id"],
        "version": raw["version"],
        "zh": raw["zh"],
        "en": raw["en"],
        "domains": domains,
        "purposes": purposes,
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def check_char(first17: str) -> str:
    total = sum(ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return ALPHABET[(31 - total % 31) % 31]


def main() -> None:
    raw = tomllib.loads((HERE / "catalog" / "minimal.toml").read_text(encoding="utf-8"))
    canonical = canonical_catalog(raw)
    (HERE / "catalog" / "minimal.canonical.json").write_bytes(canonical)
    (HERE / "catalog" / "minimal.digest").write_text(
        "sha256:" + hashlib.sha256(canonical).hexdigest() + "\n"
    )
    cases = [
        {
            "code": "91110000600037341L",
            "valid": True,
            "description": "VALID: a real enterprise code",
        },
        {
            "code": "91350203M0001QKT19",
            "valid": False,
            "reasons": ["check-character"],
            "acceptable_if_registered": True,
            "description": "INVALID: legal pre-2016 Xiamen pilot code failing its check character",
        },
    ]
    body = "9121010257"  # authority 9, enterprise, Shenyang 和平区, then an organisation code
    for tail in ("123456", "000001", "A00B09"):
        org8 = (body[8:] + tail)[:8]
        total = sum(int(c, 36) * w for c, w in zip(org8, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
        v = (11 - total % 11) % 11
        first17 = body[:8] + org8 + ("X" if v == 10 else str(v))
        code = first17 + check_char(first17)
        cases.append({"code": code, "valid": True, "description": "VALID: constructed"})
        wrong = code[:17] + ALPHABET[(ALPHABET.index(code[17]) + 1) % 31]
        cases.append(
            {
                "code": wrong,
                "valid": False,
                "reasons": ["check-character"],
                "acceptable_if_registered": True,
                "description": "INVALID: check character off by one",
            }
        )
    cases += [
        {
            "code": "9111000060003734IL",
            "valid": False,
            "reasons": ["alphabet"],
            "acceptable_if_registered": False,
            "description": "INVALID: letter I is not in the alphabet",
        },
        {
            "code": "91110000600037341",
            "valid": False,
            "reasons": ["length"],
            "acceptable_if_registered": False,
            "description": "INVALID: 17 characters",
        },
        {
            "code": "9711000060003734" + "1" + check_char("97110000600037341"),
            "valid": False,
            "reasons": ["entity-type"],
            "acceptable_if_registered": False,
            "description": "INVALID: entity type 7 is not defined for authority 9",
        },
    ]
    (HERE / "codes" / "codes.json").write_text(
        json.dumps({"format": 1, "cases": cases}, ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
