"""Commands about whom we trust: our keys, partners' bundles, agreements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditcert.cli.base import (
    HomeOpt,
    JsonOpt,
    err,
    fail,
    group,
    now,
    open_city,
    out,
    parse_date,
    parse_time,
    print_json,
    read_input,
    today,
)
from creditcert.cli.render import print_verification
from creditcert.data.text import visible
from creditcert.errors import DecodeError, PartnerError
from creditcert.files import write_atomically
from creditcert.trust.keys import fingerprint

keys_app = group("keys", "The city's signing keys (root and signers).")
partner_app = group("partner", "Partner cities' bundles (keys, catalog, revocations).")
agreement_app = group("agreement", "Mutual-recognition agreements with partners.")

KEYS_FORMAT = "creditcert.keys/2"
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


@keys_app.command("revoke")
def keys_revoke(
    kid: Annotated[str, typer.Argument(help="The signing key's id (creditcert keys list).")],
    compromised_at: Annotated[
        str,
        typer.Option(
            "--compromised-at",
            help="Earliest time the key may have leaked (ISO 8601; Beijing time if no offset).",
        ),
    ],
    home: HomeOpt = None,
) -> None:
    """Record a signing key as compromised: whatever it signed with a later issue time is
    rejected, here and, once they import our next bundle, by partners."""
    state = open_city(home).keys.revoke(
        kid, compromised_at=parse_time(compromised_at, "--compromised-at"), now=now()
    )
    out.print(
        f"key {kid} compromised since {state.compromised_at.isoformat()}: reports it signed "
        "later are rejected; run `creditcert partner export` and send partners the bundle",
        markup=False,
    )


def _when(value) -> str | None:
    return value.isoformat() if value else None


@keys_app.command("list")
def keys_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Key ids, validity, retirement and SHA-256 fingerprints (never the private keys); a damaged
    key file is listed with its problem."""
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
                        "not_before": _when(i.not_before),
                        "not_after": _when(i.not_after),
                        "sha256": i.fingerprint,
                        "retired_at": _when(i.state.retired_at),
                        "compromised_at": _when(i.state.compromised_at),
                        "problem": i.problem,
                    }
                    for i in infos
                ],
            }
        )
        return
    table = Table()
    for col in ("kid", "role", "valid from", "valid to", "state", "SHA-256 fingerprint"):
        table.add_column(col)
    for i in infos:
        role = f"{i.role} (current)" if i.current else i.role
        if i.problem:
            table.add_row(i.kid or "?", role, "", "", "damaged", i.problem)
            continue
        state = (
            f"compromised {i.state.compromised_at:%Y-%m-%d %H:%M}"
            if i.state.compromised_at
            else f"retired {i.state.retired_at:%Y-%m-%d %H:%M}"
            if i.state.retired_at
            else ""
        )
        table.add_row(
            i.kid,
            role,
            f"{i.not_before:%Y-%m-%d}",
            f"{i.not_after:%Y-%m-%d}",
            state,
            i.fingerprint,
        )
    out.print(table)


@partner_app.command("export")
def partner_export(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write our bundle (.cose).")],
    home: HomeOpt = None,
) -> None:
    """Write our signed bundle for partners: root and signing certificates with their retirement
    and compromise, catalog, revocations; its sequence is the next of our bundle counter."""
    city = open_city(home)
    data = city.export_bundle(at=now())
    write_atomically(out_file, data)
    out.print(f"wrote {out_file} ({len(data):,} bytes)", markup=False)
    for info in city.keys.list():
        if info.problem and info.role == "signer":
            err.print(f"left out of the bundle: {info.problem}", markup=False)
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
    try:
        result = open_city(home).import_bundle(read_input(file), pin=fingerprint, at=now())
    except PartnerError as exc:
        fail(f"{file}: {exc}")
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


@partner_app.command("add")
def partner_add(
    code: Annotated[str, typer.Argument(help="The partner's 6-digit city code.")],
    url: Annotated[str, typer.Option(help="Base URL of the partner's service.")],
    fingerprint: Annotated[
        str, typer.Option(help="SHA-256 of the partner's root, learned out of band.")
    ],
    home: HomeOpt = None,
) -> None:
    """Record where a partner's service publishes its bundle (`partner sync` fetches it)."""
    try:
        open_city(home).add_partner(code, url=url, pin=fingerprint)
    except PartnerError as exc:
        fail(str(exc))
    out.print(
        f"partner {code}: {url.rstrip('/')} (root pinned); next: creditcert partner sync",
        markup=False,
    )


@partner_app.command("sync")
def partner_sync(
    codes: Annotated[
        list[str] | None, typer.Argument(help="Partner codes (default: every partner).")
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch partners' bundles from their services (conditional requests; every import check
    applies; a bad or unreachable answer keeps the bundle held). Exit 0 all fetched or
    unchanged, 1 some refused or unreachable."""
    results = open_city(home).sync_partners(codes, at=now())
    if as_json:
        print_json(
            {
                "format": "creditcert.partner-sync/1",
                "partners": [
                    {"code": r.code, "status": r.status, "message": r.message} for r in results
                ],
            }
        )
    else:
        for r in results:
            out.print(f"{r.code}  {r.status:<11} {visible(r.message)}", markup=False)
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@partner_app.command("apply")
def partner_apply(
    code: Annotated[str, typer.Argument(help="Credit code of an enterprise a partner registers.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the report's PDF.")],
    domain: Annotated[
        list[str] | None,
        typer.Option(help="The partner's domain code (repeat; default: every agreed domain)."),
    ] = None,
    years: Annotated[int, typer.Option(min=1, max=5, help="Years the report covers.")] = 3,
    lang: Annotated[str, typer.Option(help="zh, en or zh-en.")] = "zh-en",
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remote application (异地申请): ask the partner city that registers the enterprise to issue
    its report, signed with our key; the report it returns is verified here, kept and written."""
    try:
        got = open_city(home).applications.apply_remote(
            code, clock=now, domains=domain, years=years, lang=lang
        )
    except (PartnerError, DecodeError) as exc:
        fail(str(exc))
    write_atomically(out_file, got.pdf)
    if as_json:
        print_json(
            {
                "format": "creditcert.remote-report/1",
                "partner": got.partner,
                "number": got.number,
                "path": str(out_file),
                "verification": got.verification.to_json(),
            }
        )
        return
    out.print(
        f"{got.number} issued by {got.partner}, verified here: {got.verification.summary()}",
        markup=False,
    )
    out.print(f"written to {out_file}", markup=False)


@partner_app.command("list")
def partner_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Partners whose bundles we hold, whether each is usable now, and our agreements."""
    partners = open_city(home).partners
    rows = [
        (stored.code, stored.bundle, stored.problem or problem, agreement)
        for stored, agreement, problem in partners.listing(at=now())
    ]
    synced = {code: partners.sync_state(code) for code, *_ in rows}
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
                        "sync": _sync_json(synced[code]),
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
        sync = synced[code]
        if sync is not None:
            good = f"last good sync {sync.ok_at}" if sync.ok_at else "never synced"
            stale = (
                f"; stale since {sync.failing_since}: {sync.problem}" if sync.failing_since else ""
            )
            out.print(f"    {sync.url}: {good}{visible(stale)}", markup=False)


def _sync_json(sync) -> dict | None:
    if sync is None:
        return None
    return {
        "url": sync.url,
        "last_good_sync": sync.ok_at,
        "stale_since": sync.failing_since,
        "last_failure": sync.failed_at,
        "problem": sync.problem,
    }


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
    rows, damaged = open_city(home).partners.agreements(at=now())
    if as_json:
        print_json(
            {
                "format": AGREEMENTS_FORMAT,
                "agreements": [_agreement_json(a) for a in rows],
                "damaged": [{"partner": c, "problem": p} for c, p in sorted(damaged.items())],
            }
        )
        return
    for a in rows:
        out.print(f"{a.partner}: {a.start} to {a.end}, {len(a.mapping)} domains mapped")
    for code, problem in sorted(damaged.items()):
        out.print(f"{code}: damaged: {visible(problem)}", markup=False)


@agreement_app.command("show")
def agreement_show(partner: str, home: HomeOpt = None) -> None:
    """One agreement with its domain mapping (theirs → ours)."""
    rows, damaged = open_city(home).partners.agreements(at=now())
    if partner in damaged:
        fail(damaged[partner])
    match = [a for a in rows if a.partner == partner]
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
