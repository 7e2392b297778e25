"""What every registry shares: the entry, its errors, the protocol others type against, and the
queries both SQL implementations run (written once, in SQLite's spelling; `SqlRegistry._sql`
turns them into another dialect's).

A number is `pending` from the moment it is drawn (the rate limit is counted then) until its PDF
is on disk, when it becomes `issued`; an attempt that fails or dies in between ends `void`.
Only `issued` reports can be revoked; `pending` and `issued` ones count toward the rate limit.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from creditcert.errors import IssueError
from creditcert.files import process_running

# The one table, as both implementations hold it. Times are ISO 8601 text in Beijing time (so they
# sort as they read), which keeps a row copied between implementations the same row, byte for byte.
COLUMNS = (
    "number",
    "issuer",
    "subject_code",
    "purpose",
    "digest",  # SHA-256 of the document's CBOR, hex
    "key_id",
    "issued_at",  # ISO 8601, Beijing time
    "issued_day",  # YYYY-MM-DD, Beijing time (rate limit)
    "valid_until",
    "status",  # pending | issued | void | revoked
    "revoked_at",
    "revoked_reason",
    "owner",  # host:pid that drew a pending number
)
COUNTED = "('pending', 'issued')"  # statuses that use up the rate limit
_ENTRY_COLUMNS = (
    "number, issuer, subject_code, purpose, digest, key_id, issued_at, valid_until, status"
)
INSERT = f"INSERT INTO reports ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"

STATUS_WORDS = {
    "pending": "still being issued (or its issuing process died; it will be voided)",
    "issued": "issued",
    "void": "void (its issuance failed; it was never issued)",
    "revoked": "revoked",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One report number in the registry, and what became of it."""

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

    nonce: str  # the request's 16-byte nonce, hex: a request is used once
    direction: str  # received (a partner asked us) | sent (we forwarded)
    partner: str  # the other city's admin code
    subject_code: str
    domains: tuple[str, ...]  # the issuing city's domain codes
    sent_at: datetime  # as the request says
    recorded_at: datetime
    outcome: str = "pending"  # pending | issued | refused | failed
    number: str | None = None  # the report issued for it
    detail: str | None = None  # why refused or failed


APPLICATION_COLUMNS = (
    "nonce", "direction", "partner", "subject_code", "domains", "sent_at", "recorded_at",
    "outcome", "number", "detail",
)  # fmt: skip


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
    """What the city, issuance, verification and bundles use; SQLite and PostgreSQL behave alike."""

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


Rows = Callable[[str, Sequence[Any]], list[tuple]]


class SqlRegistry:
    """The registry's behaviour over any SQL database with the `reports` table. A subclass says
    how a statement runs (`_rows`, `_change`) and how a number is reserved (its transaction)."""

    def _sql(self, query: str) -> str:
        """The query in this database's dialect (SQLite's: `?` parameters, `IS ?`)."""
        return query

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def _change(self, query: str, params: Sequence[Any] = ()) -> int:
        """Run one statement, atomic on its own; the number of rows it changed."""
        raise NotImplementedError

    def check_rate(self, subject_code: str, purpose: str | None, day: str, limit: int) -> None:
        """Raise RateLimited, naming the reports that count, when the subject has had `limit`
        reports of the purpose that day (pending or issued: a void or revoked one frees its
        place). 0 means no limit."""
        self._check_rate(self._rows, subject_code, purpose, day, limit)

    def _check_rate(self, rows: Rows, subject_code, purpose, day, limit) -> None:
        if not limit:
            return
        found = rows(
            self._sql(
                "SELECT number FROM reports WHERE subject_code = ? AND purpose IS ? "
                f"AND issued_day = ? AND status IN {COUNTED} ORDER BY issued_at"
            ),
            (subject_code, purpose, day),
        )
        counted = [n for (n,) in found]
        if len(counted) >= limit:
            raise RateLimited(subject_code, purpose, day, counted)

    def _reserve_in(self, rows: Rows, entry: Entry, rate_limit: int) -> None:
        """The body of a reservation, inside the subclass's transaction."""
        day = entry.issued_at.date().isoformat()
        self._check_rate(rows, entry.subject_code, entry.purpose, day, rate_limit)
        rows(self._sql(INSERT), _pending_row(entry, day))

    def _move(self, number: str, old: str, new: str) -> bool:
        """One statement, atomic on its own; False if not in state `old`."""
        return bool(
            self._change(
                self._sql("UPDATE reports SET status = ? WHERE number = ? AND status = ?"),
                (new, number, old),
            )
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
        rows = self._rows(
            self._sql("SELECT number, issued_at, owner FROM reports WHERE status = ?"),
            ("pending",),
        )
        for number, issued_at, owner in rows:
            host, _, pid = (owner or "").rpartition(":")
            dead = host == here and pid.isdigit() and not process_running(int(pid))
            if dead or datetime.fromisoformat(issued_at) < at - grace:
                found.append(number)
        return found

    def revoke(self, number: str, *, reason: str, at: datetime) -> Entry:
        """Mark an issued report revoked (the row stays: a revoked report is still a fact)."""
        if not reason.strip():
            raise IssueError("a revocation needs a reason")
        changed = self._change(  # one statement: atomic on its own
            self._sql(
                "UPDATE reports SET status = 'revoked', revoked_at = ?, revoked_reason = ? "
                "WHERE number = ? AND status = 'issued'"
            ),
            (at.isoformat(), reason.strip(), number),
        )
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
        rows = self._rows("SELECT number FROM reports WHERE status IN ('revoked', 'void')")
        return sorted(n for (n,) in rows)

    def count(self) -> int:
        return self._rows("SELECT count(*) FROM reports")[0][0]

    def get(self, number: str) -> Entry | None:
        rows = self._rows(
            self._sql(f"SELECT {_ENTRY_COLUMNS} FROM reports WHERE number = ?"), (number,)
        )
        return _entry(rows[0]) if rows else None

    def issued_since(
        self, subject_code: str, purpose: str | None, *, since: datetime
    ) -> list[Entry]:
        """The subject's issued reports of a purpose (None: custom domains) issued at or after
        `since`, oldest first: what a batch that died while issuing may already have made."""
        rows = self._rows(
            self._sql(
                f"SELECT {_ENTRY_COLUMNS} FROM reports WHERE subject_code = ? AND purpose IS ? "
                "AND status = 'issued'"
            ),
            (subject_code, purpose),
        )
        entries = (_entry(row) for row in rows)
        return sorted((e for e in entries if e.issued_at >= since), key=lambda e: e.issued_at)

    def reports_of(self, subject_code: str, *, limit: int = 100) -> list[Entry]:
        """A subject's reports, issued or revoked, newest first (what its own page lists)."""
        rows = self._rows(
            self._sql(
                f"SELECT {_ENTRY_COLUMNS} FROM reports WHERE subject_code = ? "
                "AND status IN ('issued', 'revoked') ORDER BY issued_at DESC LIMIT ?"
            ),
            (subject_code, limit),
        )
        return [_entry(row) for row in rows]

    def record_application(self, entry: ApplicationEntry) -> None:
        """Record an application as it arrives or leaves; Replayed if its nonce is known."""
        inserted = self._change(
            self._sql(
                f"INSERT INTO applications ({', '.join(APPLICATION_COLUMNS)}) VALUES "
                f"({', '.join('?' for _ in APPLICATION_COLUMNS)}) ON CONFLICT (nonce) DO NOTHING"
            ),
            _application_row(entry),
        )
        if not inserted:
            raise Replayed(f"application {entry.nonce} was recorded before")

    def settle_application(
        self, nonce: str, outcome: str, *, number: str | None = None, detail: str | None = None
    ) -> None:
        """What became of a pending application: issued (with its number), refused or failed."""
        self._change(
            self._sql(
                "UPDATE applications SET outcome = ?, number = ?, detail = ? "
                "WHERE nonce = ? AND outcome = 'pending'"
            ),
            (outcome, number, detail, nonce),
        )

    def applications_of(self, subject_code: str, direction: str) -> list[ApplicationEntry]:
        """A subject's applications in one direction, newest first."""
        rows = self._rows(
            self._sql(
                f"SELECT {', '.join(APPLICATION_COLUMNS)} FROM applications "
                "WHERE subject_code = ? AND direction = ? ORDER BY recorded_at DESC LIMIT 100"
            ),
            (subject_code, direction),
        )
        return [_application(row) for row in rows]

    def application_rows(self) -> list[tuple]:
        """Every application, every column, in nonce order: what `registry copy` moves too."""
        return self._rows(
            f"SELECT {', '.join(APPLICATION_COLUMNS)} FROM applications ORDER BY nonce"
        )

    def rows(self) -> list[tuple]:
        """Every row, every column (COLUMNS), in number order: what `registry copy` moves."""
        return self._rows(f"SELECT {', '.join(COLUMNS)} FROM reports ORDER BY number")


def _pending_row(entry: Entry, day: str) -> tuple:
    """A freshly drawn number's row (COLUMNS), owned by this process."""
    return (
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
        None,
        None,
        f"{socket.gethostname()}:{os.getpid()}",
    )


def _entry(row: tuple) -> Entry:
    return Entry(*row[:6], datetime.fromisoformat(row[6]), datetime.fromisoformat(row[7]), row[8])


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
