"""Commands about the city's data and rules: init, credit codes, the catalog, sample data,
department exports, the subject register and the index."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from creditcert import config
from creditcert.cli.base import (
    HomeOpt,
    JsonOpt,
    app,
    fail,
    group,
    home_of,
    now,
    open_city,
    out,
    parse_date,
    parse_time,
    print_json,
    today,
)
from creditcert.errors import CreditcertError
from creditcert.rules import codes as codes_mod
from creditcert.rules.catalog import domain_json, purpose_json

code_app = group("code", "Unified social credit codes (GB 32100-2015).")
domains_app = group("domains", "The domain catalog.")
purposes_app = group("purposes", "Purpose presets (上市, 招投标, 融资 …).")
sample_app = group("sample", "Deterministic sample data for a city.")
data_app = group("data", "The city's datasets and their index.")
register_app = group("register", "The subject register.")

CODE_CHECK_FORMAT = "creditcert.code-check/1"
DOMAINS_FORMAT = "creditcert.domains/1"
DOMAIN_FORMAT = "creditcert.domain/1"
PURPOSES_FORMAT = "creditcert.purposes/1"
DATA_STATUS_FORMAT = "creditcert.data-status/1"
DATA_HISTORY_FORMAT = "creditcert.data-history/1"


@app.command()
def init(
    city: Annotated[str, typer.Option(help="6-digit GB/T 2260 code of the city, e.g. 210100.")],
    name: Annotated[str, typer.Option(help="The city's name, e.g. 沈阳市.")],
    name_en: Annotated[str, typer.Option(help="English name, e.g. Shenyang.")] = "",
    base_url: Annotated[
        str,
        typer.Option(
            help="Public address of the city's service: the QR of every report is a URL under it."
        ),
    ] = config.LOCAL_URL,
    home: HomeOpt = None,
) -> None:
    """Create a city's home: a commented creditcert.toml and a copy of the default catalog."""
    root = config.resolve_home(home_of(home))
    path = config.init(root, admin_code=city, name=name, name_en=name_en, base_url=base_url)
    out.print(f"wrote {path}", markup=False)
    out.print(
        f"wrote {root / 'catalog.toml'} (the default 52-domain catalog; edit to suit)", markup=False
    )
    out.print(f"next: creditcert --home {root} sample generate   (or … ingest)", markup=False)


@code_app.command("check")
def code_check(
    codes: Annotated[list[str], typer.Argument(help="Credit codes to check.")],
    as_json: JsonOpt = False,
) -> None:
    """Is each code a well-formed GB 32100 code? Exit 0 when all are, 1 otherwise."""
    results = [codes_mod.validate(c) for c in codes]
    if as_json:
        print_json(
            {
                "format": CODE_CHECK_FORMAT,
                "codes": [
                    {
                        "input": r.raw,
                        "code": r.code,
                        "valid": r.well_formed,
                        "entity_type": r.entity_type,
                        "problems": [
                            {"reason": p.reason, "message": p.message} for p in r.problems
                        ],
                    }
                    for r in results
                ],
            }
        )
    else:
        for r in results:
            text = f"{r.code} valid" if r.well_formed else f"{r.code} invalid: {r.describe()}"
            out.print(text, markup=False)
    raise typer.Exit(0 if all(r.well_formed for r in results) else 1)


@domains_app.command("list")
def domains_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The domains of the city's catalog with their counting rules."""
    catalog = open_city(home).settings.catalog
    if as_json:
        print_json(
            {
                "format": DOMAINS_FORMAT,
                "id": catalog.id,
                "version": catalog.version,
                "digest": catalog.digest,
                "domains": [domain_json(d) for d in catalog.domains],
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


@domains_app.command("show")
def domains_show(code: str, home: HomeOpt = None) -> None:
    """One domain and its counting rules (JSON)."""
    domain = open_city(home).settings.catalog.domain(code)
    print_json({"format": DOMAIN_FORMAT, **domain_json(domain)})


@domains_app.command("validate")
def domains_validate(path: Path) -> None:
    """Check a catalog file; prints its id, version and digest, or the first problem found."""
    from creditcert.rules import catalog as catalog_mod

    c = catalog_mod.load(path)
    out.print(
        f"{path}: ok — {c.id} {c.version}, {len(c.domains)} domains, "
        f"{len(c.purposes)} purposes, {c.digest}",
        markup=False,
    )


@purposes_app.command("list")
def purposes_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Purpose presets: domains, default look-back and validity."""
    catalog = open_city(home).settings.catalog
    if as_json:
        print_json(
            {"format": PURPOSES_FORMAT, "purposes": [purpose_json(p) for p in catalog.purposes]}
        )
        return
    table = Table()
    for col in ("code", "用途", "purpose", "domains", "years", "valid days"):
        table.add_column(col)
    for p in catalog.purposes:
        table.add_row(p.code, p.zh, p.en, str(len(p.domains)), str(p.years), str(p.validity_days))
    out.print(table)


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
    from creditcert.data import sample

    if subjects < 1 or records < 0:
        fail("--subjects must be at least 1 and --records not negative")
    city = open_city(home)
    settings = city.settings
    day = parse_date(as_of, "--as-of") if as_of else sample.default_as_of(now())
    started = time.perf_counter()
    summary = city.write_data(
        lambda sync: sample.generate(
            (out_dir or settings.data_dir).resolve(),
            settings.catalog,
            settings.issuer,
            subjects=subjects,
            records=records,
            seed=seed,
            as_of=day,
            sync=None if out_dir else sync,
        )
    )
    out.print(
        f"wrote {summary.subjects:,} subjects and {summary.records:,} records in "
        f"{len(summary.per_domain)} domain datasets to {summary.data_dir} "
        f"({time.perf_counter() - started:.1f} s)",
        markup=False,
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
    if clean and with_records:
        fail("choose --clean or --with-records, not both")
    which = True if with_records else False if clean else None
    with open_city(home).store() as store:
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

    city = open_city(home)
    settings = city.settings
    if city.mirror is not None:  # the register it draws codes from: the bucket's current one
        city.mirror.refresh()
    n = sample.export_department_file(
        settings.data_dir,
        settings.catalog,
        settings.issuer,
        domain_code=domain,
        rows=rows,
        bad_rows=bad_rows,
        seed=seed,
        as_of=today(),
        path=out_file,
        encoding=encoding,
    )
    out.print(f"wrote {n:,} rows ({bad_rows} spoiled) to {out_file}", markup=False)


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
    """Validate every row; merge good rows into the domain's dataset, apply corrections (the
    replaced versions go to the history), quarantine bad rows.

    Exit 0 when every row was accepted, updated or already present, 1 when some were quarantined.
    """
    from creditcert.data.exports import ColumnMap
    from creditcert.data.ingest import ingest_file
    from creditcert.rules.vocab import Kind

    city = open_city(home)
    try:
        default_kind = Kind(kind)
    except ValueError:
        fail(f"--kind {kind!r} unknown; allowed: {', '.join(k.value for k in Kind)}")
    result = city.write_data(
        lambda sync: ingest_file(
            file.resolve(),
            domain_code=domain,
            catalog=city.settings.catalog,
            data_dir=city.settings.data_dir,
            quarantine_dir=city.layout.quarantine,
            now=now(),
            encoding=encoding,
            default_kind=default_kind,
            columns=ColumnMap.load(columns) if columns else None,
            sync=sync,
        )
    )
    if as_json:
        print_json(result.to_json())
    else:
        out.print(
            f"{file} ({result.encoding}) → {result.domain}: read {result.read:,}, "
            f"accepted {result.accepted:,}, updated {result.updated:,}, "
            f"quarantined {result.quarantined:,}, "
            f"already present {result.already_present:,}",
            markup=False,
        )
        if result.legacy_codes:
            out.print(
                f"  {result.legacy_codes} accepted row(s) carry a legacy code that fails "
                "its checksum but is registered"
            )
        if result.history:
            out.print(f"  replaced versions kept in: {result.history}", markup=False)
        if result.quarantine_file:
            out.print(f"  quarantine: {result.quarantine_file}", markup=False)
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

    city = open_city(home)
    result = city.write_data(
        lambda sync: import_register(
            file.resolve(),
            data_dir=city.settings.data_dir,
            catalog=city.settings.catalog,
            quarantine_dir=city.layout.quarantine,
            now=now(),
            encoding=encoding,
            sync=sync,
        )
    )
    if as_json:
        print_json(result.to_json())
    else:
        out.print(
            f"{file} ({result.encoding}) → register: read {result.read:,}, added {result.added:,}, "
            f"updated {result.updated:,}, unchanged {result.unchanged:,}, "
            f"quarantined {result.quarantined:,}",
            markup=False,
        )
        if result.legacy_codes:
            out.print(f"  {result.legacy_codes} legacy code(s) failing a checksum were accepted")
        if result.quarantine_file:
            out.print(f"  quarantine: {result.quarantine_file}", markup=False)
    raise typer.Exit(1 if result.quarantined else 0)


@data_app.command("reindex")
def data_reindex(home: HomeOpt = None) -> None:
    """Rebuild the lookup index whole from the Parquet datasets and publish it.

    Lookups keep answering from the previous index meanwhile. Never needed after a crash (any
    writer's next run converges); use it to compact the index or after editing files by hand.
    """
    from creditcert.data.index import rebuild_index
    from creditcert.data.store import generation_path

    city = open_city(home)
    settings = city.settings
    started = time.perf_counter()
    generation = city.write_data(
        lambda sync: rebuild_index(settings.data_dir, settings.catalog, sync=sync)
    )
    out.print(
        f"published index generation {generation} "
        f"({generation_path(settings.data_dir, generation)}, "
        f"{time.perf_counter() - started:.1f} s)",
        markup=False,
    )


@data_app.command("pull")
def data_pull(home: HomeOpt = None) -> None:
    """Take in the object store's current generation now, whatever `data.refresh_seconds` says
    (datasets on object storage only). Lookups keep answering from the previous one meanwhile."""
    city = open_city(home)
    started = time.perf_counter()
    pulled = city.pull_data()
    if pulled.generation is None:
        fail(f"{city.settings.object_store.location}: the bucket holds no datasets yet")
    out.print(
        f"bucket generation {pulled.generation}: fetched {pulled.files} file(s), "
        f"{pulled.bytes / 1e6:.1f} MB; local index generation {pulled.index_generation} "
        f"({time.perf_counter() - started:.1f} s)",
        markup=False,
    )


@data_app.command("status")
def data_status(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Rows and data cut-off of every domain's dataset; with the datasets on object storage,
    also the bucket's generation and the one this instance holds."""
    city = open_city(home)
    rows = []
    with city.store() as store:
        generation = store.generation
        for d in city.settings.catalog.domains:
            try:
                info = store.dataset_info(d)
                rows.append((d.code, info.rows, info.data_cutoff.isoformat(), str(info.path), None))
            except CreditcertError as exc:
                rows.append((d.code, None, None, None, str(exc)))
    remote = city.mirror.status() if city.mirror is not None else None
    if as_json:
        print_json(
            {
                "format": DATA_STATUS_FORMAT,
                "index_generation": generation,
                "object_store": remote.to_json() if remote else None,
                "datasets": [
                    {"domain": c, "rows": n, "data_cutoff": t, "path": p, "problem": e}
                    for c, n, t, p, e in rows
                ],
            }
        )
        return
    if remote is not None:
        out.print(remote.describe(), markup=False)
    table = Table(title=f"index generation {generation}")
    for col in ("domain", "rows", "data cut-off", "file"):
        table.add_column(col)
    for c, n, t, p, e in rows:
        table.add_row(c, f"{n:,}" if n is not None else "-", t or "-", p or e)
    out.print(table)


@data_app.command("history")
def data_history(
    code: Annotated[str, typer.Argument(help="The subject's credit code.")],
    domain: Annotated[
        list[str] | None, typer.Option(help="Only this domain (repeatable; default: all).")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(help="Only the version each record had at this time (ISO 8601)."),
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every version of a subject's records: the current one and each one a correction replaced,
    with when. With --at, what a report issued at that time rested on."""
    when = parse_time(at, "--at") if at else None
    found = open_city(home).record_history(code, domains=domain, at=when)
    if as_json:
        print_json(
            {
                "format": DATA_HISTORY_FORMAT,
                "credit_code": code,
                "at": when.isoformat() if when else None,
                "versions": [v.to_json() for v in found],
            }
        )
        return
    table = Table()
    for col in ("domain", "record", "decision", "date", "revoked", "repaired", "fine", "version"):
        table.add_column(col)
    for v in found:
        r = v.record
        cells = (
            v.domain,
            r["record_id"],
            r["decision_no"],
            str(r["decision_date"]),
            "是" if r["revoked"] else "否",
            str(r["repair_date"] or "-"),
            str(r["fine_amount"] or "-"),
            "current" if v.current else f"replaced {v.superseded_at:%Y-%m-%d %H:%M:%S}",
        )
        table.add_row(*(Text(c) for c in cells))  # department data is never markup
    out.print(table)
