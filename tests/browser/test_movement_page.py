"""The movement page as a person uses it: the flows between the oldest and the newest evaluation (checked against the
change log replayed in plain Python), a Sankey link and a table row (mouse and keyboard) listing a flow's customers
page by page, the switch to statuses, dates from the URL, and a candidate rule set previewed against the active one.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa

PAGE = 25  # customers per page of a flow's list


@pytest.fixture
def admin_token(server) -> str:
    return sys.modules[type(server).__module__].ADMIN_TOKEN


def _dates(demo_url) -> list[str]:
    engine = sa.create_engine(demo_url)
    with engine.connect() as conn:
        days = [str(d) for (d,) in conn.execute(sa.text("SELECT DISTINCT as_of FROM evaluation_runs ORDER BY as_of"))]
    engine.dispose()
    return days


def _labels_on(conn, day: str, kind: str) -> dict[int, str | None]:
    """{customer: tier or status in force on `day`} for the customers created by then, by replaying the change log
    backwards: start from the stored (latest) labels and undo, newest first, every change a later run made.
    A customer created after the run in force on `day` was not evaluated by it: None."""
    runs = conn.execute(sa.text("SELECT id, as_of FROM evaluation_runs ORDER BY as_of, id")).all()
    run_id, run_day = [(r.id, str(r.as_of)) for r in runs if str(r.as_of) <= day][-1]
    label = {r.customer_id: r.label for r in conn.execute(
        sa.text(f"SELECT customer_id, {kind} AS label FROM customer_evaluations"))}
    for r in conn.execute(sa.text("SELECT customer_id, old_value FROM tier_changes WHERE kind = :kind AND run_id > :run "
                                  "ORDER BY id DESC"), {"kind": kind, "run": run_id}):
        label[r.customer_id] = r.old_value
    created = {r.id: str(r.created_at) for r in conn.execute(sa.text("SELECT id, created_at FROM customers"))}
    return {c: (label.get(c) if made <= run_day else None) for c, made in created.items() if made <= day}


def expected_flows(demo_url, start: str, end: str, kind: str) -> Counter:
    """(old, new) -> customers, as the page writes the labels (a missing old one: new since)."""
    engine = sa.create_engine(demo_url)
    with engine.connect() as conn:
        old, new = _labels_on(conn, start, kind), _labels_on(conn, end, kind)
    engine.dispose()
    return Counter((old.get(c) or "none (new)", label or "none") for c, label in new.items())


def shown_flows(page) -> Counter:
    rows = page.locator("#flow-table tbody tr")
    flows: Counter = Counter()
    for i in range(rows.count()):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        flows[(cells[0], cells[1].replace("stayed", "").strip())] += int(cells[2].replace(",", ""))
    return flows


def loaded(page) -> None:
    page.wait_for_function("document.body.dataset.loaded && document.body.dataset.loaded !== 'error'")


def flow_list_count(page) -> tuple[int, int]:
    page.wait_for_function("document.querySelector('#flow-list .count') && "
                           "/of/.test(document.querySelector('#flow-list .count').textContent)")
    shown, total = re.match(r"([\d,]+) of ([\d,]+) customers", page.locator("#flow-list .count").inner_text()).groups()
    return int(shown.replace(",", "")), int(total.replace(",", ""))


def check_flow_list(page, flow_text: str, customers: int) -> None:
    """The list under the chart is the flow's: its title, its count, revenue descending, names linking to the
    customer page; "More" adds the next page."""
    assert page.locator("#flow-list .flow-title").inner_text().startswith(f"{flow_text}: {customers:,} customers")
    shown, total = flow_list_count(page)
    assert (shown, total) == (min(PAGE, customers), customers)
    rows = page.locator("#flow-list tbody tr")
    assert rows.count() == shown
    revenues = [float(t.replace(",", "")) for t in page.locator("#flow-list tbody td.num").all_inner_texts()]
    assert revenues == sorted(revenues, reverse=True)
    assert set(page.locator("#flow-list tbody td:nth-child(2)").all_inner_texts()) == {flow_text}
    href = rows.first.locator("a").get_attribute("href")
    assert href.startswith("/customers/") and len(href) > len("/customers/")
    more = page.locator("#flow-list button.more")
    if customers > PAGE:
        more.click()
        page.wait_for_function(f"document.querySelectorAll('#flow-list tbody tr').length === {min(2 * PAGE, customers)}")
        assert flow_list_count(page) == (min(2 * PAGE, customers), customers)
        hrefs = page.locator("#flow-list tbody a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert len(set(hrefs)) == len(hrefs)  # the second page continues the first, repeating nobody
    else:
        assert more.is_hidden()


def test_flows_between_the_oldest_and_newest_evaluation_match_the_change_log(browser, server, demo_url):
    dates = _dates(demo_url)
    oldest, newest = dates[0], dates[-1]
    page = browser.open("/movement")
    loaded(page)
    assert page.locator("#from").input_value() == oldest and page.locator("#to").input_value() == newest
    query = parse_qs(urlparse(page.url).query)
    assert query["from"] == [oldest] and query["to"] == [newest] and query["kind"] == ["TIER"]

    expected = expected_flows(demo_url, oldest, newest, "tier")
    assert shown_flows(page) == expected
    engine = sa.create_engine(demo_url)
    with engine.connect() as conn:
        created_by_end = conn.execute(sa.text("SELECT count(*) FROM customers WHERE created_at <= :d"),
                                      {"d": newest}).scalar()
        evaluated_then = conn.execute(sa.text("SELECT customer_count FROM evaluation_runs WHERE as_of = :d "
                                              "ORDER BY id DESC"), {"d": oldest}).scalar()
    engine.dispose()
    flows = shown_flows(page)
    assert sum(flows.values()) == created_by_end
    # the customers evaluated on both days: every flow but the new customers'
    assert sum(n for (old, _), n in flows.items() if old != "none (new)") == evaluated_then
    summary = page.locator("#movement-summary").inner_text()
    assert f"{created_by_end:,} customers by {newest}, {evaluated_then:,} of them with a tier on {oldest}" in summary

    # one Sankey link per flow; the customers who stayed are drawn muted grey, the moves in colour
    page.wait_for_selector("body[data-charts=true]")  # drawn once plotly has loaded, after the table
    links = page.locator("#flow-chart .sankey-link")
    assert links.count() == len(expected)
    fills = links.evaluate_all("paths => paths.map(p => getComputedStyle(p).fill)")
    stayed = sum(n > 0 for (old, new), n in expected.items() if old == new)
    assert sum(f == "rgb(140, 150, 160)" for f in fills) == stayed
    assert page.locator("#flow-chart .sankey-node").count() == len({o for o, _ in expected}) + len({n for _, n in expected})
    browser.screenshot("movement")


def test_a_sankey_link_and_a_table_row_list_their_flow(browser, server, demo_url):
    dates = _dates(demo_url)
    api = server.graphql("query($f: Date!, $t: Date!) { movement(from: $f, to: $t) { flows { old new customers "
                         "revenue } } }", f=dates[0], t=dates[-1])["movement"]["flows"]
    customers = {f"{f['old'] or 'none (new)'} → {f['new'] or 'none'}": f["customers"] for f in api}
    revenue = {f"{f['old'] or 'none (new)'} → {f['new'] or 'none'}": f["revenue"] for f in api}
    page = browser.open("/movement")
    loaded(page)
    page.wait_for_selector("body[data-charts=true]")  # the Sankey is drawn once plotly has loaded

    # the mouse on a link: its hover names the flow; a click lists that flow (a big one, so "More" pages)
    links = page.locator("#flow-chart .sankey-link")
    hovered = None
    label = page.locator("#flow-chart .hoverlayer .hovertext")
    for i in range(links.count()):
        page.mouse.move(1, 1)  # off the chart: the label of the link before goes away
        label.first.wait_for(state="detached")
        links.nth(i).hover(force=True)
        label.first.wait_for(state="attached")
        text = label.first.text_content()
        match = re.match(r"(.+ → .+) \(moved\)([\d,]+) customersrevenue ([\d,]+)", text)
        if match and int(match.group(2).replace(",", "")) > PAGE:
            hovered = match.group(1)
            assert int(match.group(2).replace(",", "")) == customers[hovered]
            assert abs(int(match.group(3).replace(",", "")) - revenue[hovered]) <= 0.5
            links.nth(i).click(force=True)
            break
    assert hovered, "no link of a moved flow with more than a page of customers could be hovered"
    page.locator("#flow-list .flow-title").wait_for()
    check_flow_list(page, hovered, customers[hovered])
    selected = page.locator("#flow-table tr.selected")
    assert selected.count() == 1 and selected.locator("button").get_attribute("aria-pressed") == "true"
    assert " → ".join(selected.locator("td").all_inner_texts()[:2]).replace("stayed", "").strip() == hovered

    # the keyboard: Tab reaches the flow buttons, Enter lists the flow
    target = next(name for name, n in customers.items() if name != hovered and n > PAGE
                  and name.split(" → ")[0] != name.split(" → ")[1])
    page.locator("#to").focus()
    for _ in range(60):
        page.keyboard.press("Tab")
        label = page.evaluate("document.activeElement.getAttribute('aria-label') || ''")
        if label.startswith(f"{target}:"):
            break
    else:
        pytest.fail(f"Tab never reached the row of {target}")
    page.keyboard.press("Enter")
    page.wait_for_function("t => document.querySelector('#flow-list .flow-title') && "
                           "document.querySelector('#flow-list .flow-title').textContent.startsWith(t)", arg=target)
    check_flow_list(page, target, customers[target])

    # a click on a row of a small flow: one page, no "More"
    small = next(name for name, n in customers.items() if n <= PAGE and not name.startswith("none"))
    page.locator("#flow-table tr", has=page.locator(f"button[aria-label^='{small}:']")).locator("td.num").first.click()
    page.wait_for_function("t => document.querySelector('#flow-list .flow-title').textContent.startsWith(t)", arg=small)
    check_flow_list(page, small, customers[small])
    # a customer of the list opens its page
    first = page.locator("#flow-list tbody a").first
    href = first.get_attribute("href")
    first.click()
    page.wait_for_url(f"**{href}")


def test_the_kind_switch_and_dates_in_the_url(browser, server, demo_url):
    dates = _dates(demo_url)
    page = browser.open("/movement")
    loaded(page)
    tiers = shown_flows(page)
    page.locator("#kind").select_option("STATUS")
    page.wait_for_function("JSON.parse(document.body.dataset.loaded || '{}').kind === 'STATUS'")
    assert parse_qs(urlparse(page.url).query)["kind"] == ["STATUS"]
    statuses = shown_flows(page)
    assert statuses == expected_flows(demo_url, dates[0], dates[-1], "status")
    assert statuses != tiers
    assert "with a status on" in page.locator("#movement-summary").inner_text()

    # a link with other dates opens on them; picking a date updates the view and the URL
    start, end = dates[2], dates[4]
    page = browser.open(f"/movement?kind=TIER&from={start}&to={end}")
    loaded(page)
    assert (page.locator("#from").input_value(), page.locator("#to").input_value()) == (start, end)
    assert shown_flows(page) == expected_flows(demo_url, start, end, "tier")
    page.locator("#from").select_option(dates[1])
    page.wait_for_function("d => JSON.parse(document.body.dataset.loaded || '{}').from === d", arg=dates[1])
    assert parse_qs(urlparse(page.url).query)["from"] == [dates[1]]
    assert shown_flows(page) == expected_flows(demo_url, dates[1], end, "tier")
    # back goes to the previous view
    page.go_back()
    page.wait_for_function("d => JSON.parse(document.body.dataset.loaded || '{}').from === d", arg=start)
    assert shown_flows(page) == expected_flows(demo_url, start, end, "tier")


def test_from_after_to_shows_the_servers_message(browser, demo_url):
    dates = _dates(demo_url)
    page = browser.open(f"/movement?from={dates[-1]}&to={dates[0]}")
    page.wait_for_function("document.body.dataset.loaded === 'error'")
    error = page.locator("#movement-error .error").inner_text()
    assert "is after 'to'" in error and "BAD_ARGUMENT" in error
    assert page.locator("#from option").count() == len(dates)  # the pickers still offer the evaluated days


def test_a_candidate_rule_set_shows_who_would_move(browser, server, admin_token):
    active = server.graphql("{ ruleSet { source } }", token=admin_token)["ruleSet"]["source"]
    candidate = active.replace("in top 20%", "in top 30%", 1)
    assert candidate != active
    moves = server.graphql("query($s: String!) { previewRules(source: $s) { moves { kind old new customers } } }",
                           token=admin_token, s=candidate)["previewRules"]["moves"]
    expected = Counter({(m["old"] or "none (new)", m["new"] or "none"): m["customers"]
                        for m in moves if m["kind"] == "tier"})
    assert any(old != new for old, new in expected)  # a wider top tier moves somebody

    browser.login()
    page = browser.open("/movement")
    loaded(page)
    page.locator("#mode").select_option("candidate")
    page.wait_for_function("JSON.parse(document.body.dataset.loaded || '{}').mode === 'candidate'")
    assert parse_qs(urlparse(page.url).query)["mode"] == ["candidate"]
    assert page.locator("#from").is_hidden()
    page.locator("#candidate-text").fill(candidate)
    page.locator("#preview").click()
    page.wait_for_function("document.querySelector('#flow-table tbody tr')")
    assert shown_flows(page) == expected
    assert "would change tier under the candidate" in page.locator("#movement-summary").inner_text()
    assert page.locator("#flow-table thead").inner_text().startswith("From (active rules)")

    name, n = max(((f"{o} → {w}", c) for (o, w), c in expected.items() if o != w), key=lambda x: x[1])
    page.locator(f"#flow-table button[aria-label^='{name}:']").click()
    page.locator("#flow-list .flow-title").wait_for()
    check_flow_list(page, name, n)
    browser.screenshot("movement-candidate")

    # the rule editor hands its text over in sessionStorage: the page previews it on arrival
    browser.context.add_init_script(f"sessionStorage.setItem('tiergraph.candidateRules', {json.dumps(candidate)});")
    page = browser.open("/movement?mode=candidate&kind=STATUS")
    page.wait_for_function("document.querySelector('#flow-table tbody tr')")
    assert page.locator("#candidate-text").input_value() == candidate
    assert shown_flows(page) == Counter({(m["old"] or "none (new)", m["new"] or "none"): m["customers"]
                                         for m in moves if m["kind"] == "status"})
