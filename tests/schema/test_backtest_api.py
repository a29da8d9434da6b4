"""backtestLossRule / backtestLossRules over GraphQL on the hand-checked base of tests/domain/test_backtest.py, on
SQLite and PostgreSQL: the figures, the dates echoed (the period clamped to the data's today), conditions side by
side with aliases or in one list, the active rule set's metrics, and every mistake a typed error."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
import strawberry
from starlette.testclient import TestClient

import schema as schema_package
import server
from domain.models import CustomerEvaluation
from domain.settings import Settings
from schema.backtest import BacktestQueries
from schema.query import Query
from server import create_app
from tests.domain.test_backtest import TODAY, load_base

FIELDS = "condition from to horizonDays declared orderedAgain falseLossRate medianDaysFromLastOrder horizonIncomplete"
ONE = f"""query ($condition: String!, $from: Date!, $to: Date!, $horizon: Int!) {{
  backtestLossRule(condition: $condition, from: $from, to: $to, horizonDays: $horizon) {{ {FIELDS} }} }}"""
MANY = f"""query ($conditions: [String!]!, $from: Date!, $to: Date!, $horizon: Int!) {{
  backtestLossRules(conditions: $conditions, from: $from, to: $to, horizonDays: $horizon) {{ {FIELDS} }} }}"""
QUARTER = dict(**{"from": "2024-04-01"}, to="2024-06-30", horizon=60)


@pytest.fixture
def api(engine, empty_db_url, monkeypatch):
    load_base(engine)
    with engine.begin() as conn:  # one stored evaluation makes its date the data's today
        conn.execute(sa.insert(CustomerEvaluation.__table__), [
            {"customer_id": 1, "as_of": TODAY, "tags": [], "metrics": {}}])
    if not issubclass(Query, BacktestQueries):  # until schema/query.py takes the mixin: the same app with it
        @strawberry.type(name="Query")
        class WiredQuery(Query, BacktestQueries):
            pass

        monkeypatch.setattr(schema_package, "Query", WiredQuery)
        monkeypatch.setattr(server, "build_schema", schema_package.build_schema.__wrapped__)
    app = create_app(Settings(database_url=empty_db_url, webhooks=False), engine=engine)
    with TestClient(app) as http:
        yield lambda query, **variables: http.post("/graphql", json={"query": query, "variables": variables}).json()


def data(body):
    assert "errors" not in body, body["errors"]
    return body["data"]


def error(body) -> dict:
    assert body.get("data") is None, body
    (e,) = body["errors"]
    assert e["message"] != "Internal server error.", e
    return {"message": e["message"], **e["extensions"]}


def test_one_condition(api):
    got = data(api(ONE, condition="no order 90d", **QUARTER))["backtestLossRule"]
    # tests/domain/test_backtest.py: B, C, D, E, G declared; B and G back within 60 days; D's horizon open
    assert got == {"condition": "no order 90d", "from": "2024-04-01", "to": "2024-06-30", "horizonDays": 60,
                   "declared": 5, "orderedAgain": 2, "falseLossRate": pytest.approx(0.4),
                   "medianDaysFromLastOrder": 90.0, "horizonIncomplete": 1}


def test_the_period_is_clamped_to_the_data_s_today_and_echoed(api):
    got = data(api(ONE, condition="no order 90d", **{**QUARTER, "to": "2025-12-31"}))["backtestLossRule"]
    assert (got["from"], got["to"], got["declared"], got["horizonIncomplete"]) == ("2024-04-01", "2024-07-31", 8, 4)
    # as in every loss report: a period that starts after the data's today is the client's mistake
    e = error(api(ONE, condition="no order 90d", **{**QUARTER, "from": "2024-09-01", "to": "2024-12-31"}))
    assert (e["code"], e["argument"]) == ("BAD_ARGUMENT", "from")
    assert "2024-07-31" in e["message"]


def test_side_by_side_with_aliases_and_in_a_list(api):
    conditions = ["no order 90d", "no order 90d unless seasonal", "no order 90d and revenue_12m > 15"]
    aliased = """query ($from: Date!, $to: Date!, $horizon: Int!) {
      plain: backtestLossRule(condition: "no order 90d", from: $from, to: $to, horizonDays: $horizon) {
        declared orderedAgain }
      seasonal: backtestLossRule(condition: "no order 90d unless seasonal", from: $from, to: $to,
                                 horizonDays: $horizon) { declared orderedAgain } }"""
    got = data(api(aliased, **QUARTER))
    assert got == {"plain": {"declared": 5, "orderedAgain": 2}, "seasonal": {"declared": 4, "orderedAgain": 1}}
    listed = data(api(MANY, conditions=conditions, **QUARTER))["backtestLossRules"]
    assert [x["condition"] for x in listed] == conditions
    # revenue_12m is a metric of the active (default) rule set: only D had two orders (20) in its last 12 months
    assert [(x["declared"], x["orderedAgain"], x["horizonIncomplete"]) for x in listed] == \
        [(5, 2, 1), (4, 1, 1), (1, 0, 1)]
    assert listed[2]["falseLossRate"] == 0.0


@pytest.mark.parametrize("count", [0, 11])
def test_one_to_ten_conditions(api, count):
    e = error(api(MANY, conditions=["no order 90d"] * count, **QUARTER))
    assert (e["code"], e["argument"]) == ("BAD_ARGUMENT", "conditions")
    assert "1 to 10" in e["message"]


def test_ten_conditions_are_fine(api):
    assert len(data(api(MANY, conditions=[f"no order {d}d" for d in range(60, 160, 10)], **QUARTER))
               ["backtestLossRules"]) == 10


def test_a_bad_condition_points_at_its_mistake(api):
    e = error(api(ONE, condition="no order 90d and revenue_13m > 5", **QUARTER))
    assert (e["code"], e["argument"]) == ("RULE_ERROR", "condition")
    (d,) = e["diagnostics"]
    assert (d["line"], d["column"]) == (1, 18)
    assert "revenue_13m" in d["message"] and "^" in d["snippet"]
    e = error(api(MANY, conditions=["no order 90d", "no order 90"], **QUARTER))
    assert (e["code"], e["argument"], e["index"]) == ("RULE_ERROR", "conditions", 1)
    assert e["message"].startswith("invalid condition 2:")


def test_days_since_is_a_bad_argument(api):
    e = error(api(ONE, condition="days since last order > 89", **QUARTER))
    assert (e["code"], e["argument"]) == ("BAD_ARGUMENT", "condition")
    assert "no order 90d" in e["message"]
    e = error(api(MANY, conditions=["no order 90d", "days since last order > 89"], **QUARTER))
    assert (e["code"], e["index"]) == ("BAD_ARGUMENT", 1)


@pytest.mark.parametrize("change, argument", [
    ({"horizon": 0}, "horizonDays"), ({"horizon": 3651}, "horizonDays"), ({"horizon": -5}, "horizonDays"),
    ({"from": "2024-07-01"}, "from"), ({"from": "1899-12-31"}, "from"), ({"to": "3000-01-01"}, "to"),
])
def test_bad_periods_and_horizons(api, change, argument):
    e = error(api(ONE, condition="no order 90d", **{**QUARTER, **change}))
    assert (e["code"], e["argument"]) == ("BAD_ARGUMENT", argument)


def test_the_horizon_s_limits_are_accepted(api):
    for horizon in (1, 3650):
        got = data(api(ONE, condition="no order 90d", **{**QUARTER, "horizon": horizon}))["backtestLossRule"]
        assert got["horizonDays"] == horizon and got["declared"] == 5
    got = data(api(ONE, condition="no order 90d", **{**QUARTER, "horizon": 1}))["backtestLossRule"]
    assert (got["orderedAgain"], got["horizonIncomplete"]) == (0, 0)
    got = data(api(ONE, condition="no order 90d", **{**QUARTER, "horizon": 3650}))["backtestLossRule"]
    assert (got["orderedAgain"], got["horizonIncomplete"]) == (3, 5)  # C is back after 61 days too
