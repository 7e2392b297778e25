"""A real `creditcert serve` in a subprocess on a free loopback port, for the service's HTTP and
browser tests: started as an operator would, stopped with SIGTERM, its stderr kept."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from creditcert.city import City
from creditcert.model.clock import SHANGHAI

from .conftest import generated_home

RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@dataclass
class Server:
    base: str
    home: Path
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=120, **kwargs)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=90)


def service_home(tmp: Path, *, subjects: int = 400, records: int = 2000, seed: int = 23) -> Path:
    """A generated city with keys and no rate limit, ready to serve."""
    home = generated_home(tmp, subjects=subjects, records=records, seed=seed)
    path = home / "creditcert.toml"
    text = path.read_text(encoding="utf-8").replace(
        "rate_limit_per_day = 1 ", "rate_limit_per_day = 0 "
    )
    path.write_text(text, encoding="utf-8")
    City.open(home).keys.init(datetime.now(SHANGHAI))
    return home


BASE_URL = re.compile(r'^base_url = ".*"$', re.M)


def free_port() -> int:
    """A loopback port free right now (the kernel's pick, released for the server to bind)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def set_base_url(home: Path, base: str) -> None:
    """Point the city's `[service] base_url` (the QR's URL) at `base`."""
    path = home / "creditcert.toml"
    text, found = BASE_URL.subn(f'base_url = "{base}"', path.read_text(encoding="utf-8"))
    assert found == 1, f"no base_url line in {path}"
    path.write_text(text, encoding="utf-8")


@contextmanager
def serving(
    home: Path, *args: str, workers: int = 1, own_base_url: bool = False, port: int = 0
) -> Iterator[Server]:
    """`creditcert serve --port 0 …` on `home` until the block ends (or on `port`: a server
    started again where its partners expect it). With `own_base_url` the server listens on a
    port picked here, written first into the city's base_url, so the QR of every report it
    issues is a URL of this very server (as a phone scanning it would open)."""
    if own_base_url:
        port = free_port()
        set_base_url(home, f"http://127.0.0.1:{port}")
    cmd = [sys.executable, "-m", "creditcert.cli", "--home", str(home), "serve", "--port", str(port),
           "--workers", str(workers), *args]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITCERT_KILL")}
    process = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )
    server = Server("", home, process)
    found = threading.Event()

    def read() -> None:
        for line in process.stderr:
            server.lines.append(line)
            match = RUNNING.search(line)
            if match:
                server.base = match[1]
                found.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while not found.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"creditcert serve did not start:\n{server.log}")
    _wait_ready(server, deadline)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_ready(server: Server, deadline: float) -> None:
    with server.client() as client:
        while time.monotonic() < deadline:
            if client.get("/readyz").status_code == 200:
                return
            time.sleep(0.2)
    raise RuntimeError(f"creditcert serve never became ready:\n{server.log}")


def copy_home(home: Path, target: Path) -> Path:
    shutil.copytree(home, target)
    return target
