"""The issuance registry: every report issued, by number (docs/report.md §7).

An interface with one embedded implementation, SQLite in the city's home; a PostgreSQL registry
shared by several issuing nodes is the planned addition behind the same methods. Numbers are a
PRIMARY KEY, so two reports can never share one, whichever process issued them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from creditcert.errors import IssueError

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    number       TEXT PRIMARY KEY,
    issuer       TEXT NOT NULL,
    subject_code TEXT NOT NULL,
    purpose      TEXT,
    digest       TEXT NOT NULL,      -- SHA-256 of the document's CBOR, hex
    key_id       TEXT NOT NULL,
    issued_at    TEXT NOT NULL,      -- ISO 8601, Beijing time
    issued_day   TEXT NOT NULL,      -- YYYY-MM-DD, Beijing time (rate limit)
    valid_until  TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'issued',  -- issued | revoked
    revoked_at   TEXT,
    revoked_reason TEXT
);
CREATE INDEX IF NOT EXISTS reports_by_subject ON reports (subject_code, purpose, issued_day);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    number: str
    issuer: str
    subject_code: str
    purpose: str | None
    digest: str
    key_id: str
    issued_at: datetime
    valid_until: datetime
    status: str = "issued"


class NumberTaken(IssueError):
    """The drawn report number exists already (draw again)."""


class RateLimited(IssueError):
    """The subject has had its reports of this purpose for the day."""

    def __init__(self, subject_code: str, purpose: str | None, limit: int, day: str):
        super().__init__(
            f"rate limit: {subject_code} already has {limit} report(s) for purpose "
            f"{purpose or '(custom domains)'} on {day}"
        )


class Registry(Protocol):
    def add(self, entry: Entry, *, rate_limit: int) -> None: ...
    def issued_on(self, subject_code: str, purpose: str | None, day: str) -> int: ...
    def get(self, number: str) -> Entry | None: ...
    def revoke(self, number: str, *, reason: str, at: datetime) -> Entry: ...
    def revoked_numbers(self) -> list[str]: ...


class SqliteRegistry:
    """SQLite file; safe across processes (IMMEDIATE transactions, WAL)."""

    def __init__(self, path: Path, *, read_only: bool = False):
        """Open (and, for writing, create) the registry. A reader never writes: it works on a
        read-only home and never creates an empty registry where none is."""
        self.path = path
        if read_only:
            if not path.exists():
                raise IssueError(f"no registry at {path}")
            self._con = _connect_read_only(path)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.executescript(SCHEMA)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> SqliteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def issued_on(self, subject_code: str, purpose: str | None, day: str) -> int:
        return self._con.execute(
            "SELECT count(*) FROM reports WHERE subject_code = ? AND purpose IS ? AND issued_day = ?",
            (subject_code, purpose, day),
        ).fetchone()[0]

    def add(self, entry: Entry, *, rate_limit: int) -> None:
        """Record an issued report; the rate limit is checked in the same transaction."""
        day = entry.issued_at.date().isoformat()
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            if rate_limit and self.issued_on(entry.subject_code, entry.purpose, day) >= rate_limit:
                raise RateLimited(entry.subject_code, entry.purpose, rate_limit, day)
            con.execute(
                "INSERT INTO reports (number, issuer, subject_code, purpose, digest, key_id, "
                "issued_at, issued_day, valid_until, status) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    entry.number,
                    entry.issuer,
                    entry.subject_code,
                    entry.purpose,
                    entry.digest,
                    entry.key_id,
                    entry.issued_at.isoformat(),
                    day,
                    entry.valid_until.isoformat(),
                    entry.status,
                ),
            )
        except sqlite3.IntegrityError:
            con.execute("ROLLBACK")
            raise NumberTaken(entry.number) from None
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def revoke(self, number: str, *, reason: str, at: datetime) -> Entry:
        """Mark a report revoked (the row stays: a revoked report is still a fact)."""
        if not reason.strip():
            raise IssueError("a revocation needs a reason")
        changed = self._con.execute(  # one statement: atomic on its own in autocommit mode
            "UPDATE reports SET status = 'revoked', revoked_at = ?, revoked_reason = ? "
            "WHERE number = ? AND status <> 'revoked'",
            (at.isoformat(), reason.strip(), number),
        ).rowcount
        entry = self.get(number)
        if entry is None:
            raise IssueError(f"{number} is not in this registry")
        if not changed:
            raise IssueError(f"{number} was already revoked")
        return entry

    def revoked_numbers(self) -> list[str]:
        """Every revoked report number (our bundle publishes them for partners)."""
        rows = self._con.execute("SELECT number FROM reports WHERE status = 'revoked'")
        return sorted(n for (n,) in rows)

    def count(self) -> int:
        return self._con.execute("SELECT count(*) FROM reports").fetchone()[0]

    def get(self, number: str) -> Entry | None:
        row = self._con.execute(
            "SELECT number, issuer, subject_code, purpose, digest, key_id, issued_at, "
            "valid_until, status FROM reports WHERE number = ?",
            (number,),
        ).fetchone()
        if row is None:
            return None
        return Entry(
            *row[:6], datetime.fromisoformat(row[6]), datetime.fromisoformat(row[7]), row[8]
        )


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """mode=ro reads a live WAL database; where the directory cannot be written (a read-only
    home: no -shm file can be made, and no writer can exist) the file is read as immutable."""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        con.execute("SELECT count(*) FROM reports").fetchone()
        return con
    except sqlite3.OperationalError:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
        try:
            con.execute("SELECT count(*) FROM reports").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IssueError(f"{path}: cannot read the registry ({exc})") from None
        return con
