"""The city's web service (`creditcert serve`, docs/service.md): pages for enterprises and
reviewers, and a JSON API for portals, on one `City`.

Issuance is CPU-bound (WeasyPrint), so it runs in a pool of warm worker processes and the event
loop never waits on it; verification and lookups run in threads. Every answer passes through
`guard.Guard` (security headers, bounded bodies); errors leave as RFC 9457 problem details (the
API) or a plain page, never a stack trace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser
from starlette.middleware.sessions import SessionMiddleware

from creditcert.city import City
from creditcert.data.text import visible
from creditcert.errors import CreditcertError, RequestError, SubjectError
from creditcert.files import write_atomically
from creditcert.issue.pool import BatchReason, IssuePool, Outcome
from creditcert.lookup import Request as ReportRequest
from creditcert.model.clock import SHANGHAI
from creditcert.service import guard
from creditcert.service.syncer import PartnerSync, SyncMetrics
from creditcert.trust import sync
from creditcert.verify.result import Verification

HERE = Path(__file__).parent
ACCESS = logging.getLogger("creditcert.access")
LOG = logging.getLogger("creditcert.service")


def beijing_now() -> datetime:
    return datetime.now(SHANGHAI)


class Problem(Exception):
    """An answer that is not a success: HTTP status, a stable code, a title and what to do."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        *,
        reason: str | None = None,
        **headers: str,
    ):
        super().__init__(title)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.reason = reason  # the failed check's reason code, for a refused application
        self.headers = headers

    def to_json(self, instance: str) -> dict:
        body = {
            "type": f"urn:creditcert:problem:{self.code}",
            "code": self.code,
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
            "instance": instance,
        }
        if self.reason:
            body["reason"] = self.reason
        return body


class Metrics:
    """Prometheus counters of one app (its own registry: several apps may live in a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.issued = Counter(
            "creditcert_reports_issued", "Reports issued by the service", registry=self.registry
        )
        self.verified = Counter(
            "creditcert_verifications",
            "Verifications by verdict and input",
            ["verdict", "input"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "creditcert_request_seconds",
            "Request latency by route",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.sync = SyncMetrics(self.registry)


@dataclass
class Service:
    """What every route needs, made once per app."""

    city: City
    clock: Callable[[], datetime]
    demo: bool
    templates: Jinja2Templates
    metrics: Metrics
    verify_limit: guard.RateLimit
    pool: IssuePool | None = None
    verifiers: IssuePool | None = None  # workers without a renderer, for files
    online: object | None = None  # sync.new_client: partners' numbers asked of them

    async def issue(self, code: str, request: ReportRequest, *, lang: str) -> Outcome:
        """Issue in a warm worker process; failures become problems with stable codes."""
        if self.pool is None:
            raise Problem(503, "not-ready", "the service is starting or stopping")
        future = self.pool.submit(code, request, at=self.clock(), lang=lang)
        try:
            outcome = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            raise Problem(503, "issue-failed", "the issuing process died; try again") from None
        if outcome.status == "issued":
            self.metrics.issued.inc()
            return outcome
        raise _issue_problem(outcome)

    async def verify(self, source: bytes | str, kind, label: str) -> Verification:
        """Verify: files (PDFs, photos: CPU-bound, and PDFium renders one page at a time per
        process) in the verifying workers, texts and numbers (~2 ms) in a thread."""
        at = self.clock()
        if isinstance(source, bytes) and self.verifiers is not None:
            try:
                result = await asyncio.wrap_future(self.verifiers.verify(source, at=at))
            except BrokenProcessPool:
                raise Problem(503, "unavailable", "the verifying process died; try again") from None
        else:
            result = await asyncio.to_thread(
                self.city.verify, source, at=at, kind=kind, online=self.online
            )
        self.metrics.verified.labels(result.verdict.value, label).inc()
        return result

    def allow_verify(self, request: Request) -> None:
        client = guard.client_address(request, self.city.settings.service.trusted_proxies)
        if not self.verify_limit.allow(client):
            wait = self.verify_limit.retry_after(client)
            raise Problem(
                429, "rate-limited", "too many verifications from this address",
                f"try again in {wait} s", **{"Retry-After": str(wait)},
            )  # fmt: skip


def _issue_problem(outcome: Outcome) -> Problem:
    reason = outcome.reason
    if reason is BatchReason.RATE_LIMITED:
        return Problem(
            429, "rate-limited", "this subject has had its reports today", outcome.message
        )
    if reason is BatchReason.NO_SUCH_SUBJECT:
        return Problem(
            404, "no-such-subject", "no registered subject with this code", outcome.message
        )
    if reason is BatchReason.BAD_REQUEST:
        return Problem(400, "bad-request", "the request cannot be reported", outcome.message)
    LOG.error("issuance failed: %s: %s", reason, outcome.message)
    return Problem(503, "issue-failed", "the report could not be issued; the centre is told")


def create_app(
    city: City,
    *,
    clock: Callable[[], datetime] = beijing_now,
    demo: bool = False,
    issue_workers: int | None = None,
) -> FastAPI:
    """The service for `city`. `demo` enables sign-in by typing any registered code: the CLI
    allows it only on a loopback address, and every page then says 演示."""
    settings = city.settings.service
    MultiPartParser.spool_max_size = settings.max_upload_bytes + 1  # uploads never touch disk
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["v"] = lambda text: visible(str(text))
    service = Service(
        city,
        clock,
        demo,
        templates,
        Metrics(),
        guard.RateLimit(settings.verify_per_minute),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.pool = IssuePool(city.settings, workers=issue_workers)
        service.verifiers = IssuePool(city.settings, renderer=False)
        service.online = sync.new_client(city.settings.partners)
        syncing = None
        if city.settings.partners.sync_interval:  # docs/service.md, "Partner sync"
            syncing = asyncio.create_task(PartnerSync(city, clock, service.metrics.sync).run())
        try:
            yield
        finally:  # a report being rendered finishes (never half-issued); queued ones are dropped
            if syncing is not None:
                syncing.cancel()
                await asyncio.gather(syncing, return_exceptions=True)
            online, service.online = service.online, None
            online.close()
            pool, service.pool = service.pool, None
            verifiers, service.verifiers = service.verifiers, None
            await asyncio.gather(
                asyncio.to_thread(pool.close, cancel=True),
                asyncio.to_thread(verifiers.close, cancel=True),
            )

    app = routed(lifespan=lifespan)
    app.state.service = service
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _operations(app, service)
    _errors(app, templates)
    _observe(app, service)
    app.add_middleware(
        SessionMiddleware,
        secret_key=_session_secret(city),
        session_cookie="creditcert",
        same_site="lax",
        https_only=(settings.base_url or "").startswith("https://"),
        max_age=8 * 3600,
    )
    app.add_middleware(guard.Guard, max_body=settings.max_upload_bytes + 64 * 1024)
    return app


def routed(**options) -> FastAPI:
    """The app's routes and API metadata, without a city: also what docs/openapi.json is made
    from (creditcert/service/reference.py)."""
    app = FastAPI(
        title="creditcert city service",
        description="Special credit reports (信用代证): issue, verify and look up (docs/service.md).",
        version="1",
        docs_url=None,  # /api/docs is web.api_reference: Swagger UI needs a CDN and inline script
        redoc_url=None,
        openapi_url="/openapi.json",
        **options,
    )
    from creditcert.service import api, web  # routes need `Problem` and `Service` from here

    app.include_router(api.router)
    app.include_router(api.well_known)
    app.include_router(web.router)
    app.openapi = lambda: _openapi(app)
    return app


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "code", "status", "title"],
    "properties": {
        "type": {"type": "string", "description": "urn:creditcert:problem:<code>"},
        "code": {"type": "string", "description": "stable code (docs/service.md, Problems)"},
        "status": {"type": "integer"},
        "title": {"type": "string"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "reason": {"type": "string", "description": "a refused check's reason (docs/verify.md)"},
    },
}


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document, with what it cannot know: every error answer is a problem document
    (422 included), and the token scheme the `security` of routes refers to."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for methods in spec["paths"].values():
            for op in methods.values():
                for status, answer in op.get("responses", {}).items():
                    if int(status) >= 400:
                        answer["content"] = {"application/problem+json": {"schema": PROBLEM_SCHEMA}}
        schemes = spec.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["token"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "an API token from `creditcert tokens add NAME --scope …`",
        }
        for name in ("HTTPValidationError", "ValidationError"):
            spec["components"].get("schemas", {}).pop(name, None)
        app.openapi_schema = spec
    return app.openapi_schema


def _operations(app: FastAPI, service: Service) -> None:
    """Liveness, readiness (keys, registry, workers) and metrics for the operator."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        problems = await asyncio.to_thread(_not_ready, service)
        body = {"ready": not problems, "problems": problems}
        return JSONResponse(body, status_code=503 if problems else 200)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _not_ready(service: Service) -> list[str]:
    problems = []
    if service.pool is None:
        problems.append("issuing workers are not running")
    try:
        service.city.keys.signer(service.clock())
    except CreditcertError as exc:
        problems.append(f"signing key: {exc}")
    try:
        if service.city.has_registry:
            with service.city.registry(read_only=True):
                pass  # opening reads it (one row, not a count)
    except CreditcertError as exc:
        problems.append(f"registry: {exc}")
    return problems


def _session_secret(city: City) -> str:
    """The key that signs session cookies, made once per home (0600), shared by instances."""
    path = city.layout.home / "service.secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        import secrets

        write_atomically(path, secrets.token_urlsafe(32).encode(), mode=0o600)
        return path.read_text().strip()


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/.well-known/")) or (
        "application/json" in request.headers.get("accept", "")
        and "text/html" not in request.headers.get("accept", "")
    )


def _errors(app: FastAPI, templates: Jinja2Templates) -> None:
    """Every failure becomes a problem document (API) or a plain page; none shows a trace."""

    def answer(request: Request, problem: Problem) -> Response:
        headers = problem.headers
        if _wants_json(request):
            return JSONResponse(
                problem.to_json(request.url.path),
                status_code=problem.status,
                media_type="application/problem+json",
                headers=headers,
            )
        from creditcert.service.web import page_context

        return templates.TemplateResponse(
            request,
            "problem.html",
            page_context(request) | {"problem": problem},
            status_code=problem.status,
            headers=headers,
        )

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> Response:
        return answer(request, exc)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> Response:
        codes = {404: "not-found", 405: "method-not-allowed"}
        code = codes.get(exc.status_code, "http-error")
        return answer(request, Problem(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()[:5]
        )
        return answer(request, Problem(422, "invalid-request", "the request is not valid", where))

    @app.exception_handler(guard.BodyTooLarge)
    async def on_large(request: Request, exc: guard.BodyTooLarge) -> Response:
        limit = request.app.state.service.city.settings.service.max_upload_bytes
        return answer(
            request, Problem(413, "too-large", "request body too large", f"at most {limit} bytes")
        )

    @app.exception_handler(SubjectError)
    async def on_subject(request: Request, exc: SubjectError) -> Response:
        return answer(request, Problem(404, "no-such-subject", "no registered subject", str(exc)))

    @app.exception_handler(RequestError)
    async def on_request(request: Request, exc: RequestError) -> Response:
        return answer(
            request, Problem(400, "bad-request", "the request cannot be answered", str(exc))
        )

    @app.exception_handler(CreditcertError)
    async def on_library(request: Request, exc: CreditcertError) -> Response:
        LOG.error("refused: %s: %s", type(exc).__name__, exc)
        return answer(request, Problem(503, "unavailable", "the service cannot answer this now"))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> Response:
        LOG.exception("unexpected error on %s", request.url.path)
        return answer(request, Problem(500, "internal", "internal error; the centre is told"))


def _observe(app: FastAPI, service: Service) -> None:
    """Latency per route and one JSON access line per request: method, route template (never the
    raw path: a QR URL carries a report's content), status, milliseconds, report number if any."""

    @app.middleware("http")
    async def observe(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        elapsed = time.perf_counter() - start
        route = getattr(request.scope.get("route"), "path", "unmatched")
        service.metrics.latency.labels(route).observe(elapsed)
        line = {"method": request.method, "route": route, "status": response.status_code}
        line["ms"] = round(elapsed * 1000, 1)
        number = getattr(request.state, "number", None)
        if number:
            line["number"] = number
        ACCESS.info(json.dumps(line))
        return response


def render(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
    from creditcert.service.web import page_context

    templates = request.app.state.service.templates
    return templates.TemplateResponse(
        request, name, page_context(request) | context, status_code=status
    )
