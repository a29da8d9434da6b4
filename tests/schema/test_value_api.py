"""Customer value over GraphQL on a generated demo base: scores, pyramid, ARPU, top customers, model fit."""
from datetime import date

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from domain.demo import generate_demo
from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.settings import DEFAULT_RULES, Settings
from domain.value.batch import run_value_batch
from rules.compiler import load_rules_file
from server import create_app

AS_OF = date(2026, 6, 30)


@pytest.fixture
def valued(engine, tmp_path, empty_db_url):
    generate_demo(tmp_path / "demo", seed=5, customers=500, until=AS_OF)
    import_directory(engine, tmp_path / "demo")
    run_value_batch(engine, AS_OF)
    run_batch(engine, load_rules_file(DEFAULT_RULES), AS_OF)
    with TestClient(create_app(Settings(database_url=empty_db_url, webhooks=False), engine=engine)) as http:
        def data(query, **variables):
            body = http.post("/graphql", json={"query": query, "variables": variables}).json()
            assert "errors" not in body, body["errors"]
            return body["data"]
        data.http = http
        yield data, engine


def test_customer_value_fields_match_the_stored_scores(valued):
    data, engine = valued
    page = data("""{ customers(first: 100) { edges { node { externalId value { asOf revenue12m margin12m
        serviceCost12m profit12m negativeValue growth rfm { r f m cell } clv pAlive expectedOrders(days: 90)
        seasonalAuto usualGapDays groupRevenue12m } } } } }""")["customers"]["edges"]
    with engine.connect() as conn:
        stored = {r.external_id: r for r in conn.execute(sa.text(
            "select c.external_id, s.* from customer_scores s join customers c on c.id = s.customer_id"))}
    checked = 0
    for edge in page:
        node, row = edge["node"], stored[edge["node"]["externalId"]]
        value = node["value"]
        assert value["asOf"] == AS_OF.isoformat()
        assert value["revenue12m"] == pytest.approx(row.revenue_12m)
        if value["profit12m"] is not None:
            assert value["negativeValue"] == (value["profit12m"] < 0)
            assert value["profit12m"] == pytest.approx(value["margin12m"] - value["serviceCost12m"])
        if row.expected_orders_90d is not None:
            # the API predicts any horizon from the stored model inputs; at 90 days it must equal the batch
            assert value["expectedOrders"] == pytest.approx(row.expected_orders_90d, rel=1e-6)
            checked += 1
        if value["rfm"]["cell"] is not None:
            assert value["rfm"]["cell"] == f'{value["rfm"]["r"]}-{value["rfm"]["f"]}-{value["rfm"]["m"]}'
    assert checked > 50


def test_expected_orders_grow_with_the_horizon(valued):
    data, _ = valued
    edges = data("""{ customers(first: 30) { edges { node { value { a: expectedOrders(days: 30)
        b: expectedOrders(days: 365) } } } } }""")["customers"]["edges"]
    pairs = [(e["node"]["value"]["a"], e["node"]["value"]["b"]) for e in edges if e["node"]["value"]["a"] is not None]
    assert pairs and all(b >= a for a, b in pairs)


def test_value_pyramid_per_tier(valued):
    data, _ = valued
    rows = data("""{ valueSummary(includeTotal: true) { tier customers shareOfCustomers revenue profit
        shareOfProfit asOf } }""")["valueSummary"]
    *per_tier, total = rows
    assert total["tier"] == "total" and total["asOf"] == AS_OF.isoformat()
    assert [t["tier"] for t in per_tier] == ["key", "important", "general", "maintain"]  # rule order
    tiers = {t["tier"]: t for t in per_tier}
    assert sum(t["customers"] for t in per_tier) == total["customers"] == 500
    assert sum(t["shareOfCustomers"] for t in per_tier) == pytest.approx(1.0)
    assert sum(t["revenue"] for t in per_tier) == pytest.approx(total["revenue"])
    assert tiers["key"]["shareOfCustomers"] == pytest.approx(0.2, abs=0.02)
    # the key 20% hold far more than 20% of the profit: the inverted profit pyramid
    assert tiers["key"]["shareOfProfit"] > 0.5
    assert len(data("{ valueSummary { tier } }")["valueSummary"]) == 4


def test_top_customers_by_growth_revenue_and_region(valued):
    data, _ = valued
    q = """query($by: TopBy!, $region: String) { topCustomers(by: $by, region: $region, from: "2026-04-01",
        to: "2026-06-30", first: 10) { id externalId revenue previousRevenue growth customer { externalId region } } }"""
    by_revenue = data(q, by="REVENUE")["topCustomers"]
    revenues = [c["revenue"] for c in by_revenue]
    assert revenues == sorted(revenues, reverse=True) and len(revenues) == 10
    assert all(c["externalId"] == c["customer"]["externalId"] for c in by_revenue)
    node = data("query($id: ID!) { node(id: $id) { ... on Customer { externalId } } }", id=by_revenue[0]["id"])
    assert node["node"]["externalId"] == by_revenue[0]["externalId"]
    by_growth = data(q, by="GROWTH")["topCustomers"]
    growths = [c["growth"] for c in by_growth]
    assert growths == sorted(growths, reverse=True)
    assert all(c["growth"] == pytest.approx(c["revenue"] / c["previousRevenue"] - 1) for c in by_growth)
    west = data(q, by="REVENUE", region="west")["topCustomers"]
    assert west and {c["customer"]["region"] for c in west} == {"west"}


def test_arpu_and_model_fit(valued):
    data, _ = valued
    arpu = data('{ arpu(months: 3, asOf: "2026-06-30") { month tier customers revenue arpu } }')["arpu"]
    assert {a["month"] for a in arpu} == {"2026-04-01", "2026-05-01", "2026-06-01"}
    for a in arpu:
        if a["customers"]:
            assert a["arpu"] == pytest.approx(a["revenue"] / a["customers"])
    model = data("{ valueModel { asOf model customers fit } }")["valueModel"]
    assert model["model"] == "bgnbd" and model["fit"]["status"] == "fitted"
    assert all(model["fit"]["purchases"][f"se_{p}"] > 0 for p in ("r", "alpha", "a", "b"))
    assert model["fit"]["holdout"]["status"] == "checked"


def test_value_as_of_any_date(valued):
    data, _ = valued
    q = """query($d: Date) { customers(first: 40) { edges { node { value(asOf: $d) { asOf revenue12m profit12m
        growth clv pAlive expectedOrders(days: 90) usualGapDays rfm { r cell frequency } groupRevenue12m } } } } }"""
    stored = [e["node"]["value"] for e in data(q, d=None)["customers"]["edges"]]
    same_day = [e["node"]["value"] for e in data(q, d=AS_OF.isoformat())["customers"]["edges"]]
    assert same_day == stored  # the stored run's own date: the stored scores
    statements: list[str] = []
    engine = valued[1]
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    earlier = [e["node"]["value"] for e in data(q, d="2025-12-31")["customers"]["edges"]]
    assert len(statements) <= 15, len(statements)  # 40 customers' records load together, not one by one
    assert {v["asOf"] for v in earlier} == {"2025-12-31"}
    assert all(v["rfm"]["r"] is None and v["groupRevenue12m"] is None for v in earlier)  # need the whole base
    assert any(a["revenue12m"] != b["revenue12m"] for a, b in zip(stored, earlier))
    assert any(v["clv"] is not None and v["pAlive"] is not None for v in earlier)


def test_bad_value_arguments(valued):
    data, _ = valued
    bad = data.http.post("/graphql", json={"query": '{ topCustomers(first: 1000) { revenue } }'}).json()
    assert bad["errors"][0]["extensions"]["code"] == "BAD_ARGUMENT"
