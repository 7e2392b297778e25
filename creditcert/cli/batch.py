"""`creditcert report batch`: reports for many subjects on every core, resumable (docs/report.md
§8). Parses, calls `run_batch`, shows progress on stderr and the summary on stdout."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn
from rich.progress import Progress as Bar
from rich.text import Text

from creditcert.cli.base import HomeOpt, err, fail, now, open_city, out, read_input
from creditcert.cli.reports import (
    AllOpt,
    AsOfOpt,
    DomainsOpt,
    LangOpt,
    PurposeOpt,
    YearsOpt,
    report_app,
    request_from_flags,
)
from creditcert.data.text import visible
from creditcert.issue.batch import JOURNAL, TABLE, Line, Summary, read_jobs, run_batch


@report_app.command("batch")
def batch(
    file: Annotated[
        str,
        typer.Argument(
            help="One credit code per line, or a CSV with a credit_code column (and optionally "
            "a purpose column, which overrides --purpose for its row); - reads standard input."
        ),
    ],
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Where the PDFs (<number>.pdf) and the manifest go; the same command with the "
            "same --out resumes a stopped batch.",
        ),
    ],
    purpose: PurposeOpt = None,
    domains: DomainsOpt = None,
    all_domains: AllOpt = False,
    years: YearsOpt = None,
    as_of: AsOfOpt = None,
    lang: LangOpt = "zh-en",
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: one per core).")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Issue reports for many subjects on every core. Exit 0 all issued, 1 some failed (see the
    manifest), 2 bad input, 130 interrupted (run it again to resume)."""
    city, at = open_city(home), now()
    data = sys.stdin.buffer.read() if file == "-" else read_input(Path(file))
    jobs = read_jobs(data, name="stdin" if file == "-" else file)
    if purpose is None and not domains and not all_domains:
        if not all(job.purpose for job in jobs):
            fail("choose --purpose, --domains or --all (or give every CSV row a purpose)")
    else:  # flags that cannot make a request: one line before any work
        request_from_flags(city, at, purpose, domains, all_domains, years, None, None, as_of)
    city.keys.signer(at)  # a missing or expired key: one line before any worker starts
    requests: dict = {}

    def request_for(row_purpose: str | None):
        if row_purpose not in requests:
            flags = (row_purpose, None, False) if row_purpose else (purpose, domains, all_domains)
            requests[row_purpose] = request_from_flags(city, at, *flags, years, None, None, as_of)
        return requests[row_purpose]

    show, stop = _Shown(), threading.Event()
    previous = signal.signal(signal.SIGINT, _stopper(stop))
    try:
        summary = run_batch(
            city, jobs, out_dir, request_for, clock=now, workers=workers, lang=lang,
            on_start=show.start, on_line=show.line, stop=stop,
        )  # fmt: skip
    except KeyboardInterrupt:
        fail("abandoned at the second Ctrl-C: run the same command again to resume", 130)
    finally:
        signal.signal(signal.SIGINT, previous)
        show.stop()
    _print_summary(out_dir, summary)
    raise typer.Exit(summary.exit_code)


def _stopper(stop: threading.Event):
    """The first Ctrl-C asks the batch to stop after what is under way; a second one stops
    without recording that (the next run recovers it from the registry)."""

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        # A plain write: the signal may land inside rich's own print, which is not re-entrant.
        os.write(2, b"stopping after the reports under way (Ctrl-C again to abandon them)\n")

    return handler


class _RateEta(ProgressColumn):
    """Reports per second since the start, and the time left at that rate (rich's own columns
    use the last few updates, which jump when workers finish together)."""

    def render(self, task) -> Text:
        return Text(_rate_eta(int(task.completed), int(task.total or 0), task.elapsed or 0.0))


def _rate_eta(done: int, total: int, elapsed: float) -> str:
    if not done or elapsed <= 0:
        return "-/s"
    rate = done / elapsed
    left = round((total - done) / rate)
    return f"{rate:.2f}/s, {left // 3600}:{left // 60 % 60:02}:{left % 60:02} left"


class _Shown:
    """Progress on stderr: a bar with rate and ETA on a terminal, a plain line per subject
    otherwise; failures are always printed with their reason."""

    def __init__(self):
        self.bar: Bar | None = None
        self.started = time.monotonic()

    def start(self, total: int) -> None:
        self.started = time.monotonic()
        if err.is_terminal and total:
            self.bar = Bar(
                "[bold]issuing", BarColumn(), MofNCompleteColumn(), _RateEta(), console=err,
            )  # fmt: skip
            self.bar.add_task("issuing", total=total)
            self.bar.start()

    def line(self, line: Line, done: int, total: int) -> None:
        what = line.number if line.status == "issued" else f"{line.reason}: {line.message}"
        text = visible(f"line {line.line}: {line.code} {line.status} {what}")
        if self.bar is not None:
            self.bar.update(self.bar.task_ids[0], completed=done)
            if line.status != "issued":
                self.bar.console.print(text, markup=False, highlight=False)
            return
        pace = _rate_eta(done, total, time.monotonic() - self.started)
        err.print(f"{done}/{total} {text} ({pace})", markup=False)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_summary(out_dir: Path, summary: Summary) -> None:
    parts = [f"{summary.issued + summary.recovered} issued"]
    if summary.recovered:
        parts[0] += f" ({summary.recovered} recovered from an earlier run)"
    if summary.already:
        parts.append(f"{summary.already} issued before")
    if summary.skipped:
        parts.append(f"{summary.skipped} repeated line(s) skipped")
    if summary.failures:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.failed.items()))
        parts.append(f"{summary.failures} failed ({reasons})")
    out.print(f"batch of {summary.total}: {'; '.join(parts)}", markup=False)
    out.print(f"  manifest {out_dir / TABLE}, {out_dir / JOURNAL}", markup=False)
    if summary.interrupted:
        err.print("interrupted: run the same command again to resume", markup=False)
