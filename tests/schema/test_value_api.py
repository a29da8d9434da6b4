"""Customer value over GraphQL on a generated demo base: scores, pyramid, ARPU, top customers, model fit.

The demo base is built once per module and database (tests here only read it): generating, importing, scoring
and evaluating it took 6-16 s, and each test used to rebuild it. Tests that change data get their own base.
"""
from collections import Counter
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from domain.db import make_engine, migrate
from domain.demo import generate_demo
from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.models import Order
from domain.settings import DEFAULT_RULES, Settings
from domain.tiers_in_force import tiers_on
from domain.value.batch import run_value_batch
from rules.compiler import load_rules_file
from server import create_app
from tests_support import GRAPH_FIXTURE, require_cdnow

AS_OF = date(2026, 6, 30)
EARLIER_VALUE_RUN = date(2025, 12, 31)  # a value run before the latest: its model answers value(asOf) after it
MONTH_ENDS = (date(2026, 4, 30), date(2026, 5, 31))  # evaluations before AS_OF's: ARPU's tiers in force
CDNOW_AS_OF = date(1998, 6, 30)


def _fresh_engine(kind: str, tmp_path_factory, request):
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('value_api') / 'tiergraph.db'}"
    else:
        url = request.getfixturevalue("pg_server").new_database()
    engine = make_engine(url)
    migrate(engine)
    return engine, url


class Api:
    def __init__(self, http: TestClient):
        self.http = http

    def __call__(self, query: str, **variables) -> dict:
        body = self.http.post("/graphql", json={"query": query, "variables": variables}).json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def error(self, query: str, **variables) -> dict:
        body = self.http.post("/graphql", json={"query": query, "variables": variables}).json()
        assert body.get("errors"), body
        return body["errors"][0]


def _serve(engine, url):
    return TestClient(create_app(Settings(database_url=url, webhooks=False), engine=engine))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def valued(request, tmp_path_factory):
    """The demo base, scored and evaluated as of AS_OF (after an earlier value run and month-end evaluations)."""
    engine, url = _fresh_engine(request.param, tmp_path_factory, request)
    demo = tmp_path_factory.mktemp("demo")
    generate_demo(demo, seed=5, customers=500, until=AS_OF)
    import_directory(engine, demo)
    run_value_batch(engine, EARLIER_VALUE_RUN)
    run_value_batch(engine, AS_OF)
    rules = load_rules_file(DEFAULT_RULES)
    for day in (*MONTH_ENDS, AS_OF):
        run_batch(engine, rules, day)
    with _serve(engine, url) as http:
        yield Api(http), engine
    engine.dispose()


def test_customer_value_fields_match_the_stored_scores(valued):
    data, engine = valued
    page = data("""{ customers(first: 100) { edges { node { externalId value { asOf revenue12m margin12m
        serviceCost12m profit12m negativeValue growth rfm { r f m cell } clv pAlive expectedOrders(days: 90)
        seasonalAuto usualGapDays groupRevenue12m modelStatus modelUnavailableReason } } } } }""")["customers"]["edges"]
    with engine.connect() as conn:
        stored = {r.external_id: r for r in conn.execute(sa.text(
            "select c.external_id, s.* from customer_scores s join customers c on c.id = s.customer_id"))}
    checked = 0
    for edge in page:
        node, row = edge["node"], stored[edge["node"]["externalId"]]
        value = node["value"]
        assert value["asOf"] == AS_OF.isoformat()
        assert value["revenue12m"] == pytest.approx(row.revenue_12m)
        assert value["modelStatus"] == "FITTED"
        assert (value["clv"] is None) == (value["modelUnavailableReason"] is not None)
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
        to: "2026-06-30", first: 10) { id externalId revenue previousRevenue growth from to
        customer { externalId region } } }"""
    by_revenue = data(q, by="REVENUE")["topCustomers"]
    revenues = [c["revenue"] for c in by_revenue]
    assert revenues == sorted(revenues, reverse=True) and len(revenues) == 10
    assert all(c["externalId"] == c["customer"]["externalId"] for c in by_revenue)
    assert {(c["from"], c["to"]) for c in by_revenue} == {("2026-04-01", "2026-06-30")}
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
    arpu = data('{ arpu(months: 3, asOf: "2026-06-30") { month tier customers revenue arpu asOf } }')["arpu"]
    assert {a["month"] for a in arpu} == {"2026-04-01", "2026-05-01", "2026-06-01"}
    assert {a["asOf"] for a in arpu} == {"2026-06-30"}
    for a in arpu:
        if a["customers"]:
            assert a["arpu"] == pytest.approx(a["revenue"] / a["customers"])
    model = data("{ valueModel { asOf model customers status reason notes fit } }")["valueModel"]
    assert model["model"] == "bgnbd" and model["fit"]["status"] == "fitted"
    assert model["status"] == "FITTED" and model["reason"] is None and isinstance(model["notes"], list)
    errors = [model["fit"]["purchases"][f"se_{p}"] for p in ("r", "alpha", "a", "b")]
    if any(e is None for e in errors):
        # a fit at the edge of the parameter space (no dropout seen: a, b huge) has no positive definite Hessian;
        # then every standard error is unknown and the notes say why, never a made-up number
        assert errors == [None] * 4
        assert any("not positive definite" in note for note in model["notes"]), model["notes"]
    else:
        assert all(e > 0 for e in errors)
    assert model["fit"]["holdout"]["status"] == "checked"


def test_arpu_counts_each_month_in_the_tiers_in_force_then(valued):
    """Regression (defect 7): every past month used today's tiers."""
    data, engine = valued
    rows = data('{ arpu(months: 3, asOf: "2026-06-30") { month lastDay tier evaluationAsOf customers } }')["arpu"]
    for end in (*MONTH_ENDS, AS_OF):
        month = [r for r in rows if r["lastDay"] == end.isoformat()]
        assert {r["evaluationAsOf"] for r in month} == {end.isoformat()}
        assert {r["tier"]: r["customers"] for r in month} == dict(Counter(tiers_on(engine, end).values()))
    april = {r["tier"]: r["customers"] for r in rows if r["month"] == "2026-04-01"}
    today = {r["tier"]: r["customers"] for r in rows if r["month"] == "2026-06-01"}
    assert april != today  # customers moved between April and June; April counts them where they were then


def test_arpu_leaves_out_the_current_month_unless_asked(valued):
    data, _ = valued
    q = 'query($c: Boolean!) { arpu(months: 2, asOf: "2026-06-12", includeCurrentMonth: $c) { month lastDay } }'
    assert {r["month"] for r in data(q, c=False)["arpu"]} == {"2026-04-01", "2026-05-01"}
    current = data(q, c=True)["arpu"]
    assert {r["month"] for r in current} == {"2026-05-01", "2026-06-01"}
    assert max(r["lastDay"] for r in current) == "2026-06-12"


def test_dates_left_out_are_the_latest_evaluations(valued):
    data, _ = valued
    arpu = data("{ arpu(months: 1) { month asOf } }")["arpu"]
    assert {(a["month"], a["asOf"]) for a in arpu} == {("2026-06-01", AS_OF.isoformat())}
    top = data("{ topCustomers(first: 3) { from to } }")["topCustomers"]
    assert top and {(t["from"], t["to"]) for t in top} == {((AS_OF - timedelta(days=89)).isoformat(),
                                                            AS_OF.isoformat())}


def test_value_as_of_any_date(valued):
    data, engine = valued
    q = """query($d: Date) { customers(first: 40) { edges { node { value(asOf: $d) { asOf revenue12m profit12m
        growth clv pAlive expectedOrders(days: 90) usualGapDays rfm { r cell frequency } groupRevenue12m
        modelStatus } } } } }"""
    stored = [e["node"]["value"] for e in data(q, d=None)["customers"]["edges"]]
    same_day = [e["node"]["value"] for e in data(q, d=AS_OF.isoformat())["customers"]["edges"]]
    assert same_day == stored  # the stored run's own date: the stored scores
    statements: list[str] = []
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        earlier = [e["node"]["value"] for e in data(q, d="2026-03-31")["customers"]["edges"]]
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) <= 15, len(statements)  # 40 customers' records load together, not one by one
    assert {v["asOf"] for v in earlier} == {"2026-03-31"}
    assert all(v["rfm"]["r"] is None and v["groupRevenue12m"] is None for v in earlier)  # need the whole base
    assert any(a["revenue12m"] != b["revenue12m"] for a, b in zip(stored, earlier))
    # the model of the value run as of 2025-12-31 applies (fitted on what was known then)
    assert {v["modelStatus"] for v in earlier} == {"FITTED"}
    assert any(v["clv"] is not None and v["pAlive"] is not None for v in earlier)


def test_value_as_of_uses_no_model_fitted_on_later_orders(valued):
    """Regression (defect 2 for value(asOf)): before any value run, P(alive) and CLV came from the latest model,
    fitted on orders after asOf. Now they are null, and the reason says so."""
    data, _ = valued
    q = """{ customers(first: 20) { edges { node { value(asOf: "2025-11-30") { clv pAlive expectedSpend
        modelStatus modelUnavailableReason } } } } }"""
    values = [e["node"]["value"] for e in data(q)["customers"]["edges"]]
    assert all(v["clv"] is None and v["pAlive"] is None for v in values)
    assert {v["modelStatus"] for v in values} == {"NO_RUN"}
    assert all("no value run as of 2025-11-30" in v["modelUnavailableReason"] for v in values)


@pytest.mark.parametrize("query", [
    '{ topCustomers(to: "9999-12-31") { revenue } }',
    '{ topCustomers(from: "0001-01-01", to: "2026-01-01") { revenue } }',
    '{ arpu(asOf: "0001-01-01") { month } }',
    '{ arpu(asOf: "9999-12-31") { month } }',
    '{ customers(first: 1) { edges { node { value(asOf: "9999-12-31") { clv } } } } }',
    '{ customers(first: 1) { edges { node { value(asOf: "0001-01-01") { clv } } } } }',
    '{ topCustomers(first: 1000) { revenue } }',
])
def test_bad_value_arguments(valued, query):
    data, _ = valued
    error = data.error(query)
    assert error["extensions"]["code"] == "BAD_ARGUMENT" and error["message"] != "Internal server error."


@pytest.fixture
def small_base(engine, empty_db_url):
    """The small customer graph, scored as of 2024-12-31."""
    import_directory(engine, GRAPH_FIXTURE)
    run_value_batch(engine, date(2024, 12, 31))
    with _serve(engine, empty_db_url) as http:
        yield Api(http), engine


def test_value_as_of_sees_no_record_after_it(small_base):
    data, engine = small_base
    q = """{ customers(first: 50) { edges { node { externalId value(asOf: "2024-06-30") { revenue12m
        serviceCost12m rfm { recencyDays frequency } growth usualGapDays } } } } }"""
    before = data(q)
    with engine.begin() as conn:  # a big order the day after asOf for every customer
        ids = [r.id for r in conn.execute(sa.text("select id from customers"))]
        conn.execute(sa.insert(Order.__table__), [
            {"external_id": f"LATE{i}", "customer_id": i, "ordered_at": date(2024, 7, 1), "amount": 1e6,
             "margin": 1e5, "cost_of_goods": 9e5, "line_count": 1} for i in ids])
    assert data(q) == before


def test_no_fitted_model_says_why(small_base):
    data, engine = small_base
    run_value_batch(engine, date(2024, 12, 31), min_repeat_buyers=10_000)  # a base too small for the model
    model = data("{ valueModel { status reason } }")["valueModel"]
    assert model["status"] == "NOT_FITTED" and "too few repeat buyers" in model["reason"]
    values = [e["node"]["value"] for e in data("""{ customers(first: 5) { edges { node { value { clv pAlive
        modelStatus modelUnavailableReason } } } } }""")["customers"]["edges"]]
    assert values and all(v["clv"] is None and v["modelStatus"] == "NOT_FITTED" for v in values)
    assert all("too few repeat buyers" in v["modelUnavailableReason"] for v in values)


def test_cdnow_without_a_date_uses_the_data_s_now(engine, empty_db_url):
    """Regression (defect 5): on CDNOW (orders end in 1998) arpu and topCustomers without a date answered zeros
    for the calendar's today."""
    import_directory(engine, require_cdnow())
    run_batch(engine, load_rules_file(DEFAULT_RULES), CDNOW_AS_OF)
    with _serve(engine, empty_db_url) as http:
        data = Api(http)
        arpu = data("{ arpu(months: 3) { month asOf revenue customers } }")["arpu"]
        assert {a["asOf"] for a in arpu} == {CDNOW_AS_OF.isoformat()}
        assert {a["month"] for a in arpu} == {"1998-04-01", "1998-05-01", "1998-06-01"}
        assert sum(a["revenue"] for a in arpu) > 0
        top = data("{ topCustomers(first: 5) { revenue to } }")["topCustomers"]
        assert top and top[0]["revenue"] > 0 and top[0]["to"] == CDNOW_AS_OF.isoformat()
