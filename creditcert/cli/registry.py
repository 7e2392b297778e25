"""Commands about the issuance registry on PostgreSQL (docs/scale-out.md): migrate its schema,
copy a city's SQLite registry into it."""

from __future__ import annotations

from typing import Annotated

import typer

from creditcert.cli.base import HomeOpt, JsonOpt, group, open_city, out, print_json

registry_app = group("registry", "The issuance registry on PostgreSQL: migrate, copy.")

MIGRATE_FORMAT = "creditcert.registry-migrate/1"


@registry_app.command("migrate")
def registry_migrate(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Apply the pending schema migrations to the PostgreSQL registry of [registry] url
    (idempotent; safe to run from several instances at once) and print its schema version."""
    city = open_city(home)
    before, after = city.migrate_registry()
    if as_json:
        print_json({"format": MIGRATE_FORMAT, "schema_before": before, "schema_version": after})
    elif before == after:
        out.print(f"registry schema at version {after}: nothing to migrate")
    else:
        out.print(f"registry schema migrated from version {before} to {after}")


@registry_app.command("copy")
def registry_copy(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The PostgreSQL registry, postgresql://user@host:port/db (password from "
            "PGPASSWORD or ~/.pgpass).",
            show_default=False,
        ),
    ],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy every row of this home's registry.sqlite into a PostgreSQL registry (migrated
    first) and check each; run again, it copies nothing. Then set [registry] url."""
    copied = open_city(home).copy_registry(to)
    if as_json:
        print_json(copied.to_json())
        return
    out.print(
        f"{copied.copied} row(s) copied, {copied.already} already there and the same, "
        f"to {copied.target} (schema version {copied.schema_version})",
        markup=False,
    )
