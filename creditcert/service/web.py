"""The pages: verification for reviewers (public), self-service issuance for enterprises (signed
in), the QR's URL landing on its result. Chinese first, English one click away."""

from __future__ import annotations

import asyncio
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from creditcert import lookup
from creditcert.errors import CreditcertError, IssueError, PartnerError, SubjectError
from creditcert.rules.vocab import KIND_NAMES, LEFT_OUT_NAMES, Kind, LeftOut
from creditcert.service import guard
from creditcert.service.app import Problem, Service, render
from creditcert.service.present import VERDICT_WORDS, plain_lines
from creditcert.verify.result import Verification
from creditcert.verify.verifier import InputKind

router = APIRouter(include_in_schema=False)
LANGS = ("zh", "en")


def service_of(request: Request) -> Service:
    return request.app.state.service


def lang_of(request: Request) -> str:
    """?lang= switches and is remembered in the session; Chinese by default."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        request.session["lang"] = asked
    lang = request.session.get("lang")
    return lang if lang in LANGS else "zh"


def signed_in(request: Request) -> str | None:
    """The enterprise's credit code: from the identity header when the request comes through a
    trusted proxy (the province's identity service in front), else from a demo sign-in."""
    service = service_of(request)
    settings = service.city.settings.service
    if guard.from_proxy(request, settings.trusted_proxies):
        code = request.headers.get(settings.identity_header, "").strip().upper()
        return code or None
    code = request.session.get("code") if service.demo else None
    return code if isinstance(code, str) else None


def page_context(request: Request) -> dict:
    service = service_of(request)
    lang = lang_of(request)
    issuer = service.city.settings.issuer
    return {
        "lang": lang,
        "other_lang": "en" if lang == "zh" else "zh",
        "t": (lambda zh, en: zh if lang == "zh" else en),
        "demo": service.demo,
        "city_name": issuer.name if lang == "zh" else issuer.name_en,
        "code": signed_in(request),
        "csrf": guard.csrf_token(request.session),
        "path": request.url.path,
    }


def _check_csrf(request: Request, form) -> None:
    if not guard.csrf_ok(request.session, form.get("csrf")):
        raise Problem(403, "csrf", "this form has expired: reload the page and send it again")


def _need_code(request: Request) -> str:
    code = signed_in(request)
    if code is None:
        raise Problem(401, "sign-in", "sign in first", "the enterprise's own pages need a sign-in")
    return code


# --- verification -------------------------------------------------------------------------------


@router.get("/verify")
async def verify_form(request: Request) -> Response:
    return render(request, "verify.html", {"result": None})


@router.post("/verify")
async def verify_submit(request: Request) -> Response:
    service = service_of(request)
    form = await request.form(max_files=1, max_fields=8)
    _check_csrf(request, form)
    service.allow_verify(request)
    upload = form.get("file")
    text = str(form.get("text") or "").strip()
    if upload is not None and not isinstance(upload, str) and upload.filename:
        source: bytes | str = await upload.read()
        kind, label = None, "file"
        await upload.close()
    elif text:
        source, kind, label = text, None, "text"
    else:
        raise Problem(400, "nothing-to-verify", "choose a file, paste the QR text or type a number")
    result = await service.verify(source, kind, label)
    request.state.number = result.number
    return _result_page(request, result)


@router.get("/CC1/{payload}")
@router.get("/cc1/{payload}")
async def verify_qr_url(request: Request, payload: str) -> Response:
    """Where a phone lands when it scans a report's QR: the URL is the QR's whole signed text."""
    service = service_of(request)
    service.allow_verify(request)
    result = await service.verify(str(request.url), InputKind.QR, "qr-url")
    request.state.number = result.number
    return _result_page(request, result)


def _result_page(request: Request, result: Verification) -> Response:
    service = service_of(request)
    issuer = service.city.settings.issuer
    doc = result.document
    names = (doc.issuer_name, doc.issuer_name_en) if doc else _issuer_names(service, result)
    lines = plain_lines(result, own_code=issuer.admin_code, issuer_name=names)
    qr_domains = []
    if doc is None and result.qr is not None and result.qr.catalog_id == _catalog(service).id:
        catalog = _catalog(service)
        codes, counts = result.qr.domains(catalog.codes), result.qr.domain_counts
        if len(codes) == len(counts):
            qr_domains = [(catalog.domain(c), n) for c, n in zip(codes, counts, strict=True)]
    return render(
        request,
        "verify.html",
        {
            "result": result,
            "verdict_words": VERDICT_WORDS[result.verdict],
            "lines": lines,
            "doc": doc,
            "qr_domains": qr_domains,
            "kind_names": {k.value: v for k, v in KIND_NAMES.items()},
        },
    )


def _catalog(service: Service):
    return service.city.settings.catalog


def _issuer_names(service: Service, result: Verification) -> tuple[str, str]:
    issuer = service.city.settings.issuer
    code = (result.number or "")[:6]
    if not code or code == issuer.admin_code:
        return issuer.name, issuer.name_en
    return f"行政区划 {code}", f"the city of division {code}"


# --- the API's reference -----------------------------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


@router.get("/api/docs")
async def api_reference(request: Request) -> Response:
    """The API reference, rendered from the OpenAPI document on our own page. FastAPI's Swagger UI
    loads its script and style from a CDN and starts with an inline script: the CSP blocks both
    (the page was blank), and an intranet cannot reach the CDN."""
    schema = request.app.openapi()
    operations = [
        (method.upper(), path, operation)
        for path, item in schema.get("paths", {}).items()
        for method, operation in item.items()
        if method in METHODS
    ]
    return render(request, "api.html", {"api": schema["info"], "operations": operations})


# --- self-service -------------------------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    service = service_of(request)
    code = signed_in(request)
    if code is None:
        return render(request, "signin.html", {})
    city = service.city
    partner = await asyncio.to_thread(_remote_partner, service, code)
    if partner is not None:
        return await _remote_home(request, service, code, partner)
    catalog = city.settings.catalog
    reports = await asyncio.to_thread(_reports_of, service, code)
    return render(
        request,
        "home.html",
        {"purposes": catalog.purposes, "domains": catalog.domains, "reports": reports},
    )


def _remote_partner(service: Service, code: str) -> str | None:
    """The partner city registering `code` when it is not in our own register: its enterprise
    applies here and the partner issues (异地申请)."""
    try:
        service.city.subject(code)
        return None
    except SubjectError:
        return service.city.applications.registering_partner(code)


async def _remote_home(request: Request, service: Service, code: str, partner: str) -> Response:
    at = service.clock()
    city = service.city
    domains = await asyncio.to_thread(city.applications.agreed_domains, partner, at=at)
    applied = await asyncio.to_thread(city.applications.remote_reports, code)
    stored = await asyncio.to_thread(city.partners.stored, partner, at=at)
    bundle = stored.bundle
    names = (bundle.name, bundle.name_en) if bundle else (partner, partner)
    return render(
        request,
        "remote.html",
        {"partner": partner, "partner_names": names, "domains": domains, "applied": applied},
    )


def _reports_of(service: Service, code: str) -> list[tuple]:
    at = service.clock()
    entries = service.city.reports_of(code)
    return [(e, e.status == "issued" and e.issued_at <= at < e.valid_until) for e in entries]


@router.post("/signin")
async def signin(request: Request) -> Response:
    service = service_of(request)
    form = await request.form(max_files=0, max_fields=4)
    _check_csrf(request, form)
    if not service.demo:
        raise Problem(404, "not-found", "sign in through the province's government service portal")
    code = str(form.get("code") or "").strip().upper()
    if await asyncio.to_thread(_remote_partner, service, code) is None:
        await asyncio.to_thread(service.city.subject, code)  # SubjectError → 404 with the reason
    request.session["code"] = code
    return RedirectResponse("/", status_code=303)


@router.post("/signout")
async def signout(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=4)
    _check_csrf(request, form)
    request.session.pop("code", None)
    return RedirectResponse("/", status_code=303)


def report_request(service: Service, at: datetime, params) -> lookup.Request:
    """The request a form or a query asks for: a purpose preset, or chosen domains and years."""
    purpose = (params.get("purpose") or "").strip() or None
    domains = [d for d in params.getlist("domain") if d] if hasattr(params, "getlist") else []
    years_raw = (params.get("years") or "").strip()
    try:
        years = int(years_raw) if years_raw else None
    except ValueError:
        raise Problem(400, "bad-request", f"years: {years_raw!r} is not a number") from None
    if purpose == "custom":
        purpose = None
        if not domains:
            raise Problem(400, "bad-request", "choose at least one domain")
    return service.city.request(
        at=at, as_of=at.date(), purpose=purpose, domains=domains or None, years=years
    )


@router.get("/preview")
async def preview(request: Request) -> Response:
    """The lookup, domain by domain, before anything is issued: what the report will say and
    what is left out, and why."""
    service = service_of(request)
    code = _need_code(request)
    at = service.clock()
    ask = report_request(service, at, request.query_params)
    findings = await asyncio.to_thread(service.city.lookup, code, ask, at=at)
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return render(
        request,
        "preview.html",
        {
            "f": findings,
            "query": query,
            "again": "/?" + urlencode(query),
            "left_out_names": {r.value: LEFT_OUT_NAMES[r] for r in LeftOut},
            "kind_names": {k.value: v for k, v in KIND_NAMES.items() if isinstance(k, Kind)},
        },
    )


@router.post("/reports")
async def issue(request: Request) -> Response:
    service = service_of(request)
    code = _need_code(request)
    form = await request.form(max_files=0, max_fields=80)
    _check_csrf(request, form)
    ask = report_request(service, service.clock(), form)
    report_lang = (
        form.get("report_lang") if form.get("report_lang") in ("zh", "en", "zh-en") else "zh-en"
    )
    outcome = await service.issue(code, ask, lang=str(report_lang))
    request.state.number = outcome.number
    return RedirectResponse(f"/reports/{outcome.number}", status_code=303)


def _own_entry(service: Service, code: str, number: str):
    try:
        with service.city.registry(read_only=True) as registry:
            entry = registry.get(number)
    except CreditcertError:
        entry = None
    if entry is None or entry.subject_code != code or entry.status not in ("issued", "revoked"):
        raise Problem(404, "not-found", "no such report of yours")
    return entry


@router.get("/reports/{number}")
async def report_page(request: Request, number: str) -> Response:
    service = service_of(request)
    code = _need_code(request)
    entry = await asyncio.to_thread(_own_entry, service, code, number)
    request.state.number = number
    at = service.clock()
    valid = entry.status == "issued" and entry.issued_at <= at < entry.valid_until
    return render(request, "report.html", {"entry": entry, "valid": valid})


@router.get("/reports/{number}/pdf")
async def report_pdf(request: Request, number: str) -> Response:
    service = service_of(request)
    code = _need_code(request)
    await asyncio.to_thread(_own_entry, service, code, number)
    try:
        entry, pdf = await asyncio.to_thread(service.city.report_pdf, number, at=service.clock())
    except CreditcertError as exc:
        raise Problem(
            410, "not-available", "this report can no longer be downloaded", str(exc)
        ) from None
    request.state.number = entry.number
    return _pdf_download(pdf, entry.number)


def _pdf_download(pdf: bytes, number: str) -> Response:
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
    )


# --- remote application (异地申请) --------------------------------------------------------------


@router.post("/applications")
async def apply_remote(request: Request) -> Response:
    """Forward the signed-in enterprise's application to the partner city that registers it,
    and keep the report it returns (verified here first)."""
    service = service_of(request)
    code = _need_code(request)
    form = await request.form(max_files=0, max_fields=80)
    _check_csrf(request, form)
    domains = [str(d) for d in form.getlist("domain") if d]
    if not domains:
        raise Problem(400, "bad-request", "choose at least one domain")
    years, lang = str(form.get("years") or "3"), str(form.get("report_lang") or "zh-en")
    if years not in ("1", "2", "3", "4", "5") or lang not in ("zh", "en", "zh-en"):
        raise Problem(400, "bad-request", "years must be 1 to 5 and the language zh, en or zh-en")
    try:
        got = await asyncio.to_thread(
            service.city.applications.apply_remote,
            code,
            clock=service.clock,
            domains=domains,
            years=int(years),
            lang=lang,
        )
    except PartnerError as exc:
        raise Problem(
            502, "partner-refused", "the partner city did not issue the report", str(exc)
        ) from None
    request.state.number = got.number
    return RedirectResponse(f"/remote/{got.number}", status_code=303)


def _remote_pdf(service: Service, code: str, number: str) -> bytes:
    """The kept PDF of a report a partner issued for the signed-in enterprise
    (city.applications.remote_pdf checks it is theirs); 404 otherwise."""
    try:
        return service.city.applications.remote_pdf(code, number)
    except (IssueError, FileNotFoundError):
        raise Problem(404, "not-found", "no such report of yours") from None


@router.get("/remote/{number}")
async def remote_report_page(request: Request, number: str) -> Response:
    service = service_of(request)
    code = _need_code(request)
    pdf = await asyncio.to_thread(_remote_pdf, service, code, number)
    request.state.number = number
    result = await service.verify(pdf, None, "remote")  # as it stands now: revoked, expired…
    return render(
        request,
        "remote_report.html",
        {
            "number": number,
            "result": result,
            "doc": result.document,
            "verdict_words": VERDICT_WORDS[result.verdict],
        },
    )


@router.get("/remote/{number}/pdf")
async def remote_report_pdf(request: Request, number: str) -> Response:
    service = service_of(request)
    code = _need_code(request)
    pdf = await asyncio.to_thread(_remote_pdf, service, code, number)
    request.state.number = number
    return _pdf_download(pdf, number)
