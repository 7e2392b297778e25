"""The service in a real browser: Debian's Chromium driven by Playwright, against a real
`creditcert serve` in a subprocess, doing what an enterprise, a reviewer and a phone do. Every page
is saved as out/browser/<test>-<step>.png to be looked at; every page must load without a console
error, a script error, a CSP violation or a request to another origin."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Page

from creditcert.city import City
from creditcert.model.clock import SHANGHAI

from .browsing import CJK, PHONE, Browsing, chromium  # noqa: F401 (the browser fixture)
from .service_server import Server, service_home, serving

pytestmark = pytest.mark.slow  # a real server process and a real browser


def _now() -> datetime:
    return datetime.now(SHANGHAI)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return service_home(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def server(home) -> Iterator[Server]:
    with serving(home, "--demo", own_base_url=True) as server:
        yield server


@pytest.fixture(scope="module")
def city(home, server) -> City:  # after the server has written its base_url
    return City.open(home)


@pytest.fixture(scope="module")
def codes(city) -> dict[str, str]:
    with city.store() as store:
        return {
            "busy": store.subject_codes(with_records=True, limit=1)[0],
            "clean": store.subject_codes(with_records=False, limit=1)[0],
        }


@pytest.fixture
def web(browser, server, request) -> Iterator[Browsing]:
    browsing = Browsing(browser, server, request.node.name)
    yield browsing
    browsing.close()


# --- helpers: what a person does ----------------------------------------------------------------


def sign_in(page: Page, code: str) -> None:
    page.goto("/")
    page.fill("#code", code)
    page.get_by_role("button", name=re.compile("登录|Sign in")).click()
    page.wait_for_url(re.compile(r"/$"))
    page.get_by_role("heading", name=re.compile("申请专项信用报告|Get a special")).wait_for()


def confirm_and_issue(page: Page) -> str:
    page.get_by_role("button", name=re.compile("确认并出具报告|Confirm and issue")).click()
    page.wait_for_url(re.compile(r"/reports/[0-9A-Z-]+$"))
    return page.url.rsplit("/", 1)[1]


def upload(page: Page, name: str, data: bytes, mime: str) -> None:
    """Choose a file on /verify: the page's script sends the form at once."""
    page.goto("/verify")
    page.set_input_files("#file", files=[{"name": name, "mimeType": mime, "buffer": data}])
    page.locator("#verdict").wait_for()


def type_number(page: Page, number: str) -> None:
    page.goto("/verify")
    page.fill("#text", number)
    page.get_by_role("button", name=re.compile("^(核验|Verify)$")).click()
    page.locator("#verdict").wait_for()


def verdict(page: Page) -> str:
    return page.locator("#verdict").get_attribute("data-verdict")


def lines(page: Page) -> list[tuple[str, str]]:
    """The plain lines: (colour class, text)."""
    items = page.locator("ul.lines > li")
    return [
        (items.nth(i).get_attribute("class"), items.nth(i).inner_text())
        for i in range(items.count())
    ]


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"{page.url} scrolls sideways: {width}"


# --- the enterprise ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def issued(browser, server, city, codes) -> tuple[str, bytes]:
    """The busy enterprise signs in (demo), picks the bidding purpose, reads the preview domain by
    domain, confirms, lands on its report's page and downloads the PDF: (number, PDF)."""
    web = Browsing(browser, server, "test_an_enterprise_signs_in_issues_and_downloads")
    page = web.page()
    page.goto("/")
    web.shot(page, "1-signin")
    assert page.locator(".demo").inner_text().startswith("演示")
    sign_in(page, codes["busy"])
    web.shot(page, "2-home")
    page.check("input[name=purpose][value=bidding]")
    page.get_by_role("button", name="查看将报告的内容").click()
    page.wait_for_url(re.compile(r"/preview\?"))
    web.shot(page, "3-preview")
    catalog = city.settings.catalog
    bidding = next(p for p in catalog.purposes if p.code == "bidding")
    rows = page.locator("table.domains > tbody > tr:not(.records)")
    assert rows.count() == len(bidding.domains)
    shown = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
    assert shown == [catalog.domain(d).zh for d in bidding.domains]
    assert page.locator("tr.records li").count() >= 1  # the busy subject has records to report
    number = confirm_and_issue(page)
    page.get_by_role("heading", name=re.compile(number)).wait_for()
    assert "有效" in page.locator("dl.facts").inner_text()
    web.shot(page, "4-report")
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == f"{number}.pdf"
    pdf = Path(download.value.path()).read_bytes()
    page.get_by_role("link", name="我的报告").click()
    mine = page.locator("table.reports tr", has_text=number)
    assert "有效" in mine.inner_text()
    web.shot(page, "5-my-reports")
    web.close()
    return number, pdf


def test_an_enterprise_signs_in_issues_and_downloads(issued, city, codes):
    number, pdf = issued
    assert pdf.startswith(b"%PDF-")
    result = city.verify(pdf, at=_now())
    failed = [c for c in result.checks if c.status.value != "passed"]
    assert result.verdict.value == "accepted", failed
    assert result.number == number and result.document.subject_code == codes["busy"]


# --- the reviewer ------------------------------------------------------------------------------


def test_a_reviewer_chooses_the_pdf_and_sees_all_green_and_the_signed_content(
    web, issued, city, codes
):
    number, pdf = issued
    page = web.page()
    page.goto("/verify")
    web.shot(page, "1-verify")
    upload(page, f"{number}.pdf", pdf, "application/pdf")
    web.shot(page, "2-result")
    assert verdict(page) == "accepted"
    assert page.locator("#verdict h1").inner_text() == "报告真实有效"
    seen = lines(page)
    assert [state for state, _ in seen] == ["ok", "ok", "ok"], seen
    assert "文件未被篡改" in seen[0][1]
    assert re.search(r"由.+签发", seen[1][1]) and "沈阳市" in seen[1][1]
    assert "在有效期内、未撤销" in seen[2][1]
    content = page.locator("section.content").inner_text()
    assert city.subject(codes["busy"]).name in content and codes["busy"] in content
    catalog = city.settings.catalog
    bidding = next(p for p in catalog.purposes if p.code == "bidding")
    for domain in bidding.domains:
        assert catalog.domain(domain).zh in content
    assert page.locator("details.checklist li.ok").count() >= 5

    # Without script the same form works with its button.
    plain = web.page(java_script_enabled=False)
    plain.goto("/verify")
    plain.set_input_files(
        "#file", files=[{"name": "r.pdf", "mimeType": "application/pdf", "buffer": pdf}]
    )
    plain.get_by_role("button", name="核验").click()
    plain.locator("#verdict").wait_for()
    assert verdict(plain) == "accepted"
    web.shot(plain, "3-result-without-script")


def test_a_tampered_pdf_shows_red_with_the_reason(web, issued):
    _, pdf = issued
    tampered = bytearray(pdf)
    tampered[len(pdf) // 2] ^= 1  # one bit inside the signed byte range
    page = web.page()
    upload(page, "tampered.pdf", bytes(tampered), "application/pdf")
    web.shot(page, "1-result")
    assert verdict(page) == "rejected"
    assert page.locator("#verdict h1").inner_text() == "报告无效或被篡改"
    state, text = lines(page)[0]
    assert state == "bad" and "文件未被篡改" in text
    reason = page.locator("ul.lines > li.bad small").first.inner_text()
    assert reason.startswith("原因：签名与内容不符")  # the red line says why, in plain words
    # What the signed data says is folded away and marked, never shown as a valid report's.
    assert page.locator("section.content").count() == 0
    folded = page.locator("details.refused")
    assert "未通过核验" in folded.locator("summary").inner_text()
    assert not folded.locator("dl.facts").is_visible()


@pytest.fixture(scope="module")
def photo(issued, tmp_path_factory) -> bytes:
    """Page 1 of the report as an image (what a reviewer's photo or scan gives)."""
    _, pdf = issued
    folder = tmp_path_factory.mktemp("photo")
    (folder / "r.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", "-singlefile", "r.pdf", "page"],
        cwd=folder, check=True, timeout=120,
    )  # fmt: skip
    return (folder / "page.png").read_bytes()


def test_a_photo_of_a_page_is_verified_by_its_qr(web, issued, photo, city, codes):
    number, _ = issued
    page = web.page()
    upload(page, "page1.png", photo, "image/png")
    web.shot(page, "1-result")
    assert verdict(page) == "accepted"
    assert page.locator(".number").inner_text().endswith(number)
    assert all(state == "ok" for state, _ in lines(page))
    content = page.locator("section.content").inner_text()
    assert city.subject(codes["busy"]).name in content


def test_the_qr_opened_as_a_phone_would_lands_on_its_result(
    web, issued, photo, server, city, codes
):
    """The QR is a URL of this city's service (base_url) carrying the whole signed payload: a
    phone's camera opens it and lands on the answer."""
    number, _ = issued
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(photo)))
    assert len(found) == 1, found
    text = found[0].text
    url = urlsplit(text)  # scheme and host may be upper case (QR alphanumeric mode)
    assert (url.scheme.lower(), url.netloc.lower()) == (
        "http",
        urlsplit(server.base).netloc,
    ) and url.path.startswith("/CC1/"), f"the QR is not a URL of this service: {text!r}"
    page = web.page(**PHONE)
    page.goto(text)
    page.locator("#verdict").wait_for()
    web.shot(page, "1-result")
    assert verdict(page) == "accepted"
    assert page.locator(".number").inner_text().endswith(number)
    assert all(state == "ok" for state, _ in lines(page))
    assert city.subject(codes["busy"]).name in page.locator("section.content").inner_text()
    no_sideways_scroll(page)


def test_a_typed_number_is_accepted_until_the_report_is_revoked(web, city, codes):
    page = web.page()
    sign_in(page, codes["clean"])
    page.goto("/preview?purpose=bidding")
    assert "均未发现违法违规记录" in page.locator(".summary").inner_text()
    number = confirm_and_issue(page)
    type_number(page, number.lower())  # as typed, in lower case
    web.shot(page, "1-accepted")
    assert verdict(page) == "accepted"
    assert all(state == "ok" for state, _ in lines(page))

    city.revoke(number, reason="issued for the wrong purpose", at=_now())
    type_number(page, number)
    web.shot(page, "2-revoked")
    assert verdict(page) == "rejected"
    state, text = lines(page)[-1]
    assert state == "bad" and "在有效期内、未撤销" in text
    assert "报告已被出具机构撤销" in page.locator("ul.lines > li.bad small").inner_text()
    page.goto(f"/reports/{number}")
    assert "已撤销" in page.locator("dl.facts").inner_text()
    assert page.locator("#download").count() == 0  # nothing left to download
    web.shot(page, "3-report-page")


def test_the_english_switch_turns_every_label_and_sticks(web, issued, codes):
    number, _ = issued
    page = web.page()
    page.goto("/verify")
    page.get_by_role("link", name="English").click()
    page.wait_for_url(re.compile(r"lang=en"))
    web.shot(page, "1-verify")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Verify a special credit report"
    assert page.get_by_role("button", name="Verify").is_visible()
    assert page.get_by_role("link", name="Verify a report").is_visible()

    def english_only(where: str) -> None:
        text = page.locator("body").inner_text()
        text = text.replace(page.locator(".demo").inner_text(), "")  # says 演示 on purpose
        text = text.replace(page.locator("a.lang").inner_text(), "")  # 中文, the way back
        if page.locator("dl.facts").count():  # the subject's registered name is data
            text = text.replace(page.locator("dl.facts dd").first.inner_text(), "")
        assert not CJK.search(text), f"{where}: {CJK.findall(text)} in {text!r}"

    english_only("verify")
    page.get_by_role("link", name="Get a report").click()  # no ?lang: it is remembered
    page.get_by_role("heading", name="Get your special credit report online").wait_for()
    web.shot(page, "2-signin")
    english_only("sign-in")
    type_number(page, number)
    web.shot(page, "3-result")
    assert page.locator("#verdict h1").inner_text() == "Authentic and valid"
    assert "Not tampered with" in page.locator("ul.lines").inner_text()
    english_only("result")
    page.get_by_role("link", name="中文").click()
    page.get_by_role("heading", name="核验专项信用报告").wait_for()
    page.goto("/")
    assert page.locator("h1").inner_text() == "在线申请专项信用报告"

    # On the preview the switch keeps the request it shows.
    sign_in(page, codes["clean"])
    page.goto("/preview?purpose=financing&years=2")
    page.get_by_role("link", name="English").click()
    page.get_by_role("heading", name="Check what the report will say").wait_for()
    web.shot(page, "4-preview")
    assert "Confirm and issue the report" in page.locator("form.confirm").inner_text()
    assert page.locator("input[name=purpose]").get_attribute("value") == "financing"
    english_only("preview")


def test_on_a_phone_nothing_scrolls_sideways_and_the_button_is_in_reach(web, issued, codes):
    _, pdf = issued
    page = web.page(**PHONE)
    page.goto("/verify")
    web.shot(page, "1-verify")
    no_sideways_scroll(page)
    button = page.get_by_role("button", name="核验")
    assert button.is_visible() and button.bounding_box()["y"] + 40 < 844  # on the first screen
    upload(page, "r.pdf", pdf, "application/pdf")
    web.shot(page, "2-result")
    assert verdict(page) == "accepted"
    no_sideways_scroll(page)
    sign_in(page, codes["busy"])
    web.shot(page, "3-home")
    no_sideways_scroll(page)
    assert page.get_by_role("button", name="查看将报告的内容").is_visible()
    page.goto("/preview?purpose=bidding")
    web.shot(page, "4-preview")
    no_sideways_scroll(page)
    assert page.get_by_role("button", name="确认并出具报告").is_visible()


def test_no_page_has_a_console_error_or_a_csp_violation(web, issued, server):
    """Every page a person reaches, the error pages included, loads clean (the `web` fixture
    fails the test on any console error, script error or request to another origin)."""
    number, _ = issued
    page = web.page()
    for step, path in [("verify", "/verify"), ("signin", "/"), ("missing", "/nope"),
                       ("not-signed-in", f"/reports/{number}"), ("api-docs", "/api/docs")]:  # fmt: skip
        page.goto(path)
        page.wait_for_load_state("networkidle")
        web.shot(page, step)
    assert not web.problems, "\n".join(web.problems)
    page.goto("/api/docs")  # our own rendering of the OpenAPI document: no CDN, no inline script
    assert page.get_by_role("heading", name="POST /api/v1/verify").is_visible()
    # The watcher sees what it is there to see: a blocked inline style is a console error.
    page.goto("/verify")
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        page.evaluate(
            "document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')"
        )
    assert any("Content Security Policy" in p for p in web.problems)
    web.problems.clear()
