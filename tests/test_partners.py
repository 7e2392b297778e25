"""Mutual recognition: 伊春市 (230700) issues, 茂名市 (440900) verifies under an agreement."""

import json
import shutil
from datetime import date, datetime, timedelta

import pytest

from creditcert import config
from creditcert.errors import PartnerError
from creditcert.model.clock import SHANGHAI
from creditcert.trust.keys import fingerprint
from creditcert.verify.result import Status, Verdict
from creditcert.verify.verifier import InputKind

from .conftest import city_at

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=SHANGHAI)
AT = NOW + timedelta(hours=2)


def make_city(root, code, name, template):
    """A partner city whose data is a copy of the sample template's (its register's division
    codes are not its own, which no rule checks)."""
    home = root / code
    config.init(home, admin_code=code, name=name)
    shutil.copytree(template / "data", home / "data", dirs_exist_ok=True)
    city = city_at(home, rate_limit_per_day=0)
    city.keys.init(NOW - timedelta(days=1))
    return city


def agreement_text(partner, start, end, codes):
    lines = [f'{c} = "{c}"' for c in codes]
    return (
        f'format = 1\npartner = "{partner}"\nstart = {start}\nend = {end}\n\n[mapping]\n'
        + "\n".join(lines)
    )


@pytest.fixture(scope="module")
def cities(tmp_path_factory, _fresh_template):
    root = tmp_path_factory.mktemp("cities")
    return (
        make_city(root, "230700", "伊春市", _fresh_template),
        make_city(root, "440900", "茂名市", _fresh_template),
    )


def bundle_of(city, at=NOW):
    return city.export_bundle(at=at, sequence=int(at.timestamp()))


def issue_in(city, at=NOW):
    with city.store() as store:
        code = store.subject_codes(with_records=True, limit=1)[0]
    return city.issue(code, city.request(as_of=at.date(), all_domains=True, years=3), at=at)


def failed(result):
    return {c.step: c.reason for c in result.checks if c.status is Status.FAILED}


@pytest.fixture(scope="module")
def report(cities):
    """One report of 伊春市, rendered once for the module."""
    return issue_in(cities[0])


def test_bundle_import_checks_pin_signature_and_sequence(cities):
    yichun, maoming = cities
    data = bundle_of(yichun)
    pin = fingerprint(yichun.keys.root())
    with pytest.raises(PartnerError, match="give --fingerprint"):
        maoming.import_bundle(data, pin=None, at=NOW)
    assert failed(maoming.import_bundle(data, pin="00" * 32, at=NOW)) == {
        "trust.pin": "pin-mismatch"
    }
    spoiled = bytearray(data)
    spoiled[-5] ^= 1
    refused = maoming.import_bundle(bytes(spoiled), pin=pin, at=NOW)
    assert failed(refused) == {"integrity.bundle-signature": "bad-signature"}
    assert refused.verdict is Verdict.REJECTED and refused.bundle is None
    assert maoming.partners.codes() == []  # nothing refused was kept
    imported = maoming.import_bundle(data, pin=pin.upper(), at=NOW)
    assert imported.verdict is Verdict.ACCEPTED, failed(imported)
    assert imported.bundle.issuer_code == "230700" and len(imported.bundle.catalog.domains) == 52
    again = maoming.import_bundle(data, pin=None, at=NOW)
    assert failed(again) == {"status.sequence": "stale-sequence"}
    stored = maoming.partners.stored("230700", at=NOW + timedelta(days=40))
    assert stored.bundle is not None and stored.problem.startswith("bundle expired")


def test_partner_report_accepted_for_mapped_domains_only(cities, report):
    _, maoming = cities
    no_agreement = maoming.verify(report.qr.text, at=AT)
    assert failed(no_agreement) == {"agreement.live": "no-agreement"}
    codes = maoming.settings.catalog.codes[:33]
    with pytest.raises(PartnerError, match="astrology"):
        maoming.partners.add_agreement(
            agreement_text("230700", "2026-01-01", "2027-12-31", [*codes[:3], "astrology"]),
            source="a.toml",
            at=NOW,
        )
    maoming.partners.add_agreement(
        agreement_text("230700", "2026-01-01", "2027-12-31", codes), source="a.toml", at=NOW
    )
    result = maoming.verify(report.qr.text, at=AT)
    assert result.verdict is Verdict.ACCEPTED_FOR_SOME_DOMAINS, failed(result)
    result.raise_for_status()  # an acceptance, as the CLI's exit 0
    scope = next(c for c in result.checks if c.step == "scope.domains")
    assert scope.message.startswith("33 of 52 domains recognised")


def test_expired_partner_bundle_is_cannot_decide_naming_the_partner(cities, report):
    """Not `unknown-key`: the reviewer is told whose bundle lapsed and what to do."""
    _, maoming = cities
    later = NOW + timedelta(days=31)  # the bundle (30 days) has lapsed, the report not yet
    for source in (report.qr.text, report.pdf):
        result = maoming.verify(source, at=later)
        undecided = [c for c in result.checks if c.status is Status.INDETERMINATE]
        assert result.verdict is Verdict.CANNOT_DECIDE, failed(result)
        assert undecided[0].reason == "partner-unavailable"
        assert "230700" in undecided[0].message and "expired" in undecided[0].message
        assert "partner import" in result.hint


def test_report_issued_before_the_agreement_is_refused(cities, report):
    _, maoming = cities
    maoming.partners.add_agreement(
        agreement_text("230700", "2026-07-02", "2027-12-31", maoming.settings.catalog.codes),
        source="b.toml",
        at=NOW,
    )
    result = maoming.verify(report.qr.text, at=NOW + timedelta(days=2))
    assert failed(result) == {"agreement.live": "not-live-at-issue"}
    maoming.partners.add_agreement(
        agreement_text("230700", "2026-01-01", "2027-12-31", maoming.settings.catalog.codes),
        source="c.toml",
        at=NOW,
    )
    assert maoming.verify(report.qr.text, at=AT).verdict is Verdict.ACCEPTED


def test_partner_cannot_issue_in_our_name(cities, report):
    """A document naming another city than the signing one is rejected (D6)."""
    import dataclasses

    from creditcert.envelope import qr as qr_format

    yichun, maoming = cities
    doc = dataclasses.replace(
        report.document, issuer_code="440900", number="440900" + report.document.number[6:]
    )
    forged = qr_format.encode(doc, yichun.keys.signer(NOW), yichun.settings.catalog.codes)
    result = maoming.verify(forged.text, at=AT, kind=InputKind.QR)
    assert failed(result)["issuer.iss.qr"] == "issuer-mismatch"


def test_partner_pdf_and_revocation_travel_in_the_bundle(cities, report):
    yichun, maoming = cities
    ok = maoming.verify(report.pdf, at=AT)
    assert ok.verdict in (Verdict.ACCEPTED, Verdict.ACCEPTED_FOR_SOME_DOMAINS), failed(ok)
    yichun.revoke(report.document.number, reason="test", at=AT)
    later = NOW + timedelta(minutes=30)
    assert maoming.import_bundle(bundle_of(yichun, later), pin=None, at=later).verdict.accepted
    assert failed(maoming.verify(report.pdf, at=AT)) == {"status.revocation-list": "revoked"}


@pytest.mark.slow
def test_agreement_end_and_cli(cities):
    from typer.testing import CliRunner

    from creditcert.cli.app import app

    yichun, maoming = cities
    maoming.partners.add_agreement(
        agreement_text("230700", "2026-01-01", "2027-12-31", maoming.settings.catalog.codes[:5]),
        source="d.toml",
        at=AT,
    )
    runner = CliRunner()
    home = str(maoming.settings.home)
    listed = runner.invoke(app, ["--home", home, "agreement", "list"])
    assert "230700: 2026-01-01 to 2027-12-31, 5 domains mapped" in listed.stdout
    shown = runner.invoke(app, ["--home", home, "agreement", "show", "230700"])
    assert "market-regulation → market-regulation" in shown.stdout
    ended = maoming.partners.end_agreement("230700", on=date(2026, 6, 30), at=AT)
    assert ended.end == date(2026, 6, 30)
    fresh = issue_in(yichun)  # issued 2026-07-01, after the agreement ended
    result = maoming.verify(fresh.qr.text, at=AT)
    assert failed(result) == {"agreement.live": "not-live-at-issue"}
    with pytest.raises(PartnerError, match="outside the agreement"):
        maoming.partners.end_agreement("230700", on=date(2030, 1, 1), at=AT)


def test_a_damaged_agreement_fails_alone(cities, report, tmp_path):
    """On a copy of 茂名市: its agreement file torn, the list still answers and names it, `show`
    is one line, and the partner's reports are cannot-decide, never a crash."""
    from typer.testing import CliRunner

    from creditcert.cli.app import app

    home = tmp_path / "maoming"
    shutil.copytree(cities[1].settings.home, home)
    (home / "partners" / "230700" / "agreement.toml").write_text("format = 1\npartner = ")
    runner = CliRunner()
    listed = runner.invoke(app, ["--home", str(home), "agreement", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    damaged = json.loads(listed.stdout)["damaged"]
    assert [d["partner"] for d in damaged] == ["230700"] and "agreement.toml" in damaged[0][
        "problem"
    ]
    shown = runner.invoke(app, ["--home", str(home), "agreement", "show", "230700"])
    assert shown.exit_code == 2 and shown.output.count("\n") == 1, shown.output
    result = city_at(home).verify(report.qr.text, at=AT)
    assert result.verdict is Verdict.CANNOT_DECIDE, failed(result)
