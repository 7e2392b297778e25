"""Unified social credit codes (统一社会信用代码, GB 32100-2015).

A code is 18 characters from a 31-character alphabet: registration authority (1), entity type
(1), administrative division (6, GB/T 2260), organisation code (9, GB 11714, with its own check
character) and a check character over the first 17.

Why every single-character substitution is caught: the check character makes
Σ w_i·v_i + v_18 ≡ 0 (mod 31) with w_i = 3^(i-1) mod 31. 31 is prime and no weight is 0 mod 31, so
changing any one value v_i by δ (0 < |δ| < 31) moves the sum by w_i·δ ≢ 0 (mod 31); changing the
check character itself breaks the equation directly. A character outside the alphabet fails the
alphabet check. Hence no single substitution yields another valid code.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
CHECK_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
LENGTH = 18

# Registration authority → entity types it may register (GB 32100-2015 table 1 and amendments).
ENTITY_TYPES: dict[str, dict[str, str]] = {
    "1": {"1": "机关", "2": "事业单位", "3": "中央编办直接管理的群众团体", "9": "其他"},
    "2": {"1": "外国常驻新闻机构", "9": "其他"},
    "3": {
        "1": "律师执业机构",
        "2": "公证处",
        "3": "基层法律服务所",
        "4": "司法鉴定机构",
        "5": "仲裁委员会",
        "9": "其他",
    },
    "4": {"1": "外国在华文化中心", "9": "其他"},
    "5": {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"},
    "6": {"1": "外国旅游部门常驻代表机构", "2": "港澳台地区旅游部门常驻内地代表机构", "9": "其他"},
    "7": {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"},
    "8": {"1": "基层工会", "9": "其他"},
    "9": {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"},
    "A": {"1": "军队事业单位", "9": "其他"},
    "N": {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"},
    "Y": {"1": "其他"},
}

# First two digits of GB/T 2260 province-level divisions; "10" is the national level.
PROVINCE_PREFIXES = frozenset(
    [
        "10",
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)


@dataclass(frozen=True, slots=True)
class CodeProblem:
    """One thing wrong with a code. `checksum` problems are only warnings for registered codes."""

    reason: str  # stable reason code, e.g. "check-character"
    message: str
    checksum: bool = False


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """The outcome of validating one code: the normalised code and every problem found."""

    raw: str
    code: str
    problems: tuple[CodeProblem, ...]

    @property
    def well_formed(self) -> bool:
        """True when the code passes every rule of GB 32100, checksums included."""
        return not self.problems

    @property
    def acceptable_if_registered(self) -> bool:
        """True when only checksums fail: legal for a legacy code that is in the register."""
        return all(p.checksum for p in self.problems)

    @property
    def entity_type(self) -> str | None:
        if len(self.code) < 2:
            return None
        return ENTITY_TYPES.get(self.code[0], {}).get(self.code[1])

    def describe(self) -> str:
        return "; ".join(p.message for p in self.problems)


def normalize(raw: str) -> str:
    """Strip all whitespace, fold full-width characters to ASCII (NFKC) and upper-case."""
    folded = unicodedata.normalize("NFKC", raw)
    return "".join(folded.split()).upper()


def check_character(first17: str) -> str:
    """The 18th character for the 17 given characters (all in ALPHABET)."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, CHECK_WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def org_check_character(body8: str) -> str:
    """GB 11714 check character over the 8-character organisation-code body."""
    total = sum(int(c, 36) * w for c, w in zip(body8, ORG_WEIGHTS, strict=True))
    value = (11 - total % 11) % 11
    return "X" if value == 10 else str(value)


@lru_cache(maxsize=1 << 16)  # pure; an export repeats the same subjects many times
def validate(raw: str) -> CodeCheck:
    """Check a code against every rule of GB 32100-2015, collecting all problems found."""
    code = normalize(raw)
    problems: list[CodeProblem] = []
    if len(code) != LENGTH:
        problems.append(CodeProblem("length", f"has {len(code)} characters, expected {LENGTH}"))
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        problems.append(
            CodeProblem(
                "alphabet",
                f"contains {', '.join(repr(c) for c in bad)}, not in the code alphabet "
                "(digits and A-Y without I, O, S, V, Z)",
            )
        )
    if len(code) != LENGTH or bad:
        return CodeCheck(raw, code, tuple(problems))

    authority, entity = code[0], code[1]
    if authority not in ENTITY_TYPES:
        problems.append(
            CodeProblem("registration-authority", f"registration authority {authority!r} unknown")
        )
    elif entity not in ENTITY_TYPES[authority]:
        allowed = ", ".join(ENTITY_TYPES[authority])
        problems.append(
            CodeProblem(
                "entity-type",
                f"entity type {entity!r} not defined for authority {authority!r} "
                f"(allowed: {allowed})",
            )
        )
    division = code[2:8]
    if not division.isdigit() or division[:2] not in PROVINCE_PREFIXES:
        problems.append(
            CodeProblem("admin-division", f"admin division {division!r} is not a GB/T 2260 code")
        )
    org = code[8:17]
    if org[8] not in "0123456789X":
        problems.append(
            CodeProblem(
                "organisation-code",
                f"organisation-code check character {org[8]!r} must be a digit or X",
                checksum=True,
            )
        )
    elif org_check_character(org[:8]) != org[8]:
        problems.append(
            CodeProblem(
                "organisation-code",
                f"organisation code {org} fails the GB 11714 check "
                f"(got {org[8]!r}, expected {org_check_character(org[:8])!r})",
                checksum=True,
            )
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        problems.append(
            CodeProblem(
                "check-character",
                f"check character is {code[17]!r}, expected {expected!r}",
                checksum=True,
            )
        )
    return CodeCheck(raw, code, tuple(problems))
