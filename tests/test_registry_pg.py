"""The registry on a real PostgreSQL server (tests/pg_server.py) behaves as the SQLite one: the
same behavioural tests run on both; then what only a shared server has: several processes racing
for one subject's rate limit and for the same numbers, versioned migrations, the copy from a
city's SQLite registry, and a city whose creditcert.toml points at the server, through the CLI."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from creditcert import config
from creditcert.errors import ConfigError, IssueError, RegistryError
from creditcert.model import report_number
from creditcert.model.clock import SHANGHAI
from creditcert.registry import (
    ApplicationEntry,
    Entry,
    NumberTaken,
    RateLimited,
    Replayed,
    SqliteRegistry,
    postgres,
    transfer,
)
from creditcert.trust.bundles import revocation_id, verify_bundle
from creditcert.trust.keys import fingerprint

from .conftest import city_at, run_cli
from .pg_server import PASSWORD, pg_server_fixture, pg_url_fixture  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow  # a real PostgreSQL server and processes racing on it

AT = datetime(2026, 7, 1, 10, 30, tzinfo=SHANGHAI)
SUBJECT = "91210102MA0000001G"


def entry(n: int, *, subject: str = SUBJECT, purpose: str | None = "bidding", at=AT) -> Entry:
    return Entry(
        number=report_number.new_number("210100", at),
        issuer="210100",
        subject_code=subject,
        purpose=purpose,
        digest=f"{n:064x}",
        key_id="00" * 8,
        issued_at=at,
        valid_until=at + timedelta(days=30),
    )


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request, tmp_path):
    if request.param == "sqlite":
        with SqliteRegistry(tmp_path / "registry.sqlite") as reg:
            yield reg
    else:
        url = request.getfixturevalue("pg_url")
        postgres.migrate(url)
        with postgres.PostgresRegistry(url) as reg:
            yield reg


# --- the same behaviour on both ----------------------------------------------------------------


def test_a_number_goes_pending_issued_revoked(registry):
    e = entry(1)
    registry.reserve(e, rate_limit=1)
    assert registry.get(e.number).status == "pending"
    assert registry.reports_of(SUBJECT) == []  # a pending number is not on the subject's page
    assert registry.complete(e.number)
    assert not registry.complete(e.number)  # once
    assert not registry.void(e.number)  # an issued report is not voided
    got = registry.get(e.number)
    assert got == Entry(**{**_fields(e), "status": "issued"})
    assert got.issued_at == AT and got.valid_until == AT + timedelta(days=30)
    revoked = registry.revoke(e.number, reason=" wrong purpose ", at=AT + timedelta(hours=1))
    assert revoked.status == "revoked"
    with pytest.raises(IssueError, match="already revoked"):
        registry.revoke(e.number, reason="again", at=AT)
    with pytest.raises(IssueError, match="needs a reason"):
        registry.revoke(e.number, reason=" ", at=AT)
    with pytest.raises(IssueError, match="not in this registry"):
        registry.revoke("210100-2607-00000000-0", reason="x", at=AT)
    assert registry.revoked_numbers() == [e.number]
    assert [r.number for r in registry.reports_of(SUBJECT)] == [e.number]


def test_void_numbers_are_published_and_cannot_be_revoked(registry):
    e = entry(1)
    registry.reserve(e, rate_limit=0)
    assert registry.void(e.number)
    assert not registry.complete(e.number)  # a voided attempt can never be completed
    with pytest.raises(IssueError, match="void"):
        registry.revoke(e.number, reason="x", at=AT)
    assert registry.revoked_numbers() == [e.number]
    assert registry.get(e.number).status == "void"


def test_the_rate_limit_counts_pending_and_issued_not_void_or_revoked(registry):
    first, second = entry(1), entry(2)
    registry.reserve(first, rate_limit=2)
    registry.reserve(second, rate_limit=2)  # pending counts
    with pytest.raises(RateLimited, match=f"{first.number}, {second.number}"):
        registry.reserve(entry(3), rate_limit=2)
    registry.void(first.number)  # a void number frees its place
    registry.reserve(third := entry(3), rate_limit=2)
    registry.complete(third.number)
    registry.complete(second.number)
    with pytest.raises(RateLimited):
        registry.check_rate(SUBJECT, "bidding", "2026-07-01", 2)
    registry.revoke(third.number, reason="wrong purpose", at=AT)  # so does a revoked one
    registry.check_rate(SUBJECT, "bidding", "2026-07-01", 2)
    # other purposes, custom domains (NULL purpose), other days and subjects count apart
    registry.reserve(entry(4, purpose=None), rate_limit=1)
    with pytest.raises(RateLimited, match=r"\(custom domains\)"):
        registry.reserve(entry(5, purpose=None), rate_limit=1)
    registry.reserve(entry(6, purpose="loan"), rate_limit=1)
    registry.reserve(entry(7, at=AT + timedelta(days=1)), rate_limit=1)
    registry.reserve(entry(8, subject="91210102MA0000002E"), rate_limit=1)
    registry.reserve(entry(9), rate_limit=0)  # 0: no limit
    assert registry.count() == 8  # the refused fifth was never recorded


def test_a_number_drawn_twice_is_number_taken(registry):
    e = entry(1)
    registry.reserve(e, rate_limit=0)
    with pytest.raises(NumberTaken):
        registry.reserve(Entry(**{**_fields(entry(2)), "number": e.number}), rate_limit=0)
    assert registry.get(e.number).digest == e.digest
    registry.reserve(entry(3), rate_limit=0)  # the connection is usable after the refusal


def test_abandoned_numbers_are_those_of_dead_processes_or_past_the_grace(registry):
    old, mine, dead = entry(1, at=AT - timedelta(hours=1)), entry(2), entry(3)
    for e in (old, mine, dead):
        registry.reserve(e, rate_limit=0)
    gone = subprocess.run(["true"], check=True).args and _dead_pid()
    registry._change(
        registry._sql("UPDATE reports SET owner = ? WHERE number = ?"),
        (f"{socket.gethostname()}:{gone}", dead.number),
    )
    found = registry.abandoned(at=AT, grace=timedelta(minutes=10))
    assert sorted(found) == sorted([old.number, dead.number])  # not this live process's
    registry.complete(old.number)
    assert registry.abandoned(at=AT, grace=timedelta(minutes=10)) == [dead.number]


def test_issued_since_and_reports_of(registry):
    early, late = entry(1, at=AT - timedelta(hours=2)), entry(2)
    other = entry(3, purpose=None, at=AT - timedelta(hours=1))
    for e in (early, late, other):
        registry.reserve(e, rate_limit=0)
        registry.complete(e.number)
    assert [e.number for e in registry.issued_since(SUBJECT, "bidding", since=AT)] == [late.number]
    since = AT - timedelta(days=1)  # oldest first
    assert [e.number for e in registry.issued_since(SUBJECT, "bidding", since=since)] == [
        early.number,
        late.number,
    ]
    assert [e.number for e in registry.issued_since(SUBJECT, None, since=since)] == [other.number]
    assert [e.number for e in registry.reports_of(SUBJECT, limit=2)] == [late.number, other.number]
    assert registry.reports_of("91210102MA0000002E") == []
    assert registry.get("210100-2607-00000000-0") is None


def _fields(e) -> dict:
    return {f: getattr(e, f) for f in type(e).__slots__}


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --- only on PostgreSQL ------------------------------------------------------------------------


def application(nonce: str, direction: str = "received") -> ApplicationEntry:
    return ApplicationEntry(
        nonce,
        direction,
        "440900",
        SUBJECT,
        ("taxation", "transport"),
        AT,
        AT + timedelta(seconds=2),
    )


def test_applications_are_recorded_once_and_settled_once(registry):
    first = application("01" * 16)
    registry.record_application(first)
    with pytest.raises(Replayed):
        registry.record_application(first)
    registry.record_application(application("02" * 16, "sent"))
    registry.settle_application(first.nonce, "issued", number="210100-2607-00000000-0")
    registry.settle_application(first.nonce, "refused", detail="too late")  # settled already
    (got,) = registry.applications_of(SUBJECT, "received")
    assert got == ApplicationEntry(**{**_fields(first), "outcome": "issued",
                                      "number": "210100-2607-00000000-0"})  # fmt: skip
    assert [a.nonce for a in registry.applications_of(SUBJECT, "sent")] == ["02" * 16]


def test_a_reader_never_writes(pg_url):
    postgres.migrate(pg_url)
    with postgres.PostgresRegistry(pg_url) as writer:
        writer.reserve(e := entry(1), rate_limit=0)
        writer.complete(e.number)
    with postgres.PostgresRegistry(pg_url, read_only=True) as reader:
        assert reader.get(e.number).status == "issued"
        with pytest.raises(RegistryError, match="read-only transaction"):
            reader.revoke(e.number, reason="x", at=AT)


def _reserve_racing(url: str, barrier, limit: int, n: int) -> str:
    with postgres.PostgresRegistry(url) as reg:
        barrier.wait(30)
        try:
            reg.reserve(entry(n), rate_limit=limit)
        except RateLimited:
            return "limited"
        return "reserved"


def _draw_the_same_numbers(url: str, barrier, numbers: list[str]) -> list[str]:
    won = []
    with postgres.PostgresRegistry(url) as reg:
        barrier.wait(30)
        for i, number in enumerate(numbers):
            try:
                reg.reserve(Entry(**{**_fields(entry(i)), "number": number}), rate_limit=0)
            except NumberTaken:
                continue
            won.append(number)
    return won


@pytest.fixture(scope="module")
def racers():
    """Processes of their own (forked from the fork server: no pool is shared) and a manager for
    the barrier that starts them together."""
    processes = multiprocessing.get_context("forkserver")
    with processes.Manager() as manager:
        yield processes, manager


RACERS = 6


def _racer(fn, args, results, i: int) -> None:
    try:
        results.put((i, True, fn(*args)))
    except BaseException as exc:
        results.put((i, False, repr(exc)))


def _race(racers, fn, arglists: list[tuple]) -> list:
    """fn(*args) in one process per args, their results in order. A process per racer, not a
    pool: a pool loses the task of a worker that dies and waits for it for ever (a run hung
    here); a racer that dies, raises or hangs fails the test, naming it."""
    processes, _ = racers
    results = processes.Queue()
    started = [
        processes.Process(target=_racer, args=(fn, args, results, i))
        for i, args in enumerate(arglists)
    ]
    for p in started:
        p.start()
    got = {}
    try:
        for _ in started:
            i, ok, value = results.get(timeout=90)
            assert ok, f"racer {i} raised {value}"
            got[i] = value
    finally:
        for p in started:
            p.join(10)
            if p.exitcode is None:
                p.kill()
    assert [p.exitcode for p in started] == [0] * len(started)
    return [got[i] for i in range(len(started))]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_the_rate_limit_is_exact_across_processes(pg_url, racers, limit):
    postgres.migrate(pg_url)
    barrier = racers[1].Barrier(RACERS)
    results = _race(racers, _reserve_racing, [(pg_url, barrier, limit, n) for n in range(RACERS)])
    assert sorted(results) == ["limited"] * (RACERS - limit) + ["reserved"] * limit
    with postgres.PostgresRegistry(pg_url) as reg:
        assert reg.count() == limit


def test_processes_drawing_the_same_numbers_never_share_one(pg_url, racers):
    postgres.migrate(pg_url)
    numbers = [report_number.new_number("210100", AT) for _ in range(40)]
    barrier = racers[1].Barrier(RACERS)
    won = _race(racers, _draw_the_same_numbers, [(pg_url, barrier, numbers)] * RACERS)
    every = [n for w in won for n in w]
    assert sorted(every) == sorted(numbers)  # each number reserved by exactly one process
    with postgres.PostgresRegistry(pg_url) as reg:
        assert reg.count() == len(numbers)


def test_migrate_is_versioned_idempotent_and_safe_to_run_at_once(pg_url):
    assert postgres.migrate(pg_url, target=1) == (0, 1)
    with pytest.raises(RegistryError, match=rf"version 1, this creditcert needs {postgres.LATEST}: run `creditcert registry migrate`"):  # fmt: skip
        postgres.PostgresRegistry(pg_url)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: postgres.migrate(pg_url), range(4)))
    latest = postgres.LATEST
    assert sorted(results) == [(1, latest), *[(latest, latest)] * 3]
    assert postgres.migrate(pg_url) == (latest, latest)
    with postgres.connect(pg_url) as con:
        versions = con.execute("SELECT version FROM creditcert_schema ORDER BY 1").fetchall()
        assert versions == [(v,) for v in range(1, latest + 1)]
        con.execute("INSERT INTO creditcert_schema VALUES (%s, 'a later release added')",
                    (latest + 1,))  # fmt: skip
    with postgres.PostgresRegistry(pg_url) as reg:  # one version behind, during an upgrade
        reg.reserve(entry(1), rate_limit=1)


def test_an_empty_database_is_refused_until_migrated(pg_url):
    with pytest.raises(RegistryError, match=r"version 0, .*run `creditcert registry migrate`"):
        postgres.PostgresRegistry(pg_url, read_only=True)


def test_errors_are_one_line_naming_the_server_never_the_password(pg_server):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    cases = {
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/x": f"127.0.0.1:{port}/x",
        pg_server.url("postgres", password="wrong-" + PASSWORD): "password authentication failed",
        pg_server.url("no_such_db"): 'database "no_such_db" does not exist',
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg_server.port}/x?sslmode=bogus": "sslmode",
    }
    for url, expected in cases.items():
        with pytest.raises(RegistryError) as caught:
            postgres.PostgresRegistry(url)
        message = str(caught.value)
        assert expected in message and "\n" not in message, message
        assert PASSWORD not in message and message.startswith("registry postgresql://postgres@")


def test_config_takes_a_postgresql_url_and_refuses_other_shapes(tmp_path):
    home = tmp_path / "city"
    config.init(home, admin_code="210100", name="沈阳市")
    assert config.load(home).registry_url is None
    path = home / config.CONFIG_NAME
    text = path.read_text()
    path.write_text(text + '\n[registry]\nurl = "postgresql://cc@db:5432/cc"\n')
    assert config.load(home).registry_url == "postgresql://cc@db:5432/cc"
    for bad, says in (
        ('url = "mysql://u:hunter2@db/cc"', "got scheme 'mysql'"),
        ('url = "postgres://u:hunter2@db:port/cc"', "port is not a number"),
        ('url = ""', "must not be empty"),
        ('uri = "postgresql://db/cc"', "unknown field(s) uri"),
    ):
        path.write_text(text + f"\n[registry]\n{bad}\n")
        with pytest.raises(ConfigError, match="registry") as caught:
            config.load(home)
        assert says in str(caught.value) and "hunter2" not in str(caught.value)


# --- copy from SQLite --------------------------------------------------------------------------


def _sqlite_with_every_status(path) -> list[str]:
    with SqliteRegistry(path) as reg:
        numbers = []
        for n, fate in enumerate(["pending", "issued", "void", "revoked", "issued"]):
            e = entry(n, purpose=None if n == 4 else "bidding")
            reg.reserve(e, rate_limit=0)
            if fate in ("issued", "revoked"):
                reg.complete(e.number)
            if fate == "void":
                reg.void(e.number)
            if fate == "revoked":
                reg.revoke(e.number, reason="wrong purpose", at=AT)
            numbers.append(e.number)
        return numbers


def test_copy_moves_every_row_and_copies_nothing_twice(tmp_path, pg_url):
    path = tmp_path / "registry.sqlite"
    _sqlite_with_every_status(path)
    with SqliteRegistry(path) as source:
        source.record_application(application("ab" * 16))
        source.settle_application("ab" * 16, "issued", number="230700-2607-00000000-0")
        copied = transfer.copy(source, pg_url)
        assert (copied.copied, copied.already, copied.schema_version) == (5, 0, postgres.LATEST)
        assert PASSWORD not in json.dumps(copied.to_json())
        with postgres.PostgresRegistry(pg_url) as target:
            assert target.rows() == source.rows()  # every column of every row
            assert target.application_rows() == source.application_rows()
            assert target.revoked_numbers() == source.revoked_numbers()
        again = transfer.copy(source, pg_url)
        assert (again.copied, again.already, again.schema_before) == (0, 5, postgres.LATEST)


def test_copy_refuses_a_number_the_target_holds_otherwise(tmp_path, pg_url):
    path = tmp_path / "registry.sqlite"
    numbers = _sqlite_with_every_status(path)
    with SqliteRegistry(path) as source:
        transfer.copy(source, pg_url)
        with postgres.PostgresRegistry(pg_url) as target:
            target.revoke(numbers[1], reason="revoked on the server meanwhile", at=AT)
        source.reserve(new := entry(9), rate_limit=0)
        with pytest.raises(RegistryError, match=rf"{numbers[1]} with other contents.*status 'issued' here, 'revoked' there.*nothing was copied"):  # fmt: skip
            transfer.copy(source, pg_url)
        with postgres.PostgresRegistry(pg_url) as target:
            assert target.get(new.number) is None  # all or nothing


# --- a city on PostgreSQL, through the CLI -----------------------------------------------------


def clock() -> datetime:
    return datetime.now(SHANGHAI)


@pytest.fixture
def pg_city(tmp_path, _fresh_template, pg_url):
    """A small city with keys valid now whose creditcert.toml points at the test's database."""
    home = tmp_path / "city"
    shutil.copytree(_fresh_template, home)
    city_at(home).keys.init(clock() - timedelta(hours=1))
    with (home / config.CONFIG_NAME).open("a") as f:
        f.write(f'\n[registry]\nurl = "{pg_url}"\n')
    return home


def test_a_city_on_postgresql_issues_verifies_revokes_and_publishes(pg_city, pg_url):
    home = pg_city
    with city_at(home).store() as store:
        code = store.subject_codes(with_records=True, limit=1)[0]
    unknown = report_number.new_number("210100", clock())
    refused = run_cli(home, "report", "get", unknown)  # the registry is opened first
    assert refused.returncode == 2 and "run `creditcert registry migrate`" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and PASSWORD not in refused.stderr

    migrated = run_cli(home, "registry", "migrate", "--json")
    assert migrated.returncode == 0, migrated.stderr
    body = json.loads(migrated.stdout)
    assert body == {"format": "creditcert.registry-migrate/1", "schema_before": 0,
                    "schema_version": postgres.LATEST}  # fmt: skip
    again = run_cli(home, "registry", "migrate")
    assert f"at version {postgres.LATEST}: nothing to migrate" in again.stdout

    issued = run_cli(home, "report", code, "--purpose", "bidding")
    assert issued.returncode == 0, issued.stderr
    number = issued.stdout.split()[1]
    assert not (home / "registry.sqlite").exists()  # every row is on the server
    with postgres.PostgresRegistry(pg_url) as reg:
        assert reg.get(number).status == "issued" and reg.count() == 1

    accepted = run_cli(home, "verify", "--number", number, "--json")
    assert accepted.returncode == 0, accepted.stdout
    assert run_cli(home, "revoke", number, "--reason", "wrong purpose").returncode == 0
    rejected = run_cli(home, "verify", "--number", number, "--json")
    assert rejected.returncode == 1 and "revoked" in rejected.stdout

    city = city_at(home)
    assert [e.status for e in city.reports_of(code)] == ["revoked"]
    bundle = city.export_bundle(at=clock())
    checked = verify_bundle(bundle, fingerprint(city.keys.root()), at=clock())
    assert revocation_id(number) in checked.bundle.revoked


def test_registry_copy_then_the_city_answers_from_postgresql(tmp_path, _fresh_template, pg_url):
    home = tmp_path / "city"
    shutil.copytree(_fresh_template, home)
    city_at(home).keys.init(clock() - timedelta(hours=1))
    with city_at(home).store() as store:
        code = store.subject_codes(with_records=True, limit=1)[0]
    with SqliteRegistry(home / "registry.sqlite") as reg:  # a report issued on SQLite (no PDF)
        reg.reserve(e := entry(1, subject=code, at=clock()), rate_limit=1)
        reg.complete(e.number)
    copied = run_cli(home, "registry", "copy", "--to", pg_url, "--json")
    assert copied.returncode == 0, copied.stderr
    body = json.loads(copied.stdout)
    assert (body["format"], body["copied"], body["already"]) == ("creditcert.registry-copy/1", 1, 0)
    assert PASSWORD not in copied.stdout
    assert "0 row(s) copied, 1 already there" in run_cli(home, "registry", "copy", "--to", pg_url).stdout  # fmt: skip
    with (home / config.CONFIG_NAME).open("a") as f:
        f.write(f'\n[registry]\nurl = "{pg_url}"\n')
    (home / "registry.sqlite").rename(home / "registry.sqlite.moved")
    assert run_cli(home, "verify", "--number", e.number).returncode == 0
    limited = run_cli(home, "report", code, "--purpose", "bidding")  # the copied row counts
    assert limited.returncode == 2 and e.number in limited.stderr
    assert not (home / "registry.sqlite").exists()


def test_cli_registry_errors_are_one_line_and_exit_2(tmp_path, _fresh_template, pg_server):
    home = tmp_path / "city"
    shutil.copytree(_fresh_template, home)
    not_pg = run_cli(home, "registry", "migrate")
    assert not_pg.returncode == 2 and "has no [registry] url" in not_pg.stderr
    bad = run_cli(home, "registry", "copy", "--to", "mysql://u:hunter2@db/x")
    assert (
        bad.returncode == 2 and "got scheme 'mysql'" in bad.stderr and "hunter2" not in bad.stderr
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/gone"
    with (home / config.CONFIG_NAME).open("a") as f:
        f.write(f'\n[registry]\nurl = "{down}"\n')
    unknown = report_number.new_number("210100", AT)
    for args in (["registry", "migrate"], ["revoke", unknown, "--reason", "x"]):
        failed = run_cli(home, *args)
        assert failed.returncode == 2, failed
        line = failed.stderr.strip()
        assert "\n" not in line and "Traceback" not in line, line
        assert f"registry postgresql://postgres@127.0.0.1:{port}/gone" in line
        assert PASSWORD not in line
