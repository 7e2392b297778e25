"""A real PostgreSQL server for the registry's tests: Debian's binaries, a cluster made by initdb
in a temporary directory, listening on a free loopback port (and a socket in that directory),
stopped at the end of the session. Each pytest-xdist worker starts its own; each test gets a
database of its own (`pg_url`).

PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` system user and
every server command runs through `runuser -u postgres --`. Missing binaries fail the tests with
what to install (`make test` installs Debian's postgresql): no test is skipped for want of them.

Host connections need a password (scram-sha-256), so authentication failures can be tested; the
tests' URLs carry it.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "pg-test-secret"  # a throwaway cluster's
_DATABASES = itertools.count(1)


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not found:
        pytest.fail(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): install "
            "Debian's postgresql package (`make test` does: it is in SYSTEM_PACKAGES)",
            pytrace=False,
        )
    return Path(found[-1]).parent


def _version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    """A running cluster: its port, and URLs to its databases (user postgres, with password)."""

    port: int
    socket_dir: Path

    def url(self, database: str = "postgres", password: str | None = PASSWORD) -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(_DATABASES)}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session", name="pg_server")
def pg_server_fixture() -> Iterator[PgServer]:
    """The session's server (import `pg_server_fixture` and `pg_url_fixture`; ask for
    `pg_server` and `pg_url`)."""
    bin_dir = _bin_dir()
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="creditcert-pg-"))  # /tmp: the postgres user can reach it
    data, pwfile = root / "data", root / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run(
            [*run_as, *args], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode:
            log = root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{args[0]} failed: {done.stdout}{done.stderr}{tail}", pytrace=False)

    run(
        str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
        "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8",
        "--locale=C",
    )  # fmt: skip
    settings = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB "
        "-c max_connections=60"
    )
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
        "-o", settings, "start")  # fmt: skip
    try:
        yield PgServer(port, root)
    finally:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True, check=False, timeout=60,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(name="pg_url")
def pg_url_fixture(pg_server: PgServer) -> str:
    """A fresh database of this test's own on the session's server."""
    return pg_server.create_database()
