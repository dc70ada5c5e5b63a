"""Browser fixtures: the system's Chromium (never a downloaded one) driving the
test app served on a free local port."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from playwright.sync_api import ConsoleMessage, Page, Response, sync_playwright
from werkzeug.serving import make_server

from diversion.config import REPO_ROOT
from tests.conftest import PASSWORD, World

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts"
# axe-core (npm, pinned in package.json) and the rules it runs: WCAG 2.0, 2.1 and 2.2, levels A and AA.
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
PHONE_WIDTH = 375
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        shutil.which("chromium") is None or not Path(CHROMIUM).exists(),
        reason=f"no system Chromium at {CHROMIUM} (this suite never downloads a browser)",
    ),
]


@dataclass
class Session:
    page: Page
    console: list[str]
    errors: list[str]
    failed: list[str]


@pytest.fixture
def live_server(app: Flask, world: World) -> Iterator[str]:
    """The test app, with the test world, on 127.0.0.1, a free port, in a background thread."""
    with serving(app) as address:
        yield address


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """``app`` served on 127.0.0.1, a free port, in a background thread, until the block ends."""
    server = make_server("127.0.0.1", 0, _whole_bodies(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _whole_bodies(app: Flask) -> WSGIApplication:
    """Each response read whole before it is sent. Werkzeug's development server
    leaves a static file open when Chromium drops the connection mid-download (a
    favicon cut short by the next navigation), and the unclosed file would fail
    whichever test the collector happened to be in."""

    def serve(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return serve


@pytest.fixture
def browser_page(live_server: str) -> Iterator[Session]:
    """A fresh page on the test world's server (``browsing``)."""
    with browsing(live_server) as session:
        yield session


@contextmanager
def browsing(address: str) -> Iterator[Session]:
    """A fresh page on the server at ``address``; console messages, page errors and failed loads recorded."""
    console: list[str] = []
    errors: list[str] = []
    failed: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(base_url=address, viewport={"width": 1280, "height": 800})
            # Violations reported by the page itself, per document.
            context.add_init_script(
                "window.cspViolations = [];"
                "document.addEventListener('securitypolicyviolation',"
                " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
            )
            page = context.new_page()
            page.on("console", lambda message: _record(console, message))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("response", lambda response: _record_failure(failed, response))
            # A load cut short by the next navigation (net::ERR_ABORTED) is not a failure.
            page.on("requestfailed", lambda request: None if "ERR_ABORTED" in (request.failure or "")
                    else failed.append(f"failed {request.url}: {request.failure}"))
            yield Session(page, console, errors, failed)
            context.close()
        finally:
            browser.close()


def _record(console: list[str], message: ConsoleMessage) -> None:
    console.append(f"{message.type}: {message.text}")


def _record_failure(failed: list[str], response: Response) -> None:
    # A page may answer 4xx on purpose (the 404 below); what it loads may not.
    if response.status >= 400 and response.request.resource_type != "document":
        failed.append(f"{response.status} {response.url}")




def sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def axe_violations(page: Page) -> list[str]:
    """What axe-core finds against WCAG 2.2 A and AA on the page as it stands, one line per
    element: the rule, its impact, what it asks and where (every rule run, none disabled)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # evaluated by the browser's tools, as a page's policy cannot refuse
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS)
    return [f"{page.url}: {found['id']} ({found['impact']}): {found['help']} at {node['target']}"
            for found in result["violations"] for node in found["nodes"]]


def wider_than_a_phone(page: Page) -> int | None:
    """How wide the page is at 375 pixels, where it scrolls sideways (None when it fits: only a
    table's own region may scroll); the viewport is put back as it was."""
    viewport = page.viewport_size
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    try:
        width = int(page.evaluate("document.scrollingElement.scrollWidth"))
    finally:
        if viewport is not None:
            page.set_viewport_size(viewport)
    return width if width > PHONE_WIDTH else None
