"""Many reports in one run, on every core, resumable (docs/report.md §8).

`run_batch` hands a list of subjects to an `IssuePool` (creditcert.issue.pool) and keeps a
manifest in the output directory: a journal (`manifest.jsonl`, format `creditcert.batch/1`) and a
table (`manifest.csv`), one line per event, on disk before the next, so that a batch killed at
any moment is resumed by running it again, with nothing issued twice.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from creditcert.city import City
from creditcert.data.exports import neutral
from creditcert.errors import CreditcertError, RequestError
from creditcert.files import fsync_dir, write_atomically
from creditcert.issue.pool import BatchReason, IssuePool, Outcome, copy_pdf, default_workers
from creditcert.lookup import Request
from creditcert.rules import codes
from creditcert.rules.catalog import Catalog
from creditcert.stages import reached

FORMAT = "creditcert.batch/1"
JOURNAL = "manifest.jsonl"
TABLE = "manifest.csv"
TABLE_COLUMNS = ("code", "scope", "number", "file", "status", "reason")


class BatchInputError(CreditcertError):
    """A batch's input or output directory cannot be used (the CLI exits 2)."""


# --- input --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One subject to issue for: where it is in the input, its code (normalised when well
    formed) and a CSV row's purpose, which overrides the batch's."""

    line: int
    code: str
    purpose: str | None = None


def read_jobs(data: bytes, *, name: str) -> list[Job]:
    """The input: one credit code per line, or a CSV whose header has a `credit_code` column
    (and optionally `purpose`). Blank lines are skipped."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchInputError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    header = [cell.strip() for cell in next(csv.reader([first]), [])]
    if "credit_code" in header:
        return _csv_jobs(text)
    if len(header) > 1:
        raise BatchInputError(
            f"{name}: a CSV needs a credit_code column; its header has {', '.join(header)}"
        )
    return [Job(n, _normal(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _csv_jobs(text: str) -> list[Job]:
    reader = csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True)
    reader.fieldnames = [f.strip() for f in reader.fieldnames or ()]
    jobs = []
    for row in reader:
        purpose = (row.get("purpose") or "").strip() or None
        jobs.append(Job(reader.line_num, _normal(row.get("credit_code") or ""), purpose))
    return jobs


def _normal(raw: str) -> str:
    check = codes.validate(raw.strip())
    return check.code if check.acceptable_if_registered else raw.strip()


def scope_of(request: Request, catalog: Catalog) -> str:
    """A request's name in the manifest: its purpose, `all`, or `domains:` and the codes."""
    if request.purpose:
        return request.purpose
    if request.domains == catalog.domains:
        return "all"
    return "domains:" + ",".join(d.code for d in request.domains)


# --- the manifest -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One manifest line: a subject's issuance `started` (before it is handed to a worker),
    `issued`, `failed`, or `skipped` (a repeated input line). `file` is relative to the output
    directory (docs/cli-json.md, `creditcert.batch/1`)."""

    batch: str
    line: int
    code: str
    scope: str
    status: str
    at: datetime
    number: str | None = None
    file: str | None = None
    reason: str | None = None
    message: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.code, self.scope

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "batch": self.batch,
            "line": self.line,
            "code": self.code,
            "scope": self.scope,
            "status": self.status,
            "number": self.number,
            "file": self.file,
            "reason": self.reason,
            "message": self.message,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Line:
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
        fields = {k: data[k] for k in cls.__slots__ if k in data}
        return cls(**{**fields, "at": datetime.fromisoformat(data["at"])})


@dataclass
class Progress:
    """Where each (code, scope) stands after the lines read so far."""

    last: dict[tuple[str, str], Line] = field(default_factory=dict)
    first_started: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def add(self, line: Line) -> None:
        if line.status == "skipped":  # a repeated input line: its first line speaks for it
            return
        self.last[line.key] = line
        if line.status == "started":
            self.first_started.setdefault(line.key, line.at)

    def issued(self, key: tuple[str, str]) -> bool:
        line = self.last.get(key)
        return line is not None and line.status == "issued"


class Manifest:
    """The output directory's journal and table. Opening it takes a lock (one batch per
    directory), drops a line torn by a crash and rebuilds the table from the journal."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.progress = Progress()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._journal = open(directory / JOURNAL, "a+b")  # noqa: SIM115 - held until close
        except OSError as exc:
            raise BatchInputError(f"{directory}: cannot use as output ({exc.strerror})") from None
        try:
            fcntl.flock(self._journal, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._journal.close()
            raise BatchInputError(f"{directory}: another batch is writing there") from None
        try:
            lines = self._read()
            self._table = self._rebuild_table(lines)
        except BaseException:
            self._journal.close()
            raise
        for line in lines:
            self.progress.add(line)

    def _read(self) -> list[Line]:
        self._journal.seek(0)
        lines, whole = parse_journal(self._journal.read(), self.directory / JOURNAL)
        self._journal.truncate(whole)  # a line torn by a crash never happened
        return lines

    def _rebuild_table(self, lines: list[Line]):
        """The table holds the outcome lines of the journal, in order; it is rewritten from the
        journal so that a crash between the two writes never leaves them apart."""
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(TABLE_COLUMNS)
        for line in lines:
            if line.status != "started":
                writer.writerow(_row(line))
        write_atomically(self.directory / TABLE, buffer.getvalue().encode())
        return open(self.directory / TABLE, "a", newline="", encoding="utf-8")

    def write(self, line: Line) -> None:
        """Append a line to the journal (and an outcome to the table), on disk before return."""
        self._journal.write(json.dumps(line.to_json(), ensure_ascii=False).encode() + b"\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        if line.status != "started":
            csv.writer(self._table).writerow(_row(line))
            self._table.flush()
            os.fsync(self._table.fileno())
        self.progress.add(line)

    def close(self) -> None:
        self._table.close()
        self._journal.close()
        fsync_dir(self.directory)


def parse_journal(data: bytes, path: Path) -> tuple[list[Line], int]:
    """A journal's complete lines, and how many bytes they take (a last line without its
    newline was torn by a crash and is left out)."""
    whole = data.rfind(b"\n") + 1
    lines = []
    for n, raw in enumerate(data[:whole].splitlines(), 1):
        try:
            lines.append(Line.from_json(json.loads(raw)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BatchInputError(f"{path}: line {n} is not a {FORMAT} line ({exc})") from None
    return lines, whole


def read_manifest(directory: Path) -> list[Line]:
    """Every line of a batch's journal (for tools and tests)."""
    path = directory / JOURNAL
    return parse_journal(path.read_bytes(), path)[0]


def _row(line: Line) -> list[str]:
    """A table row; a code as typed that Excel would run as a formula is quoted."""
    cells = (line.code, line.scope, line.number, line.file, line.status, line.reason)
    return [neutral(cell or "") for cell in cells]


# --- running a batch ----------------------------------------------------------------------------


@dataclass
class Summary:
    """What a run did: counts by outcome and by failure reason."""

    total: int = 0
    already: int = 0  # issued by an earlier run of the same manifest
    issued: int = 0
    recovered: int = 0
    skipped: int = 0  # lines repeating an earlier one
    failed: dict[BatchReason, int] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    @property
    def exit_code(self) -> int:
        """0 everything issued, 1 some subjects failed, 130 interrupted (Ctrl-C)."""
        return 130 if self.interrupted else 1 if self.failures else 0


@dataclass(frozen=True, slots=True)
class _Todo:
    job: Job
    scope: str
    request: Request
    tries: int = 0


class Batch:
    """One run over a list of jobs into an output directory (its manifest)."""

    def __init__(
        self,
        city: City,
        manifest: Manifest,
        *,
        clock: Callable[[], datetime],
        lang: str = "zh-en",
        on_line: Callable[[Line, int, int], None] = lambda line, done, total: None,
    ):
        self.city, self.manifest, self.clock, self.lang = city, manifest, clock, lang
        self.on_line = on_line
        self.id = uuid.uuid4().hex[:12]
        self.summary = Summary()
        self.todo: list[_Todo] = []
        self._refused: list[tuple[Job, str, Outcome]] = []
        self._done = 0

    @property
    def to_do(self) -> int:
        """How many subjects this run will record a line for."""
        return len(self.todo) + len(self._refused)

    def plan(self, jobs: list[Job], request_for: Callable[[str | None], Request]) -> None:
        """Sort the jobs: refused at once (bad codes, bad requests, duplicates), issued by an
        earlier run (skipped), and to do."""
        self.summary.total = len(jobs)
        catalog = self.city.settings.catalog
        first: dict[tuple[str, str], int] = {}  # (code, scope) → its first line
        for job in jobs:
            try:
                request = request_for(job.purpose)
            except RequestError as exc:
                failed = Outcome.failed(BatchReason.BAD_REQUEST, str(exc))
                self._refused.append((job, job.purpose or "", failed))
                continue
            key = (job.code, scope_of(request, catalog))
            if key in first:
                repeat = f"repeats line {first[key]}"
                self._refused.append(
                    (job, key[1], Outcome("skipped", BatchReason.DUPLICATE, repeat))
                )
                continue
            first[key] = job.line
            if not codes.validate(job.code).acceptable_if_registered:
                failed = Outcome.failed(BatchReason.INVALID_CODE, _describe(job.code))
                self._refused.append((job, key[1], failed))
            elif self.manifest.progress.issued(key):
                self.summary.already += 1
            else:
                self.todo.append(_Todo(job, key[1], request))

    def run(self, pool: Callable[[int], IssuePool], stop: threading.Event) -> Summary:
        """Record the refused jobs, recover what an earlier run issued but did not record, and
        issue the rest on a pool made for that many jobs, recording each outcome as it comes.
        Once `stop` is set (Ctrl-C), nothing more is handed out; what the workers are issuing
        is finished and recorded, and the summary is marked interrupted."""
        for job, scope, outcome in self._refused:
            self._record(job, scope, outcome)
        pending = [t for t in self.todo if not stop.is_set() and not self._recovered(t)]
        if pending and not stop.is_set():
            with pool(len(pending)) as issuing:
                self._issue_all(pending, issuing, stop)
        self.summary.interrupted = stop.is_set() and self._done < self.to_do
        return self.summary

    def _issue_all(self, pending: list[_Todo], pool: IssuePool, stop: threading.Event) -> None:
        queue = list(reversed(pending))
        running: dict[Future[Outcome], _Todo] = {}
        while running or (queue and not stop.is_set()):
            while queue and len(running) < pool.workers and not stop.is_set():
                todo = queue.pop()
                running[self._start(todo, pool)] = todo
            finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                queue.extend(self._finish(running.pop(future), future))

    def _start(self, todo: _Todo, pool: IssuePool) -> Future[Outcome]:
        """Write the `started` line (its time is the report's issue time), then submit."""
        at = self.clock()
        job = todo.job
        self.manifest.write(Line(self.id, job.line, job.code, todo.scope, "started", at))
        reached("batch.started")
        return pool.submit(
            job.code, todo.request, at=at, lang=self.lang, copy_to=self.manifest.directory
        )

    def _finish(self, todo: _Todo, future: Future[Outcome]) -> list[_Todo]:
        """Record a worker's outcome; a job whose worker died is looked up in the registry and
        tried once more if it was not issued."""
        try:
            outcome = future.result()
        except BrokenProcessPool:
            if self._recovered(todo):
                return []
            if todo.tries == 0:
                return [replace(todo, tries=1)]
            outcome = Outcome.failed(BatchReason.WORKER_DIED, "its worker process died")
        self._record(todo.job, todo.scope, outcome)
        return []

    def _recovered(self, todo: _Todo) -> bool:
        """If this subject's issuance was started before and the registry holds a report of its
        purpose issued since, that is the batch's report: copy its kept PDF, record it."""
        key = (todo.job.code, todo.scope)
        since = self.manifest.progress.first_started.get(key)
        if since is None:
            return False
        found = self.city.issued_since(
            todo.job.code, todo.request.purpose, since=since.replace(microsecond=0)
        )
        if not found:
            return False
        try:
            entry, pdf = self.city.report_pdf(found[0].number, at=self.clock())
        except CreditcertError as exc:  # e.g. expired since: say so rather than issue again
            outcome = Outcome.failed(BatchReason.ISSUE_ERROR, str(exc), found[0].number)
        else:
            outcome = copy_pdf(self.manifest.directory, entry.number, pdf, BatchReason.RECOVERED)
        self._record(todo.job, todo.scope, outcome)
        return True

    def _record(self, job: Job, scope: str, outcome: Outcome) -> None:
        reason = outcome.reason.value if outcome.reason else None
        file = outcome.path.name if outcome.path else None
        line = Line(
            self.id, job.line, job.code, scope, outcome.status, self.clock(),
            outcome.number, file, reason, outcome.message,
        )  # fmt: skip
        self.manifest.write(line)
        self._count(outcome)
        self._done += 1
        self.on_line(line, self._done, self.to_do)
        reached("batch.report-done")

    def _count(self, outcome: Outcome) -> None:
        summary = self.summary
        if outcome.status == "skipped":
            summary.skipped += 1
        elif outcome.reason is BatchReason.RECOVERED:
            summary.recovered += 1
        elif outcome.status == "issued":
            summary.issued += 1
        else:
            summary.failed[outcome.reason] = summary.failed.get(outcome.reason, 0) + 1


def _describe(code: str) -> str:
    return f"{code!r} is not a valid credit code: {codes.validate(code).describe()}"


def run_batch(
    city: City,
    jobs: list[Job],
    out_dir: Path,
    request_for: Callable[[str | None], Request],
    *,
    clock: Callable[[], datetime],
    workers: int | None = None,
    lang: str = "zh-en",
    on_line: Callable[[Line, int, int], None] = lambda line, done, total: None,
    on_start: Callable[[int], None] = lambda total: None,
    stop: threading.Event | None = None,
) -> Summary:
    """Issue a report for every job into out_dir (see the module docstring); `request_for`
    turns a row's purpose (or None) into its request, `clock` gives each report's time, and
    setting `stop` (the CLI does on Ctrl-C) ends the run early, consistently."""
    manifest = Manifest(out_dir)
    try:
        batch = Batch(city, manifest, clock=clock, lang=lang, on_line=on_line)
        batch.plan(jobs, request_for)
        on_start(batch.to_do)
        size = workers or default_workers()

        def pool(jobs: int) -> IssuePool:  # no more workers than jobs
            return IssuePool(city.settings, workers=min(size, jobs))

        return batch.run(pool, stop or threading.Event())
    finally:
        manifest.close()
