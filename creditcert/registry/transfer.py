"""`creditcert registry copy`: a city's SQLite registry moved into a PostgreSQL one without losing
a row (docs/scale-out.md). The target is migrated first; every row is inserted unless its number
is there already, then every row is read back and compared, all in one transaction: a number the
target holds with other contents is an error naming it, and nothing is copied. Run again, it
copies nothing and checks everything."""

from __future__ import annotations

from dataclasses import dataclass

from creditcert.errors import RegistryError
from creditcert.registry import postgres
from creditcert.registry.base import APPLICATION_COLUMNS, COLUMNS, INSERT
from creditcert.registry.sqlite import SqliteRegistry


@dataclass(frozen=True, slots=True)
class Copied:
    """What a copy did: rows inserted, rows the target held already (the same), the migrations."""

    source: str
    target: str  # the URL without its password
    copied: int
    already: int
    schema_before: int
    schema_version: int

    def to_json(self) -> dict:
        return {
            "format": "creditcert.registry-copy/1",
            "source": self.source,
            "target": self.target,
            "copied": self.copied,
            "already": self.already,
            "schema_before": self.schema_before,
            "schema_version": self.schema_version,
        }


def copy(source: SqliteRegistry, url: str) -> Copied:
    """Copy every row of `source` into the registry at `url` (migrated first), then check that
    the target holds each of them exactly."""
    before, after = postgres.migrate(url)
    rows = source.rows()
    insert = postgres.dialect(INSERT) + " ON CONFLICT (number) DO NOTHING"
    with postgres.connect(url) as con, postgres.failures(url), con.transaction():
        with con.cursor() as cursor:
            cursor.executemany(insert, rows)
            copied = cursor.rowcount if rows else 0
        held = {
            row[0]: row
            for row in con.execute(
                f"SELECT {', '.join(COLUMNS)} FROM reports WHERE number = ANY(%s)",
                ([row[0] for row in rows],),
            ).fetchall()
        }
        for row in rows:
            _same(row, held.get(row[0]), url)
        _copy_applications(con, source, url)
    return Copied(str(source.path), postgres.redact(url), copied, len(rows) - copied, before, after)


def _same(row: tuple, there: tuple | None, url: str) -> None:
    if there is None:
        raise RegistryError(f"registry {postgres.redact(url)}: {row[0]} was not copied")
    differ = [
        f"{c} {a!r} here, {b!r} there"
        for c, a, b in zip(COLUMNS, row, there, strict=True)
        if a != b
    ]
    if differ:
        raise RegistryError(
            f"registry {postgres.redact(url)} holds {row[0]} with other contents "
            f"({'; '.join(differ)}): nothing was copied"
        )


def _copy_applications(con, source: SqliteRegistry, url: str) -> None:
    """The remote applications go along, in the same transaction; a nonce held with other
    contents is refused like a report."""
    rows = source.application_rows()
    if not rows:
        return
    columns = ", ".join(APPLICATION_COLUMNS)
    insert = postgres.dialect(
        f"INSERT INTO applications ({columns}) VALUES "
        f"({', '.join('?' for _ in APPLICATION_COLUMNS)}) ON CONFLICT (nonce) DO NOTHING"
    )
    with con.cursor() as cursor:
        cursor.executemany(insert, rows)
    held = {
        row[0]: row
        for row in con.execute(
            f"SELECT {columns} FROM applications WHERE nonce = ANY(%s)", ([r[0] for r in rows],)
        ).fetchall()
    }
    for row in rows:
        if held.get(row[0]) != row:
            raise RegistryError(
                f"registry {postgres.redact(url)} holds application {row[0]} with other "
                "contents, or lost it: nothing was copied"
            )
