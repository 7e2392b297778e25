"""The issuance registry: every report number drawn, and what became of it (docs/report.md §7).

An interface with one embedded implementation, SQLite in the city's home; a PostgreSQL registry
shared by several issuing nodes is the planned addition behind the same methods. Numbers are a
PRIMARY KEY, so two reports can never share one, whichever process issued them.

A number is `pending` from the moment it is drawn (the rate limit is counted then) until its PDF
is on disk, when it becomes `issued`; an attempt that fails or dies in between ends `void`.
Only `issued` reports can be revoked; `pending` and `issued` ones count toward the rate limit.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from creditcert.errors import IssueError, RegistryError
from creditcert.files import process_running

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
    status       TEXT NOT NULL DEFAULT 'issued',  -- pending | issued | void | revoked
    revoked_at   TEXT,
    revoked_reason TEXT
);
CREATE INDEX IF NOT EXISTS reports_by_subject ON reports (subject_code, purpose, issued_day);
CREATE TABLE IF NOT EXISTS applications (  -- remote applications (docs/partners.md)
    nonce        TEXT PRIMARY KEY,   -- the request's 16-byte nonce, hex: a request is single-use
    direction    TEXT NOT NULL,      -- received (a partner asked us) | sent (we forwarded)
    partner      TEXT NOT NULL,      -- the other city's admin code
    subject_code TEXT NOT NULL,
    domains      TEXT NOT NULL,      -- the issuing city's domain codes, comma-separated
    sent_at      TEXT NOT NULL,      -- as the request says, ISO 8601
    recorded_at  TEXT NOT NULL,
    outcome      TEXT NOT NULL,      -- pending | issued | refused | failed
    number       TEXT,               -- the report issued for it
    detail       TEXT                -- why refused or failed
);
CREATE INDEX IF NOT EXISTS applications_by_subject ON applications (subject_code, direction);
"""
# Added after the first release: who drew a pending number (host:pid), so a crashed attempt on
# this host can be voided at once instead of after the grace period.
OWNER_COLUMN = "ALTER TABLE reports ADD COLUMN owner TEXT"
COUNTED = "('pending', 'issued')"  # statuses that use up the rate limit


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


@dataclass(frozen=True, slots=True)
class ApplicationEntry:
    """One remote application as a registry records it, on both sides (docs/partners.md)."""

    nonce: str
    direction: str  # received | sent
    partner: str
    subject_code: str
    domains: tuple[str, ...]
    sent_at: datetime
    recorded_at: datetime
    outcome: str = "pending"  # pending | issued | refused | failed
    number: str | None = None
    detail: str | None = None


class Replayed(IssueError):
    """An application with this nonce is recorded already: a request is used once."""


class NumberTaken(IssueError):
    """The drawn report number exists already (draw again)."""


class RateLimited(IssueError):
    """The subject has had its reports of this purpose for the day."""

    def __init__(self, subject_code: str, purpose: str | None, day: str, counted: list[str]):
        super().__init__(
            f"rate limit: {subject_code} already has {len(counted)} report(s) for purpose "
            f"{purpose or '(custom domains)'} on {day} ({', '.join(counted)}); "
            "`creditcert report get NUMBER` fetches one again, `creditcert revoke` frees its place"
        )


class Registry(Protocol):
    def reserve(self, entry: Entry, *, rate_limit: int) -> None: ...
    def complete(self, number: str) -> bool: ...
    def void(self, number: str) -> bool: ...
    def abandoned(self, *, at: datetime, grace: timedelta) -> list[str]: ...
    def check_rate(self, subject_code: str, purpose: str | None, day: str, limit: int) -> None: ...
    def get(self, number: str) -> Entry | None: ...
    def issued_since(
        self, subject_code: str, purpose: str | None, *, since: datetime
    ) -> list[Entry]: ...
    def reports_of(self, subject_code: str, *, limit: int = 100) -> list[Entry]: ...
    def revoke(self, number: str, *, reason: str, at: datetime) -> Entry: ...
    def revoked_numbers(self) -> list[str]: ...
    def record_application(self, entry: ApplicationEntry) -> None: ...
    def settle_application(
        self, nonce: str, outcome: str, *, number: str | None = None, detail: str | None = None
    ) -> None: ...
    def applications_of(self, subject_code: str, direction: str) -> list[ApplicationEntry]: ...


class SqliteRegistry:
    """SQLite file; safe across processes (IMMEDIATE transactions, WAL)."""

    def __init__(self, path: Path, *, read_only: bool = False):
        """Open (and, for writing, create) the registry. A reader never writes: it works on a
        read-only home and never creates an empty registry where none is."""
        self.path = path
        if read_only:
            if not path.exists():
                raise RegistryError(f"no registry at {path}")
            self._con = _connect_read_only(path)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.executescript(SCHEMA)
        columns = {row[1] for row in self._con.execute("PRAGMA table_info(reports)")}
        if "owner" not in columns:
            with contextlib.suppress(sqlite3.OperationalError):  # another process was first
                self._con.execute(OWNER_COLUMN)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> SqliteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_rate(self, subject_code: str, purpose: str | None, day: str, limit: int) -> None:
        """Raise RateLimited, naming the reports that count, when the subject has had `limit`
        reports of the purpose that day (pending or issued: a void or revoked one frees its
        place). 0 means no limit."""
        if not limit:
            return
        rows = self._con.execute(
            "SELECT number FROM reports WHERE subject_code = ? AND purpose IS ? "
            f"AND issued_day = ? AND status IN {COUNTED} ORDER BY issued_at",
            (subject_code, purpose, day),
        )
        counted = [n for (n,) in rows]
        if len(counted) >= limit:
            raise RateLimited(subject_code, purpose, day, counted)

    def reserve(self, entry: Entry, *, rate_limit: int) -> None:
        """Record a drawn number as pending (owned by this process); the rate limit is checked
        in the same transaction."""
        day = entry.issued_at.date().isoformat()
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            self.check_rate(entry.subject_code, entry.purpose, day, rate_limit)
            con.execute(
                "INSERT INTO reports (number, issuer, subject_code, purpose, digest, key_id, "
                "issued_at, issued_day, valid_until, status, owner) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
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
                    "pending",
                    f"{socket.gethostname()}:{os.getpid()}",
                ),
            )
        except sqlite3.IntegrityError:
            con.execute("ROLLBACK")
            raise NumberTaken(entry.number) from None
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _move(self, number: str, old: str, new: str) -> bool:
        """One statement, atomic on its own in autocommit mode; False if not in state `old`."""
        return bool(
            self._con.execute(
                "UPDATE reports SET status = ? WHERE number = ? AND status = ?", (new, number, old)
            ).rowcount
        )

    def complete(self, number: str) -> bool:
        """pending → issued, once the report's PDF is on disk; False if it was voided meanwhile."""
        return self._move(number, "pending", "issued")

    def void(self, number: str) -> bool:
        """pending → void: the attempt failed; the number is never used and no longer counts."""
        return self._move(number, "pending", "void")

    def abandoned(self, *, at: datetime, grace: timedelta) -> list[str]:
        """Pending numbers whose issuing process is gone: drawn on this host by a process that
        no longer runs, or drawn more than `grace` before `at` (another host, or a reused pid)."""
        here = socket.gethostname()
        found = []
        rows = self._con.execute(
            "SELECT number, issued_at, owner FROM reports WHERE status = ?", ("pending",)
        )
        for number, issued_at, owner in rows.fetchall():
            host, _, pid = (owner or "").rpartition(":")
            dead = host == here and pid.isdigit() and not process_running(int(pid))
            if dead or datetime.fromisoformat(issued_at) < at - grace:
                found.append(number)
        return found

    def revoke(self, number: str, *, reason: str, at: datetime) -> Entry:
        """Mark an issued report revoked (the row stays: a revoked report is still a fact)."""
        if not reason.strip():
            raise IssueError("a revocation needs a reason")
        changed = self._con.execute(  # one statement: atomic on its own in autocommit mode
            "UPDATE reports SET status = 'revoked', revoked_at = ?, revoked_reason = ? "
            "WHERE number = ? AND status = 'issued'",
            (at.isoformat(), reason.strip(), number),
        ).rowcount
        entry = self.get(number)
        if entry is None:
            raise IssueError(f"{number} is not in this registry")
        if not changed:
            already = "already " if entry.status == "revoked" else ""
            raise IssueError(
                f"{number} is {already}{STATUS_WORDS[entry.status]}: nothing to revoke"
            )
        return entry

    def revoked_numbers(self) -> list[str]:
        """Every number a partner must refuse (our bundle publishes them): revoked reports, and
        voided numbers, whose signed PDF may have been made but was never delivered."""
        rows = self._con.execute("SELECT number FROM reports WHERE status IN ('revoked', 'void')")
        return sorted(n for (n,) in rows)

    def count(self) -> int:
        return self._con.execute("SELECT count(*) FROM reports").fetchone()[0]

    def get(self, number: str) -> Entry | None:
        row = self._con.execute(f"SELECT {_ENTRY_COLUMNS} FROM reports WHERE number = ?", (number,))
        found = row.fetchone()
        return None if found is None else _entry(found)

    def issued_since(
        self, subject_code: str, purpose: str | None, *, since: datetime
    ) -> list[Entry]:
        """The subject's issued reports of a purpose (None: custom domains) issued at or after
        `since`, oldest first: what a batch that died while issuing may already have made."""
        rows = self._con.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM reports WHERE subject_code = ? AND purpose IS ? "
            "AND status = 'issued'",
            (subject_code, purpose),
        )
        entries = (_entry(row) for row in rows.fetchall())
        return sorted((e for e in entries if e.issued_at >= since), key=lambda e: e.issued_at)

    def reports_of(self, subject_code: str, *, limit: int = 100) -> list[Entry]:
        """A subject's reports, issued or revoked, newest first (what its own page lists)."""
        rows = self._con.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM reports WHERE subject_code = ? "
            "AND status IN ('issued', 'revoked') ORDER BY issued_at DESC LIMIT ?",
            (subject_code, limit),
        )
        return [_entry(row) for row in rows.fetchall()]

    def record_application(self, entry: ApplicationEntry) -> None:
        """Record an application as it arrives or leaves; Replayed if its nonce is known."""
        try:
            self._con.execute(
                f"INSERT INTO applications ({_APPLICATION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                _application_row(entry),
            )
        except sqlite3.IntegrityError:
            raise Replayed(f"application {entry.nonce} was recorded before") from None

    def settle_application(
        self, nonce: str, outcome: str, *, number: str | None = None, detail: str | None = None
    ) -> None:
        """What became of a pending application: issued (with its number), refused or failed."""
        self._con.execute(
            "UPDATE applications SET outcome = ?, number = ?, detail = ? "
            "WHERE nonce = ? AND outcome = 'pending'",
            (outcome, number, detail, nonce),
        )

    def applications_of(self, subject_code: str, direction: str) -> list[ApplicationEntry]:
        """A subject's applications in one direction, newest first."""
        rows = self._con.execute(
            f"SELECT {_APPLICATION_COLUMNS} FROM applications WHERE subject_code = ? "
            "AND direction = ? ORDER BY recorded_at DESC LIMIT 100",
            (subject_code, direction),
        )
        return [_application(row) for row in rows.fetchall()]


_APPLICATION_COLUMNS = (
    "nonce, direction, partner, subject_code, domains, sent_at, recorded_at, outcome, number, "
    "detail"
)


def _application_row(e: ApplicationEntry) -> tuple:
    return (
        e.nonce, e.direction, e.partner, e.subject_code, ",".join(e.domains),
        e.sent_at.isoformat(), e.recorded_at.isoformat(), e.outcome, e.number, e.detail,
    )  # fmt: skip


def _application(row: tuple) -> ApplicationEntry:
    nonce, direction, partner, code, domains, sent, recorded, outcome, number, detail = row
    return ApplicationEntry(
        nonce, direction, partner, code, tuple(domains.split(",")),
        datetime.fromisoformat(sent), datetime.fromisoformat(recorded), outcome, number, detail,
    )  # fmt: skip


_ENTRY_COLUMNS = (
    "number, issuer, subject_code, purpose, digest, key_id, issued_at, valid_until, status"
)


def _entry(row: tuple) -> Entry:
    return Entry(*row[:6], datetime.fromisoformat(row[6]), datetime.fromisoformat(row[7]), row[8])


STATUS_WORDS = {
    "pending": "still being issued (or its issuing process died; it will be voided)",
    "issued": "issued",
    "void": "void (its issuance failed; it was never issued)",
    "revoked": "revoked",
}


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """mode=ro reads a live WAL database; where the directory cannot be written (a read-only
    home: no -shm file can be made, and no writer can exist) the file is read as immutable."""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        con.execute("SELECT 1 FROM reports LIMIT 1").fetchone()  # readable, in O(1)
        return con
    except sqlite3.OperationalError:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
        try:
            con.execute("SELECT 1 FROM reports LIMIT 1").fetchone()  # readable, in O(1)
        except sqlite3.DatabaseError as exc:
            raise RegistryError(f"{path}: cannot read the registry ({exc})") from None
        return con


@contextmanager
def opened(path: Path, *, read_only: bool = False) -> Iterator[SqliteRegistry]:
    """The registry at `path`; whatever SQLite meets (a full disk, a read-only home, a damaged
    file) becomes one RegistryError naming the file, never a traceback."""
    try:
        with SqliteRegistry(path, read_only=read_only) as registry:
            yield registry
    except sqlite3.Error as exc:
        hint = "" if read_only else "; is the disk full or the home read-only?"
        raise RegistryError(f"{path}: {exc}{hint}") from None
