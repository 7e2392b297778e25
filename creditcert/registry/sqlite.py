"""The embedded registry: a SQLite file in the city's home (registry.sqlite, WAL), safe across the
processes of one machine. Its schema is made (and grown) on opening, as it always was."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from creditcert.errors import RegistryError
from creditcert.registry.base import Entry, NumberTaken, SqlRegistry

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


class SqliteRegistry(SqlRegistry):
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

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._con.execute(query, params).fetchall()

    def _change(self, query: str, params: Sequence[Any] = ()) -> int:
        return self._con.execute(query, params).rowcount  # autocommit: atomic on its own

    def reserve(self, entry: Entry, *, rate_limit: int) -> None:
        """Record a drawn number as pending (owned by this process); the rate limit is checked
        in the same transaction, which BEGIN IMMEDIATE makes the only writer of the file."""
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            self._reserve_in(self._rows, entry, rate_limit)
        except sqlite3.IntegrityError:
            con.execute("ROLLBACK")
            raise NumberTaken(entry.number) from None
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


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
