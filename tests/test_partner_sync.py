"""Partners over HTTP (issue 12, first slice): 茂名市 syncs 沈阳市's bundle from 沈阳市's running
service; a revocation travels in one sync; a tampered or rolled-back bundle, or a service that is
down, never replaces the good bundle held."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta

import pytest

from creditcert import config
from creditcert.city import City
from creditcert.model.clock import SHANGHAI
from creditcert.trust.keys import fingerprint
from creditcert.verify.result import Verdict

from .conftest import run_cli
from .service_server import service_home, serving

pytestmark = pytest.mark.slow  # a real server process


def now() -> datetime:
    return datetime.now(SHANGHAI)


@pytest.fixture(scope="module")
def shenyang(tmp_path_factory):
    return service_home(tmp_path_factory.mktemp("shenyang"))


def partner_home(root, shenyang, settings: str = ""):
    """茂名市 (440900), with 沈阳市's data and keys of its own; `settings` appended to its
    creditcert.toml."""
    home = root / "city"
    config.init(home, admin_code="440900", name="茂名市", name_en="Maoming")
    shutil.copytree(shenyang / "data", home / "data", dirs_exist_ok=True)
    with (home / "creditcert.toml").open("a", encoding="utf-8") as toml:
        toml.write(settings)
    City.open(home).keys.init(now() - timedelta(minutes=5))
    return home


@pytest.fixture(scope="module")
def maoming(tmp_path_factory, shenyang):
    return partner_home(tmp_path_factory.mktemp("maoming"), shenyang)


def agree(home) -> None:
    today = now().date()
    agreement = (
        f'format = 1\npartner = "210100"\nstart = {today - timedelta(days=30)}\n'
        f'end = {today + timedelta(days=365)}\n\n[mapping]\ntaxation = "taxation"\n'
        'market-regulation = "market-regulation"\n'
    )
    City.open(home).partners.add_agreement(agreement, source="test", at=now())


def sync(home, *codes):
    done = run_cli(home, "partner", "sync", *codes, "--json")
    return done.returncode, {p["code"]: p for p in json.loads(done.stdout)["partners"]}


def test_sync_revocation_tampering_rollback_and_a_partner_down(shenyang, maoming):
    ours = City.open(shenyang)
    pin = fingerprint(ours.keys.root())
    with ours.store() as store:
        code = store.subject_codes(with_records=True, limit=1)[0]
    report = ours.issue(code, ours.request(as_of=now().date(), purpose="bidding"), at=now())
    with serving(shenyang) as server:
        first = run_cli(shenyang, "partner", "export", "--out", str(shenyang / "b1.cose"))
        assert first.returncode == 0, first.stderr
        added = run_cli(
            maoming, "partner", "add", "210100", "--url", server.base + "/", "--fingerprint", pin
        )
        assert added.returncode == 0, added.stderr
        rc, got = sync(maoming)
        assert rc == 0 and got["210100"]["status"] == "updated", got
        agree(maoming)
        rc, got = sync(maoming)
        assert rc == 0 and got["210100"]["status"] == "unchanged"  # a conditional request: 304

        theirs = City.open(maoming)
        accepted = theirs.verify(report.pdf, at=now())
        assert accepted.verdict is Verdict.ACCEPTED_FOR_SOME_DOMAINS, accepted.pretty()

        ours.revoke(report.document.number, reason="issued in error", at=now())
        assert (
            run_cli(shenyang, "partner", "export", "--out", str(shenyang / "b2.cose")).returncode
            == 0
        )
        rc, got = sync(maoming)
        assert rc == 0 and got["210100"]["status"] == "updated"
        revoked = theirs.verify(report.pdf, at=now())
        assert revoked.verdict is Verdict.REJECTED and "revoked" in revoked.pretty()

        published = shenyang / "published" / "bundle.cose"
        good = published.read_bytes()
        tampered = bytearray(good)
        tampered[len(tampered) // 2] ^= 1
        published.write_bytes(bytes(tampered))  # a compromised web host
        rc, got = sync(maoming)
        assert rc == 1 and got["210100"]["status"] == "refused"
        published.write_bytes((shenyang / "b1.cose").read_bytes())  # a rollback to the older one
        rc, got = sync(maoming)
        assert (
            rc == 1
            and got["210100"]["status"] == "refused"
            and "sequence" in got["210100"]["message"]
        )
        assert (
            theirs.verify(report.pdf, at=now()).verdict is Verdict.REJECTED
        )  # still the good, newer one
        published.write_bytes(good)
    rc, got = sync(maoming)  # the service is down
    assert (
        rc == 1
        and got["210100"]["status"] == "unreachable"
        and "last good sync" in got["210100"]["message"]
    )
    assert theirs.verify(report.pdf, at=now()).verdict is Verdict.REJECTED  # kept, still revoked


def test_add_refuses_a_bad_url_and_another_root(maoming):
    bad = run_cli(
        maoming, "partner", "add", "230700", "--url", "ftp://x", "--fingerprint", "ab" * 32
    )
    assert bad.returncode == 2 and "base URL" in bad.stderr and "Traceback" not in bad.stderr
    other = run_cli(
        maoming,
        "partner",
        "add",
        "210100",
        "--url",
        "http://127.0.0.1:9",
        "--fingerprint",
        "ab" * 32,
    )
    assert other.returncode == 2 and "pinned" in other.stderr
