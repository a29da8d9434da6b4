"""Pages tested as a person uses them: a real `tiergraph serve` on a demo base, Debian's Chromium driven by Playwright.

- The browser is the system's (`chromium`, installed by .ci/run with apt); Playwright only drives it, so nothing
  downloads a browser. Missing Chromium skips these tests on a laptop and fails them in CI.
- Every request the page makes to a host other than the server is aborted and recorded (`browser.outside`): the
  pages must render with no internet, and a test fails if a page even tried to reach one.
- Console errors and uncaught exceptions fail the test that caused them.
- Screenshots go to test-artifacts/screenshots/ (TIERGRAPH_ARTIFACTS overrides), kept after the run.
- All browser tests share one server and one demo base per worker: they run in the xdist group "browser".
"""
from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests_support import IN_CI, demo_database

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "browser-test-admin-token"
ARTIFACTS = Path(os.environ.get("TIERGRAPH_ARTIFACTS") or ROOT / "test-artifacts") / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.xdist_group("browser"))


def _chromium() -> str:
    path = os.environ.get("TIERGRAPH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        message = "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`tiergraph serve` in its own process, as `make demo` runs it."""

    def __init__(self, database_url: str, **env: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = ARTIFACTS.parent / f"server-{self.port}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "DATABASE_URL": database_url, "TIERGRAPH_TICK": "off",
                       "TIERGRAPH_WEBHOOKS": "off", **env}
        self._log = self.log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(self.port)], cwd=ROOT,
                                     env=environment, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the server did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)

    def graphql(self, query: str, token: str | None = None, **variables):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, headers=headers,
                          timeout=60).json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


@pytest.fixture(scope="session")
def demo_url(tmp_path_factory) -> str:
    """A demo base as `make demo` builds it (fewer customers, so the suite stays quick), with history."""
    work = tmp_path_factory.mktemp("browser-demo")
    return demo_database(work, "--customers", "1500", "--seed", "7", "--history-months", "6")


@pytest.fixture(scope="session")
def server(demo_url):
    chromium_path = _chromium()  # skip before starting anything when there is no browser
    del chromium_path
    srv = Server(demo_url, TIERGRAPH_ADMIN_TOKEN=ADMIN_TOKEN)
    yield srv
    srv.stop()


# Per module, not per session: Playwright's sync API keeps an event loop running in this thread while it is open,
# and tests of other modules run later on the same worker call asyncio.run() (which refuses to nest).
@pytest.fixture(scope="module")
def _playwright():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(_playwright):
    browser = _playwright.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class Browser:
    """One page in a fresh context at 1280x800 with the internet cut off; collects what went wrong."""

    def __init__(self, chromium, server: Server, name: str):
        self.server = server
        self.name = name
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context = chromium.new_context(viewport={"width": 1280, "height": 800}, base_url=server.url)
        self.context.route("**/*", self._only_the_server)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def _only_the_server(self, route) -> None:
        host = urlparse(route.request.url).hostname
        if host in {"127.0.0.1", "localhost"} or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort("internetdisconnected")

    def login(self, token: str = ADMIN_TOKEN) -> None:
        """Stores the token the way the token dialog does, before any page script runs."""
        self.context.add_init_script(f"localStorage.setItem('tiergraph.token', {token!r});")

    def open(self, path: str):
        self.page.goto(path)
        return self.page

    def screenshot(self, label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


def _browsing(chromium, server: Server, name: str):
    b = Browser(chromium, server, name)
    yield b
    try:
        b.screenshot("end")
    finally:
        b.close()
    # after the screenshot, so a failing page is still pictured
    assert not b.outside, f"the page tried to reach the internet: {b.outside}"
    assert not b.errors, f"the page reported errors: {b.errors}"


@pytest.fixture
def browser(chromium, server, request):
    yield from _browsing(chromium, server, request.node.name)


@pytest.fixture
def private_server(demo_url, tmp_path):
    """A server of its own on a copy of the demo base, for a test that changes what the others read (publish)."""
    _chromium()
    copy = tmp_path / "demo-copy.db"
    # SQLite's backup API: a consistent copy even while the shared server has the file open (WAL included)
    with sqlite3.connect(sa_url_path(demo_url)) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    srv = Server(f"sqlite:///{copy}", TIERGRAPH_ADMIN_TOKEN=ADMIN_TOKEN)
    yield srv
    srv.stop()


def sa_url_path(url: str) -> str:
    """The file of a sqlite:/// URL."""
    assert url.startswith("sqlite:///"), url
    return url[len("sqlite:///"):]


@pytest.fixture
def private_browser(chromium, private_server, request):
    yield from _browsing(chromium, private_server, request.node.name)
