"""Mutual recognition: 伊春市 (230700) issues, 茂名市 (440900) verifies under an agreement."""

import dataclasses
from datetime import date, datetime, timedelta

import pytest

from creditcert import config
from creditcert import lookup as records
from creditcert.data import sample
from creditcert.data.store import Store
from creditcert.issue import issuer as issue
from creditcert.issue import pades
from creditcert.issue.render import Renderer
from creditcert.model.clock import SHANGHAI
from creditcert.registry import SqliteRegistry
from creditcert.trust.keys import KeyStore, fingerprint
from creditcert.trust.partners import PartnerError, PartnerStore, export_bundle
from creditcert.verify import verifier as verify
from creditcert.verify.verifier import Status, Verdict

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=SHANGHAI)
AT = NOW + timedelta(hours=2)


def make_city(root, code, name):
    home = root / code
    config.init(home, admin_code=code, name=name)
    s = dataclasses.replace(config.load(home), rate_limit_per_day=0)
    sample.generate(
        s.data_dir,
        s.catalog,
        s.issuer,
        subjects=400,
        records=2000,
        seed=int(code),
        as_of=date(2026, 6, 30),
    )
    keys = KeyStore(home / "keys", code, name)
    keys.init(NOW - timedelta(days=1))
    return home, s, keys


def agreement_text(partner, start, end, codes):
    lines = [f'{c} = "{c}"' for c in codes]
    return (
        f'format = 1\npartner = "{partner}"\nstart = {start}\nend = {end}\n\n[mapping]\n'
        + "\n".join(lines)
    )


@pytest.fixture(scope="module")
def cities(tmp_path_factory):
    root = tmp_path_factory.mktemp("cities")
    yichun = make_city(root, "230700", "伊春市")
    maoming = make_city(root, "440900", "茂名市")
    return yichun, maoming


def bundle_of(city, now=NOW):
    home, s, keys = city
    reg = SqliteRegistry(home / "registry.sqlite")
    try:
        return export_bundle(s, keys, reg, now=now, sequence=int(now.timestamp()))
    finally:
        reg.close()


def issue_in(city, *, render=False, now=NOW):
    home, s, keys = city
    signer = keys.signer(now)
    reg = SqliteRegistry(home / "registry.sqlite")
    renderer = Renderer() if render else None
    with Store(s.data_dir, s.catalog) as store:
        code = store.subject_codes(with_records=True, limit=1)[0]
        req = records.resolve_request(s.catalog, as_of=now.date(), all_domains=True, years=3)
        return issue.issue_report(
            store,
            s,
            signer,
            reg,
            code,
            req,
            now=now,
            render=(lambda d, q, e: pades.sign_pdf(renderer.render(d, q, e), signer))
            if render
            else None,
        )


def trust_of(city, at=AT):
    home, s, _ = city
    return verify.trust_from_home(s, SqliteRegistry(home / "registry.sqlite"), now=at)


def failed(result):
    return {c.step: c.reason for c in result.checks if c.status is Status.FAILED}


def test_bundle_import_checks_pin_signature_and_sequence(cities, tmp_path):
    yichun, maoming = cities
    data = bundle_of(yichun)
    store = PartnerStore(maoming[0], maoming[1].catalog)
    with pytest.raises(PartnerError, match="give --fingerprint"):
        store.import_bundle(data, pin=None, now=NOW)
    with pytest.raises(PartnerError, match="is not the pinned"):
        store.import_bundle(data, pin="00" * 32, now=NOW)
    spoiled = bytearray(data)
    spoiled[-5] ^= 1
    with pytest.raises(PartnerError, match="signature"):
        store.import_bundle(bytes(spoiled), pin=fingerprint(yichun[2].root()), now=NOW)
    bundle = store.import_bundle(data, pin=fingerprint(yichun[2].root()), now=NOW)
    assert bundle.issuer_code == "230700" and len(bundle.catalog.domains) == 52
    with pytest.raises(PartnerError, match="not newer"):
        store.import_bundle(data, pin=None, now=NOW)
    with pytest.raises(PartnerError, match="not at"):
        store.bundle("230700", now=NOW + timedelta(days=40))  # expired bundle


def test_partner_report_accepted_for_mapped_domains_only(cities):
    yichun, maoming = cities
    report = issue_in(yichun)
    no_agreement = verify.verify_qr_text(report.qr.text, trust_of(maoming), at=AT)
    assert failed(no_agreement) == {"agreement.live": "no-agreement"}

    store = PartnerStore(maoming[0], maoming[1].catalog)
    codes = maoming[1].catalog.codes[:33]
    with pytest.raises(PartnerError, match="astrology"):
        store.add_agreement(
            agreement_text("230700", "2026-01-01", "2027-12-31", [*codes[:3], "astrology"]),
            source="a.toml",
            now=NOW,
        )
    store.add_agreement(
        agreement_text("230700", "2026-01-01", "2027-12-31", codes), source="a.toml", now=NOW
    )
    result = verify.verify_qr_text(report.qr.text, trust_of(maoming), at=AT)
    assert result.verdict is Verdict.ACCEPTED_FOR_SOME_DOMAINS, failed(result)
    scope = next(c for c in result.checks if c.step == "scope.domains")
    assert scope.message.startswith("33 of 52 domains recognised")

    late = verify.verify_qr_text(report.qr.text, trust_of(maoming), at=AT)
    assert late.verdict is Verdict.ACCEPTED_FOR_SOME_DOMAINS


def test_report_issued_before_the_agreement_is_refused(cities):
    yichun, maoming = cities
    store = PartnerStore(maoming[0], maoming[1].catalog)
    store.add_agreement(
        agreement_text("230700", "2026-07-02", "2027-12-31", maoming[1].catalog.codes),
        source="b.toml",
        now=NOW,
    )
    report = issue_in(yichun)
    result = verify.verify_qr_text(
        report.qr.text, trust_of(maoming, NOW + timedelta(days=2)), at=NOW + timedelta(days=2)
    )
    assert failed(result) == {"agreement.live": "not-live-at-issue"}
    # a full mapping and a live agreement: accepted
    store.add_agreement(
        agreement_text("230700", "2026-01-01", "2027-12-31", maoming[1].catalog.codes),
        source="c.toml",
        now=NOW,
    )
    assert (
        verify.verify_qr_text(report.qr.text, trust_of(maoming), at=AT).verdict is Verdict.ACCEPTED
    )


def test_partner_pdf_and_revocation_travel_in_the_bundle(cities):
    yichun, maoming = cities
    report = issue_in(yichun, render=True)
    ok = verify.verify_pdf(report.pdf, trust_of(maoming), at=AT)
    assert ok.verdict in (Verdict.ACCEPTED, Verdict.ACCEPTED_FOR_SOME_DOMAINS), failed(ok)
    reg = SqliteRegistry(yichun[0] / "registry.sqlite")
    reg.revoke(report.document.number, reason="test", at=AT)
    reg.close()
    later = NOW + timedelta(minutes=30)
    PartnerStore(maoming[0], maoming[1].catalog).import_bundle(
        bundle_of(yichun, later), pin=None, now=later
    )
    revoked = verify.verify_pdf(report.pdf, trust_of(maoming), at=AT)
    assert failed(revoked) == {"status.revocation-list": "revoked"}


def test_agreement_end_and_cli(cities):
    from typer.testing import CliRunner

    from creditcert.cli.app import app

    yichun, maoming = cities
    store = PartnerStore(maoming[0], maoming[1].catalog)
    store.add_agreement(
        agreement_text("230700", "2026-01-01", "2027-12-31", maoming[1].catalog.codes[:5]),
        source="d.toml",
        now=AT,
    )
    runner = CliRunner()
    home = str(maoming[0])
    listed = runner.invoke(app, ["--home", home, "agreement", "list"])
    assert "230700: 2026-01-01 to 2027-12-31, 5 domains mapped" in listed.stdout
    shown = runner.invoke(app, ["--home", home, "agreement", "show", "230700"])
    assert "market-regulation → market-regulation" in shown.stdout
    ended = store.end_agreement("230700", on=date(2026, 6, 30), now=AT)
    assert ended.end == date(2026, 6, 30)
    report = issue_in(yichun)  # issued 2026-07-01, after the agreement ended
    result = verify.verify_qr_text(report.qr.text, trust_of(maoming), at=AT)
    assert failed(result) == {"agreement.live": "not-live-at-issue"}
    with pytest.raises(PartnerError, match="outside the agreement"):
        store.end_agreement("230700", on=date(2030, 1, 1), now=AT)
