"""`creditcert serve`: the city's web service (docs/service.md). Parses, opens the city, runs
uvicorn on the app; the service itself lives in creditcert/service/."""

from __future__ import annotations

import logging
import socket
import sys
from ipaddress import ip_address
from typing import Annotated

import typer

from creditcert.cli.base import HomeOpt, app, err, fail, open_city


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _can_listen(host: str, port: int) -> None:
    """One line and exit 2, before any worker starts, when the address cannot be listened on."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free one).")
    ] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Issuing worker processes (default: one per core)."),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Let anyone sign in as any registered subject by typing its code (loopback "
            "addresses only; every page says 演示).",
        ),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Serve the verification page, self-service issuance and the JSON API until Ctrl-C; reports
    being rendered when it stops are finished, never left half-issued."""
    if demo and not _loopback(host):
        fail(f"--demo signs anyone in: it only runs on a loopback address, not {host}")
    city = open_city(home)
    _can_listen(host, port)
    import uvicorn

    from creditcert.service.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    service = create_app(city, demo=demo, issue_workers=workers)
    base = city.settings.service.base_url or "(no service.base_url: QR codes hold CC1: text)"
    err.print(f"serving {city.settings.issuer.name} on http://{host}:{port}  ·  QR base {base}"
              + ("  ·  演示 demo sign-in" if demo else ""), markup=False)  # fmt: skip
    uvicorn.run(
        service,
        host=host,
        port=port,
        access_log=False,  # creditcert.access logs the route, never a QR URL's payload
        proxy_headers=False,  # the client address behind a proxy: docs/service.md
        server_header=False,
        timeout_graceful_shutdown=60,
        log_level="info",
    )
