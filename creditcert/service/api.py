"""The JSON API for portals (`/api/v1`, docs/service.md; the reference is the OpenAPI document at
/openapi.json). Issuing and lookups need an API token with the scope; verification and a
number's status are public and rate limited per client."""

from __future__ import annotations

import asyncio
import hashlib
from email.utils import formatdate
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from creditcert.envelope.application import MAX_REQUEST, MEDIA_TYPE
from creditcert.errors import CreditcertError, Reason, TokenError, TokenReason
from creditcert.model import report_number
from creditcert.registry import Replayed
from creditcert.service.app import Problem, Service
from creditcert.verify.application import ApplicationRefused
from creditcert.verify.result import Verdict
from creditcert.verify.verifier import InputKind

router = APIRouter(prefix="/api/v1")
REPORT_FORMAT = "creditcert.api.report/1"
STATUS_FORMAT = "creditcert.api.status/1"
PROBLEM = {"description": "a problem (RFC 9457)"}  # its schema: app.routed's openapi


def scope(name: str) -> dict:
    """The OpenAPI security requirement of a route that needs a token with scope `name`."""
    return {"security": [{"token": [name]}]}


def service_of(request: Request) -> Service:
    return request.app.state.service


def bearer(request: Request) -> str | None:
    kind, _, secret = request.headers.get("authorization", "").partition(" ")
    if kind.lower() != "bearer":
        return None
    return secret.strip() or None


def check_token(request: Request, scope: str) -> str:
    """The name of the caller's token, which must carry `scope`: 401 when there is none or it
    is unknown or revoked, 403 when it lacks the scope."""
    service = service_of(request)
    secret = bearer(request)
    challenge = {"WWW-Authenticate": "Bearer"}
    if secret is None:
        raise Problem(
            401, "token-required", "an API token is required",
            f"send Authorization: Bearer <token> with the {scope} scope", **challenge,
        )  # fmt: skip
    try:
        return service.city.tokens.check(secret, scope, at=service.clock()).name
    except TokenError as exc:
        if exc.reason is TokenReason.SCOPE:
            raise Problem(403, "token-scope", "the API token lacks the scope", str(exc)) from None
        raise Problem(
            401, "token-refused", "the API token is refused", str(exc), **challenge
        ) from None


def token(scope: str):
    """A dependency: the caller's API token must carry `scope` (Authorization: Bearer cct_…)."""

    def dependency(request: Request) -> str:
        return check_token(request, scope)

    return dependency


class ReportAsk(BaseModel):
    """What to report: a purpose preset, or domains (and a period in years)."""

    credit_code: str = Field(max_length=32, examples=["91210102MA0000001G"])
    purpose: str | None = Field(default=None, max_length=64, examples=["bidding"])
    domains: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=64)
    years: int | None = Field(default=None, ge=1, le=5)
    lang: Literal["zh", "en", "zh-en"] = "zh-en"


class Links(BaseModel):
    pdf: str
    status: str
    verify: str


class Issued(BaseModel):
    format: Literal["creditcert.api.report/1"] = REPORT_FORMAT
    number: str
    status: str
    issued_at: str
    valid_until: str
    links: Links


class Status(BaseModel):
    format: Literal["creditcert.api.status/1"] = STATUS_FORMAT
    number: str
    status: Literal["issued", "revoked", "void", "pending", "unknown"]
    issued_at: str | None
    valid_until: str | None
    valid_now: bool


def _links(number: str) -> Links:
    return Links(
        pdf=f"/api/v1/reports/{number}/pdf",
        status=f"/api/v1/reports/{number}",
        verify=f"/verify?number={number}",
    )


@router.post(
    "/reports",
    status_code=201,
    response_model=Issued,
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 429: PROBLEM},
    openapi_extra=scope("issue"),
)
async def issue_report(
    ask: ReportAsk, request: Request, _: str = Depends(token("issue"))
) -> Issued:
    """Issue a signed report for a subject (the registry's rate limit applies)."""
    service = service_of(request)
    at = service.clock()
    report = service.city.request(
        at=at, as_of=at.date(), purpose=ask.purpose, domains=ask.domains, years=ask.years
    )
    outcome = await service.issue(ask.credit_code.strip().upper(), report, lang=ask.lang)
    request.state.number = outcome.number
    entry = await asyncio.to_thread(_entry, service, outcome.number)
    return Issued(
        number=entry.number,
        status=entry.status,
        issued_at=entry.issued_at.isoformat(),
        valid_until=entry.valid_until.isoformat(),
        links=_links(entry.number),
    )


def _entry(service: Service, number: str):
    with service.city.registry(read_only=True) as registry:
        return registry.get(number)


@router.get("/reports/{number}", response_model=Status, responses={400: PROBLEM, 429: PROBLEM})
async def report_status(number: str, request: Request) -> Status:
    """Whether a number of this city is issued, revoked or void, and its validity; nothing
    about the subject (public, rate limited)."""
    service = service_of(request)
    service.allow_verify(request)
    canonical = report_number.parse(number)
    if canonical is None:
        raise Problem(400, "bad-number", "not a report number", "shape or check character wrong")
    request.state.number = canonical
    entry = await asyncio.to_thread(_entry, service, canonical)
    if entry is None:
        return Status(
            number=canonical, status="unknown", issued_at=None, valid_until=None, valid_now=False
        )
    at = service.clock()
    return Status(
        number=canonical,
        status=entry.status,
        issued_at=entry.issued_at.isoformat(),
        valid_until=entry.valid_until.isoformat(),
        valid_now=entry.status == "issued" and entry.issued_at <= at < entry.valid_until,
    )


@router.get(
    "/reports/{number}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, 401: PROBLEM, 403: PROBLEM, 410: PROBLEM},
    openapi_extra=scope("issue"),
)
async def report_pdf(number: str, request: Request, _: str = Depends(token("issue"))) -> Response:
    """The kept PDF of a valid report, again."""
    service = service_of(request)
    try:
        entry, pdf = await asyncio.to_thread(service.city.report_pdf, number, at=service.clock())
    except CreditcertError as exc:
        raise Problem(410, "not-available", "no PDF to give for this number", str(exc)) from None
    request.state.number = entry.number
    return Response(pdf, media_type="application/pdf")


@router.post(
    "/verify", responses={200: {"description": "creditcert.verification/1 (docs/verify.md)"}}
)
async def verify(
    request: Request,
    file: Annotated[
        UploadFile | None, File(description="A report PDF or a photo of a page")
    ] = None,
    qr: Annotated[str | None, Form(max_length=4096, description="The QR's text or URL")] = None,
    number: Annotated[str | None, Form(max_length=64, description="A report number")] = None,
) -> dict:
    """Verify a PDF, a photo, a QR text or a number: the same JSON as `creditcert verify --json`.
    The verdict is in the body; the HTTP status is 200 whatever it is. Public and rate limited
    per client; a token with the `verify` scope is not limited."""
    service = service_of(request)
    if bearer(request) is None:
        service.allow_verify(request)
    else:
        check_token(request, "verify")
    if file is not None:
        source: bytes | str = await file.read()
        kind, label = None, "file"
    elif qr:
        source, kind, label = qr, InputKind.QR, "qr"
    elif number:
        source, kind, label = number, InputKind.NUMBER, "number"
    else:
        raise Problem(400, "nothing-to-verify", "send a file, a qr text or a number")
    result = await service.verify(source, kind, label)
    request.state.number = result.number
    return result.to_json()


@router.get(
    "/subjects/{code}/lookup",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
    openapi_extra=scope("lookup"),
)
async def subject_lookup(
    code: str,
    request: Request,
    purpose: str | None = None,
    domains: str | None = None,
    years: int | None = None,
    _: str = Depends(token("lookup")),
) -> dict:
    """What a report for the subject would say now (docs/lookup-json.md), without issuing."""
    service = service_of(request)
    at = service.clock()
    chosen = [d.strip() for d in domains.split(",") if d.strip()] if domains else None
    ask = service.city.request(at=at, as_of=at.date(), purpose=purpose, domains=chosen, years=years)
    findings = await asyncio.to_thread(service.city.lookup, code.strip().upper(), ask, at=at)
    return findings.to_json()


@router.post(
    "/applications",
    status_code=201,
    response_class=Response,
    responses={
        201: {"content": {"application/pdf": {}}, "description": "the signed report"},
        400: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM, 413: PROBLEM, 415: PROBLEM,
        429: PROBLEM, 503: PROBLEM,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "description": "a creditcert.application/1 COSE_Sign1 (docs/partners.md)",
        }
    },
)  # fmt: skip
async def remote_application(request: Request) -> Response:
    """A partner city's signed application for an enterprise registered here (异地申请): checked
    against the partner's bundle and our agreement, recorded (a nonce is used once), and
    answered with the report we issue under our own key."""
    service = service_of(request)
    service.allow_verify(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != MEDIA_TYPE:
        raise Problem(415, "unsupported-media-type", f"send the application as {MEDIA_TYPE}")
    body = await request.body()
    if len(body) > MAX_REQUEST:
        raise Problem(413, "too-large", "application too large", f"at most {MAX_REQUEST} bytes")
    city, at = service.city, service.clock()
    try:
        application = await asyncio.to_thread(city.applications.admit, body, at=at)
    except ApplicationRefused as exc:
        undecided = exc.result.verdict is Verdict.CANNOT_DECIDE
        raise Problem(
            503 if undecided else 403,
            "application-refused",
            "the application cannot be checked now" if undecided else "the application is refused",
            str(exc),
            reason=exc.reason.value,
        ) from None
    except Replayed as exc:
        raise Problem(409, "application-replayed", "this application was received before",
                      str(exc), reason=Reason.REPLAYED.value) from None  # fmt: skip
    nonce = application.nonce.hex()
    try:
        ask = city.applications.request_of(application, at=at)
        outcome = await service.issue(application.subject_code, ask, lang=application.lang)
    except (Problem, CreditcertError) as exc:
        why = f"{exc.code}: {exc.detail}" if isinstance(exc, Problem) else str(exc)
        await asyncio.to_thread(city.applications.settle, nonce, "refused", detail=why)
        raise
    await asyncio.to_thread(city.applications.settle, nonce, "issued", number=outcome.number)
    # the kept PDF, read at the clock of now: the report was issued after `at`
    entry, pdf = await asyncio.to_thread(city.report_pdf, outcome.number, at=service.clock())
    request.state.number = entry.number
    return Response(
        pdf,
        status_code=201,
        media_type="application/pdf",
        headers={"Location": f"/api/v1/reports/{entry.number}"},
    )


well_known = APIRouter()


@well_known.get(
    "/.well-known/creditcert/bundle.cose",
    response_class=Response,
    responses={
        200: {"content": {"application/cose": {}}},
        304: {"description": "unchanged"},
        404: PROBLEM,
    },
)
async def published_bundle(request: Request) -> Response:
    """The city's current signed bundle for partners (keys, catalog, revocations: docs/partners.md),
    as last exported by `creditcert partner export`; conditional requests answer 304."""
    path = service_of(request).city.layout.published_bundle
    try:
        data = await asyncio.to_thread(path.read_bytes)
        modified = path.stat().st_mtime
    except FileNotFoundError:
        raise Problem(404, "no-bundle", "this city has not published a bundle yet") from None
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Last-Modified": formatdate(modified, usegmt=True),
        "Cache-Control": "public, max-age=300",
    }
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="application/cose", headers=headers)
