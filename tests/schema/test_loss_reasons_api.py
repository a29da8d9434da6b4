"""lossReasons and winBack over GraphQL on the hand-built bases of tests/domain/test_loss_reasons.py and
test_win_back.py, on SQLite and PostgreSQL: the answers, the period echoed (`to` clamped at the data's today), and
typed errors for bad dates, from > to and a loss rule whose history cannot be derived."""
from __future__ import annotations

from contextlib import ExitStack
from datetime import date

import pytest
import strawberry
from starlette.testclient import TestClient

import schema as schema_package
import server
from domain.evaluation import run_batch
from domain.settings import Settings
from rules.compiler import compile_rules
from schema.loss_reasons import LossReasonQueries
from schema.query import Query
from server import create_app
from tests.domain.test_loss_reasons import (EXPECTED, LOSS_RULES, LOST_PEOPLE, OUTSIDE_PEOPLE, RETAINED_PEOPLE,
                                            insert_people)
from tests.domain.test_win_back import PEOPLE as WIN_BACK_PEOPLE
from tests.domain.test_win_back import REPS

TODAY = date(2024, 9, 30)  # the data's today: the one evaluation's as_of
REASONS = """query ($from: Date, $to: Date) {
  lossReasons(from: $from, to: $to) { from to lostCustomers retainedCustomers
    reasons { reason kind value lostShare retainedShare lostCount retainedCount ratio summary } } }"""
WIN_BACK = """query ($from: Date, $to: Date) {
  winBack(from: $from, to: $to) { from to
    reps { rep { externalId name } lostCustomers withAttempt withoutAttempt reactivatedWithin90DaysOfAttempt
           attempts } } }"""
PERIOD = {"from": "2024-04-01", "to": "2024-06-30"}


@pytest.fixture
def app_on(engine, empty_db_url, tmp_path, monkeypatch):
    """Builds the base, evaluates it on TODAY, and serves it with `rules` active; returns a GraphQL caller."""
    if not issubclass(Query, LossReasonQueries):  # until schema/query.py takes the mixin: the same app with it
        @strawberry.type(name="Query")
        class WiredQuery(Query, LossReasonQueries):
            pass

        monkeypatch.setattr(schema_package, "Query", WiredQuery)
        monkeypatch.setattr(server, "build_schema", schema_package.build_schema.__wrapped__)
    stack = ExitStack()

    def serve(people, reps=(), rules=LOSS_RULES):
        insert_people(engine, people, reps)
        run_batch(engine, compile_rules(LOSS_RULES), TODAY)
        path = tmp_path / "loss.rules"
        path.write_text(rules)
        app = create_app(Settings(database_url=empty_db_url, webhooks=False, rules_path=path), engine=engine)
        http = stack.enter_context(TestClient(app))
        return lambda query, **variables: http.post("/graphql", json={"query": query, "variables": variables}).json()

    with stack:
        yield serve


def data(body):
    assert "errors" not in body, body["errors"]
    return body["data"]


def error(body, field: str):
    assert body.get("data") is None or body["data"].get(field) is None, body
    (e,) = body["errors"]
    return e["extensions"]["code"], e["message"]


def test_loss_reasons(app_on):
    call = app_on({**LOST_PEOPLE, **RETAINED_PEOPLE, **OUTSIDE_PEOPLE})
    got = data(call(REASONS, **PERIOD))["lossReasons"]
    assert (got["from"], got["to"], got["lostCustomers"], got["retainedCustomers"]) == ("2024-04-01", "2024-06-30",
                                                                                          4, 5)
    assert [(r["kind"], r["value"], r["lostCount"], r["retainedCount"], r["summary"]) for r in got["reasons"]] == \
        [(k, v, lost, kept, summary) for k, v, lost, kept, _, summary in EXPECTED]
    for r, (_, _, lost, kept, ratio, _) in zip(got["reasons"], EXPECTED):
        assert r["ratio"] == (None if ratio is None else pytest.approx(ratio))
        assert (r["lostShare"], r["retainedShare"]) == (pytest.approx(lost / 4), pytest.approx(kept / 5))
    assert got["reasons"][0]["reason"] == "complaints about billing"


def test_win_back_per_rep(app_on):
    call = app_on(WIN_BACK_PEOPLE, REPS)
    got = data(call(WIN_BACK, **PERIOD))["winBack"]
    assert (got["from"], got["to"]) == ("2024-04-01", "2024-06-30")
    # worked out in tests/domain/test_win_back.py (EXPECTED_REPS); W4's attempt of 2024-09-29 is before TODAY
    assert got["reps"] == [
        {"rep": {"externalId": "A", "name": "rep A"}, "lostCustomers": 4, "withAttempt": 3, "withoutAttempt": 1,
         "reactivatedWithin90DaysOfAttempt": 1, "attempts": 6},
        {"rep": {"externalId": "B", "name": "rep B"}, "lostCustomers": 1, "withAttempt": 1, "withoutAttempt": 0,
         "reactivatedWithin90DaysOfAttempt": 0, "attempts": 1},
        {"rep": None, "lostCustomers": 1, "withAttempt": 1, "withoutAttempt": 0,
         "reactivatedWithin90DaysOfAttempt": 1, "attempts": 1},
    ]


def test_to_is_clamped_at_the_data_s_today(app_on):
    call = app_on(WIN_BACK_PEOPLE, REPS)
    got = data(call(WIN_BACK, **{"from": "2024-04-01", "to": "2030-01-01"}))["winBack"]
    assert got["to"] == TODAY.isoformat()
    # nobody of the base is lost between 2024-07-01 and TODAY, so the answer is the period's
    assert sum(r["lostCustomers"] for r in got["reps"]) == 6
    got = data(call(REASONS, **{"from": "2024-04-01", "to": "2030-01-01"}))["lossReasons"]
    assert (got["to"], got["lostCustomers"]) == (TODAY.isoformat(), 6)


@pytest.mark.parametrize("query,field", [(REASONS, "lossReasons"), (WIN_BACK, "winBack")])
def test_bad_periods_are_typed_errors(app_on, query, field):
    call = app_on(WIN_BACK_PEOPLE, REPS)
    code, message = error(call(query, **{"from": "2024-06-30", "to": "2024-04-01"}), field)
    assert code == "BAD_ARGUMENT" and "'from'" in message
    # the whole period after the data's today: clamped `to` comes before `from`
    code, message = error(call(query, **{"from": "2025-01-01", "to": "2025-02-01"}), field)
    assert code == "BAD_ARGUMENT" and TODAY.isoformat() in message
    code, message = error(call(query, **{"from": "1899-12-31", "to": "2024-06-30"}), field)
    assert code == "BAD_ARGUMENT" and "'from'" in message
    body = call(query, **{"from": "2024-13-01", "to": "2024-06-30"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_VARIABLE"


@pytest.mark.parametrize("query,field", [(REASONS, "lossReasons"), (WIN_BACK, "winBack")])
def test_a_loss_rule_without_history_is_a_typed_error(app_on, query, field):
    daily = LOSS_RULES.replace("status lost     if no order 90d", "status lost     if days since last order > 89")
    assert daily != LOSS_RULES
    call = app_on(WIN_BACK_PEOPLE, REPS, rules=daily)
    code, message = error(call(query, **PERIOD), field)
    assert code == "UNSUPPORTED_RULE" and "days since" in message
