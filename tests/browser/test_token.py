"""A server that wants an API token: the page asks for it in a dialog, keeps it in the browser, then shows data."""
from __future__ import annotations

import pytest

from tests.browser.conftest import Browser, Server

API_TOKEN = "browser-test-api-token"


@pytest.fixture
def guarded(demo_url, chromium, request):
    server = Server(demo_url, TIERGRAPH_API_TOKEN=API_TOKEN)
    browser = Browser(chromium, server, request.node.name)
    yield browser
    browser.close()
    server.stop()


def test_the_page_asks_for_the_token_and_then_shows_the_data(guarded):
    page = guarded.open("/")
    dialog = page.locator("#token-dialog")
    dialog.wait_for(state="visible")
    assert "token" in page.locator("#token-reason").inner_text().lower()
    guarded.screenshot("asked")
    # the refused calls are the expected 401s, nothing else went wrong
    assert guarded.errors and all("401" in e for e in guarded.errors), guarded.errors
    guarded.errors.clear()

    page.locator("#token-input").fill("not-the-token")
    page.locator("#token-save").click()
    dialog.wait_for(state="visible")  # a wrong token is refused the same way
    assert all("401" in e or "403" in e for e in guarded.errors), guarded.errors
    guarded.errors.clear()

    page.locator("#token-input").fill(API_TOKEN)
    with page.expect_navigation():
        page.keyboard.press("Enter")  # the dialog's form submits with the keyboard, and the page loads again
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/graphql") else None)
    page.wait_for_function("document.body.dataset.ready === 'true'")
    page.locator("#pyramid-table tbody tr").first.wait_for()
    assert not dialog.is_visible()
    assert statuses and set(statuses) == {200}, statuses  # every call of the reloaded page was let in
    assert page.evaluate("localStorage.getItem('tiergraph.token')") == API_TOKEN
    # late answers to the page before the reload may still have logged their 401 / 403
    assert all("401" in e or "403" in e for e in guarded.errors), guarded.errors
    assert not guarded.outside
