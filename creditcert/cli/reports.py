"""Commands about one subject's report: lookup, report (issue, get), verify, revoke."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from creditcert.city import City
from creditcert.cli.base import (
    HomeOpt,
    JsonOpt,
    app,
    err,
    fail,
    now,
    open_city,
    out,
    parse_date,
    parse_time,
    print_json,
    read_input,
)
from creditcert.cli.render import print_findings, print_verification
from creditcert.errors import KeyFileError
from creditcert.files import write_atomically
from creditcert.lookup import Request
from creditcert.trust import sync
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
LangOpt = Annotated[str, typer.Option(help="zh, en or zh-en (bilingual).")]


def request_from_flags(
    city: City, at: datetime, purpose, domains, all_domains, years, start, end, as_of
) -> Request:
    """The request the options ask for (dates parsed here; a bad one is one line, exit 2)."""
    return city.request(
        at=at,
        as_of=parse_date(as_of, "--as-of") if as_of else at.date(),  # one clock reading
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
    city, at = open_city(home), now()
    request = request_from_flags(city, at, purpose, domains, all_domains, years, start, end, as_of)
    findings = city.lookup(code, request, at=at)
    if as_json:
        print_json(findings.to_json())
    else:
        print_findings(out, findings)


class _IssueByDefault(typer.core.TyperGroup):
    """`report CODE …` issues (the command it always was); `report get NUMBER` fetches again."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(
    cls=_IssueByDefault,
    no_args_is_help=True,
    help="Issue a report (`report CODE …`, short for `report issue CODE …`) or fetch one again "
    "(`report get NUMBER`).",
)
app.add_typer(report_app, name="report")


@report_app.command("issue")
def report(
    code: CodeArg,
    purpose: PurposeOpt = None,
    domains: DomainsOpt = None,
    all_domains: AllOpt = False,
    years: YearsOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    as_of: AsOfOpt = None,
    lang: LangOpt = "zh-en",
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Also copy the PDF here (the city keeps reports/<number>.pdf)."),
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the document as JSON here.")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Issue a signed special credit report: PDF/A-3 with PAdES signature and a QR on every page."""
    city, at = open_city(home), now()
    request = request_from_flags(city, at, purpose, domains, all_domains, years, start, end, as_of)
    issued = city.issue(code, request, at=at, lang=lang)
    doc = issued.document
    _copy(out_file, issued.pdf, doc.number)
    if json_file:
        data = json.dumps(doc.to_data(), ensure_ascii=False, indent=2).encode()
        _copy(json_file, data, doc.number)
    out.print(
        f"issued {doc.number} for {doc.subject_name} ({doc.subject_code}): "
        f"{len(doc.domains)} domains, {doc.clean_count} clean, {doc.records_count} record(s)"
    )
    if doc.clipped_to_data_cutoff:
        out.print(
            f"  period {doc.period.start} – {doc.period.end}: asked to {doc.requested.end}, "
            f"clipped to the data cut-off {doc.data_cutoff:%Y-%m-%d %H:%M}"
        )
    out.print(
        f"  {out_file or issued.path} ({len(issued.pdf):,} bytes, "
        f"valid until {doc.valid_until:%Y-%m-%d %H:%M})",
        markup=False,
    )
    out.print(f"  QR payload {len(issued.qr.text)} characters")


@report_app.command("get")
def report_get(
    number: Annotated[str, typer.Argument(help="The report number.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Where to write the PDF (default ./<number>.pdf).")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Fetch an issued report's PDF again, as the city kept it, while the report is valid."""
    entry, pdf = open_city(home).report_pdf(number, at=now())
    target = out_file or Path(f"{entry.number}.pdf")
    _copy(target, pdf, entry.number)
    out.print(
        f"{entry.number} ({entry.subject_code}, valid until {entry.valid_until:%Y-%m-%d %H:%M}): "
        f"{target} ({len(pdf):,} bytes)",
        markup=False,
    )


def _copy(target: Path | None, data: bytes, number: str) -> None:
    """Write a copy of an issued report's file; the report stays issued if this fails."""
    if target is None:
        return
    try:
        write_atomically(target, data)
    except OSError as exc:
        cause = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        fail(
            f"cannot write {target} ({cause}); report {number} is issued and kept: "
            f"fetch it with `creditcert report get {number} --out FILE`"
        )


@app.command()
def revoke(
    number: Annotated[str, typer.Argument(help="The report number to revoke.")],
    reason: Annotated[str, typer.Option(help="Why (recorded with the revocation).")],
    home: HomeOpt = None,
) -> None:
    """Revoke an issued report: verification rejects it from now on (the record stays). With the
    root key at hand, the bundle published for partners is exported again at once, so partners
    syncing from the service refuse the report within their sync interval."""
    city = open_city(home)
    entry = city.revoke(number, reason=reason, at=now())
    out.print(f"revoked {entry.number} ({entry.subject_code}): {reason}", markup=False)
    if not city.layout.published_bundle.exists():
        return  # this city publishes no bundle: partners import the files it sends
    try:
        city.export_bundle(at=now())
    except KeyFileError as exc:
        err.print(
            f"the bundle published for partners does not carry it yet ({exc}): run "
            "`creditcert partner export` with the root key",
            markup=False,
        )
        return
    out.print("the bundle published for partners now carries it", markup=False)


@app.command()
def verify(
    file: Annotated[
        str | None,
        typer.Argument(
            help="A report PDF, a photo/scan (PNG, JPEG), or the URL a phone read from the QR."
        ),
    ] = None,
    qr: Annotated[
        str | None, typer.Option("--qr", help="The text (or URL) a phone read from the QR.")
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
    if file is not None and re.match(r"(?i)https?://", file):  # the QR's URL (docs/report.md §3)
        result = city.verify(file, at=when, kind=InputKind.QR)
    elif file is not None:
        result = city.verify(read_input(Path(file)), at=when)
    elif qr is not None:
        result = city.verify(qr, at=when, kind=InputKind.QR)
    else:  # a partner's number is asked of its service (docs/partners.md)
        with sync.new_client(city.settings.partners) as client:
            result = city.verify(number, at=when, kind=InputKind.NUMBER, online=client)
    if as_json:
        print_json(result.to_json())
    else:
        print_verification(out, result)
    raise typer.Exit(result.verdict.exit_code)
