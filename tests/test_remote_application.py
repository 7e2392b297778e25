"""Remote application (异地申请), the library: 茂名市 signs an application for an enterprise of
伊春市; 伊春市 checks it against 茂名市's bundle and their agreement, records it once, and issues
a report under its own key that verifies in both cities. Every refusal names its reason."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import cbor2
import pytest

from creditcert.city import City
from creditcert.envelope.application import Application, read_application, seal_application
from creditcert.envelope.cose import sign1
from creditcert.errors import DecodeError
from creditcert.registry import Replayed
from creditcert.trust.remote import registering_partner
from creditcert.verify.application import ApplicationRefused
from creditcert.verify.result import Status, Verdict

from .remote_cities import MAOMING, SANYA, YICHUN, enterprise, now, three_cities

pytestmark = pytest.mark.slow  # three partner cities of their own, keys and bundles


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    return three_cities(tmp_path_factory.mktemp("remote"))


def ask(home, subject: str, **changes) -> Application:
    """An application from the city at `home` to 伊春市, for agreed domains, sent now."""
    city = City.open(home)
    fields = dict(
        from_city=city.settings.issuer.admin_code, to_city=YICHUN, subject_code=subject,
        domains=tuple(city.settings.catalog.codes[:5]), years=3,
        as_of=now().date(), lang="zh-en", sent_at=now(),
    )  # fmt: skip
    return Application.new(**(fields | changes))


def sealed(home, application: Application) -> bytes:
    city = City.open(home)
    return seal_application(application, city.keys.signer(now()))


def refusal(homes, data: bytes) -> dict[str, str]:
    with pytest.raises(ApplicationRefused) as caught:
        City.open(homes[YICHUN]).applications.admit(data, at=now())
    return {c.step: c.reason.value for c in caught.value.result.failures}


def test_an_application_is_checked_recorded_once_and_issued(homes):
    yichun, maoming = City.open(homes[YICHUN]), City.open(homes[MAOMING])
    subject = enterprise(homes[YICHUN])
    application = ask(homes[MAOMING], subject)
    data = sealed(homes[MAOMING], application)
    checked = yichun.applications.check(data, at=now())
    assert checked.result.verdict is Verdict.ACCEPTED, checked.result.pretty()
    assert [c.step for c in checked.result.checks] == [
        "format.application-cose", "issuer.key-known.application",
        "integrity.application-signature", "application.sender", "format.application",
        "issuer.chain.application", "issuer.key-valid-at-issue.application",
        "issuer.key-in-service.application", "application.addressee", "application.time",
        "agreement.live", "application.domains",
    ]  # fmt: skip

    report = yichun.applications.issue_for_partner(data, at=now())
    doc = report.document
    assert doc.number.startswith(f"{YICHUN}-") and doc.subject_code == subject
    assert [d.code for d in doc.domains] == list(application.domains)
    here = maoming.verify(report.pdf, at=now())
    assert here.verdict is Verdict.ACCEPTED, here.pretty()
    assert yichun.verify(report.pdf, at=now()).verdict is Verdict.ACCEPTED

    with pytest.raises(Replayed):
        yichun.applications.issue_for_partner(data, at=now())
    with yichun.registry() as registry:
        entries = registry.applications_of(subject, "received")
    (entry,) = [e for e in entries if e.nonce == application.nonce.hex()]
    assert (entry.partner, entry.outcome, entry.number) == (MAOMING, "issued", doc.number)


def test_each_refusal_names_its_reason(homes):
    subject = enterprise(homes[YICHUN])
    good = sealed(homes[MAOMING], ask(homes[MAOMING], subject))
    tampered = bytearray(good)
    tampered[-10] ^= 1
    assert refusal(homes, bytes(tampered)) == {"integrity.application-signature": "bad-signature"}
    assert refusal(homes, b"\xa0") == {"format.application-cose": "not-cose-sign1"}

    all_codes = City.open(homes[MAOMING]).settings.catalog.codes
    outside = ask(homes[MAOMING], subject, domains=(all_codes[0], all_codes[40]))
    assert refusal(homes, sealed(homes[MAOMING], outside)) == {
        "application.domains": "domain-not-agreed"
    }
    late = ask(homes[MAOMING], subject, sent_at=now() - timedelta(minutes=6))
    assert refusal(homes, sealed(homes[MAOMING], late)) == {
        "application.time": "outside-time-window"
    }
    elsewhere = ask(homes[MAOMING], subject, to_city=SANYA)
    assert refusal(homes, sealed(homes[MAOMING], elsewhere)) == {
        "application.addressee": "not-addressed-to-us"
    }
    # 三亚市 holds 伊春市's bundle and thinks it has an agreement; 伊春市 has none with it
    from_sanya = ask(homes[SANYA], subject)
    assert refusal(homes, sealed(homes[SANYA], from_sanya)) == {"agreement.live": "no-agreement"}
    with City.open(homes[YICHUN]).registry() as registry:  # the sender is known: on the record
        entries = registry.applications_of(subject, "received")
    (entry,) = [e for e in entries if e.nonce == from_sanya.nonce.hex()]
    assert (entry.partner, entry.outcome) == (SANYA, "refused") and "no-agreement" in entry.detail
    posing = ask(homes[MAOMING], subject, from_city=SANYA)  # signed by 茂名市
    assert refusal(homes, sealed(homes[MAOMING], posing)) == {
        "application.sender": "sender-mismatch"
    }
    own = ask(homes[YICHUN], subject)
    assert refusal(homes, sealed(homes[YICHUN], own)) == {
        "application.sender": "not-from-a-partner"
    }
    signer = City.open(homes[MAOMING]).keys.signer(now())
    garbage = sign1(cbor2.dumps({"format": "creditcert.application/1"}), signer)
    assert refusal(homes, garbage) == {"format.application": "bad-application"}


def test_a_partner_whose_bundle_expired_is_undecided_not_rejected(homes):
    subject = enterprise(homes[YICHUN])
    data = sealed(homes[MAOMING], ask(homes[MAOMING], subject))
    later = now() + timedelta(days=400)  # 茂名市's bundle at 伊春市 has long expired
    checked = City.open(homes[YICHUN]).applications.check(data, at=later)
    assert checked.result.verdict is Verdict.CANNOT_DECIDE
    (undecided,) = [c for c in checked.result.checks if c.status is Status.INDETERMINATE]
    assert undecided.reason.value == "partner-unavailable" and MAOMING in undecided.message


def test_the_reader_is_strict():
    base = Application.new(
        from_city=MAOMING, to_city=YICHUN, subject_code="91230717MA0000001X",
        domains=("taxation",), years=1, as_of=now().date(), lang="zh", sent_at=now(),
    )  # fmt: skip
    assert read_application(base.to_cbor()) == base
    raw = cbor2.loads(base.to_cbor())
    hostile = [
        raw | {"extra": 1},
        {k: v for k, v in raw.items() if k != "nonce"},
        raw | {"format": "creditcert.application/2"},
        raw | {"years": 9},
        raw | {"years": True},
        raw | {"domains": []},
        raw | {"domains": ["taxation", "taxation"]},
        raw | {"domains": ["x"] * 65},
        raw | {"nonce": b"short"},
        raw | {"sent_at": "2026-11-24T10:00:00"},  # no offset
        raw | {"subject": "91230717ma0000001x"},
        raw | {"from": "4409"},
        raw | {"lang": "fr"},
    ]
    for payload in [*map(cbor2.dumps, hostile), b"", b"\xff", cbor2.dumps([1, 2])]:
        with pytest.raises(DecodeError) as caught:
            read_application(payload)
        assert caught.value.reason.value == "bad-application"
    with pytest.raises(DecodeError):
        read_application(dataclasses.replace(base, years=0).to_cbor())


def test_the_registering_partner_is_read_from_the_code():
    partners = ["110000", YICHUN, MAOMING]
    assert registering_partner("91230717MA0000001X", partners) == YICHUN
    assert registering_partner("91230700MA0000001X", partners) == YICHUN
    assert registering_partner("91110105MA0000001X", partners) == "110000"
    assert registering_partner("91440902MA0000001X", partners) == MAOMING
    assert registering_partner("91210102MA0000001X", partners) is None
    assert registering_partner("9123", partners) is None
