"""The issuance registry: every report number drawn, and what became of it (docs/report.md §7).

One protocol, `Registry`, with two implementations: SQLite in the city's home (the default, one
machine), and PostgreSQL shared by several issuing instances when creditcert.toml says
`[registry] url = "postgresql://…"` (docs/scale-out.md). Numbers are a PRIMARY KEY, so two
reports can never share one, whichever process issued them.

A number is `pending` from the moment it is drawn (the rate limit is counted then) until its PDF
is on disk, when it becomes `issued`; an attempt that fails or dies in between ends `void`.
Only `issued` reports can be revoked; `pending` and `issued` ones count toward the rate limit.

psycopg is imported only where a PostgreSQL registry is used (`creditcert.registry.postgres`).
"""

from __future__ import annotations

from creditcert.registry.base import (
    STATUS_WORDS,
    ApplicationEntry,
    Entry,
    NumberTaken,
    RateLimited,
    Registry,
    Replayed,
)
from creditcert.registry.sqlite import SqliteRegistry, opened

# `from creditcert.registry import postgres` / `transfer` import psycopg: only where used.

__all__ = [
    "STATUS_WORDS",
    "ApplicationEntry",
    "Entry",
    "NumberTaken",
    "RateLimited",
    "Registry",
    "Replayed",
    "SqliteRegistry",
    "opened",
]
