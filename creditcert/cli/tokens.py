"""Commands about the web service's API tokens (docs/service.md)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from creditcert.cli.base import HomeOpt, JsonOpt, err, group, now, open_city, out, print_json

tokens_app = group("tokens", "API tokens for portals calling the web service.")

TOKENS_FORMAT = "creditcert.tokens/1"


@tokens_app.command("add")
def tokens_add(
    name: Annotated[str, typer.Argument(help="The token's name: [a-z0-9][a-z0-9._-]{0,63}.")],
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="What it may do, comma-separated: issue, lookup, verify.",
            show_default=False,
        ),
    ],
    home: HomeOpt = None,
) -> None:
    """Create a token and print its secret, once: only its SHA-256 is kept."""
    scopes = [s.strip() for s in scope.split(",")]
    new = open_city(home).tokens.add(name, scopes, at=now())
    sys.stdout.write(new.secret + "\n")  # stdout holds the secret alone: `> secret.txt` works
    sys.stdout.flush()
    err.print(
        f"token {new.token.name} ({', '.join(new.token.scope_list)}) created; the secret above "
        "is not shown again: give it to the portal now (header `Authorization: Bearer …`)",
        markup=False,
    )


@tokens_app.command("list")
def tokens_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Names, scopes, creation and revocation times (never a secret or its digest)."""
    tokens = open_city(home).tokens.list()
    if as_json:
        print_json(
            {
                "format": TOKENS_FORMAT,
                "tokens": [
                    {
                        "name": t.name,
                        "scopes": t.scope_list,
                        "created_at": t.created_at.isoformat(),
                        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                    }
                    for t in tokens
                ],
            }
        )
        return
    if not tokens:
        out.print("no tokens; add one with `creditcert tokens add NAME --scope …`", markup=False)
        return
    table = Table()
    for col in ("name", "scopes", "created", "revoked"):
        table.add_column(col)
    for t in tokens:
        table.add_row(
            t.name,
            ",".join(t.scope_list),
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
        )
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="The token's name (creditcert tokens list).")],
    home: HomeOpt = None,
) -> None:
    """Revoke a token: the service refuses it from now on."""
    token = open_city(home).tokens.revoke(name, at=now())
    out.print(f"token {token.name} revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S}", markup=False)
