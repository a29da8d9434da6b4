"""The rule editor as an admin uses it: a typo shows its caret error in place, a valid edit is previewed, published
and rolled back, and the history shows the diff. Runs on a server of its own (it changes the rules in force)."""
from __future__ import annotations

from tests.browser.conftest import ADMIN_TOKEN

BROKEN_LINE = "tier broken if revenue_12m >"


def _api(server, query, **variables):
    return server.graphql(query, token=ADMIN_TOKEN, **variables)


def _wait_checked(page):
    """Until the diagnostics shown belong to the text as it is (the page validates 250 ms after typing)."""
    page.wait_for_function("() => document.querySelector('#diagnostics').children.length > 0")


def test_a_typo_shows_its_error_under_the_caret_and_in_place(private_browser):
    server = private_browser.server
    private_browser.login()
    page = private_browser.open("/rules")
    active = _api(server, "{ ruleSet { version source } }")["ruleSet"]
    editor = page.locator("#rule-text")
    page.wait_for_function("() => document.querySelector('#rule-text').value.length > 0")
    assert editor.input_value() == active["source"]
    assert page.locator("#active-version").inner_text() == f"version {active['version']}"
    page.locator("#diagnostics .ok").wait_for()  # the shipped rules are clean

    # type a broken rule at the end, as a person would
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n" + BROKEN_LINE)
    page.locator("#diagnostics li button").first.wait_for()
    expected = _api(server, "query($s: String!) { validateRules(source: $s) { line column message snippet } }",
                    s=editor.input_value())["validateRules"]
    assert expected, "the server finds the typo"
    first = expected[0]
    assert page.locator("#diagnostic-count").inner_text() == str(len(expected))
    # the caret is on the broken line: its diagnostic is shown under the editor, caret snippet included
    at_caret = page.locator("#at-caret")
    assert first["message"] in at_caret.inner_text()
    assert "^" in at_caret.locator("pre").inner_text()
    assert at_caret.locator("pre").inner_text().strip() == first["snippet"].strip()
    # marked in place: the gutter's line number and the mark in the text
    assert page.locator("#gutter .bad").inner_text() == str(first["line"])
    assert page.locator("#code-marks mark").count() >= 1
    private_browser.screenshot("caret-error")

    # the caret elsewhere hides it; choosing the diagnostic (keyboard) brings the caret back to its place
    page.keyboard.press("Control+Home")
    page.keyboard.press("ArrowRight")  # keyup updates the caret line
    assert at_caret.inner_text() == ""
    page.locator("#diagnostics li button").first.focus()
    page.keyboard.press("Enter")
    assert page.locator("#cursor-pos").inner_text() == f"Ln {first['line']}, Col {first['column']}"
    assert first["message"] in at_caret.inner_text()


def test_a_valid_edit_is_previewed_published_diffed_and_rolled_back(private_browser):
    server = private_browser.server
    private_browser.login()
    page = private_browser.open("/rules")
    page.on("dialog", lambda dialog: dialog.accept())  # the rollback asks for confirmation
    active = _api(server, "{ ruleSet { version source } }")["ruleSet"]
    page.wait_for_function("() => document.querySelector('#rule-text').value.length > 0")
    # the key tier only: the tag unhappy_key reads the same condition on a line of its own
    key_tier = "tier key        if profit_12m in top "
    edited = active["source"].replace(key_tier + "20%", key_tier + "10%")
    assert edited != active["source"]
    page.locator("#rule-text").fill(edited)
    page.locator("#diagnostics .ok").wait_for()

    # preview: the summary and each move as the API previews the same text
    page.locator("#preview-button").click()
    page.locator("#preview-summary").wait_for()
    # the Sankeys are asked for with the summary and drawn once plotly has loaded (data-charts: "false" until then)
    page.wait_for_selector("body[data-charts=true]")
    preview = _api(server, "query($s: String!) { previewRules(source: $s) { customers changedTiers "
                           "moves { kind old new customers } } }", s=edited)["previewRules"]
    assert preview["changedTiers"] > 0
    summary = page.locator("#preview-summary").inner_text()
    assert f"{preview['changedTiers']:,} of {preview['customers']:,}" in summary
    # per kind a Sankey and a table with every (old, new) pair the API previews, stayed ones included
    for kind in ("tier", "status"):
        moves = [m for m in preview["moves"] if m["kind"] == kind]
        rows = page.locator(f"#preview-{kind}-table tbody tr")
        assert rows.count() == len(moves)
        assert page.locator(f"#preview-{kind}-chart .sankey-link").count() == len(moves)
    # the biggest tier move (not a stay) lists its customers: as many as the move counts, paged with More
    biggest = max((m for m in preview["moves"] if m["kind"] == "tier" and m["old"] != m["new"]),
                  key=lambda m: m["customers"])
    row = page.locator(f"#preview-tier-table tbody tr:not(.stayed)").filter(
        has=page.locator("td.num", has_text=f"{biggest['customers']:,}")).first
    row.locator("button.flow-button").focus()
    page.keyboard.press("Enter")
    count_line = page.locator("#preview-customers .count")
    count_line.wait_for()
    assert f"of {biggest['customers']:,} customers" in count_line.inner_text()
    shown = page.locator("#preview-customers tbody tr").count()
    assert shown == min(25, biggest["customers"])
    if biggest["customers"] > 25:
        page.locator("#preview-customers button.more").click()
        page.wait_for_function(f"() => document.querySelectorAll('#preview-customers tbody tr').length > {shown}")
    private_browser.screenshot("preview")

    # publish: the job runs to the end and the new version is in force
    page.locator("#publish-button").click()
    page.locator("#publish-status .ok").wait_for(timeout=60_000)
    after = _api(server, "{ ruleSet { version source } ruleSetHistory { version isActive } }")
    assert after["ruleSet"]["version"] == active["version"] + 1 and after["ruleSet"]["source"] == edited
    assert page.locator("#active-version").inner_text() == f"version {after['ruleSet']['version']}"
    history_rows = page.locator("#history tbody tr")
    assert history_rows.count() == len(after["ruleSetHistory"])

    # the diff of the previous version against the one in force: exactly the edited line
    history_rows.nth(1).locator("button.diff-button").click()
    page.locator("#diff .diff").wait_for()
    assert page.locator("#diff .removed").all_inner_texts()[0].endswith("tier key        if profit_12m in top 20%")
    assert page.locator("#diff .added").all_inner_texts()[0].endswith("tier key        if profit_12m in top 10%")
    assert page.locator("#diff .added").count() == 1 and page.locator("#diff .removed").count() == 1
    private_browser.screenshot("published-diff")

    # roll back to the previous version: it is in force again
    history_rows.nth(1).locator("button.rollback-button").click()
    page.locator("#publish-status .ok").get_by_text(f"version {active['version']} is in force").wait_for(
        timeout=60_000)
    assert _api(server, "{ ruleSet { version } }")["ruleSet"]["version"] == active["version"]
