"""Screenshots of a city's service pages, for the tour (`make demo`) and for people to look at.

Starts `creditcert serve --demo` on the home at a free loopback port, drives Debian's Chromium
(Playwright cannot fetch its own browser here) and saves, under --out:

  service-verify.png          the verify page a reviewer opens
  service-verify-result.png   the answer for --pdf (when given)
  service-verify-phone.png    the verify page on a phone-sized screen
  service-signin.png          the self-service sign-in page
  service-home.png            an enterprise's page after the demo sign-in (--code)
  service-preview.png         what its report for --purpose would say, domain by domain

The service is stopped (SIGTERM) before the script ends; nothing is issued.

    python tools/screenshots.py --home out/demo/shenyang --out out/demo --code CODE --pdf R.pdf
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the rest keep it from calling home on a closed network.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(home: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "creditcert.cli", "--home", str(home), "serve",
           "--port", str(port), "--workers", "1", "--demo"]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(
                f"creditcert serve exited with {process.returncode} (run it by hand to see why)"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    sys.exit("creditcert serve did not become ready in 120 s")


def shoot(base: str, out: Path, *, code: str | None, pdf: Path | None, purpose: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []

    def shot(page, name: str) -> None:
        path = out / f"service-{name}.png"
        page.screenshot(path=path, full_page=True)
        saved.append(path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(base_url=base, locale="zh-CN").new_page()
            page.goto("/verify")
            shot(page, "verify")
            if pdf is not None:
                page.set_input_files("#file", str(pdf))  # the page sends it at once
                page.locator("#verdict").wait_for(timeout=60_000)
                shot(page, "verify-result")
            phone = browser.new_context(base_url=base, locale="zh-CN", **PHONE).new_page()
            phone.goto("/verify")
            shot(phone, "verify-phone")
            page.goto("/")
            shot(page, "signin")
            if code:
                page.fill("#code", code)
                page.locator("form.signin button").click()
                page.wait_for_selector("form.ask")
                shot(page, "home")
                page.goto(f"/preview?purpose={purpose}")
                page.wait_for_selector("form.confirm")
                shot(page, "preview")
        finally:
            browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="the city's home")
    parser.add_argument("--out", type=Path, required=True, help="where the PNGs go")
    parser.add_argument("--code", help="a registered credit code to sign in with (demo)")
    parser.add_argument("--pdf", type=Path, help="a report PDF to verify on the page")
    parser.add_argument("--purpose", default="bidding", help="the purpose previewed")
    args = parser.parse_args()
    if not re.fullmatch(r"[0-9a-z-]+", args.purpose):
        parser.error(f"--purpose: not a purpose code: {args.purpose!r}")
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start(args.home, port)
    try:
        saved = shoot(
            f"http://127.0.0.1:{port}", args.out, code=args.code, pdf=args.pdf, purpose=args.purpose
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=90)
        except subprocess.TimeoutExpired:
            server.kill()
    for path in saved:
        print(path)


if __name__ == "__main__":
    main()
