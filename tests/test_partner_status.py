"""Issue 12 without servers of ours: the status of a partner's typed number (answers read
strictly, no agreement no question), a stale partner named with since when, the CA bundle
setting against a real TLS server, and the service's sync round taking turns by the lock."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import re
import ssl
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry, generate_latest

from creditcert import config
from creditcert.errors import ConfigError
from creditcert.model.report_number import new_number
from creditcert.registry import Entry
from creditcert.service.syncer import PartnerSync, SyncMetrics
from creditcert.trust import sync
from creditcert.trust.bundles import revocation_id, verify_bundle
from creditcert.trust.keys import fingerprint
from creditcert.trust.status import STATUSES
from creditcert.verify.result import Verdict
from creditcert.verify.verifier import InputKind

from .conftest import run_cli
from .service_server import free_port
from .test_partners import NOW, agreement_text, bundle_of, make_city

NUMBER = new_number("230700", NOW - timedelta(days=2))
DEAD = "http://127.0.0.1:9"  # discard port: nothing listens


@pytest.fixture(scope="module")
def yichun(tmp_path_factory, _fresh_template):
    return make_city(tmp_path_factory.mktemp("yichun"), "230700", "伊春市", _fresh_template)


@pytest.fixture
def maoming(tmp_path, yichun, _fresh_template):
    """茂名市 holding 伊春市's bundle (imported at NOW), its URL recorded, no agreement yet."""
    city = make_city(tmp_path, "440900", "茂名市", _fresh_template)
    pin = fingerprint(yichun.keys.root())
    city.import_bundle(bundle_of(yichun), pin=pin, at=NOW)
    city.add_partner("230700", url=DEAD, pin=pin)
    return city


def agree(city) -> None:
    codes = city.settings.catalog.codes
    city.partners.add_agreement(
        agreement_text("230700", "2026-01-01", "2027-12-31", codes), source="a.toml", at=NOW
    )


def answer(status="issued", number=NUMBER, **changes) -> dict:
    body = {
        "format": "creditcert.api.status/1",
        "number": number,
        "status": status,
        "issued_at": (NOW - timedelta(days=2)).isoformat(),
        "valid_until": (NOW + timedelta(days=28)).isoformat(),
        "valid_now": True,
    }
    return body | changes


def partner_service(reply, asked: list):
    """An httpx client whose every request reaches `reply(request)` instead of a network."""

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return reply(request)

    return httpx.Client(transport=httpx.MockTransport(handle), follow_redirects=False)


def verify_number(city, reply, at=NOW, number=NUMBER):
    asked: list[str] = []
    with partner_service(reply, asked) as client:
        result = city.verify(number, at=at, kind=InputKind.NUMBER, online=client)
    return result, {c.step: c.reason.value for c in result.checks}, asked


def test_a_partners_number_is_asked_of_its_service_under_a_live_agreement(maoming):
    result, steps, asked = verify_number(maoming, lambda r: httpx.Response(200, json=answer()))
    assert steps["agreement.live"] == "no-agreement" and result.verdict is Verdict.REJECTED
    assert asked == []  # no agreement: nothing to ask
    agree(maoming)
    result, steps, asked = verify_number(maoming, lambda r: httpx.Response(200, json=answer()))
    assert result.verdict is Verdict.ACCEPTED, result.pretty()
    assert asked == [f"{DEAD}/api/v1/reports/{NUMBER}"]
    assert steps == {
        "format.number": "ok",
        "issuer.number": "ok",
        "status.revocation-list": "ok",
        "status.issuer-online": "ok",
        "validity.period": "ok",
        "agreement.live": "ok",
    }
    for status, reason in [
        ("revoked", "revoked"),
        ("void", "voided"),
        ("pending", "not-completed"),
        ("unknown", "unknown-number"),
    ]:
        said = answer(status, issued_at=None, valid_until=None, valid_now=False)
        result, steps, _ = verify_number(
            maoming, lambda r, said=said: httpx.Response(200, json=said)
        )
        assert result.verdict is Verdict.REJECTED and steps["status.issuer-online"] == reason
    expired = answer(valid_until=(NOW - timedelta(hours=1)).isoformat())
    _, steps, _ = verify_number(maoming, lambda r: httpx.Response(200, json=expired))
    assert steps["validity.period"] == "expired"
    early = answer(issued_at="2025-06-01T09:00:00+08:00")  # before the agreement's start
    _, steps, _ = verify_number(maoming, lambda r: httpx.Response(200, json=early))
    assert steps["agreement.live"] == "not-live-at-issue"


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (lambda r: httpx.Response(200, json=answer(number=new_number("230700", NOW))), "speaks of"),
        (lambda r: httpx.Response(200, json=answer() | {"format": "x/1"}), "format"),
        (lambda r: httpx.Response(200, json={"format": "creditcert.api.status/1"}), "no issued_at"),
        (lambda r: httpx.Response(200, json=answer(status="fine")), "status 'fine'"),
        (lambda r: httpx.Response(200, json=answer(issued_at="2026-06-29T09:00:00")), "offset"),
        (lambda r: httpx.Response(200, content=b"<html>"), "not JSON"),
        (lambda r: httpx.Response(200, content=b"[" * 5000), "more than 4096"),
        (lambda r: httpx.Response(200, content=iter([b"[" * 3000] * 2)), "more than 4096"),
        (lambda r: httpx.Response(429, headers={"Retry-After": "9"}), "HTTP 429"),
        (lambda r: httpx.Response(302, headers={"Location": "https://elsewhere/"}), "HTTP 302"),
        (lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused")), "ConnectError"),
    ],
)
def test_an_answer_that_is_not_one_is_cannot_decide_naming_the_partner(maoming, reply, why):
    agree(maoming)
    result, steps, _ = verify_number(maoming, reply)
    assert result.verdict is Verdict.CANNOT_DECIDE and steps["status.issuer-online"] == (
        "status-unreachable"
    )
    online = next(c for c in result.checks if c.step == "status.issuer-online")
    assert "230700" in online.message and why in online.message, online.message
    assert "PDF" in result.hint and "QR" in result.hint


def test_offline_or_without_url_or_unknown_city_the_number_is_cannot_decide(maoming):
    agree(maoming)
    offline = maoming.verify(NUMBER, at=NOW, kind=InputKind.NUMBER)
    assert offline.checks[-1].reason.value == "status-unreachable"  # no client: no network
    (maoming.partners.partner_dir("230700") / "sync.json").unlink()
    result, steps, asked = verify_number(maoming, lambda r: httpx.Response(200, json=answer()))
    assert steps["status.issuer-online"] == "status-unreachable" and asked == []
    assert "partner add 230700 --url" in result.checks[-1].message
    stranger = new_number("310100", NOW)
    _, steps, asked = verify_number(maoming, lambda r: httpx.Response(500), number=stranger)
    assert steps == {"format.number": "ok", "issuer.number": "other-issuer"} and asked == []


def test_a_stale_partner_is_named_with_since_when_and_what_to_try(maoming):
    agree(maoming)
    failed = maoming.sync_partners(at=NOW + timedelta(days=3))  # nothing listens at DEAD
    assert failed[0].status == "unreachable" and "never synced" in failed[0].message
    maoming.sync_partners(at=NOW + timedelta(days=4))
    state = maoming.partners.sync_state("230700")
    assert state.failing_since.startswith(f"{(NOW + timedelta(days=3)).date()}")
    assert state.failed_at.startswith(f"{(NOW + timedelta(days=4)).date()}")
    later = NOW + timedelta(days=31)  # the bundle held (30 days) has lapsed
    result, steps, asked = verify_number(maoming, lambda r: httpx.Response(500), at=later)
    assert result.verdict is Verdict.CANNOT_DECIDE and asked == []
    assert steps["issuer.number"] == "partner-unavailable"
    message = result.checks[-1].message
    expires = (NOW + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    assert "230700" in message and f"stale since {expires}" in message, message
    assert f"sync failing since {(NOW + timedelta(days=3)).date()}" in message, message
    assert "never synced" in message and DEAD in message
    assert "partner sync" in result.hint


@contextmanager
def tls_server(tmp_path, body: bytes):
    """A real HTTPS server on loopback, its certificate made here for 127.0.0.1 by a CA of its
    own; serves `body` at the well-known path. Yields (base URL, the CA's PEM file)."""
    now = datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test government CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(
        leaf.public_bytes(pem)
        + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )

    class Bundle(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            found = self.path == sync.WELL_KNOWN
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(body) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Bundle)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{port}", tmp_path / "ca.pem"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_the_ca_bundle_setting_is_what_a_partners_tls_is_checked_against(maoming, yichun, tmp_path):
    at = NOW + timedelta(hours=1)
    with tls_server(tmp_path, bundle_of(yichun, at)) as (base, ca):
        pin = fingerprint(yichun.keys.root())
        maoming.add_partner("230700", url=base, pin=pin)
        refused = maoming.sync_partners(at=at)[0]
        assert refused.status == "unreachable" and "CERTIFICATE_VERIFY_FAILED" in refused.message
        home = maoming.settings.home
        (home / "pki").mkdir()
        (home / "pki" / "ca.pem").write_bytes(ca.read_bytes())
        with (home / "creditcert.toml").open("a", encoding="utf-8") as toml:
            toml.write('\n[partners]\nca_bundle = "pki/ca.pem"\n')
        settings = config.load(home)
        assert settings.partners.ca_bundle == home / "pki" / "ca.pem"
        reopened = type(maoming)(settings)
        synced = reopened.sync_partners(at=at)[0]
        assert synced.status == "updated", synced.message


@pytest.mark.parametrize(
    ("table", "why"),
    [
        ('ca_bundle = "nowhere.pem"', "partners.ca_bundle: .*nowhere.pem.*not a readable file"),
        ('ca_bundle = "catalog.toml"', "partners.ca_bundle: .*PEM"),
        ("sync_interval = -1", "partners.sync_interval: must be seconds ≥ 0"),
        ("sync_interval = true", "partners.sync_interval"),
        ("status_timeout = 0", "partners.status_timeout"),
        ("sync_every = 5", "partners"),
    ],
)
def test_the_partners_table_is_checked_at_load(maoming, table, why):
    home = maoming.settings.home
    with (home / "creditcert.toml").open("a", encoding="utf-8") as toml:
        toml.write(f"\n[partners]\n{table}\n")
    with pytest.raises(ConfigError, match=why):
        config.load(home)


def test_defaults_sync_every_five_minutes_on_the_systems_cas(maoming):
    assert maoming.settings.partners == config.Partners(300, None, 5.0)


def test_a_round_is_skipped_while_another_process_syncs_the_home(maoming):
    registry = CollectorRegistry()
    at = NOW + timedelta(hours=1)
    rounds = PartnerSync(maoming, lambda: at, SyncMetrics(registry))
    with sync.locked(
        maoming.partners.dir / "sync.lock", wait=False
    ) as held:  # another process's lock
        assert held
        assert rounds.round() is None
        with sync.locked(maoming.partners.dir / "sync.lock", wait=False) as second:
            assert not second
    assert maoming.partners.sync_state("230700").failed_at is None  # nothing was attempted
    done = rounds.round()
    assert [r.status for r in done] == ["unreachable"]
    text = generate_latest(registry).decode()
    assert 'creditcert_partner_syncs_total{partner="230700",status="unreachable"} 1.0' in text
    assert 'creditcert_partner_last_good_sync_seconds{partner="230700"} 0.0' in text
    stale = re.search(
        r'^creditcert_partner_stale_since_seconds\{partner="230700"\} (\S+)$', text, re.M
    )
    assert float(stale[1]) == at.timestamp()


def test_only_partners_added_by_url_are_synced_on_schedule(maoming):
    (maoming.partners.partner_dir("230700") / "sync.json").unlink()
    rounds = PartnerSync(maoming, lambda: NOW, SyncMetrics(CollectorRegistry()))
    assert rounds.round() == []  # a partner imported from files is not fetched


def test_the_statuses_read_are_those_our_own_endpoint_gives():
    from creditcert.service.api import Status as Answer

    assert set(STATUSES) == set(Answer.model_fields["status"].annotation.__args__)


@pytest.mark.slow
def test_revoke_re_exports_the_published_bundle_when_the_root_key_is_at_hand(
    tmp_path, _fresh_template
):
    city = make_city(tmp_path, "230700", "伊春市", _fresh_template)
    numbers = [new_number("230700", NOW) for _ in range(3)]
    with city.registry() as registry:  # issued numbers, without rendering their PDFs
        for number in numbers:
            registry.reserve(
                Entry(number, "230700", "91230717MA0000001X", None, "00" * 32, "k", NOW,
                      NOW + timedelta(days=30), "pending"),
                rate_limit=0,
            )  # fmt: skip
            registry.complete(number)
    home, published = city.settings.home, city.layout.published_bundle
    quiet = run_cli(home, "revoke", numbers[0], "--reason", "r")
    assert quiet.returncode == 0 and "published" not in quiet.stdout + quiet.stderr
    assert not published.exists()  # a city that publishes nothing is left so
    first = bundle_of(city)
    city.keys.root_key.rename(tmp_path / "offline.key")  # the root key kept offline
    lagging = run_cli(home, "revoke", numbers[1], "--reason", "r")
    assert lagging.returncode == 0 and "does not carry it yet" in lagging.stderr
    assert "partner export" in lagging.stderr and published.read_bytes() == first
    (tmp_path / "offline.key").rename(city.keys.root_key)
    carried = run_cli(home, "revoke", numbers[2], "--reason", "r")
    assert carried.returncode == 0 and "now carries it" in carried.stdout, carried.stderr
    checked = verify_bundle(
        published.read_bytes(), fingerprint(city.keys.root()), at=datetime.now(dt.UTC)
    )
    assert checked.bundle.revoked == {revocation_id(n) for n in numbers}, checked.pretty()
