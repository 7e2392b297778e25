"""Terminal rendering (rich) of lookup findings and verification results; their JSON views live
on the values themselves."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from creditcert.data.text import visible
from creditcert.lookup import Findings
from creditcert.rules.vocab import KIND_NAMES, LEFT_OUT_NAMES, PENALTY_NAMES, Kind, PenaltyType
from creditcert.verify.result import Verdict, Verification


def shown(text: object) -> str:
    """Department text for markup: control and bidi characters escaped (\\x1b, U+202E), so data
    cannot drive the terminal or reorder the line, and rich markup in it printed as text."""
    return escape(visible(str(text), keep="\n\t"))


def cell(text: object) -> Text:
    """Department text for a table cell, escaped as by `shown`."""
    return Text(visible(str(text), keep="\n\t"))


def print_findings(console: Console, f: Findings) -> None:
    s = f.subject
    console.print(
        f"[bold]{shown(s.name)}[/]  {shown(s.credit_code)}  "
        f"(entity {shown(s.entity_type)}, {shown(s.status)})"
    )
    for w in f.code_warnings:
        console.print(f"[yellow]warning:[/] {shown(w)}")
    clipped = (
        f" (requested from {f.requested.start}; data complete from {f.period.start})"
        if f.clipped_to_complete_from
        else ""
    )
    if f.clipped_to_data_cutoff:
        clipped += f" (requested to {f.requested.end}; clipped to the data cut-off)"
    console.print(
        f"period {f.period.start} – {f.period.end}{clipped} · as of {f.as_of} · "
        f"data cut-off {f.data_cutoff:%Y-%m-%d %H:%M} · repair policy {f.repair_policy} · "
        f"catalog {f.catalog.id} {f.catalog.version}"
        + (f" · purpose {shown(f.purpose)}" if f.purpose else "")
    )
    summary = Table(show_lines=False)
    for col in ("domain", "领域", "status", "period", "left out"):
        summary.add_column(col)
    for d in f.domains:
        status = (
            "[green]未发现违法违规记录[/]"
            if d.clean
            else f"[red]{len(d.records)} 条记录 records[/]"
        )
        period = f"{d.period.start} – {d.period.end}" + (" (window)" if d.clipped_by_window else "")
        left = ", ".join(f"{r.value} {n}" for r, n in d.left_out.items()) or "-"
        summary.add_row(d.domain.code, d.domain.zh, status, period, left)
    console.print(summary)
    for d in f.domains:
        if d.clean:
            continue
        table = Table(title=f"{d.domain.zh} / {d.domain.en}", title_justify="left")
        for col in ("date", "decision no.", "kind", "penalty", "fine (yuan)", "facts", "marks"):
            table.add_column(col)
        for r in d.records:
            marks = [m for m, on in (("已修复", r.repaired), ("异议中", r.disputed)) if on]
            table.add_row(
                r.decision_date.isoformat(),
                cell(r.decision_no),
                KIND_NAMES[Kind(r.kind)][0],
                "、".join(PENALTY_NAMES[PenaltyType(t)][0] for t in r.penalty_types)
                or cell(r.penalty_content),
                f"{Decimal(r.fine_amount):,.2f}" if r.fine_amount is not None else "",
                cell(r.facts),
                " ".join(marks),
            )
        console.print(table)
    counted = sum(len(d.records) for d in f.domains)
    clean = sum(1 for d in f.domains if d.clean)
    console.print(f"{len(f.domains)} domains: {clean} clean, {counted} record(s) counted")
    legend = sorted({r for d in f.domains for r in d.left_out}, key=list(LEFT_OUT_NAMES).index)
    for r in legend:
        console.print(f"  left out · {r.value}: {LEFT_OUT_NAMES[r][0]} / {LEFT_OUT_NAMES[r][1]}")


VERDICT_COLOURS = {Verdict.ACCEPTED: "green", Verdict.REJECTED: "red"}


def print_verification(console: Console, result: Verification) -> None:
    """The verdict line in colour, then the checklist as plain text (no markup from data)."""
    first, _, rest = result.pretty().partition("\n")
    colour = VERDICT_COLOURS.get(result.verdict, "yellow")
    console.print(first, style=f"bold {colour}", markup=False)
    if rest:
        console.print(rest, markup=False)
