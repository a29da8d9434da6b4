"""The customer page on the demo base: a lost customer's tier and status with their rules, its revenue per month
(checked against plain SQL over its orders), its value at the last evaluations, the history of its tier and status,
its complaints, deliveries and loss episodes; satisfaction, pipeline, payments, spend by category and anniversary as
the API gives them; an unknown id says so."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

CANDIDATES = """{ customers(status: "lost", first: 100) { edges { node {
  id externalId name complaints { totalCount } lossHistory { lostOn } } } } }"""
CUSTOMER = """query($id: String!) {
  customerByExternalId(externalId: $id) {
    id name externalId region owner { name externalId }
    tier { name since explanation } status { name since explanation }
    evaluation { upcoming }
    complaints(first: 100) { totalCount edges { node { externalId open overdue } } }
    deliveries(first: 1) { totalCount }
    lossHistory { lostOn how revenueLost }
  }
  tierChanges(customer: $id, kinds: ["tier", "status"], first: 100) { hasMore events { kind oldValue newValue } }
}"""


def number(text: str) -> float | None:
    text = text.strip().replace(",", "")
    return None if text in ("", "—") else float(text)


def rows_of(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(f"{selector} tbody tr",
                                     "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")


def sql(demo_url: str, statement: str, **params) -> list:
    engine = sa.create_engine(demo_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(statement), params).all()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def lost_customer(server):
    """A customer lost now, with complaints (at most one page of them), a loss history and recorded changes."""
    nodes = [e["node"] for e in server.graphql(CANDIDATES)["customers"]["edges"]]
    nodes = [n for n in nodes if 0 < n["complaints"]["totalCount"] <= 10 and n["lossHistory"]]
    nodes.sort(key=lambda n: -n["complaints"]["totalCount"])
    for node in nodes:
        api = server.graphql(CUSTOMER, id=node["externalId"])
        if api["tierChanges"]["events"] and not api["tierChanges"]["hasMore"]:
            return api
    pytest.fail("the demo base has a lost customer with complaints and recorded changes")


def test_a_lost_customer_as_the_api_and_its_orders_say(browser, server, demo_url, lost_customer):
    c = lost_customer["customerByExternalId"]
    page = browser.open(f"/customers/{c['externalId']}")
    page.wait_for_selector("body[data-ready=true]")  # every section shown
    expect(page.locator("#customer-title")).to_have_text(c["name"])
    facts = page.locator("#customer-facts").inner_text()
    assert c["externalId"] in facts and c["owner"]["name"] in facts and str(c["region"]) in facts

    # tier and status with the rule that gave each, and since when
    assert page.locator("#tier-assignment .pill").inner_text() == c["tier"]["name"]
    assert page.locator("#status-assignment .pill").inner_text() == "lost" == c["status"]["name"]
    status = page.locator("#status-assignment").inner_text()
    assert f"since {c['status']['since']}" in status and c["status"]["explanation"] in status
    assert c["tier"]["explanation"] in page.locator("#tier-assignment").inner_text()
    for line in c["evaluation"]["upcoming"]:
        assert line in page.locator("#upcoming").inner_text()

    # revenue per month: the table (opened with the keyboard) against plain SQL over the orders
    page.focus("#revenue-details summary")
    page.keyboard.press("Enter")
    expect(page.locator("#monthly-revenue")).to_be_visible()
    shown = {r[0]: (number(r[1]), number(r[2])) for r in rows_of(page, "#monthly-revenue")}
    assert len(shown) == 24
    by_month = {m: (n, float(total)) for m, n, total in sql(demo_url, """
        SELECT substr(o.ordered_at, 1, 7) AS month, count(*), sum(o.amount) FROM orders o
        JOIN customers c ON c.id = o.customer_id WHERE c.external_id = :ext GROUP BY month""", ext=c["externalId"])}
    with_orders = sorted(m for m in shown if m in by_month)
    assert len(with_orders) >= 2, "the customer ordered in at least two of the 24 months"
    for month in with_orders[-2:] + with_orders[:1]:
        orders, revenue = shown[month]
        assert orders == by_month[month][0]
        assert abs(revenue - by_month[month][1]) <= 0.5, (month, revenue, by_month[month])
    quiet = [m for m in shown if m not in by_month]
    assert quiet, "a lost customer has months without orders"
    assert shown[quiet[-1]] == (0, 0)

    # the history of changes: as many rows as the API's tierChanges for the customer
    page.wait_for_selector("#changes tbody tr")
    changes = rows_of(page, "#changes")
    events = lost_customer["tierChanges"]["events"]
    assert len(changes) == len(events)
    assert [r[2] for r in changes] == [f"{e['oldValue'] or 'none'} → {e['newValue'] or 'none'}" for e in events]
    assert any(r[1] == "status" and r[2].endswith("→ lost") for r in changes)

    # value at the evaluations: one row per evaluation date shown (up to six)
    page.wait_for_selector("#value-history tbody tr")
    dates = server.graphql("{ evaluationDates }")["evaluationDates"][:6]
    assert [r[0] for r in rows_of(page, "#value-history")] == dates

    # complaints: all of them (one page), the ids and states of the SQL rows
    page.wait_for_selector("#complaints tbody tr")
    expected = {x for (x,) in sql(demo_url, """SELECT p.external_id FROM complaints p JOIN customers c
        ON c.id = p.customer_id WHERE c.external_id = :ext""", ext=c["externalId"])}
    listed = rows_of(page, "#complaints")
    assert {r[0] for r in listed} == expected
    assert page.locator("#complaints .count").inner_text() == f"{len(expected)} of {len(expected)} complaints"
    flags = {e["node"]["externalId"]: e["node"] for e in c["complaints"]["edges"]}
    for row in listed:
        state = row[5]
        assert ("open" in state) == flags[row[0]]["open"]
        assert ("overdue" in state or "late" in state) == flags[row[0]]["overdue"], row

    # deliveries page forward
    deliveries = c["deliveries"]["totalCount"]
    page.wait_for_selector("#deliveries tbody tr")
    assert page.locator("#deliveries .count").inner_text() == f"{min(10, deliveries)} of {deliveries} deliveries"
    if deliveries > 10:
        page.locator("#deliveries").get_by_role("button", name="More").click()
        expect(page.locator("#deliveries .count")).to_have_text(f"{min(20, deliveries)} of {deliveries} deliveries")
        assert len(rows_of(page, "#deliveries")) == min(20, deliveries)

    # loss history
    losses = rows_of(page, "#loss-episodes")
    assert [r[0] for r in losses] == [e["lostOn"] for e in c["lossHistory"]]
    browser.screenshot("customer")


def test_the_global_id_opens_the_same_customer(browser, lost_customer):
    c = lost_customer["customerByExternalId"]
    page = browser.open(f"/customers/{c['id']}")
    expect(page.locator("#customer-title")).to_have_text(c["name"])
    assert c["externalId"] in page.locator("#customer-facts").inner_text()


@pytest.mark.parametrize("unknown", ["NO-SUCH-CUSTOMER", "Q3VzdG9tZXI6Tk9QRQ==", "T3JkZXI6MQ=="])
def test_an_unknown_id_says_not_found(browser, unknown):
    # an external id nobody has; the global id of a customer that does not exist (Customer:NOPE); an order's id
    page = browser.open(f"/customers/{unknown}")
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("h1")).to_have_text("Customer not found")
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"No customer has the id or external id"))
    assert page.locator("#customer-page").is_hidden()


WHOLE = """query($after: String) { customers(first: 100, after: $after) { pageInfo { endCursor hasNextPage }
  edges { node { externalId customerSince nextAnniversary daysUntilAnniversary relationshipYears consent
    satisfaction { answers detractors nps averageNpsScore }
    pipeline { openCount openAmount weightedAmount stalledCount wonAmount12m }
    payment { outstanding overdueCount creditLimit creditUtilisation averageDaysLate }
    spendByCategory { category revenue share } } } } }"""


def _whole_customers(server):
    """The first few hundred demo customers with the whole-customer fields."""
    after, found = None, []
    for _ in range(3):
        page = server.graphql(WHOLE, after=after)["customers"]
        found += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    return found


def _fact(page, section: str, field: str) -> str:
    return page.locator(f"#{section} dd[data-field={field}]").inner_text()


def test_satisfaction_pipeline_payments_spend_and_anniversary_as_the_api_says(browser, server):
    customers = _whole_customers(server)
    full = [c for c in customers if c["satisfaction"]["answers"] and c["satisfaction"]["nps"] is not None
            and c["pipeline"]["openCount"] and c["payment"]["outstanding"] and c["payment"]["creditUtilisation"]
            is not None and c["payment"]["averageDaysLate"] is not None and len(c["spendByCategory"]) >= 2]
    assert full, "the demo base has a customer with surveys, open deals, unpaid invoices, a credit limit and spend"
    c = full[0]
    page = browser.open(f"/customers/{c['externalId']}")
    page.wait_for_selector("body[data-ready=true]")

    s = c["satisfaction"]
    assert number(_fact(page, "satisfaction", "nps")) == pytest.approx(s["nps"], abs=0.05)
    assert number(_fact(page, "satisfaction", "answers")) == s["answers"]
    assert number(_fact(page, "satisfaction", "detractors")) == s["detractors"]
    assert number(_fact(page, "satisfaction", "averageNpsScore")) == pytest.approx(s["averageNpsScore"], abs=0.05)
    p = c["pipeline"]
    assert number(_fact(page, "pipeline", "openCount")) == p["openCount"]
    for field in ("openAmount", "weightedAmount", "wonAmount12m"):
        assert number(_fact(page, "pipeline", field)) == pytest.approx(p[field], abs=0.5), field
    pay = c["payment"]
    assert number(_fact(page, "payments", "outstanding")) == pytest.approx(pay["outstanding"], abs=0.5)
    assert number(_fact(page, "payments", "creditLimit")) == pytest.approx(pay["creditLimit"], abs=0.5)
    assert _fact(page, "payments", "creditUtilisation") == f"{pay['creditUtilisation'] * 100:.1f}%"
    assert number(_fact(page, "payments", "averageDaysLate")) == pytest.approx(pay["averageDaysLate"], abs=0.05)
    overdue = _fact(page, "payments", "overdue")
    assert overdue == "none" if not pay["overdueCount"] else overdue.startswith(f"{pay['overdueCount']} invoice")

    spend = rows_of(page, "#spend-by-category")
    assert [(r[0], number(r[1]), r[4]) for r in spend] == [
        (x["category"] or "no category", pytest.approx(x["revenue"], abs=0.5), f"{x['share'] * 100:.1f}%")
        for x in c["spendByCategory"]]

    assert _fact(page, "anniversary", "customerSince") == c["customerSince"]
    assert _fact(page, "anniversary", "nextAnniversary").startswith(c["nextAnniversary"])
    assert number(_fact(page, "anniversary", "relationshipYears").split()[0]) == c["relationshipYears"]
    assert _fact(page, "anniversary", "consent").startswith("yes" if c["consent"] else "no")
    assert f"customer since {c['customerSince']}" in page.locator("#customer-facts").inner_text()
    browser.screenshot("whole-customer")

    # a customer without survey answers shows the empty state, not zeros
    quiet = next((x for x in customers if not x["satisfaction"]["answers"]), None)
    if quiet is not None:
        page = browser.open(f"/customers/{quiet['externalId']}")
        page.wait_for_selector("body[data-ready=true]")
        expect(page.locator("#satisfaction .empty")).to_have_text("No survey answers in the last 12 months.")
