"""Warm issuing processes: `IssuePool` keeps worker processes, each with the City opened once
and its renderer loaded, and issues through the ordinary `City.issue` (registry, rate limit, kept
PDF: docs/report.md §7). `creditcert report batch` runs one per batch (docs/report.md §8); a web
service can keep one for its lifetime.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from creditcert.city import City
from creditcert.config import Settings
from creditcert.errors import (
    CodedReason,
    CreditcertError,
    RenderError,
    RequestError,
    SubjectError,
)
from creditcert.files import process_running, write_atomically
from creditcert.lookup import Request
from creditcert.registry import RateLimited
from creditcert.verify.result import Verification


class BatchReason(CodedReason):
    """Why an outcome is not a plain `issued`, as a batch's manifest records it (docs/report.md
    §8 lists them; a test keeps the two in step)."""

    RECOVERED = (
        "recovered",
        "issued by a worker or an earlier run that died before recording it; its kept PDF was copied",
    )
    INVALID_CODE = "invalid-code", "not a well-formed credit code"
    NO_SUCH_SUBJECT = "no-such-subject", "the code is not in the subject register"
    BAD_REQUEST = "bad-request", "the row's purpose or period cannot be reported"
    DUPLICATE = "duplicate", "the same code and scope is on an earlier line of the input"
    RATE_LIMITED = "rate-limited", "the subject has had its reports of this purpose today"
    RENDER_ERROR = "render-error", "the PDF could not be rendered or signed"
    ISSUE_ERROR = "issue-error", "issuance was refused (keys, registry, data, disk)"
    COPY_FAILED = "copy-failed", "issued and kept, but the copy in the output directory failed"
    WORKER_DIED = "worker-died", "its worker process died during both tries"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one subject: `issued` (with its number and file), `failed` (with a coded
    reason and the library's message), or `skipped` (a repeated input line)."""

    status: str
    reason: BatchReason | None = None
    message: str = ""
    number: str | None = None
    path: Path | None = None

    @classmethod
    def failed(cls, reason: BatchReason, message: str, number: str | None = None) -> Outcome:
        return cls("failed", reason, message, number)


_CITY: list[City] = []  # the worker's City, opened once by _start_worker


def _start_worker(settings: Settings, batch_pid: int, renderer: bool = True) -> None:
    """A worker: dies with the process that started the pool (a killed batch leaves no issuer
    running behind it), leaves Ctrl-C to that process, opens the City and loads the renderer
    (unless it only verifies)."""
    threading.Thread(target=_die_with, args=(batch_pid,), daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    city = City(settings)
    if renderer:
        _ = city.renderer
    _CITY.append(city)


def _die_with(pid: int) -> None:
    """Kill this worker the moment process `pid` is gone. Its report, if one is under way, stays
    pending and is voided by the next issuance (docs/report.md §7); the pool's pipes and the fork
    server would otherwise keep an orphaned worker waiting for ever."""
    try:
        select.select([os.pidfd_open(pid)], [], [])
    except ProcessLookupError:
        pass
    except (AttributeError, OSError):  # no pidfd (not Linux 5.3+): look twice a second
        while process_running(pid):
            time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)


def _issue(code: str, request: Request, at: datetime, lang: str, copy_to: Path | None) -> Outcome:
    """Issue one report in a worker, and copy its PDF to copy_to/<number>.pdf if asked."""
    try:
        issued = _CITY[0].issue(code, request, at=at, lang=lang)
    except Exception as exc:  # a batch records every failure and carries on
        return Outcome.failed(_reason(exc), str(exc) or type(exc).__name__)
    number = issued.document.number
    if copy_to is None:
        return Outcome("issued", number=number, path=issued.path)
    return copy_pdf(copy_to, number, issued.pdf)


def _verify(source: bytes, at: datetime) -> Verification:
    """Verify a PDF or a photo in a worker (PDFium renders one page at a time per process)."""
    return _CITY[0].verify(source, at=at)


def copy_pdf(
    directory: Path, number: str, pdf: bytes, reason: BatchReason | None = None
) -> Outcome:
    """Write an issued report's PDF as directory/<number>.pdf; the report stays issued if this
    fails (the outcome says so, with its number)."""
    target = directory / f"{number}.pdf"
    try:
        write_atomically(target, pdf)
    except OSError as exc:
        cause = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        message = f"{number} is issued and kept; {cause}"
        return Outcome.failed(BatchReason.COPY_FAILED, message, number)
    return Outcome("issued", reason, number=number, path=target)


def _reason(exc: Exception) -> BatchReason:
    """The coded reason for what City.issue raised (the most specific kind first)."""
    for kind, reason in (
        (RateLimited, BatchReason.RATE_LIMITED),
        (SubjectError, BatchReason.NO_SUCH_SUBJECT),
        (RequestError, BatchReason.BAD_REQUEST),
        (RenderError, BatchReason.RENDER_ERROR),
        (CreditcertError, BatchReason.ISSUE_ERROR),
        (OSError, BatchReason.ISSUE_ERROR),
    ):
        if isinstance(exc, kind):
            return reason
    return BatchReason.RENDER_ERROR  # anything else comes from the PDF and signing libraries


def default_workers() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class IssuePool:
    """Warm issuing processes. `submit` returns a Future of the Outcome; a Future fails with
    BrokenProcessPool when its worker died (the pool starts fresh workers for what follows).

    Workers come from a fork server ('forkserver': started before any DuckDB connection or
    thread exists, with the renderer's modules imported once), or are spawned ('spawn')."""

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int | None = None,
        context: str = "forkserver",
        renderer: bool = True,
    ):
        self.settings = settings
        self.workers = workers or default_workers()
        self.renderer = renderer
        self._context = multiprocessing.get_context(context)
        if context == "forkserver":
            self._context.set_forkserver_preload([__name__, "creditcert.issue.render"])
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=self._context,
            initializer=_start_worker,
            initargs=(self.settings, os.getpid(), self.renderer),
        )

    def submit(
        self,
        code: str,
        request: Request,
        *,
        at: datetime,
        lang: str = "zh-en",
        copy_to: Path | None = None,
    ) -> Future[Outcome]:
        """Issue a report for `code` at `at` in a worker (and copy the PDF to copy_to/)."""
        return self._submit(_issue, code, request, at, lang, copy_to)

    def verify(self, source: bytes, *, at: datetime) -> Future[Verification]:
        """Verify a file in a worker: PDFs and photos are CPU-bound, and PDFium renders only
        one page at a time per process (a pool made with renderer=False is enough)."""
        return self._submit(_verify, source, at)

    def _submit(self, fn, *args) -> Future:
        """Submit to the workers; a pool broken by a dead worker is replaced first."""
        try:
            return self._executor.submit(fn, *args)
        except BrokenProcessPool:
            self._executor.shutdown(wait=True)
            self._executor = self._new_executor()
            return self._executor.submit(fn, *args)

    def close(self, *, cancel: bool = False) -> None:
        """Let the workers finish what they are issuing (and, unless `cancel`, what is queued),
        then stop them."""
        self._executor.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self) -> IssuePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(cancel=True)
