"""Debian's Chromium driven by Playwright, for the service's browser tests: the launch switches
this machine needs, and `Browsing`, which watches every page for console errors, script errors,
CSP violations and requests to another origin, and saves screenshots to look at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from .service_server import Server

OUT = Path(__file__).resolve().parent.parent / "out" / "browser"
CHROMIUM = "/usr/bin/chromium"
# Playwright cannot fetch its own browser here; Debian's runs as root only without the sandbox,
# and without the background-networking switches it keeps calling Google on a closed network.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 90_000  # issuance renders a PDF; the machine is shared
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}  # fmt: skip
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")


@pytest.fixture(scope="module", name="browser")
def chromium() -> Iterator[Browser]:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Browsing:
    """One test's (or fixture's) pages: each watched for console errors, script errors and
    requests leaving the server's origin; `shot` saves a full-page screenshot."""

    def __init__(self, browser: Browser, server: Server, name: str):
        self.browser, self.base, self.name = browser, server.base, name
        self.problems: list[str] = []
        self.contexts = []

    def page(self, **context: object) -> Page:
        ctx = self.browser.new_context(base_url=self.base, accept_downloads=True, **context)
        ctx.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.on("console", lambda m: self._console(page, m))
        page.on("pageerror", lambda e: self.problems.append(f"script: {e} ({page.url})"))
        page.on(
            "request",
            lambda r: (
                r.url.startswith((self.base + "/", "data:", "blob:"))
                or self.problems.append(f"request to another origin: {r.url}")
            ),
        )
        return page

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        where = message.location.get("url", "")
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource") and where == page.url:
            return  # an error page's own status (404, 401): Chromium logs every non-2xx document
        self.problems.append(f"console: {message.text} ({where} on {page.url})")

    def shot(self, page: Page, step: str) -> None:
        page.screenshot(path=OUT / f"{self.name}-{step}.png", full_page=True)

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()
        assert not self.problems, "\n".join(self.problems)
