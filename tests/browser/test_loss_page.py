"""The loss page on the demo base as a person uses it: the period's losses per tier, the paged and filtered list of
lost customers, the reasons, and the revenue bridge whose bars (and buttons) list their customers.

What the page shows is read off the page and checked against the API asked directly (server.graphql) and, where a
plain sum does it, against SQL over the demo database's orders."""
from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

COUNT = re.compile(r"^([\d,]+) of ([\d,]+) (?:loss episodes|customers)$")


# ---- reading the page ---------------------------------------------------------------------------------------------

def number(text: str) -> float | None:
    """A figure as the page prints it ("4,384,689", "-368,056.82", "7.1% (24)", "0.7×", "—") -> its number."""
    text = text.strip().split(" ")[0].replace(",", "").replace("×", "").replace("%", "")
    return None if text in ("", "—") else float(text)


def rows_of(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(f"{selector} tbody tr",
                                     "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")


def count_of(page, selector: str) -> tuple[int, int]:
    """(shown, total) from a paged list's "25 of 337 loss episodes"."""
    text = page.locator(f"{selector} .count").inner_text().strip()
    found = COUNT.match(text)
    assert found, text
    return int(found.group(1).replace(",", "")), int(found.group(2).replace(",", ""))


def settled(page) -> None:
    """Every section has drawn, so nothing moves the charts' bars any more (a forced click hits where they are)."""
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("body[data-charts=true]")  # the charts come after the numbers, once plotly has loaded
    for selector in ("#tier-summary tbody tr", "#lost-list tbody tr", "#reasons tbody tr", "#winback-table tbody tr",
                     "#bridge-steps tbody tr", "#tier-chart .point", "#bridge-chart .point", "#reasons-chart .point"):
        page.wait_for_selector(selector)


def wait_count(page, selector: str, total: int) -> None:
    expect(page.locator(f"{selector} .count")).to_have_text(re.compile(rf" of {total:,} "))


# ---- the period, computed here by hand --------------------------------------------------------------------------

def data_today(server) -> date:
    return date.fromisoformat(server.graphql("{ evaluationDates }")["evaluationDates"][0])


def last_quarter(today: date) -> tuple[date, date]:
    """The calendar quarter before today's: 2026-12-01 -> 2026-07-01 .. 2026-09-30."""
    quarter_start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    end = quarter_start - timedelta(days=1)
    return date(end.year, end.month - 2, 1), end


def last_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def period(start: date, end: date) -> dict:
    return {"from": start.isoformat(), "to": end.isoformat()}


SUMMARY = """query($from: Date, $to: Date) { lossSummary(from: $from, to: $to) {
  tierAtLoss customers episodes revenueLost marginLost rule blocked manual withOverdueComplaints withLateDeliveries
  reactivated } }"""
LOST_TOTAL = """query($from: Date, $to: Date, $how: LossHow, $tier: String) {
  lostCustomers(from: $from, to: $to, how: $how, tierAtLoss: $tier, first: 1) { totalCount } }"""


def lost_total(server, start: date, end: date, how: str | None = None, tier: str | None = None) -> int:
    return server.graphql(LOST_TOTAL, **period(start, end), how=how, tier=tier)["lostCustomers"]["totalCount"]


def revenue_of_month(demo_url: str, month: str) -> float:
    """Plain SQL: the sum of the order amounts dated in a month (YYYY-MM)."""
    engine = sa.create_engine(demo_url)
    try:
        with engine.connect() as conn:
            return float(conn.execute(sa.text("SELECT coalesce(sum(amount), 0) FROM orders "
                                              "WHERE substr(ordered_at, 1, 7) = :m"), {"m": month}).scalar())
    finally:
        engine.dispose()


# ---- tests ------------------------------------------------------------------------------------------------------

def test_loss_by_tier_and_the_lost_list_match_the_api(browser, server):
    today = data_today(server)
    start, end = last_quarter(today)
    page = browser.open("/loss")  # without a period: the last quarter, written into the URL
    expect(page.locator("#from")).to_have_value(start.isoformat())
    expect(page.locator("#to")).to_have_value(end.isoformat())
    assert f"from={start}" in page.url and f"to={end}" in page.url

    page.wait_for_selector("#tier-summary tbody tr")
    shown = rows_of(page, "#tier-summary")
    api = server.graphql(SUMMARY, **period(start, end))["lossSummary"]
    assert api, "the demo base loses customers every quarter"
    assert [r[0] for r in shown] == [t["tierAtLoss"] or "none" for t in api]
    keys = ["customers", "episodes", "revenueLost", "marginLost", "rule", "blocked", "manual",
            "withOverdueComplaints", "withLateDeliveries", "reactivated"]
    for row, tier in zip(shown, api):
        for cell, key in zip(row[1:], keys):
            if tier[key] is None:
                assert cell == "—", (tier["tierAtLoss"], key, cell)
            else:  # whole amounts on the page
                assert abs(number(cell) - tier[key]) <= 0.5, (tier["tierAtLoss"], key, cell, tier[key])

    # the list: its total is the API's count of episodes, which the tiers' episodes add up to
    page.wait_for_selector("#lost-list tbody tr")
    first_page, total = count_of(page, "#lost-list")
    assert total == lost_total(server, start, end)
    assert total == sum(t["episodes"] for t in api)
    assert first_page == min(25, total) == len(rows_of(page, "#lost-list"))
    revenue = [number(r[5]) for r in rows_of(page, "#lost-list")]
    assert revenue == sorted(revenue, reverse=True), "the biggest revenue lost first"
    assert number(page.locator(".kpi .value").first.inner_text()) == total

    assert total > 25, "enough episodes to page"
    page.get_by_role("button", name="More").click()
    wait_count(page, "#lost-list", total)
    expect(page.locator("#lost-list .count")).to_have_text(re.compile(rf"^{min(50, total)} of "))
    assert len(rows_of(page, "#lost-list")) == min(50, total)

    # a tier's bar lists that tier's episodes
    settled(page)
    named = [i for i, t in enumerate(api) if t["tierAtLoss"] is not None]
    assert named, "some losses in the quarter happen after the first evaluation"
    index = max(named, key=lambda i: api[i]["customers"])
    tier = api[index]["tierAtLoss"]
    page.locator("#tier-chart .trace.bars").first.locator(".point").nth(index).locator("path").click(force=True)
    expect(page.locator("#tier-filter")).to_have_value(tier)
    wait_count(page, "#lost-list", api[index]["episodes"])
    assert api[index]["episodes"] == lost_total(server, start, end, tier=tier)
    assert {r[4] for r in rows_of(page, "#lost-list")} == {tier}
    assert f"tier={tier}" in page.url
    browser.screenshot("loss")

    # a customer's name leads to its page
    link = page.locator("#lost-list tbody tr a").first
    name = link.inner_text()
    link.click()
    expect(page.locator("#customer-title")).to_have_text(name)


def test_the_how_filter_changes_the_list(browser, server):
    today = data_today(server)
    year_ago = today - timedelta(days=365)
    blocked = server.graphql("""query($from: Date, $to: Date) { lostCustomers(from: $from, to: $to, how: BLOCKED,
        first: 1) { edges { node { lostOn } } } }""", **period(year_ago, today))["lostCustomers"]["edges"]
    assert blocked, "the demo base blocks a customer now and then"
    lost_on = date.fromisoformat(blocked[0]["node"]["lostOn"])
    start = lost_on.replace(day=1)
    end = min(today, lost_on.replace(day=calendar.monthrange(lost_on.year, lost_on.month)[1]))

    page = browser.open(f"/loss?from={start}&to={end}")
    page.wait_for_selector("#lost-list tbody tr")
    _, everyone = count_of(page, "#lost-list")
    assert everyone == lost_total(server, start, end)

    page.select_option("#how-filter", "BLOCKED")
    only_blocked = lost_total(server, start, end, how="BLOCKED")
    assert 1 <= only_blocked < everyone
    wait_count(page, "#lost-list", only_blocked)
    assert {r[2] for r in rows_of(page, "#lost-list")} == {"blocked"}
    assert "how=BLOCKED" in page.url

    page.select_option("#how-filter", "RULE")
    by_rule = lost_total(server, start, end, how="RULE")
    wait_count(page, "#lost-list", by_rule)
    assert {r[2] for r in rows_of(page, "#lost-list")} == {"rule"}
    assert by_rule + only_blocked + lost_total(server, start, end, how="MANUAL") == everyone

    page.select_option("#how-filter", "")
    wait_count(page, "#lost-list", everyone)


def test_presets_are_reached_with_the_keyboard(browser, server):
    today = data_today(server)
    start, end = last_quarter(today)
    page = browser.open(f"/loss?from={start}&to={end}")
    page.wait_for_selector("#tier-summary")
    page.focus("[data-preset=this-month]")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.preset") == "last-month"
    page.keyboard.press("Enter")
    month_start, month_end = last_month(today)
    expect(page.locator("#from")).to_have_value(month_start.isoformat())
    expect(page.locator("#to")).to_have_value(month_end.isoformat())
    assert f"from={month_start}" in page.url
    # the page shows the new period's figures
    wait_count(page, "#lost-list", lost_total(server, month_start, month_end))
    expect(page.locator("#bridge-month")).to_have_value(month_end.strftime("%Y-%m"))


def test_the_revenue_bridge_adds_up_and_its_bars_list_their_customers(browser, server, demo_url):
    today = data_today(server)
    start, end = last_quarter(today)
    month = end.strftime("%Y-%m")  # the last complete month of the period
    base_month = (end.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    page = browser.open(f"/loss?from={start}&to={end}")
    expect(page.locator("#bridge-month")).to_have_value(month)
    settled(page)

    steps = rows_of(page, "#bridge-steps")
    assert [r[0] for r in steps] == [f"{base_month} (base)", "New", "Returning", "Expansion", "Contraction",
                                     "Stopped: lost", "Stopped: quiet", f"{month} total"]
    amounts = [number(r[2]) for r in steps]
    base, effects, total = amounts[0], amounts[1:-1], amounts[-1]
    assert abs(base + sum(effects) - total) <= 0.005 * len(amounts)  # each figure is shown to the cent
    assert all(e <= 0 for e in effects[3:]) and all(e >= 0 for e in effects[:3])
    assert abs(total - revenue_of_month(demo_url, month)) <= 0.005
    assert abs(base - revenue_of_month(demo_url, base_month)) <= 0.005
    # the chart draws the same bars: base, six steps, total
    assert page.locator("#bridge-chart .point").count() == 8

    customers = {r[0]: int(number(r[1])) for r in steps[1:-1]}
    api = server.graphql("""query($month: String!) { revenueBridge(month: $month) {
        categories { category customers } } }""", month=month)["revenueBridge"]["categories"]
    assert [c["customers"] for c in api] == list(customers.values())

    # a click on the Returning bar lists the returning customers
    assert customers["Returning"] > 25
    page.locator("#bridge-chart .point").nth(2).locator("path").click(force=True)
    expect(page.locator("#bridge-step-title")).to_contain_text("Returning")
    wait_count(page, "#bridge-customers", customers["Returning"])
    assert len(rows_of(page, "#bridge-customers")) == 25
    assert page.locator("#bridge-steps tr.selected td").first.inner_text() == "Returning"

    # the keyboard way: the Expansion row's button, Enter
    page.focus("#bridge-steps button[data-category=EXPANSION]")
    page.keyboard.press("Enter")
    expect(page.locator("#bridge-step-title")).to_contain_text("Expansion")
    wait_count(page, "#bridge-customers", customers["Expansion"])
    assert page.evaluate("document.activeElement.id") == "bridge-step-title"
    effects_listed = [number(r[3]) for r in rows_of(page, "#bridge-customers")]
    assert effects_listed == sorted(effects_listed, reverse=True) and min(effects_listed) > 0

    # against the same month a year earlier
    page.select_option("#bridge-compare", "SAME_MONTH_LAST_YEAR")
    year_before = f"{end.year - 1}-{end.month:02d}"
    expect(page.locator("#bridge-steps tbody tr").first.locator("td").first).to_have_text(f"{year_before} (base)")
    amounts = [number(r[2]) for r in rows_of(page, "#bridge-steps")]
    assert abs(amounts[0] - revenue_of_month(demo_url, year_before)) <= 0.005
    assert abs(amounts[0] + sum(amounts[1:-1]) - amounts[-1]) <= 0.005 * len(amounts)
    assert "compare=SAME_MONTH_LAST_YEAR" in page.url


def test_reasons_show_the_ratio_and_win_back_the_reps(browser, server):
    start, end = last_quarter(data_today(server))
    page = browser.open(f"/loss?from={start}&to={end}")
    page.wait_for_selector("#reasons tbody tr")
    api = server.graphql("""query($from: Date, $to: Date) {
        lossReasons(from: $from, to: $to) { lostCustomers reasons { reason lostShare retainedShare ratio } }
        winBack(from: $from, to: $to) { reps { lostCustomers withAttempt attempts rep { name } } } }""",
                         **period(start, end))
    shown = rows_of(page, "#reasons")
    reasons = {r["reason"]: r for r in api["lossReasons"]["reasons"]}
    assert len(shown) == len(reasons) > 0
    ratios = []
    for name, lost, retained, ratio in shown:
        expected = reasons[name]
        assert abs(number(lost) / 100 - expected["lostShare"]) <= 0.0005
        assert abs(number(retained) / 100 - expected["retainedShare"]) <= 0.0005
        if expected["ratio"] is None:
            assert ratio == "—"
        else:
            assert ratio.endswith("×") and abs(number(ratio) - expected["ratio"]) <= 0.05
            # the ratio is the shares' quotient, checked here from the shares themselves
            assert abs(expected["ratio"] - expected["lostShare"] / expected["retainedShare"]) < 1e-9
        ratios.append(number(ratio))
    known = [r for r in ratios if r is not None]
    assert known == sorted(known, reverse=True) and ratios[:len(known)] == known, "highest ratio first, unknown last"

    page.wait_for_selector("#winback-table tbody tr")
    reps = rows_of(page, "#winback-table")
    assert len(reps) == len(api["winBack"]["reps"])
    first = api["winBack"]["reps"][0]
    assert reps[0][0].startswith(first["rep"]["name"] if first["rep"] else "no owner")
    assert [number(c) for c in reps[0][1:3]] == [first["lostCustomers"], first["withAttempt"]]


def test_a_period_the_api_refuses_shows_its_message_in_place(browser, server):
    start, end = last_quarter(data_today(server))
    page = browser.open(f"/loss?from={end}&to={start}")  # from after to
    alerts = page.get_by_role("alert")
    expect(alerts).to_have_count(4)  # summary, list, reasons, win-back: each says why
    for text in alerts.all_inner_texts():
        assert "is after" in text and "BAD_ARGUMENT" in text
    page.wait_for_selector("#bridge-steps tbody tr")  # the bridge does not depend on the period's validity
