"""Commands about whom we trust: our keys, partners' bundles, agreements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditcert.cli.base import (
    HomeOpt,
    JsonOpt,
    group,
    now,
    open_city,
    out,
    parse_date,
    print_json,
    read_input,
    today,
)
from creditcert.cli.render import print_verification
from creditcert.files import write_atomically
from creditcert.trust.keys import fingerprint

keys_app = group("keys", "The city's signing keys (root and signers).")
partner_app = group("partner", "Partner cities' bundles (keys, catalog, revocations).")
agreement_app = group("agreement", "Mutual-recognition agreements with partners.")

KEYS_FORMAT = "creditcert.keys/1"
AGREEMENTS_FORMAT = "creditcert.agreements/1"
PARTNERS_FORMAT = "creditcert.partners/1"


@keys_app.command("init")
def keys_init(home: HomeOpt = None) -> None:
    """Create the city root (self-signed, P-256) and a first signing key it certifies."""
    info = open_city(home).keys.init(now())
    out.print(f"created root and signing key {info.kid} (valid to {info.not_after:%Y-%m-%d})")
    out.print("private keys are 0600 files under keys/; keep root.key offline in production")


@keys_app.command("rotate")
def keys_rotate(home: HomeOpt = None) -> None:
    """Certify a new signing key; new reports use it, old reports stay verifiable."""
    info = open_city(home).keys.rotate(now())
    out.print(f"new signing key {info.kid} (valid to {info.not_after:%Y-%m-%d}) is current")


@keys_app.command("list")
def keys_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Key ids, validity and SHA-256 fingerprints (never the private keys)."""
    infos = open_city(home).keys.list()
    if as_json:
        print_json(
            {
                "format": KEYS_FORMAT,
                "keys": [
                    {
                        "kid": i.kid,
                        "role": i.role,
                        "current": i.current,
                        "subject": i.subject,
                        "not_before": i.not_before.isoformat(),
                        "not_after": i.not_after.isoformat(),
                        "sha256": i.fingerprint,
                    }
                    for i in infos
                ],
            }
        )
        return
    table = Table()
    for col in ("kid", "role", "valid from", "valid to", "SHA-256 fingerprint"):
        table.add_column(col)
    for i in infos:
        role = f"{i.role} (current)" if i.current else i.role
        table.add_row(
            i.kid, role, f"{i.not_before:%Y-%m-%d}", f"{i.not_after:%Y-%m-%d}", i.fingerprint
        )
    out.print(table)


@partner_app.command("export")
def partner_export(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write our bundle (.cose).")],
    home: HomeOpt = None,
) -> None:
    """Write our signed bundle for partners: root and signing certificates, catalog, revocations."""
    city = open_city(home)
    at = now()
    data = city.export_bundle(at=at, sequence=int(at.timestamp()))
    write_atomically(out_file, data)
    out.print(f"wrote {out_file} ({len(data):,} bytes)", markup=False)
    out.print(f"partners pin our root: {fingerprint(city.keys.root())}")


@partner_app.command("import")
def partner_import(
    file: Annotated[Path, typer.Argument(help="A partner's bundle (.cose).")],
    fingerprint: Annotated[
        str | None, typer.Option(help="SHA-256 of the partner's root, learned out of band.")
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import or update a partner's bundle, checked against its pinned root. Exit 0 imported,
    1 refused (the checks say why)."""
    result = open_city(home).import_bundle(read_input(file), pin=fingerprint, at=now())
    if as_json:
        print_json(result.to_json())
    else:
        print_verification(out, result)
        b = result.bundle
        if result.verdict.accepted and b is not None:
            out.print(
                f"imported {b.name} ({b.issuer_code}) sequence {b.sequence}: "
                f"{len(b.signers)} signing key(s), catalog {b.catalog.id} {b.catalog.version} "
                f"({len(b.catalog.domains)} domains), {len(b.revoked)} revoked, "
                f"valid to {b.expires_at:%Y-%m-%d}",
                markup=False,
            )
    raise typer.Exit(result.verdict.exit_code)


@partner_app.command("list")
def partner_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Partners whose bundles we hold, whether each is usable now, and our agreements."""
    city = open_city(home)
    at = now()
    rows = []
    for code in city.partners.codes():
        stored = city.partners.stored(code, at=at)
        b = stored.bundle
        agreement = city.partners.agreement(code, b.catalog) if b else None
        rows.append((code, b, stored.problem, agreement))
    if as_json:
        print_json(
            {
                "format": PARTNERS_FORMAT,
                "partners": [
                    {
                        "code": code,
                        "bundle": b.to_json() if b else None,
                        "usable": problem is None,
                        "problem": problem,
                        "agreement": _agreement_json(a) if a else None,
                    }
                    for code, b, problem, a in rows
                ],
            }
        )
        return
    for code, b, problem, a in rows:
        name = b.name if b else ""
        state = problem or f"bundle {b.sequence} valid to {b.expires_at:%Y-%m-%d}"
        terms = (
            f"agreement {a.start} to {a.end}, {len(a.mapping)} domains mapped"
            if a
            else "no agreement"
        )
        out.print(f"{code} {name}: {state}; {terms}", markup=False)


def _agreement_json(a) -> dict:
    return {
        "partner": a.partner,
        "start": a.start.isoformat(),
        "end": a.end.isoformat(),
        "mapping": a.mapping,
    }


@agreement_app.command("add")
def agreement_add(
    file: Annotated[Path, typer.Argument(help="Agreement file (TOML, docs/partners.md).")],
    home: HomeOpt = None,
) -> None:
    """Record an agreement; both catalogs are checked for every code it maps."""
    text = read_input(file).decode("utf-8", errors="replace")
    agreement = open_city(home).partners.add_agreement(text, source=str(file), at=now())
    out.print(
        f"agreement with {agreement.partner}: {agreement.start} to {agreement.end}, "
        f"{len(agreement.mapping)} domains mapped"
    )


@agreement_app.command("list")
def agreement_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Our agreements: partner, dates, how many of its domains we recognise."""
    rows = open_city(home).partners.agreements(at=now())
    if as_json:
        print_json({"format": AGREEMENTS_FORMAT, "agreements": [_agreement_json(a) for a in rows]})
        return
    for a in rows:
        out.print(f"{a.partner}: {a.start} to {a.end}, {len(a.mapping)} domains mapped")


@agreement_app.command("show")
def agreement_show(partner: str, home: HomeOpt = None) -> None:
    """One agreement with its domain mapping (theirs → ours)."""
    from creditcert.cli.base import fail

    match = [a for a in open_city(home).partners.agreements(at=now()) if a.partner == partner]
    if not match:
        fail(f"no agreement with {partner}")
    a = match[0]
    out.print(f"{a.partner}: {a.start} to {a.end}")
    for theirs, ours in a.mapping.items():
        out.print(f"  {theirs} → {ours}")


@agreement_app.command("end")
def agreement_end(
    partner: str,
    on: Annotated[str | None, typer.Option(help="Last day (default today).")] = None,
    home: HomeOpt = None,
) -> None:
    """End an agreement: reports issued after that day are no longer recognised."""
    day = parse_date(on, "--on") if on else today()
    ended = open_city(home).partners.end_agreement(partner, on=day, at=now())
    out.print(f"agreement with {ended.partner} now ends {ended.end}")
