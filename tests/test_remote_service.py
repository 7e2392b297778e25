"""Remote application (异地申请) between running services: an enterprise of 伊春市 applies at
茂名市 — at the operator's counter (`partner apply`) and on 茂名市's portal in a real browser —
and 茂名市 forwards the signed application to 伊春市's API, which issues under its own key. 三亚市,
without an agreement at 伊春市, is refused with the reason; a replayed request is refused; both
registries record every application."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from creditcert.city import City
from creditcert.envelope.application import Application, seal_application
from creditcert.trust.keys import fingerprint
from creditcert.verify.result import Verdict

from .browsing import Browsing, chromium  # noqa: F401 (the browser fixture)
from .conftest import run_cli
from .remote_cities import AGREED, MAOMING, SANYA, YICHUN, enterprise, now, three_cities
from .service_server import Server, serving

pytestmark = pytest.mark.slow  # real server processes and a real browser


@pytest.fixture(scope="module")
def homes(tmp_path_factory) -> dict[str, Path]:
    return three_cities(tmp_path_factory.mktemp("remote-http"))


@pytest.fixture(scope="module")
def yichun(homes) -> Iterator[Server]:
    """伊春市's service, known to 茂名市 and 三亚市 by its URL and pinned root."""
    with serving(homes[YICHUN]) as server:
        pin = fingerprint(City.open(homes[YICHUN]).keys.root())
        for code in (MAOMING, SANYA):
            added = run_cli(
                homes[code], "partner", "add", YICHUN, "--url", server.base, "--fingerprint", pin
            )
            assert added.returncode == 0, added.stderr
        yield server


def sent(home: Path, subject: str):
    return City.open(home).applications.remote_reports(subject)


def received(home: Path, subject: str):
    with City.open(home).registry() as registry:
        return registry.applications_of(subject, "received")


def test_at_the_counter_a_report_is_issued_there_and_verifies_here(homes, yichun, tmp_path):
    subject = enterprise(homes[YICHUN])
    out = tmp_path / "report.pdf"
    done = run_cli(
        homes[MAOMING], "partner", "apply", subject, "--out", str(out),
        "--domain", "taxation", "--domain", "market-regulation", "--years", "2", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["format"] == "creditcert.remote-report/1" and got["partner"] == YICHUN
    number = got["number"]
    assert number.startswith(f"{YICHUN}-") and got["verification"]["verdict"] == "accepted"
    pdf = out.read_bytes()
    for home in (homes[MAOMING], homes[YICHUN]):
        result = City.open(home).verify(pdf, at=now())
        assert result.verdict is Verdict.ACCEPTED, result.pretty()
    doc = City.open(homes[YICHUN]).verify(pdf, at=now()).document
    assert [d.code for d in doc.domains] == ["taxation", "market-regulation"]
    assert (doc.period.end.year - doc.period.start.year) == 2

    (ours,) = sent(homes[MAOMING], subject)
    (theirs,) = received(homes[YICHUN], subject)
    assert ours.nonce == theirs.nonce and ours.number == theirs.number == number
    assert (ours.outcome, theirs.outcome, theirs.partner) == ("issued", "issued", MAOMING)
    assert City.open(homes[MAOMING]).applications.remote_pdf(subject, number) == pdf


def test_a_city_without_an_agreement_is_refused_with_the_reason(homes, yichun, tmp_path):
    subject = enterprise(homes[YICHUN])
    done = run_cli(homes[SANYA], "partner", "apply", subject, "--out", str(tmp_path / "x.pdf"))
    assert done.returncode == 2 and "no-agreement" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x.pdf").exists()
    (ours,) = sent(homes[SANYA], subject)
    assert ours.outcome == "refused" and "no-agreement" in ours.detail
    (theirs,) = [a for a in received(homes[YICHUN], subject) if a.partner == SANYA]
    assert theirs.nonce == ours.nonce and theirs.outcome == "refused"
    assert "no-agreement" in theirs.detail

    outside = City.open(homes[MAOMING]).settings.catalog.codes[AGREED]
    done = run_cli(
        homes[MAOMING], "partner", "apply", subject, "--out", str(tmp_path / "y.pdf"),
        "--domain", outside,
    )  # fmt: skip
    assert done.returncode == 2 and "not in the agreement" in done.stderr, done.stderr


def test_a_replayed_or_malformed_request_is_refused(homes, yichun):
    subject = enterprise(homes[YICHUN])
    maoming = City.open(homes[MAOMING])
    application = Application.new(
        from_city=MAOMING, to_city=YICHUN, subject_code=subject, domains=("taxation",),
        years=1, as_of=now().date(), lang="zh", sent_at=now(),
    )  # fmt: skip
    data = seal_application(application, maoming.keys.signer(now()))
    kind = {"Content-Type": "application/cose"}
    with yichun.client() as client:
        first = client.post("/api/v1/applications", content=data, headers=kind)
        assert first.status_code == 201, first.text
        assert first.headers["content-type"] == "application/pdf"
        assert first.headers["location"].startswith(f"/api/v1/reports/{YICHUN}-")
        again = client.post("/api/v1/applications", content=data, headers=kind)
        assert again.status_code == 409
        assert again.json()["code"] == "application-replayed"
        assert again.json()["reason"] == "replayed"
        plain = client.post("/api/v1/applications", content=data)
        assert plain.status_code == 415
        huge = client.post("/api/v1/applications", content=b"\0" * 20_000, headers=kind)
        assert huge.status_code == 413
        junk = client.post("/api/v1/applications", content=b"\xa1\x01\x02", headers=kind)
        assert junk.status_code == 403 and junk.json()["reason"] == "not-cose-sign1"
        assert "Traceback" not in junk.text


def test_on_the_portal_an_enterprise_of_the_partner_city_applies_and_downloads(
    homes, yichun, browser
):
    subject = enterprise(homes[YICHUN])
    with serving(homes[MAOMING], "--demo") as maoming:
        web = Browsing(browser, maoming, "test_remote_application_on_the_portal")
        page = web.page()
        page.goto("/")
        page.fill("#code", subject)
        page.get_by_role("button", name=re.compile("登录|Sign in")).click()
        page.get_by_role("heading", name="异地申请专项信用报告").wait_for()
        assert "伊春市" in page.locator("main").inner_text()
        boxes = page.locator("#remote-apply input[name=domain]")
        assert boxes.count() == AGREED
        for i in range(3, AGREED):  # keep three domains
            boxes.nth(i).uncheck()
        web.shot(page, "1-apply")
        page.get_by_role("button", name="提交申请并出具报告").click()
        page.wait_for_url(re.compile(r"/remote/230700-[0-9A-Z-]+$"))
        number = page.url.rsplit("/", 1)[1]
        assert page.locator("#verdict").get_attribute("data-verdict") == "accepted"
        web.shot(page, "2-report")
        with page.expect_download() as download:
            page.click("#download")
        pdf = Path(download.value.path()).read_bytes()
        page.goto("/")
        assert number in page.locator("table.reports").inner_text()
        web.shot(page, "3-applications")
        with httpx.Client(base_url=maoming.base) as stranger:  # no sign-in, no PDF
            assert stranger.get(f"/remote/{number}/pdf").status_code == 401
        web.close()
    result = City.open(homes[YICHUN]).verify(pdf, at=now())
    assert result.verdict is Verdict.ACCEPTED and result.number == number
    assert len(result.document.domains) == 3 and result.document.subject_code == subject
