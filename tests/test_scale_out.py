"""Several instances of one city (docs/scale-out.md): two `creditcert serve` processes, each with
its own home and local cache, sharing one PostgreSQL registry (tests/pg_server.py) and one bucket
(tests/s3_server.py). Concurrent issuance across them never repeats a number nor passes a
subject's rate limit, and either gives back the PDF the other issued; an ingest through one
reaches the other's lookups within its refresh interval; `kill -9` of an instance mid-issuance
leaves no number issued without its PDF in the bucket."""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from creditcert.city import City
from creditcert.model.clock import SHANGHAI
from creditcert.registry import postgres

from .conftest import run_cli, transport_export
from .pg_server import pg_server_fixture  # noqa: F401 - the session's server
from .s3_server import S3Server, s3_server  # noqa: F401 - the session's server
from .service_server import Server, serving
from .test_data_s3 import generate, s3_home

pytestmark = pytest.mark.slow  # real servers: PostgreSQL, SeaweedFS, two services

REFRESH = 1  # seconds: [data] refresh_seconds of both instances
CODE = re.compile(r"\b[0-9A-Z]{18}\b")


def now() -> datetime:
    return datetime.now(SHANGHAI)


@pytest.fixture(scope="module")
def homes(tmp_path_factory, s3_server: S3Server, pg_server) -> Iterator[tuple[Path, Path, str]]:  # noqa: F811
    """Two instances' homes (the same keys, config and tokens; separate caches and reports/),
    the bucket published by the first, the registry migrated; the S3 credentials in the
    environment the services inherit. Yields the homes and the API token."""
    root = tmp_path_factory.mktemp("scale-out")
    url = pg_server.create_database()
    with pytest.MonkeyPatch.context() as env:
        for name, value in s3_server.env().items():
            env.setenv(name, value)
        first = s3_home(root, "a", f"city-{os.getpid()}", refresh_seconds=REFRESH)
        path = first / "creditcert.toml"
        text = path.read_text(encoding="utf-8").replace(
            "rate_limit_per_day = 1 ", "rate_limit_per_day = 2 "
        )
        path.write_text(f'{text}\n[registry]\nurl = "{url}"\n', encoding="utf-8")
        city = City.open(first)
        city.migrate_registry()
        generate(city)
        city.keys.init(now())
        token = city.tokens.add("portal", ["issue", "lookup"], at=now()).secret
        second = root / "b"
        shutil.copytree(first, second, ignore=shutil.ignore_patterns("cache", "reports"))
        yield first, second, token


@pytest.fixture(scope="module")
def servers(homes) -> Iterator[tuple[Server, Server]]:
    first, second, _ = homes
    with serving(first) as a, serving(second) as b:
        yield a, b


def subjects(home: Path, n: int) -> list[str]:
    with City.open(home).store() as store:
        return store.subject_codes(with_records=True, limit=n)


def issue(server: Server, token: str, code: str) -> httpx.Response:
    with server.client(headers={"Authorization": f"Bearer {token}"}) as client:
        return client.post("/api/v1/reports", json={"credit_code": code, "purpose": "all"})


def test_issuance_across_instances_is_unique_rate_limited_and_shared(homes, servers, s3_server):  # noqa: F811
    first, _, token = homes
    a, b = servers
    one, *others = subjects(first, 7)
    with ThreadPoolExecutor(6) as pool:
        same = list(pool.map(lambda i: issue((a, b)[i % 2], token, one), range(6)))
    assert sorted(r.status_code for r in same) == [201, 201, 429, 429, 429, 429], [
        r.text for r in same
    ]
    numbers = [r.json()["number"] for r in same if r.status_code == 201]
    with ThreadPoolExecutor(6) as pool:
        many = list(pool.map(lambda i: issue((a, b)[i % 2], token, others[i]), range(6)))
    assert all(r.status_code == 201 for r in many), [r.text for r in many]
    numbers += [r.json()["number"] for r in many]
    assert len(set(numbers)) == len(numbers) == 8
    for number in numbers:  # either instance gives back the PDF, whichever issued it
        for server in (a, b):
            with server.client(headers={"Authorization": f"Bearer {token}"}) as client:
                got = client.get(f"/api/v1/reports/{number}/pdf")
            assert got.status_code == 200 and got.content.startswith(b"%PDF-"), got.text
    kept = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix="")
    keys = {o["Key"].rsplit("/", 1)[-1] for o in kept.get("Contents", [])}
    assert {f"{n}.pdf" for n in numbers} <= keys


def test_an_ingest_through_one_reaches_the_others_lookups(homes, servers, tmp_path):
    first, _, token = homes
    _, b = servers
    export = transport_export(City.open(first), tmp_path / "transport.csv", rows=30, seed=41)
    with open(export, encoding="utf-8-sig", newline="") as fh:
        code = next(m[0] for row in csv.reader(fh) for cell in row if (m := CODE.search(cell)))

    def transport_records() -> int:
        with b.client(headers={"Authorization": f"Bearer {token}"}) as client:
            got = client.get(f"/api/v1/subjects/{code}/lookup", params={"domains": "transport"})
        assert got.status_code == 200, got.text
        return len(got.json()["domains"][0]["records"])

    before = transport_records()
    done = run_cli(first, "ingest", "--domain", "transport", str(export), "--json")
    assert done.returncode == 0, done.stderr
    published = time.monotonic()
    while transport_records() == before:
        assert time.monotonic() - published < REFRESH + 20, "the other instance never saw it"
        time.sleep(0.2)
    print(f"ingest visible on the other instance after {time.monotonic() - published:.2f} s")


def test_kill_9_mid_issuance_leaves_nothing_issued_without_its_pdf(homes, s3_server):  # noqa: F811
    first, second, token = homes
    url = City.open(first).settings.registry_url
    code = subjects(first, 9)[8]
    with serving(first) as doomed, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(issue, doomed, token, code)
        deadline = time.monotonic() + 60
        while not _numbers(url, code, "pending"):
            assert time.monotonic() < deadline and not pending.done(), "never pending"
            time.sleep(0.01)
        doomed.process.send_signal(signal.SIGKILL)  # the whole instance, mid-issuance
        with pytest.raises(httpx.HTTPError):
            pending.result(timeout=60)
    (number,) = _numbers(url, code, "pending") or _numbers(url, code, "issued")
    with serving(second) as survivor:  # its next issuance settles what the dead one left
        deadline = time.monotonic() + 60
        while _numbers(url, code, "pending"):
            issue(survivor, token, subjects(first, 10)[9])
            assert time.monotonic() < deadline, "the dead instance's number stayed pending"
    with postgres.connect(url) as con:
        issued = [n for (n,) in con.execute("SELECT number FROM reports WHERE status = 'issued'")]
    kept = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix="")
    keys = {o["Key"].rsplit("/", 1)[-1] for o in kept.get("Contents", [])}
    assert all(f"{n}.pdf" in keys for n in issued), set(issued) - keys
    assert number in _numbers(url, code, "void") + issued  # settled, one way or the other


def _numbers(url: str, code: str, status: str) -> list[str]:
    with postgres.connect(url) as con:
        rows = con.execute(
            "SELECT number FROM reports WHERE subject_code = %s AND status = %s", (code, status)
        ).fetchall()
    return [n for (n,) in rows]
