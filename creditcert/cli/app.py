"""The `creditcert` command: parse, make one library call, render, set the exit code.

Exit codes: 0 success, 1 a negative answer (an invalid code, rows quarantined), 2 usage or input
error (the library's CreditcertError).
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import typer.core
from rich.console import Console
from rich.table import Table

from creditcert import config as config_mod
from creditcert.errors import CreditcertError
from creditcert.model.clock import SHANGHAI
from creditcert.rules import codes as codes_mod


class _CleanErrors(typer.core.TyperGroup):
    """Library errors become one clean line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CreditcertError as exc:
            err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_CleanErrors,
    help="creditcert: special credit reports (信用代证) for a city's credit centre.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
code_app = typer.Typer(help="Unified social credit codes (GB 32100-2015).", no_args_is_help=True)
domains_app = typer.Typer(help="The domain catalog.", no_args_is_help=True)
purposes_app = typer.Typer(help="Purpose presets (上市, 招投标, 融资 …).", no_args_is_help=True)
sample_app = typer.Typer(help="Deterministic sample data for a city.", no_args_is_help=True)
data_app = typer.Typer(help="The city's datasets and their index.", no_args_is_help=True)
register_app = typer.Typer(help="The subject register.", no_args_is_help=True)
keys_app = typer.Typer(help="The city's signing keys (root and signers).", no_args_is_help=True)
partner_app = typer.Typer(
    help="Partner cities' bundles (keys, catalog, revocations).", no_args_is_help=True
)
agreement_app = typer.Typer(
    help="Mutual-recognition agreements with partners.", no_args_is_help=True
)
app.add_typer(code_app, name="code")
app.add_typer(domains_app, name="domains")
app.add_typer(purposes_app, name="purposes")
app.add_typer(sample_app, name="sample")
app.add_typer(data_app, name="data")
app.add_typer(register_app, name="register")
app.add_typer(keys_app, name="keys")
app.add_typer(partner_app, name="partner")
app.add_typer(agreement_app, name="agreement")

# Piped output is read by scripts and people alike: keep it wide rather than wrapped at 80.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="The city's home directory (holds creditcert.toml; default $CREDITCERT_HOME or .).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print stable JSON instead of a table.")]
# What a lookup or a report asks for: one subject, domains (preset, list or all), a period.
CodeArg = Annotated[str, typer.Argument(help="The subject's unified social credit code.")]
PurposeOpt = Annotated[str | None, typer.Option(help="A purpose preset (purposes list).")]
DomainsOpt = Annotated[str | None, typer.Option(help="Comma-separated domain codes.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every domain of the catalog.")]
YearsOpt = Annotated[int | None, typer.Option(help="Look back N years (1-5).")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Period start, YYYY-MM-DD.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Period end, YYYY-MM-DD.")]
AsOfOpt = Annotated[str | None, typer.Option(help="Answer as of this day (default today).")]


@app.callback()
def _global(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="The city's home directory, for every command that follows."),
    ] = None,
) -> None:
    """creditcert: special credit reports (信用代证) for a city's credit centre."""
    global _global_home  # `creditcert --home DIR lookup …` works like `lookup … --home DIR`
    _global_home = home


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def _print_json(value: object) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def _today() -> date:
    return datetime.now(SHANGHAI).date()


_global_home: Path | None = None


def _settings(home: Path | None) -> config_mod.Settings:
    return config_mod.load(home or _global_home)


@app.command()
def init(
    city: Annotated[str, typer.Option(help="6-digit GB/T 2260 code of the city, e.g. 210100.")],
    name: Annotated[str, typer.Option(help="The city's name, e.g. 沈阳市.")],
    name_en: Annotated[str, typer.Option(help="English name, e.g. Shenyang.")] = "",
    home: HomeOpt = None,
) -> None:
    """Create a city's home: a commented creditcert.toml and a copy of the default catalog."""
    root = config_mod.resolve_home(home or _global_home)
    path = config_mod.init(root, admin_code=city, name=name, name_en=name_en)
    out.print(f"wrote {path}")
    out.print(f"wrote {root / 'catalog.toml'} (the default 52-domain catalog; edit to suit)")
    out.print(f"next: creditcert --home {root} sample generate   (or … ingest)")


@code_app.command("check")
def code_check(
    codes: Annotated[list[str], typer.Argument(help="Credit codes to check.")],
    as_json: JsonOpt = False,
) -> None:
    """Is each code a well-formed GB 32100 code? Exit 0 when all are, 1 otherwise."""
    results = [codes_mod.validate(c) for c in codes]
    if as_json:
        _print_json(
            [
                {
                    "input": r.raw,
                    "code": r.code,
                    "valid": r.well_formed,
                    "entity_type": r.entity_type,
                    "problems": [{"reason": p.reason, "message": p.message} for p in r.problems],
                }
                for r in results
            ]
        )
    else:
        for r in results:
            out.print(f"{r.code} valid" if r.well_formed else f"{r.code} invalid: {r.describe()}")
    raise typer.Exit(0 if all(r.well_formed for r in results) else 1)


@domains_app.command("list")
def domains_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The domains of the city's catalog with their counting rules."""
    catalog = _settings(home).catalog
    if as_json:
        _print_json(
            {
                "id": catalog.id,
                "version": catalog.version,
                "digest": catalog.digest,
                "domains": [_domain_json(d) for d in catalog.domains],
            }
        )
        return
    table = Table(title=f"{catalog.zh} · {catalog.id} {catalog.version}")
    for col in ("#", "code", "领域", "domain", "department", "kinds", "tiers", "threshold"):
        table.add_column(col)
    for i, d in enumerate(catalog.domains, 1):
        r = d.rules
        table.add_row(
            str(i),
            d.code,
            d.zh,
            d.en,
            d.department,
            ",".join(r.kinds),
            ",".join(r.tiers),
            f"{r.fine_threshold}" if r.fine_threshold else "-",
        )
    out.print(table)
    out.print(f"digest {catalog.digest}")


def _domain_json(d) -> dict:
    r = d.rules
    return {
        "code": d.code,
        "zh": d.zh,
        "en": d.en,
        "department": d.department,
        "dataset": d.dataset,
        "rules": {
            "kinds": list(r.kinds),
            "tiers": list(r.tiers),
            "excluded_when_alone": list(r.excluded_when_alone),
            "fine_threshold": r.fine_threshold,
            "window_years": r.window_years,
            "omit_after_publicity": r.omit_after_publicity,
        },
    }


@domains_app.command("show")
def domains_show(code: str, home: HomeOpt = None) -> None:
    """One domain and its counting rules."""
    _print_json(_domain_json(_settings(home).catalog.domain(code)))


@domains_app.command("validate")
def domains_validate(path: Path) -> None:
    """Check a catalog file; prints its id, version and digest, or the first problem found."""
    from creditcert.rules import catalog as catalog_mod

    c = catalog_mod.load(path)
    out.print(
        f"{path}: ok — {c.id} {c.version}, {len(c.domains)} domains, "
        f"{len(c.purposes)} purposes, {c.digest}"
    )


@purposes_app.command("list")
def purposes_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Purpose presets: domains, default look-back and validity."""
    catalog = _settings(home).catalog
    if as_json:
        from creditcert.rules.catalog import purpose_json

        _print_json([purpose_json(p) for p in catalog.purposes])
        return
    table = Table()
    for col in ("code", "用途", "purpose", "domains", "years", "valid days"):
        table.add_column(col)
    for p in catalog.purposes:
        table.add_row(p.code, p.zh, p.en, str(len(p.domains)), str(p.years), str(p.validity_days))
    out.print(table)


@app.command()
def lookup(
    code: CodeArg,
    purpose: PurposeOpt = None,
    domains: DomainsOpt = None,
    all_domains: AllOpt = False,
    years: YearsOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    as_of: AsOfOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the subject's public credit record holds, domain by domain, for a period."""
    from creditcert import lookup as records
    from creditcert.cli.render import print_findings
    from creditcert.data.store import Store

    settings = _settings(home)
    request = _request(settings, purpose, domains, all_domains, years, start, end, as_of)
    with Store(settings.data_dir, settings.catalog) as store:
        findings = records.lookup(store, settings, code, request)
    if as_json:
        _print_json(findings.to_json())
    else:
        print_findings(out, findings)


def _key_store(settings: config_mod.Settings):
    from creditcert.trust.keys import KeyStore

    return KeyStore(settings.home / "keys", settings.issuer.admin_code, settings.issuer.name)


@keys_app.command("init")
def keys_init(home: HomeOpt = None) -> None:
    """Create the city root (self-signed, P-256) and a first signing key it certifies."""
    info = _key_store(_settings(home)).init(datetime.now(SHANGHAI))
    out.print(f"created root and signing key {info.kid} (valid to {info.not_after:%Y-%m-%d})")
    out.print("private keys are 0600 files under keys/; keep root.key offline in production")


@keys_app.command("rotate")
def keys_rotate(home: HomeOpt = None) -> None:
    """Certify a new signing key; new reports use it, old reports stay verifiable."""
    info = _key_store(_settings(home)).rotate(datetime.now(SHANGHAI))
    out.print(f"new signing key {info.kid} (valid to {info.not_after:%Y-%m-%d}) is current")


@keys_app.command("list")
def keys_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Key ids, validity and SHA-256 fingerprints (never the private keys)."""
    infos = _key_store(_settings(home)).list()
    if as_json:
        _print_json(
            [
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
            ]
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


@app.command()
def report(
    code: CodeArg,
    purpose: PurposeOpt = None,
    domains: DomainsOpt = None,
    all_domains: AllOpt = False,
    years: YearsOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    as_of: AsOfOpt = None,
    lang: Annotated[str, typer.Option(help="zh, en or zh-en (bilingual).")] = "zh-en",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="PDF to write (default reports/<number>.pdf).")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the document as JSON here.")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Issue a signed special credit report: PDF/A-3 with PAdES signature and a QR on every page."""
    from creditcert.data.store import Store
    from creditcert.issue import issuer as issue
    from creditcert.issue import pades
    from creditcert.issue.render import Renderer
    from creditcert.registry import SqliteRegistry

    settings = _settings(home)
    now = datetime.now(SHANGHAI)
    signer = _key_store(settings).signer(now)  # a missing key fails before any work
    renderer = Renderer()  # so does a missing CJK font
    request = _request(settings, purpose, domains, all_domains, years, start, end, as_of)

    def render(doc, qr_text, envelope):
        return pades.sign_pdf(renderer.render(doc, qr_text, envelope, lang), signer)

    registry = SqliteRegistry(settings.home / "registry.sqlite")
    try:
        with Store(settings.data_dir, settings.catalog) as store:
            issued = issue.issue_report(
                store, settings, signer, registry, code, request, now=now, render=render
            )
    finally:
        registry.close()
    doc = issued.document
    target = out_file or settings.home / "reports" / f"{doc.number}.pdf"
    _write_atomically(target, issued.pdf)
    if json_file:
        _write_atomically(
            json_file, json.dumps(doc.to_data(), ensure_ascii=False, indent=2).encode()
        )
    out.print(
        f"issued {doc.number} for {doc.subject_name} ({doc.subject_code}): "
        f"{len(doc.domains)} domains, {doc.clean_count} clean, {doc.records_count} record(s)"
    )
    out.print(
        f"  {target} ({len(issued.pdf):,} bytes, valid until {doc.valid_until:%Y-%m-%d %H:%M})"
    )
    out.print(f"  QR payload {len(issued.qr.text)} characters")


@partner_app.command("export")
def partner_export(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write our bundle (.cose).")],
    home: HomeOpt = None,
) -> None:
    """Write our signed bundle for partners: root and signing certificates, catalog, revocations."""
    from creditcert.registry import SqliteRegistry
    from creditcert.trust.partners import export_bundle

    settings = _settings(home)
    keys = _key_store(settings)
    now = datetime.now(SHANGHAI)
    registry = SqliteRegistry(settings.home / "registry.sqlite")
    try:
        data = export_bundle(settings, keys, registry, now=now, sequence=int(now.timestamp()))
    finally:
        registry.close()
    _write_atomically(out_file, data)
    from creditcert.trust.keys import fingerprint

    out.print(f"wrote {out_file} ({len(data):,} bytes)")
    out.print(f"partners pin our root: {fingerprint(keys.root())}")


@partner_app.command("import")
def partner_import(
    file: Annotated[Path, typer.Argument(help="A partner's bundle (.cose).")],
    fingerprint: Annotated[
        str | None, typer.Option(help="SHA-256 of the partner's root, learned out of band.")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Import or update a partner's bundle, checked against its pinned root."""
    from creditcert.trust.partners import PartnerStore

    settings = _settings(home)
    bundle = PartnerStore(settings.home, settings.catalog).import_bundle(
        file.read_bytes(), pin=fingerprint, now=datetime.now(SHANGHAI)
    )
    out.print(
        f"imported {bundle.name} ({bundle.issuer_code}) sequence {bundle.sequence}: "
        f"{len(bundle.signers)} signing key(s), catalog {bundle.catalog.id} "
        f"{bundle.catalog.version} ({len(bundle.catalog.domains)} domains), "
        f"{len(bundle.revoked)} revoked, valid to {bundle.expires_at:%Y-%m-%d}"
    )


@partner_app.command("list")
def partner_list(home: HomeOpt = None) -> None:
    """Partners whose bundles we hold, and our agreements with them."""
    from creditcert.trust.partners import PartnerError, PartnerStore

    settings = _settings(home)
    store = PartnerStore(settings.home, settings.catalog)
    now = datetime.now(SHANGHAI)
    for code in store.codes():
        try:
            b = store.bundle(code, now=now)
            agreement = store.agreement(code, b.catalog)
            terms = (
                (
                    f"agreement {agreement.start} to {agreement.end}, "
                    f"{len(agreement.mapping)} domains mapped"
                )
                if agreement
                else "no agreement"
            )
            out.print(
                f"{code} {b.name}: bundle {b.sequence} valid to {b.expires_at:%Y-%m-%d}; {terms}"
            )
        except PartnerError as exc:
            out.print(f"{code}: {exc}")


@agreement_app.command("add")
def agreement_add(
    file: Annotated[Path, typer.Argument(help="Agreement file (TOML, docs/partners.md).")],
    home: HomeOpt = None,
) -> None:
    """Record an agreement; both catalogs are checked for every code it maps."""
    from creditcert.trust.partners import PartnerStore

    settings = _settings(home)
    agreement = PartnerStore(settings.home, settings.catalog).add_agreement(
        file.read_text(encoding="utf-8"), source=str(file), now=datetime.now(SHANGHAI)
    )
    out.print(
        f"agreement with {agreement.partner}: {agreement.start} to {agreement.end}, "
        f"{len(agreement.mapping)} domains mapped"
    )


@agreement_app.command("list")
def agreement_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Our agreements: partner, dates, how many of its domains we recognise."""
    rows = _agreements(home)
    if as_json:
        _print_json(
            [
                {
                    "partner": a.partner,
                    "start": a.start.isoformat(),
                    "end": a.end.isoformat(),
                    "mapping": a.mapping,
                }
                for a in rows
            ]
        )
        return
    for a in rows:
        out.print(f"{a.partner}: {a.start} to {a.end}, {len(a.mapping)} domains mapped")


@agreement_app.command("show")
def agreement_show(partner: str, home: HomeOpt = None) -> None:
    """One agreement with its domain mapping (theirs → ours)."""
    match = [a for a in _agreements(home) if a.partner == partner]
    if not match:
        _fail(f"no agreement with {partner}")
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
    from creditcert.trust.partners import PartnerStore

    settings = _settings(home)
    day = _date(on, "--on") if on else _today()
    ended = PartnerStore(settings.home, settings.catalog).end_agreement(
        partner, on=day, now=datetime.now(SHANGHAI)
    )
    out.print(f"agreement with {ended.partner} now ends {ended.end}")


def _agreements(home):
    from creditcert.trust.partners import PartnerError, PartnerStore

    settings = _settings(home)
    store = PartnerStore(settings.home, settings.catalog)
    found = []
    for code in store.codes():
        try:
            bundle = store.bundle(code, now=datetime.now(SHANGHAI), check_time=False)
            agreement = store.agreement(code, bundle.catalog) if bundle else None
        except PartnerError:
            continue
        if agreement:
            found.append(agreement)
    return found


@app.command()
def revoke(
    number: Annotated[str, typer.Argument(help="The report number to revoke.")],
    reason: Annotated[str, typer.Option(help="Why (recorded with the revocation).")],
    home: HomeOpt = None,
) -> None:
    """Revoke an issued report: verification rejects it from now on (the record stays)."""
    from creditcert.model import report_number as numbers
    from creditcert.registry import SqliteRegistry

    canonical = numbers.parse(number)
    if canonical is None:
        _fail(f"{number!r} is not a report number (shape or check character wrong)")
    settings = _settings(home)
    registry = SqliteRegistry(settings.home / "registry.sqlite")
    try:
        entry = registry.revoke(canonical, reason=reason, at=datetime.now(SHANGHAI))
    finally:
        registry.close()
    out.print(f"revoked {entry.number} ({entry.subject_code}): {reason}")


@app.command()
def verify(
    file: Annotated[
        Path | None, typer.Argument(help="A report PDF, or a photo/scan (PNG, JPEG).")
    ] = None,
    qr: Annotated[
        str | None, typer.Option("--qr", help="The text a phone read from the QR.")
    ] = None,
    number: Annotated[str | None, typer.Option("--number", help="A typed report number.")] = None,
    at: Annotated[
        str | None, typer.Option(help="Check validity at this time (default now), ISO 8601.")
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a report. Exit 0 accepted (fully or for some domains), 1 rejected, 2 usage, 3 cannot decide."""
    from creditcert.registry import SqliteRegistry
    from creditcert.verify import verifier as verify_mod

    given = [x for x in (file, qr, number) if x is not None]
    if len(given) != 1:
        _fail("give exactly one of FILE, --qr TEXT or --number N")
    when = datetime.now(SHANGHAI)
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            _fail(f"--at: {at!r} is not an ISO 8601 time like 2026-07-01T12:00+08:00")
        if when.tzinfo is None:
            when = when.replace(tzinfo=SHANGHAI)
    settings = _settings(home)
    registry = SqliteRegistry(settings.home / "registry.sqlite")
    try:
        trust = verify_mod.trust_from_home(settings, registry, now=when)
        if qr is not None:
            result = verify_mod.verify_qr_text(qr, trust, at=when)
        elif number is not None:
            result = verify_mod.verify_number(number, trust)
        else:
            try:
                data = file.read_bytes()
            except OSError as exc:
                _fail(f"{file}: cannot read ({exc.strerror})")
            if data.startswith(b"%PDF-") or file.suffix.lower() == ".pdf":
                result = verify_mod.verify_pdf(data, trust, at=when)
            else:
                result = verify_mod.verify_image(data, trust, at=when)
    finally:
        registry.close()
    if as_json:
        _print_json(result.to_json())
    else:
        colour = {"accepted": "green", "rejected": "red"}.get(result.verdict.value, "yellow")
        out.print(f"[bold {colour}]{result.verdict.value.upper()}[/]  {result.number or ''}")
        for c in result.checks:
            mark = {"passed": "✓", "failed": "✗", "indeterminate": "?", "skipped": "-"}[
                c.status.value
            ]
            out.print(f"  {mark} {c.step:<28} {c.reason:<22} {c.message}", markup=False)
        doc = result.document
        if doc is not None:
            out.print(
                f"  signed content: {doc.subject_name} ({doc.subject_code}), "
                f"{len(doc.domains)} domains, {doc.records_count} record(s), "
                f"issued {doc.issued_at:%Y-%m-%d %H:%M}, valid until {doc.valid_until:%Y-%m-%d}"
            )
        elif result.summary:
            s = result.summary
            out.print(
                f"  signed summary: {s['sn']} ({s['sc']}), period {s['pf']} – {s['pt']}, "
                f"{len(s['dc'])} domains, {sum(s['dc'])} record(s)"
            )
    # accepted-for-some-domains is an acceptance too (exit 0): the verdict and scope say which
    exit_codes = {"accepted": 0, "accepted-for-some-domains": 0, "rejected": 1}
    raise typer.Exit(exit_codes.get(result.verdict.value, 3))


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _request(settings, purpose, domains, all_domains, years, start, end, as_of):
    from creditcert import lookup as records

    return records.resolve_request(
        settings.catalog,
        as_of=_date(as_of, "--as-of") if as_of else _today(),
        purpose=purpose,
        domains=[d.strip() for d in domains.split(",") if d.strip()] if domains else None,
        all_domains=all_domains,
        years=years,
        start=_date(start, "--from") if start else None,
        end=_date(end, "--to") if end else None,
    )


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{option}: {text!r} is not a date like 2025-06-30")


@sample_app.command("generate")
def sample_generate(
    subjects: Annotated[int, typer.Option(help="Subjects in the register.")] = 20_000,
    records: Annotated[int, typer.Option(help="Violation records over all domains.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 2025,
    as_of: Annotated[
        str | None, typer.Option(help="Data current as of (default yesterday).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Data directory (default: the city's).")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Write a realistic, deterministic city: register and all domain datasets."""
    import time

    from creditcert.data import sample

    if subjects < 1 or records < 0:
        _fail("--subjects must be at least 1 and --records not negative")
    settings = _settings(home)
    day = _date(as_of, "--as-of") if as_of else sample.default_as_of(datetime.now(SHANGHAI))
    started = time.perf_counter()
    summary = sample.generate(
        (out_dir or settings.data_dir).resolve(),
        settings.catalog,
        settings.issuer,
        subjects=subjects,
        records=records,
        seed=seed,
        as_of=day,
    )
    out.print(
        f"wrote {summary.subjects:,} subjects and {summary.records:,} records in "
        f"{len(summary.per_domain)} domain datasets to {summary.data_dir} "
        f"({time.perf_counter() - started:.1f} s)"
    )


@sample_app.command("subjects")
def sample_subjects(
    clean: Annotated[
        bool, typer.Option("--clean", help="Only subjects without any record.")
    ] = False,
    with_records: Annotated[
        bool, typer.Option("--with-records", help="Only subjects with records.")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most N codes.")] = 10,
    home: HomeOpt = None,
) -> None:
    """Print registered credit codes, one per line."""
    from creditcert.data.store import Store

    if clean and with_records:
        _fail("choose --clean or --with-records, not both")
    settings = _settings(home)
    which = True if with_records else False if clean else None
    with Store(settings.data_dir, settings.catalog) as store:
        for c in store.subject_codes(with_records=which, limit=limit):
            out.print(c)


@sample_app.command("export")
def sample_export(
    domain: Annotated[str, typer.Option(help="Domain whose department exports.")],
    out_file: Annotated[Path, typer.Option("--out", help="CSV or .xlsx file to write.")],
    rows: Annotated[int, typer.Option(help="Data rows.")] = 1000,
    bad_rows: Annotated[int, typer.Option(help="Rows spoiled with a typical fault.")] = 0,
    encoding: Annotated[str, typer.Option(help="CSV encoding: utf-8 or gbk.")] = "utf-8",
    seed: Annotated[int, typer.Option(help="Same seed, same file.")] = 2025,
    home: HomeOpt = None,
) -> None:
    """Write a department's penalty export (双公示 columns) of new records, to try ingest on."""
    from creditcert.data import sample

    settings = _settings(home)
    n = sample.export_department_file(
        settings.data_dir,
        settings.catalog,
        settings.issuer,
        domain_code=domain,
        rows=rows,
        bad_rows=bad_rows,
        seed=seed,
        as_of=_today(),
        path=out_file,
        encoding=encoding,
    )
    out.print(f"wrote {n:,} rows ({bad_rows} spoiled) to {out_file}")


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="A department export: CSV (UTF-8 or GBK) or .xlsx.")],
    domain: Annotated[str, typer.Option(help="The domain the records belong to.")],
    encoding: Annotated[str | None, typer.Option(help="CSV encoding (default: detect).")] = None,
    kind: Annotated[
        str, typer.Option(help="Record kind when the file has no kind column.")
    ] = "penalty",
    columns: Annotated[
        Path | None, typer.Option(help="Column map (default: the shipped one).")
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate every row; merge good rows into the domain's dataset, quarantine bad ones.

    Exit 0 when every row was accepted or already present, 1 when some were quarantined.
    """
    from creditcert.data.exports import ColumnMap
    from creditcert.data.ingest import ingest_file
    from creditcert.rules.vocab import Kind

    settings = _settings(home)
    try:
        default_kind = Kind(kind)
    except ValueError:
        _fail(f"--kind {kind!r} unknown; allowed: {', '.join(k.value for k in Kind)}")
    result = ingest_file(
        file.resolve(),
        domain_code=domain,
        catalog=settings.catalog,
        data_dir=settings.data_dir,
        quarantine_dir=settings.home / "quarantine",
        now=datetime.now(SHANGHAI),
        encoding=encoding,
        default_kind=default_kind,
        columns=ColumnMap.load(columns) if columns else None,
    )
    if as_json:
        _print_json(result.to_json())
    else:
        out.print(
            f"{file} ({result.encoding}) → {result.domain}: read {result.read:,}, "
            f"accepted {result.accepted:,}, quarantined {result.quarantined:,}, "
            f"already present {result.already_present:,}"
        )
        if result.legacy_codes:
            out.print(
                f"  {result.legacy_codes} accepted row(s) carry a legacy code that fails "
                "its checksum but is registered"
            )
        if result.quarantine_file:
            out.print(f"  quarantine: {result.quarantine_file}")
    raise typer.Exit(1 if result.quarantined else 0)


@register_app.command("import")
def register_import(
    file: Annotated[Path, typer.Argument(help="Register export: CSV (UTF-8 or GBK) or .xlsx.")],
    encoding: Annotated[str | None, typer.Option(help="CSV encoding (default: detect).")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add new subjects and update known ones from a register export; quarantine bad rows."""
    from creditcert.data.subjects import import_register

    settings = _settings(home)
    result = import_register(
        file.resolve(),
        data_dir=settings.data_dir,
        catalog=settings.catalog,
        quarantine_dir=settings.home / "quarantine",
        now=datetime.now(SHANGHAI),
        encoding=encoding,
    )
    if as_json:
        _print_json(result.to_json())
    else:
        out.print(
            f"{file} ({result.encoding}) → register: read {result.read:,}, added {result.added:,}, "
            f"updated {result.updated:,}, unchanged {result.unchanged:,}, "
            f"quarantined {result.quarantined:,}"
        )
        if result.legacy_codes:
            out.print(f"  {result.legacy_codes} legacy code(s) failing a checksum were accepted")
        if result.quarantine_file:
            out.print(f"  quarantine: {result.quarantine_file}")
    raise typer.Exit(1 if result.quarantined else 0)


@data_app.command("reindex")
def data_reindex(home: HomeOpt = None) -> None:
    """Rebuild the lookup index from the Parquet datasets."""
    from creditcert.data.index import rebuild_index

    settings = _settings(home)
    rebuild_index(settings.data_dir, settings.catalog)
    out.print(f"rebuilt {settings.data_dir / 'index.duckdb'}")


@data_app.command("status")
def data_status(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Rows and data cut-off of every domain's dataset."""
    from creditcert.data.store import Store

    settings = _settings(home)
    rows = []
    with Store(settings.data_dir, settings.catalog) as store:
        for d in settings.catalog.domains:
            try:
                info = store.dataset_info(d)
                rows.append((d.code, info.rows, info.data_cutoff.isoformat(), str(info.path)))
            except CreditcertError as exc:
                rows.append((d.code, None, None, str(exc)))
    if as_json:
        _print_json([{"domain": c, "rows": n, "data_cutoff": t, "path": p} for c, n, t, p in rows])
        return
    table = Table()
    for col in ("domain", "rows", "data cut-off", "file"):
        table.add_column(col)
    for c, n, t, p in rows:
        table.add_row(c, f"{n:,}" if n is not None else "-", t or "-", p)
    out.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
