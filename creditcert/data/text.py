"""Characters a reader cannot see: department text is checked for them at ingest and shown with
them escaped, so that data can neither drive a terminal (ESC, NUL) nor reorder what a person
reads (bidi overrides)."""

from __future__ import annotations

import re

# Unicode categories Cc (C0, DEL, C1), Cf (format: bidi embeddings, overrides and isolates,
# zero-width characters, soft hyphen, BOM, tags), Zl and Zp (line and paragraph separators), as
# of Unicode 14 (Python 3.11); tests/test_ingest_hostile.py checks the list against unicodedata.
_BEYOND_C0 = (
    "\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
HIDDEN = re.compile(f"[\x00-\x1f{_BEYOND_C0}]")
# The same less tab, line feed and carriage return, which multi-line free text may hold.
HIDDEN_IN_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_BEYOND_C0}]")


def escaped(char: str) -> str:
    """How a hidden character is written where people read: \\x1b up to U+00FF, else U+202E."""
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"U+{code:04X}"


def visible(text: str, *, keep: str = "") -> str:
    """`text` with every hidden character escaped, except those in `keep` (e.g. "\\n")."""
    return HIDDEN.sub(lambda m: m[0] if m[0] in keep else escaped(m[0]), text)
