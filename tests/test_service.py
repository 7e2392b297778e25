"""The city's service over real HTTP: `creditcert serve` in a subprocess, driven by httpx as a
browser or a portal would (the browser suite drives the same pages in Chromium)."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import threading
import time
from datetime import datetime

import pytest

from creditcert.city import City
from creditcert.model.clock import SHANGHAI
from creditcert.service.guard import RateLimit

from .conftest import run_cli
from .service_server import copy_home, service_home, serving

pytestmark = pytest.mark.slow  # real server processes


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return service_home(tmp_path_factory.mktemp("service"))


@pytest.fixture(scope="module")
def server(home):
    with serving(home, "--demo") as server:
        yield server


@pytest.fixture(scope="module")
def codes(home):
    with City.open(home).store() as store:
        return {
            "busy": store.subject_codes(with_records=True, limit=1)[0],
            "clean": store.subject_codes(with_records=False, limit=1)[0],
        }


def _now() -> datetime:
    return datetime.now(SHANGHAI)


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html)[1]


def verdict(html: str) -> str:
    return re.search(r'data-verdict="([^"]+)"', html)[1]


def sign_in(client, code: str) -> str:
    token = csrf(client.get("/").text)
    page = client.post("/signin", data={"code": code, "csrf": token}, follow_redirects=True)
    assert page.status_code == 200 and code in page.text, page.text
    return token


def issue(client, token: str, **form) -> str:
    answer = client.post("/reports", data={"csrf": token, **form})
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def busy_report(server, codes):
    """The busy subject signs in, previews, issues with every domain and downloads the PDF."""
    with server.client() as client:
        token = sign_in(client, codes["busy"])
        preview = client.get("/preview", params={"purpose": "bidding"})
        assert preview.status_code == 200
        number = issue(client, token, purpose="bidding", report_lang="zh-en")
        page = client.get(f"/reports/{number}")
        assert page.status_code == 200 and f"/reports/{number}/pdf" in page.text
        pdf = client.get(f"/reports/{number}/pdf")
        listing = client.get("/").text
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    assert number in listing  # "my reports" lists it
    return number, pdf.content


def test_the_preview_shows_each_domain_with_what_is_reported_and_left_out(server, home, codes):
    with server.client() as client:
        sign_in(client, codes["busy"])
        page = client.get(
            "/preview",
            params={"purpose": "custom", "domain": ["taxation", "transport"], "years": "3"},
        )
    assert page.status_code == 200
    city = City.open(home)
    for code in ("taxation", "transport"):
        assert city.settings.catalog.domain(code).zh in page.text
    assert city.settings.catalog.domain("market-regulation").zh not in page.text
    with server.client() as client:
        sign_in(client, codes["busy"])
        none = client.get("/preview", params={"purpose": "custom"})
    assert none.status_code == 400 and "Traceback" not in none.text


def test_an_issued_report_downloads_and_verifies_on_the_page_the_api_and_the_library(
    server, home, busy_report
):
    number, pdf = busy_report
    with server.client() as client:
        token = csrf(client.get("/verify").text)
        page = client.post(
            "/verify", data={"csrf": token}, files={"file": ("r.pdf", pdf, "application/pdf")}
        )
        api = client.post("/api/v1/verify", files={"file": ("r.pdf", pdf, "application/pdf")})
        status = client.get(f"/api/v1/reports/{number}").json()
    assert verdict(page.text) == "accepted" and number in page.text
    assert "文件未被篡改" in page.text and "在有效期内、未撤销" in page.text
    assert (
        api.json()["verdict"] == "accepted" and api.json()["format"] == "creditcert.verification/1"
    )
    assert status["status"] == "issued" and status["valid_now"] is True
    assert set(status) == {"format", "number", "status", "issued_at", "valid_until", "valid_now"}
    assert City.open(home).verify(pdf, at=_now()).verdict.value == "accepted"


def test_a_tampered_pdf_is_rejected_with_the_reason_and_an_unknown_file_cannot_be_decided(
    server, busy_report
):
    _, pdf = busy_report
    tampered = bytearray(pdf)
    tampered[len(pdf) // 2] ^= 1  # one bit inside the signed byte range
    with server.client() as client:
        token = csrf(client.get("/verify").text)
        bad = client.post(
            "/verify",
            data={"csrf": token},
            files={"file": ("r.pdf", bytes(tampered), "application/pdf")},
        )
        junk = client.post(
            "/verify", data={"csrf": token}, files={"file": ("x.bin", b"hello", "text/plain")}
        )
    assert verdict(bad.text) == "rejected" and 'class="bad"' in bad.text
    assert verdict(junk.text) == "cannot-decide" and "建议" in junk.text  # says what to try


def test_a_typed_number_and_a_revoked_report(server, home, codes):
    with server.client() as client:
        token = sign_in(client, codes["clean"])
        number = issue(client, token, purpose="bidding")
        typed = client.post("/verify", data={"csrf": token, "text": number.lower()})
        assert verdict(typed.text) == "accepted"
        revoked = run_cli(home, "revoke", number, "--reason", "issued for the wrong purpose")
        assert revoked.returncode == 0, revoked.stderr
        again = client.post("/verify", data={"csrf": token, "text": number})
        download = client.get(f"/reports/{number}/pdf")
        mine = client.get("/").text
        status = client.get(f"/api/v1/reports/{number}").json()
    assert verdict(again.text) == "rejected" and "revoked" in again.text
    assert download.status_code == 410
    assert "已撤销" in mine and status["status"] == "revoked" and status["valid_now"] is False


def test_every_answer_carries_the_security_headers_and_no_inline_script(server):
    with server.client() as client:
        for path in ("/verify", "/", "/api/v1/reports/nonsense", "/nope"):
            answer = client.get(path)
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "no-referrer"
            assert answer.headers["cache-control"] == "no-store"
            assert "<script>" not in answer.text and " style=" not in answer.text
            assert "Traceback" not in answer.text
        script = client.get("/static/site.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_errors_are_problem_documents_for_the_api_and_pages_for_people(server):
    with server.client() as client:
        api = client.get("/api/v1/reports/210100-0000-XXXXXXXX-X")
        missing = client.get("/api/v1/nothing")
        token = client.post("/api/v1/reports", json={"credit_code": "91210102MA0000001G"})
        invalid = client.post("/api/v1/verify", data={"qr": "x" * 5000})
        page = client.get("/reports/210100-2611-ABCDEFGH-J")
    for answer, status, code in ((api, 400, "bad-number"), (missing, 404, "not-found"),
                                 (token, 401, "token-required"), (invalid, 422, "invalid-request")):  # fmt: skip
        assert answer.status_code == status
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["code"] == code and body["type"] == f"urn:creditcert:problem:{code}"
    assert token.headers["www-authenticate"] == "Bearer"
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")


def test_forms_need_their_csrf_token_and_bodies_are_bounded(server, codes):
    with server.client() as client:
        client.get("/verify")
        forged = client.post("/verify", data={"csrf": "guess", "text": "x"})
        signin = client.post("/signin", data={"code": codes["busy"]})
        huge = client.post(
            "/api/v1/verify", files={"file": ("big.pdf", b"%PDF-" + b"0" * (21 << 20))}
        )
    assert forged.status_code == 403 and signin.status_code == 403
    assert huge.status_code == 413 and huge.json()["code"] == "too-large"


def test_an_unregistered_code_cannot_sign_in(server):
    with server.client() as client:
        token = csrf(client.get("/").text)
        answer = client.post("/signin", data={"code": "91210102MA0000001G", "csrf": token})
    assert answer.status_code == 404 and "not in the subject register" in answer.text


def test_metrics_and_access_lines(server, busy_report):
    number, _ = busy_report
    with server.client() as client:
        metrics = client.get("/metrics").text
    issued = re.search(r"^creditcert_reports_issued_total (\S+)$", metrics, re.M)
    assert issued and float(issued[1]) >= 1
    assert 'creditcert_verifications_total{input="file",verdict="accepted"}' in metrics
    assert "creditcert_request_seconds_bucket" in metrics
    lines = [json.loads(line) for line in server.lines if line.startswith("{")]
    routes = {line["route"] for line in lines}
    assert {"/verify", "/reports/{number}/pdf"} <= routes
    assert any(line.get("number") == number for line in lines)
    assert all(set(line) <= {"method", "route", "status", "ms", "number"} for line in lines)


def test_demo_sign_in_only_on_loopback(home):
    refused = run_cli(home, "serve", "--demo", "--host", "0.0.0.0")
    assert (
        refused.returncode == 2
        and "loopback" in refused.stderr
        and "Traceback" not in refused.stderr
    )


def test_behind_a_trusted_proxy_the_identity_header_signs_in_and_verify_is_rate_limited(
    tmp_path, home, codes
):
    """No demo: only the proxy's header names the enterprise; 3 verifications a minute."""
    copy = copy_home(home, tmp_path / "proxied")
    path = copy / "creditcert.toml"
    text = path.read_text(encoding="utf-8").replace('# trusted_proxies = ["10.0.0.0/8"]',
                                                   'trusted_proxies = ["127.0.0.1"]\nverify_per_minute = 3')  # fmt: skip
    path.write_text(text, encoding="utf-8")
    with serving(copy) as server, server.client() as client:
        anonymous = client.get("/")
        token = csrf(client.get("/verify").text)
        demo = client.post("/signin", data={"code": codes["busy"], "csrf": token})
        mine = client.get("/", headers={"X-Credit-Code": codes["busy"]})
        answers = [client.post("/api/v1/verify", data={"number": "x"},
                               headers={"X-Forwarded-For": "203.0.113.9"}) for _ in range(4)]  # fmt: skip
        other = client.post(
            "/api/v1/verify", data={"number": "x"}, headers={"X-Forwarded-For": "203.0.113.10"}
        )
    assert "演示" not in anonymous.text and 'name="code"' not in anonymous.text
    assert demo.status_code == 404
    assert mine.status_code == 200 and codes["busy"] in mine.text and "我的报告" in mine.text
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert other.status_code == 200  # another client behind the same proxy has its own budget


def test_the_rate_limit_slides_over_a_minute():
    now = [0.0]
    limit = RateLimit(2, clock=lambda: now[0])
    assert [limit.allow("a"), limit.allow("a"), limit.allow("a"), limit.allow("b")] == [
        True,
        True,
        False,
        True,
    ]
    now[0] = 59.0
    assert not limit.allow("a") and limit.retry_after("a") >= 1
    now[0] = 60.5
    assert limit.allow("a")
    assert RateLimit(0).allow("a")


def test_sigterm_during_issuance_leaves_nothing_half_issued(tmp_path, home, codes):
    copy = copy_home(home, tmp_path / "stopping")
    with serving(copy, "--demo") as server, server.client() as client:
        token = sign_in(client, codes["busy"])
        answers = []
        thread = threading.Thread(
            target=lambda: answers.append(
                client.post("/reports", data={"csrf": token, "all": "1", "purpose": "bidding"})
            )
        )
        thread.start()
        time.sleep(0.5)  # the report is being rendered
        code = server.stop()
        thread.join(120)
    assert code in (0, -signal.SIGTERM), server.log  # uvicorn re-raises the signal once stopped
    assert "Application shutdown complete" in server.log
    con = sqlite3.connect(copy / "registry.sqlite")
    rows = con.execute("SELECT number, status FROM reports").fetchall()
    for number, status in rows:
        assert status != "pending", rows
        assert (copy / "reports" / f"{number}.pdf").exists() == (status in ("issued", "revoked"))
    if answers:
        assert answers[0].status_code in (303, 503)


def test_the_published_bundle_is_served_with_caching_headers(server, home, tmp_path):
    with server.client() as client:
        before = client.get("/.well-known/creditcert/bundle.cose")
        exported = run_cli(home, "partner", "export", "--out", str(tmp_path / "b.cose"))
        assert exported.returncode == 0, exported.stderr
        served = client.get("/.well-known/creditcert/bundle.cose")
        again = client.get(
            "/.well-known/creditcert/bundle.cose", headers={"If-None-Match": served.headers["etag"]}
        )
    assert before.status_code == 404 and before.json()["code"] == "no-bundle"
    assert served.status_code == 200 and served.content == (tmp_path / "b.cose").read_bytes()
    assert served.headers["content-type"] == "application/cose"
    assert (
        served.headers["cache-control"] == "public, max-age=300" and served.headers["last-modified"]
    )
    assert again.status_code == 304 and not again.content


def test_portals_issue_look_up_and_verify_with_scoped_tokens(server, home, codes):
    def add(name, scopes):
        made = run_cli(home, "tokens", "add", name, "--scope", scopes)
        assert made.returncode == 0, made.stderr
        return {"Authorization": f"Bearer {made.stdout.strip()}"}

    issuer, looker = add("portal-issue", "issue,verify"), add("portal-lookup", "lookup")
    with server.client() as client:
        made = client.post("/api/v1/reports", headers=issuer,
                           json={"credit_code": codes["clean"].lower(), "purpose": "bidding", "lang": "en"})  # fmt: skip
        assert made.status_code == 201, made.text
        body = made.json()
        pdf = client.get(body["links"]["pdf"], headers=issuer)
        no_scope = client.post(
            "/api/v1/reports", headers=looker, json={"credit_code": codes["clean"]}
        )
        looked = client.get(
            f"/api/v1/subjects/{codes['busy']}/lookup",
            params={"purpose": "bidding"},
            headers=looker,
        )
        unknown = client.get(
            "/api/v1/subjects/91210102MA0000001G/lookup?purpose=bidding", headers=looker
        )
        verified = client.post(
            "/api/v1/verify", headers=issuer, files={"file": ("r.pdf", pdf.content)}
        )
        assert run_cli(home, "tokens", "revoke", "portal-lookup").returncode == 0
        revoked = client.get(f"/api/v1/subjects/{codes['busy']}/lookup", headers=looker)
        forged = client.get(
            f"/api/v1/subjects/{codes['busy']}/lookup", headers={"Authorization": "Bearer cct_x"}
        )
    assert body["format"] == "creditcert.api.report/1" and body["status"] == "issued"
    assert pdf.headers["content-type"] == "application/pdf"
    assert no_scope.status_code == 403 and no_scope.json()["code"] == "token-scope"
    assert looked.status_code == 200 and looked.json()["format"] == "creditcert.lookup/1"
    assert unknown.status_code == 404 and unknown.json()["code"] == "no-such-subject", unknown.text
    assert verified.json()["verdict"] == "accepted" and verified.json()["number"] == body["number"]
    assert revoked.status_code == 401 and revoked.json()["code"] == "token-refused"
    assert forged.status_code == 401 and "cct_x" not in server.log


def test_the_api_page_and_every_page_use_nothing_from_outside(server):
    with server.client() as client:
        docs = client.get("/api/docs")
        spec = client.get("/openapi.json").json()
        pages = [client.get(p).text for p in ("/verify", "/", "/api/docs")]
    assert (
        docs.status_code == 200 and "/api/v1/reports" in docs.text and "/api/v1/verify" in docs.text
    )
    assert spec["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    for html in pages:
        assert not re.search(
            r'(src|href)="(https?:)?//', html
        )  # no CDN, font or script from elsewhere


def test_concurrent_pdf_verifications_neither_crash_the_server_nor_change_the_verdict(
    server, busy_report
):
    """PDFium is not thread-safe: before a lock, four PDFs verified at once killed the server."""
    from concurrent.futures import ThreadPoolExecutor

    _, pdf = busy_report

    def one(_):
        with server.client() as client:
            return client.post("/api/v1/verify", files={"file": ("r.pdf", pdf, "application/pdf")})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(12)))
    assert [a.status_code for a in answers] == [200] * 12
    assert {a.json()["verdict"] for a in answers} == {"accepted"}
    assert server.process.poll() is None


def test_an_address_in_use_is_one_line_and_exit_2(home):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = run_cli(home, "serve", "--port", str(port))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert (
        refused.stderr.strip().startswith("error: cannot listen on 127.0.0.1")
        and refused.stderr.count("\n") == 1
    )
