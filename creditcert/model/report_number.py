"""Report numbers: typable, checked, not enumerable (docs/report.md §4).

    210100-2611-7K3M9QXP-R
    issuer  YYMM random   check

- issuer: the city's 6-digit admin code; YYMM: issue month (Beijing time);
- random: 8 characters of Crockford base32 without Z (31 symbols: no I, L, O, U, Z) from the OS
  CSPRNG: 31^8 ≈ 8.5·10^11 per issuer and month, so numbers cannot be guessed or walked;
- check: one character c, chosen so that Σ i·v_i ≡ 0 (mod 31) over all 19 positions (v = the
  character's value in ALPHABET, the check last). 31 is prime, every value is below 31 and the
  weights 1…19 are distinct and non-zero, so a single wrong character changes the sum by
  i·δ ≢ 0 and a swap of two adjacent different characters by ±(a−b) ≢ 0: both are always caught.
  (Luhn mod 32 was tried first; it misses the swap of 0 and Z.)

Readers fold case, drop separators and blanks, and read O as 0 and I, L as 1, as Crockford base32
intends. Uniqueness per issuer is the registry's job (a UNIQUE column; a collision draws again).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXY"  # Crockford base32 without Z: 31 symbols
_P = len(ALPHABET)  # 31, prime
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_SHAPE = re.compile(r"^(\d{6})(\d{4})([0-9A-HJKMNP-TV-Y]{8})([0-9A-HJKMNP-TV-Y])$")
RANDOM_LENGTH = 8


def check_character(body: str) -> str:
    """The character c making Σ i·v_i ≡ 0 (mod 31) over body + c, positions counted from 1."""
    total = sum(i * _VALUE[ch] for i, ch in enumerate(body, start=1))
    weight = len(body) + 1
    return ALPHABET[(-total * pow(weight, -1, _P)) % _P]


def new_number(admin_code: str, issued_at: datetime) -> str:
    """A fresh report number for an issuer; `issued_at` must be Beijing time."""
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    body = f"{admin_code}{issued_at:%y%m}{random_part}"
    return format_number(body + check_character(body))


def format_number(compact: str) -> str:
    return f"{compact[:6]}-{compact[6:10]}-{compact[10:18]}-{compact[18:]}"


def normalize(typed: str) -> str:
    """What a person typed, folded to the compact form (no validation)."""
    folded = "".join(typed.split()).replace("-", "").upper()
    return folded.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))


def parse(typed: str) -> str | None:
    """The canonical number for a typed one, or None when its shape or check character is wrong."""
    compact = normalize(typed)
    if not _SHAPE.match(compact):
        return None
    if check_character(compact[:-1]) != compact[-1]:
        return None
    return format_number(compact)
