"""Issue 12 between two running services: 沈阳市 (210100) publishes, 茂名市 (440900) syncs on its
own schedule (`[partners] sync_interval`). A revocation made in 沈阳市 is refused by 茂名市's
verify page within one sync interval (measured); a partner's typed number is asked of its
service; a partner that goes down is named stale, and comes back."""

from __future__ import annotations

import json
import re
import time
from contextlib import ExitStack
from datetime import timedelta

import pytest

from creditcert.city import City
from creditcert.model import report_number
from creditcert.trust.keys import fingerprint

from .conftest import run_cli
from .service_server import free_port, service_home, serving
from .test_partner_sync import agree, now, partner_home

pytestmark = pytest.mark.slow  # two real server processes

INTERVAL = 1  # seconds: 茂名市's sync_interval here (300 by default)
ACCEPTED_SOME = 'data-verdict="accepted-for-some-domains"'
ACCEPTED = 'data-verdict="accepted"'
REJECTED = 'data-verdict="rejected"'
UNDECIDED = 'data-verdict="cannot-decide"'


@pytest.fixture(scope="module")
def shenyang(tmp_path_factory):
    return service_home(tmp_path_factory.mktemp("shenyang"))


@pytest.fixture(scope="module")
def maoming(tmp_path_factory, shenyang):
    settings = f"\n[partners]\nsync_interval = {INTERVAL}\nstatus_timeout = 3\n"
    return partner_home(tmp_path_factory.mktemp("maoming"), shenyang, settings)


def page(client, text: str) -> str:
    """茂名市's verify page, answering a typed number or a QR text."""
    form = client.get("/verify").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)[1]
    answer = client.post("/verify", data={"csrf": csrf, "text": text})
    assert answer.status_code == 200, answer.text[:500]
    return answer.text


def metric(client, name: str) -> float | None:
    found = re.search(rf'^{name}{{partner="210100"}} (\S+)$', client.get("/metrics").text, re.M)
    return float(found[1]) if found else None


def until(condition, *, within: float, what: str) -> float:
    """Poll `condition` until true; the seconds it took. Fails after `within` seconds."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < within, f"not within {within} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - start


def verify_number(home, number: str):
    done = run_cli(home, "verify", "--number", number, "--json")
    result = json.loads(done.stdout)
    return done.returncode, {c["step"]: c["reason"] for c in result["checks"]}, result


def test_revocation_reaches_the_partners_page_within_one_interval_and_a_partner_down_and_back(
    shenyang, maoming, record_property
):
    ours = City.open(shenyang)
    with ours.store() as store:
        first, second = store.subject_codes(with_records=True, limit=2)
    revoked = ours.issue(first, ours.request(as_of=now().date(), purpose="bidding"), at=now())
    kept = ours.issue(second, ours.request(as_of=now().date(), purpose="bidding"), at=now())
    number = revoked.document.number
    assert run_cli(shenyang, "partner", "export", "--out", str(shenyang / "b.cose")).returncode == 0
    port = free_port()
    with ExitStack() as stack:
        a = stack.enter_context(serving(shenyang, port=port))
        pin = fingerprint(ours.keys.root())
        added = run_cli(maoming, "partner", "add", "210100", "--url", a.base, "--fingerprint", pin)
        assert added.returncode == 0, added.stderr
        assert run_cli(maoming, "partner", "sync").returncode == 0
        agree(maoming)
        b = stack.enter_context(serving(maoming))
        client = stack.enter_context(b.client())

        # before: the QR verifies offline; the typed number is asked of 沈阳市's service
        assert ACCEPTED_SOME in page(client, revoked.qr.text)
        assert ACCEPTED in page(client, number)
        rc, steps, _ = verify_number(maoming, kept.document.number)
        assert rc == 0 and steps["status.issuer-online"] == "ok", steps
        assert steps["agreement.live"] == "ok" and steps["validity.period"] == "ok"
        never = report_number.new_number("210100", now() - timedelta(days=400))
        rc, steps, _ = verify_number(maoming, never)
        assert rc == 1 and steps["status.issuer-online"] == "unknown-number", steps

        # revoke in 沈阳市 (the CLI re-exports the published bundle); measure 茂名市's page
        before = time.monotonic()
        done = run_cli(shenyang, "revoke", number, "--reason", "issued in error")
        assert done.returncode == 0 and "now carries it" in done.stdout, done.stderr
        command = time.monotonic() - before  # the CLI's start-up, revocation and re-export
        took = until(
            lambda: REJECTED in page(client, revoked.qr.text),
            within=5 * INTERVAL + 10,
            what="茂名市's page refuses the revoked report",
        )
        record_property("revocation_propagation_seconds", round(took, 2))
        print(
            f"\nrevocation → partner's page refuses: {took:.2f} s after `revoke` returned "
            f"({command + took:.2f} s after it started; sync_interval {INTERVAL} s)"
        )
        assert took <= 1.1 * INTERVAL + 1.0  # one interval with its jitter, and one round
        assert "撤销" in page(client, number)
        rc, steps, _ = verify_number(maoming, number)
        assert rc == 1 and steps["status.revocation-list"] == "revoked", steps
        assert metric(client, "creditcert_partner_last_good_sync_seconds") > 0
        assert metric(client, "creditcert_partner_stale_since_seconds") == 0

        # 沈阳市 goes down: its bundle is kept, 茂名市 says since when sync fails
        a.stop()
        until(
            lambda: metric(client, "creditcert_partner_stale_since_seconds") > 0,
            within=5 * INTERVAL + 10,
            what="茂名市 notices 沈阳市 is down",
        )
        assert REJECTED in page(client, revoked.qr.text)  # the held bundle, revocation included
        down = page(client, kept.document.number)
        assert UNDECIDED in down and "status-unreachable" in down and "PDF" in down
        rc, steps, result = verify_number(maoming, kept.document.number)
        assert rc == 3 and steps["status.issuer-online"] == "status-unreachable"
        assert "210100" in result["checks"][-1]["message"] and "PDF" in result["hint"]
        listed = run_cli(maoming, "partner", "list", "--json")
        sync = json.loads(listed.stdout)["partners"][0]["sync"]
        assert sync["url"] == a.base and sync["stale_since"] and sync["last_good_sync"], sync
        assert "stale since" in run_cli(maoming, "partner", "list").stdout

        # and back, where 茂名市 expects it
        stack.enter_context(serving(shenyang, port=port))
        until(
            lambda: metric(client, "creditcert_partner_stale_since_seconds") == 0,
            within=5 * INTERVAL + 10,
            what="茂名市 syncs again once 沈阳市 is back",
        )
        assert ACCEPTED in page(client, kept.document.number)
        assert 'creditcert_partner_syncs_total{partner="210100",status="unreachable"}' in (
            client.get("/metrics").text
        )
