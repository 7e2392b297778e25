"""The registry on PostgreSQL, shared by several issuing instances (docs/scale-out.md), with the
same protocol and behaviour as the SQLite one: `creditcert.toml` says `[registry] url =
"postgresql://user@host:port/db"`; the password comes from the URL, PGPASSWORD or ~/.pgpass
(libpq reads them).

Numbers are unique by the table's PRIMARY KEY across every instance (a collision is NumberTaken).
The rate limit is exact across instances: a reservation is one READ COMMITTED transaction that
first takes a transaction-scoped advisory lock on (subject, purpose, day), then counts and
inserts. Every reservation for the same subject and day queues on that lock, and since each
statement of a READ COMMITTED transaction sees what committed before it began, the count made
after the lock sees every reservation committed by earlier holders. We chose this over
SERIALIZABLE: it never aborts (no retry loop), it locks only the subject concerned, and an
unrelated subject never waits. A lock key that collides (64 bits hashed to 32) only makes two
subjects queue behind each other, never miscounts.

The schema is versioned (MIGRATIONS, applied in order by `creditcert registry migrate` under an
advisory lock, each step in one transaction with its version row). An instance never migrates on
its own: the schema is changed by the operator, with the rights to do so, once for every
instance; an instance finding an older schema refuses with one line saying what to do. Steps only
add (tables, columns, indexes), so a newer schema serves the previous version during an upgrade.

Whatever psycopg meets (server down, authentication refused, a malformed URL, the connection
lost) becomes one RegistryError naming the server, never its password.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool

from creditcert.errors import RegistryError
from creditcert.registry.base import Entry, NumberTaken, SqlRegistry

SCHEMES = ("postgresql", "postgres")
SCHEMA_TABLE = "creditcert_schema"
# Advisory lock keys (two int4 form): a namespace of ours, then what is locked.
_RATE_LOCK = 0x43430001  # + a 32-bit hash of (subject, purpose, day)
_MIGRATE_LOCK = 0x43430002
CONNECT_TIMEOUT = 10  # seconds, for a server that does not answer

# (version, what it does, statements). Append only: a released step is never edited, and a step
# only adds, so that instances one version behind keep working on the migrated schema.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "the reports table (as SQLite's, times as ISO 8601 text) and its by-subject index",
        (
            """CREATE TABLE reports (
                number         text PRIMARY KEY,
                issuer         text NOT NULL,
                subject_code   text NOT NULL,
                purpose        text,
                digest         text NOT NULL,
                key_id         text NOT NULL,
                issued_at      text NOT NULL,
                issued_day     text NOT NULL,
                valid_until    text NOT NULL,
                status         text NOT NULL DEFAULT 'issued'
                               CHECK (status IN ('pending', 'issued', 'void', 'revoked')),
                revoked_at     text,
                revoked_reason text,
                owner          text
            )""",
            "CREATE INDEX reports_by_subject ON reports (subject_code, purpose, issued_day)",
        ),
    ),
    (
        2,
        "an index of the numbers not plainly issued (pending ones to settle, revoked and void)",
        ("CREATE INDEX reports_unsettled ON reports (status) WHERE status <> 'issued'",),
    ),
    (
        3,
        "remote applications received and sent, one row per nonce (docs/partners.md)",
        (
            """CREATE TABLE applications (
                nonce        text PRIMARY KEY,
                direction    text NOT NULL CHECK (direction IN ('received', 'sent')),
                partner      text NOT NULL,
                subject_code text NOT NULL,
                domains      text NOT NULL,
                sent_at      text NOT NULL,
                recorded_at  text NOT NULL,
                outcome      text NOT NULL
                             CHECK (outcome IN ('pending', 'issued', 'refused', 'failed')),
                number       text,
                detail       text
            )""",
            "CREATE INDEX applications_by_subject ON applications (subject_code, direction)",
        ),
    ),
)
LATEST = MIGRATIONS[-1][0]


def redact(url: str) -> str:
    """The URL as it may be shown: user, host, port and database, never a password."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "password"]
    tail = f"?{urlencode(query)}" if query else ""
    return f"{parts.scheme}://{user}{hosts}{parts.path}{tail}"


def _failure(url: str, exc: BaseException) -> RegistryError:
    """One line naming the server; libpq's multi-line messages are joined, and a password it
    might echo from a malformed URL is blanked."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    password = urlsplit(url).password
    if password:
        text = text.replace(password, "***")
    return RegistryError(f"registry {redact(url)}: {text or type(exc).__name__}")


@contextmanager
def failures(url: str) -> Iterator[None]:
    """Whatever psycopg raises inside becomes one RegistryError naming the server."""
    try:
        yield
    except psycopg.errors.UniqueViolation:
        raise  # a number drawn twice: the reservation says NumberTaken
    except psycopg.Error as exc:  # the pool's PoolTimeout is one too
        raise _failure(url, exc) from None
    except ValueError as exc:  # a URL psycopg cannot even split (a bad port)
        raise _failure(url, exc) from None


def connect(url: str, **kwargs: Any) -> psycopg.Connection:
    """One connection (autocommit), for migrations, copies and the opening check."""
    with failures(url):
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **kwargs)


def schema_version(con: psycopg.Connection) -> int:
    """The version the database's schema is at; 0 before the first migration."""
    if con.execute("SELECT to_regclass(%s)", (SCHEMA_TABLE,)).fetchone()[0] is None:
        return 0
    return con.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}").fetchone()[0]


def migrate(url: str, *, target: int = LATEST) -> tuple[int, int]:
    """Apply the pending migrations up to `target` (idempotent; concurrent runs wait for each
    other on an advisory lock): the versions (before, after)."""
    with connect(url) as con, failures(url):
        with con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_MIGRATE_LOCK,))
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version integer PRIMARY KEY, "
                "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            before = schema_version(con)
            for version, description, statements in MIGRATIONS:
                if before < version <= target:
                    for statement in statements:
                        con.execute(statement)
                    con.execute(
                        f"INSERT INTO {SCHEMA_TABLE} (version, description) VALUES (%s, %s)",
                        (version, description),
                    )
        return before, max(before, min(target, LATEST))


def _check_schema(url: str, con: psycopg.Connection) -> None:
    """An older schema is refused; a newer one is used (migrations only add: an instance of the
    previous version keeps working while the others are upgraded)."""
    found = schema_version(con)
    if found < LATEST:
        raise RegistryError(
            f"registry {redact(url)}: its schema is at version {found}, this creditcert needs "
            f"{LATEST}: run `creditcert registry migrate`"
        )


class PostgresRegistry(SqlRegistry):
    """A PostgreSQL database at the current schema version, through a small connection pool
    (safe to share between threads; one per process: never carry it over a fork)."""

    def __init__(self, url: str, *, read_only: bool = False, max_size: int = 4):
        """Connect and check the schema version (an older one is refused: migrate first). A
        reader's sessions are read-only: it can never write."""
        self.url = url
        options = {"options": "-c default_transaction_read_only=on"} if read_only else {}
        with connect(url, **options) as con, failures(url):
            _check_schema(url, con)
        with failures(url):
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=max_size,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT, **options},
                check=ConnectionPool.check_connection,  # a server restart costs no request
                timeout=CONNECT_TIMEOUT,
                name=redact(url),
                open=True,
            )

    def close(self) -> None:
        self._pool.close(timeout=5)

    def __enter__(self) -> PostgresRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __str__(self) -> str:
        return redact(self.url)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        with failures(self.url), self._pool.connection() as con:
            yield con

    def _sql(self, query: str) -> str:
        return dialect(query)

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._connection() as con:
            return _fetch(con, query, params)

    def _change(self, query: str, params: Sequence[Any] = ()) -> int:
        with self._connection() as con:
            return con.execute(query, params).rowcount

    def reserve(self, entry: Entry, *, rate_limit: int) -> None:
        """Record a drawn number as pending (owned by this process); with a rate limit, the
        count and the insert happen under the subject's advisory lock (module docstring)."""
        day = entry.issued_at.date().isoformat()
        try:
            with self._connection() as con, con.transaction():
                if rate_limit:
                    key = _lock_key(entry.subject_code, entry.purpose, day)
                    con.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_RATE_LOCK, key))
                self._reserve_in(lambda q, p: _fetch(con, q, p), entry, rate_limit)
        except psycopg.errors.UniqueViolation:
            raise NumberTaken(entry.number) from None


def dialect(query: str) -> str:
    """A shared query (SQLite's spelling) in PostgreSQL's: `%s` parameters, and `IS NOT
    DISTINCT FROM` where SQLite's `IS` compares with what may be NULL."""
    return query.replace(" IS ?", " IS NOT DISTINCT FROM ?").replace("?", "%s")


def _fetch(con: psycopg.Connection, query: str, params: Sequence[Any]) -> list[tuple]:
    cursor = con.execute(query, params)
    return cursor.fetchall() if cursor.description else []


def _lock_key(subject_code: str, purpose: str | None, day: str) -> int:
    """A signed 32-bit key for (subject, purpose, day), the same in every process."""
    digest = hashlib.blake2b(f"{subject_code}\0{purpose or ''}\0{day}".encode(), digest_size=4)
    return int.from_bytes(digest.digest(), "big", signed=True)


_SHARED: dict[tuple[int, str, bool], PostgresRegistry] = {}
_SHARING = threading.Lock()  # the service's threads open the city's registry at once


def shared(url: str, *, read_only: bool = False) -> PostgresRegistry:
    """This process's registry for `url`, opened (and its schema checked) on first use and kept:
    a city opens its registry for every request, a pool is made once. A forked child makes its
    own (a connection cannot cross a fork)."""
    key = (os.getpid(), url, read_only)
    with _SHARING:
        if key not in _SHARED:
            _SHARED[key] = PostgresRegistry(url, read_only=read_only)
        return _SHARED[key]


@atexit.register
def _close_shared() -> None:
    for key, registry in list(_SHARED.items()):
        if key[0] == os.getpid():
            registry.close()
    _SHARED.clear()
