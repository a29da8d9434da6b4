"""GraphiQL works with the internet cut off: every asset comes from the server (web/vendor.py)."""
from __future__ import annotations


def test_graphiql_renders_and_runs_a_query_offline(browser):
    page = browser.open("/graphql")
    page.wait_for_selector(".graphiql-container")
    page.locator(".graphiql-execute-button").click()
    result = page.locator(".result-window")
    result.get_by_text('"valueSummary"').wait_for()
    assert '"customers"' in result.inner_text()
    browser.screenshot("query")


def test_graphiql_keeps_the_query_in_the_url(browser):
    page = browser.open("/graphql?q=%7B%20evaluationDates%20%7D")
    page.wait_for_selector(".graphiql-container")
    assert "evaluationDates" in page.locator(".graphiql-query-editor").inner_text()


def test_vendor_assets_are_an_allow_list(server):
    import httpx

    assert httpx.get(f"{server.url}/vendor/plotly.min.js").status_code == 200
    assert httpx.get(f"{server.url}/vendor/graphiql.min.js").status_code == 200
    for bad in ("__init__.py", "..%2F__init__.py", "package_data/plotly.min.js", "views.py"):
        assert httpx.get(f"{server.url}/vendor/{bad}").status_code == 404, bad
