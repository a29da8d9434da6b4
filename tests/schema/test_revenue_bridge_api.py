"""revenueBridge over GraphQL on a hand-computed base, on SQLite and PostgreSQL: the categories, their customers
paged biggest effect first, the stopped split by the loss history at the month's end (C3 blocked in March; C4's
last order 49 days before the month's end is not lost under the default rules), and typed errors for a bad month,
cursor or page size."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from domain.models import Customer, Order
from domain.settings import Settings
from server import create_app

D = date.fromisoformat
# external id: (blocked_from, [(day, amount, margin or None)])
BASE = {
    "C1": (None, [("2024-03-10", 100.0, 30.0)]),  # NEW 100, margin 30
    "C2": (None, [("2024-02-10", 50.0, 10.0), ("2024-03-10", 80.0, 20.0)]),  # EXPANSION 30, margin 10
    "C3": (D("2024-03-15"), [("2024-02-10", 70.0, 20.0)]),  # blocked in March: STOPPED_LOST 70, margin 20
    "C4": (None, [("2024-02-11", 40.0, None)]),  # STOPPED_QUIET 40, margin unknown
    "C5": (None, [("2024-01-05", 25.0, 5.0), ("2024-03-02", 25.0, 5.0)]),  # RETURNING 25, margin 5
    "C6": (None, [("2024-02-03", 60.0, 15.0), ("2024-03-03", 20.0, 5.0)]),  # CONTRACTION 40, margin 10
    "C7": (D("2024-04-02"), [("2024-03-20", 100.0, 40.0)]),  # NEW 100 (ties with C1), margin 40; blocked later
}
# March: 100 + 80 + 25 + 20 + 100 = 325; February: 50 + 70 + 40 + 60 = 220; change +105
# NEW 200 + RETURNING 25 + EXPANSION 30 - CONTRACTION 40 - STOPPED_LOST 70 - STOPPED_QUIET 40 = 105
EXPECTED = [  # category, customers, revenue, margin, customers in order (external ids)
    ("NEW", 2, 200.0, 70.0, ["C1", "C7"]), ("RETURNING", 1, 25.0, 5.0, ["C5"]),
    ("EXPANSION", 1, 30.0, 10.0, ["C2"]), ("CONTRACTION", 1, 40.0, 10.0, ["C6"]),
    ("STOPPED_LOST", 1, 70.0, 20.0, ["C3"]), ("STOPPED_QUIET", 1, 40.0, None, ["C4"]),
]

BRIDGE = """query ($month: String!, $compareTo: BridgeComparison! = PREVIOUS_MONTH, $first: Int, $after: String,
                $only: [BridgeCategory!]) {
  revenueBridge(month: $month, compareTo: $compareTo) {
    month baseMonth total baseTotal unchanged
    categories(only: $only) { category customers revenue margin
      customerList(first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { cursor node { revenue baseRevenue effect customer { externalId name } } } } } } }"""


@pytest.fixture
def bridge_client(engine, empty_db_url):
    customers = Customer.__table__
    with engine.begin() as c:
        c.execute(sa.insert(customers), [
            {"id": i, "external_id": ext, "name": f"customer {ext}", "seasonal": False, "blocked_from": blocked,
             "created_at": date(2020, 1, 1), "attributes": {}}
            for i, (ext, (blocked, _)) in enumerate(BASE.items(), start=1)])
        c.execute(sa.insert(Order.__table__), [
            {"external_id": f"O-{ext}-{day}", "customer_id": i, "ordered_at": D(day), "amount": amount,
             "margin": margin, "line_count": 1}
            for i, (ext, (_, orders)) in enumerate(BASE.items(), start=1) for day, amount, margin in orders])
    app = create_app(Settings(database_url=empty_db_url, webhooks=False), engine=engine)
    with TestClient(app) as http:
        yield lambda query, **variables: http.post("/graphql", json={"query": query, "variables": variables}).json()


def data(body):
    assert "errors" not in body, body["errors"]
    return body["data"]


def error_code(body) -> str:
    assert body.get("data") is None or body["data"].get("revenueBridge") is None, body
    (error,) = body["errors"]
    return error["extensions"]["code"]


def test_every_category_with_its_customers(bridge_client):
    b = data(bridge_client(BRIDGE, month="2024-03"))["revenueBridge"]
    assert (b["month"], b["baseMonth"], b["unchanged"]) == ("2024-03", "2024-02", 0)
    assert b["total"] == pytest.approx(325.0) and b["baseTotal"] == pytest.approx(220.0)
    assert [k["category"] for k in b["categories"]] == [e[0] for e in EXPECTED]
    for k, (category, customers, revenue, margin, members) in zip(b["categories"], EXPECTED):
        assert (k["customers"], k["customerList"]["totalCount"]) == (customers, customers), category
        assert k["revenue"] == pytest.approx(revenue), category
        assert k["margin"] == (None if margin is None else pytest.approx(margin)), category
        assert [e["node"]["customer"]["externalId"] for e in k["customerList"]["edges"]] == members, category
    by_category = {k["category"]: k for k in b["categories"]}
    c2 = by_category["EXPANSION"]["customerList"]["edges"][0]["node"]
    assert (c2["revenue"], c2["baseRevenue"], c2["effect"]) == (80.0, 50.0, 30.0)
    c3 = by_category["STOPPED_LOST"]["customerList"]["edges"][0]["node"]
    assert (c3["revenue"], c3["baseRevenue"], c3["effect"], c3["customer"]["name"]) == (0.0, 70.0, 70.0,
                                                                                       "customer C3")


def test_same_month_last_year(bridge_client):
    b = data(bridge_client(BRIDGE, month="2024-03", compareTo="SAME_MONTH_LAST_YEAR"))["revenueBridge"]
    assert (b["baseMonth"], b["total"], b["baseTotal"]) == ("2023-03", 325.0, 0.0)
    found = {k["category"]: (k["customers"], k["revenue"]) for k in b["categories"]}
    # nobody ordered in March 2023: C1 and C7 are new, C2, C5 and C6 ordered before March 2024
    assert found == {"NEW": (2, 200.0), "RETURNING": (3, 80.0 + 25.0 + 20.0), "EXPANSION": (0, 0.0),
                     "CONTRACTION": (0, 0.0), "STOPPED_LOST": (0, 0.0), "STOPPED_QUIET": (0, 0.0)}


def test_a_category_s_customers_page_by_cursor(bridge_client):
    def new_page(after=None):
        b = data(bridge_client(BRIDGE, month="2024-03", first=1, after=after, only=["NEW"]))["revenueBridge"]
        assert [k["category"] for k in b["categories"]] == ["NEW"]
        return b["categories"][0]["customerList"]

    first = new_page()
    assert [e["node"]["customer"]["externalId"] for e in first["edges"]] == ["C1"]  # 100 each: lower id first
    assert first["pageInfo"]["hasNextPage"] is True
    second = new_page(first["pageInfo"]["endCursor"])
    assert [e["node"]["customer"]["externalId"] for e in second["edges"]] == ["C7"]
    assert second["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize("month", ["2024-3", "2024-13", "2024-00", "1899-12", "3000-01", "24-03", "2024-03-01",
                                   "", " 2024-03", "2024-03\n", "２０２４-03", "2024/03", "march"])
def test_a_bad_month_is_a_bad_argument(bridge_client, month):
    body = bridge_client(BRIDGE, month=month)
    assert error_code(body) == "BAD_ARGUMENT"
    assert body["errors"][0]["extensions"]["argument"] == "month"
    assert "YYYY-MM" in body["errors"][0]["message"]


def test_the_calendar_s_ends_are_months_too(bridge_client):
    assert data(bridge_client(BRIDGE, month="1900-01"))["revenueBridge"]["baseMonth"] == "1899-12"
    assert data(bridge_client(BRIDGE, month="2999-12"))["revenueBridge"]["total"] == 0.0


def test_bad_cursors_and_page_sizes_are_typed_errors(bridge_client):
    one = """query ($after: String, $first: Int) { revenueBridge(month: "2024-03") {
      categories { category customerList(first: $first, after: $after) { pageInfo { endCursor } } } } }"""
    cats = data(bridge_client(one, first=1))["revenueBridge"]["categories"]
    new_cursor = cats[0]["customerList"]["pageInfo"]["endCursor"]
    # a NEW cursor given to every category: the NEW list takes it, the next one (RETURNING) refuses it
    body = bridge_client(one, first=1, after=new_cursor)
    assert error_code_of_all(body) == {"BAD_CURSOR"}
    assert "another list ('revenue_bridge:NEW'), not of 'revenue_bridge:RETURNING'" in body["errors"][0]["message"]
    assert error_code_of_all(bridge_client(one, after="not-a-cursor")) == {"BAD_CURSOR"}
    assert error_code_of_all(bridge_client(one, first=101)) == {"BAD_ARGUMENT"}
    unknown = bridge_client('{ revenueBridge(month: "2024-03", compareTo: LAST_WEEK) { total } }')
    assert error_code_of_all(unknown) == {"BAD_QUERY"}


def error_code_of_all(body) -> set[str]:
    return {e["extensions"]["code"] for e in body["errors"]}
