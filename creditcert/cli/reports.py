"""Commands about one subject's report: lookup, report, verify, revoke."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from creditcert.city import City
from creditcert.cli.base import (
    HomeOpt,
    JsonOpt,
    app,
    fail,
    now,
    open_city,
    out,
    parse_date,
    parse_time,
    print_json,
    read_input,
    today,
)
from creditcert.cli.render import print_findings, print_verification
from creditcert.files import write_atomically
from creditcert.lookup import Request
from creditcert.verify.verifier import InputKind

# What a lookup or a report asks for: one subject, domains (preset, list or all), a period.
CodeArg = Annotated[str, typer.Argument(help="The subject's unified social credit code.")]
PurposeOpt = Annotated[str | None, typer.Option(help="A purpose preset (purposes list).")]
DomainsOpt = Annotated[str | None, typer.Option(help="Comma-separated domain codes.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every domain of the catalog.")]
YearsOpt = Annotated[int | None, typer.Option(help="Look back N years (1-5).")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Period start, YYYY-MM-DD.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Period end, YYYY-MM-DD.")]
AsOfOpt = Annotated[str | None, typer.Option(help="Answer as of this day (default today).")]


def _request(city: City, purpose, domains, all_domains, years, start, end, as_of) -> Request:
    return city.request(
        as_of=parse_date(as_of, "--as-of") if as_of else today(),
        purpose=purpose,
        domains=[d.strip() for d in domains.split(",") if d.strip()] if domains else None,
        all_domains=all_domains,
        years=years,
        start=parse_date(start, "--from") if start else None,
        end=parse_date(end, "--to") if end else None,
    )


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
    city = open_city(home)
    findings = city.lookup(
        code, _request(city, purpose, domains, all_domains, years, start, end, as_of)
    )
    if as_json:
        print_json(findings.to_json())
    else:
        print_findings(out, findings)


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
    city = open_city(home)
    request = _request(city, purpose, domains, all_domains, years, start, end, as_of)
    issued = city.issue(code, request, at=now(), lang=lang)
    doc = issued.document
    target = out_file or city.layout.reports / f"{doc.number}.pdf"
    write_atomically(target, issued.pdf)
    if json_file:
        write_atomically(
            json_file, json.dumps(doc.to_data(), ensure_ascii=False, indent=2).encode()
        )
    out.print(
        f"issued {doc.number} for {doc.subject_name} ({doc.subject_code}): "
        f"{len(doc.domains)} domains, {doc.clean_count} clean, {doc.records_count} record(s)"
    )
    out.print(
        f"  {target} ({len(issued.pdf):,} bytes, valid until {doc.valid_until:%Y-%m-%d %H:%M})",
        markup=False,
    )
    out.print(f"  QR payload {len(issued.qr.text)} characters")


@app.command()
def revoke(
    number: Annotated[str, typer.Argument(help="The report number to revoke.")],
    reason: Annotated[str, typer.Option(help="Why (recorded with the revocation).")],
    home: HomeOpt = None,
) -> None:
    """Revoke an issued report: verification rejects it from now on (the record stays)."""
    entry = open_city(home).revoke(number, reason=reason, at=now())
    out.print(f"revoked {entry.number} ({entry.subject_code}): {reason}", markup=False)


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
    given = [x for x in (file, qr, number) if x is not None]
    if len(given) != 1:
        fail("give exactly one of FILE, --qr TEXT or --number N")
    when = parse_time(at, "--at") if at else now()
    city = open_city(home)
    if file is not None:
        result = city.verify(read_input(file), at=when)
    elif qr is not None:
        result = city.verify(qr, at=when, kind=InputKind.QR)
    else:
        result = city.verify(number, at=when, kind=InputKind.NUMBER)
    if as_json:
        print_json(result.to_json())
    else:
        print_verification(out, result)
    raise typer.Exit(result.verdict.exit_code)
