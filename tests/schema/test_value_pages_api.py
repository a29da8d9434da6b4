"""valueSummary(asOf), topCustomers(by: NEGATIVE_VALUE) and Customer.monthlyRevenue over GraphQL on the
hand-computed base of tests/support/movement_base.py, on SQLite and PostgreSQL, with typed errors."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from movement_base import R1, R2, served_base

SUMMARY = """query ($d: Date) { valueSummary(includeTotal: true, asOf: $d) {
  tier customers shareOfCustomers revenue profit shareOfProfit asOf } }"""
MONTHS = """query ($n: Int!) { customers(first: 10) { edges { node { externalId
  monthlyRevenue(months: $n) { month revenue margin orders } } } } }"""


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def api(request, tmp_path_factory):
    yield from served_base(request.param, tmp_path_factory, request)


def code(error: dict) -> str:
    return error["extensions"]["code"]


def rows(summary: list[dict]) -> list[tuple]:
    return [(r["tier"], r["customers"], r["shareOfCustomers"], r["revenue"], r["profit"],
             pytest.approx(r["shareOfProfit"]) if r["shareOfProfit"] is not None else None, r["asOf"])
            for r in summary]


def test_value_summary_of_a_past_day(api):
    call, _ = api
    got = call(SUMMARY, d="2024-03-01")["valueSummary"]
    # R1's tiers (D, G not yet customers); 12 months to 03-01: A 155 / margin 60, B 30 / 10 (its complaint of 03-10
    # comes later), C 20 / 5 - 30 interaction, E nothing
    assert rows(got) == [("big", 1, 0.25, 155.0, 60.0, 60 / 45, "2024-03-01"),
                         ("small", 3, 0.75, 50.0, -15.0, -15 / 45, "2024-03-01"),
                         ("total", 4, 1.0, 205.0, 45.0, 1.0, "2024-03-01")]


def test_value_summary_of_today_computed_and_stored(api):
    call, _ = api
    stored = call(SUMMARY)["valueSummary"]
    # the stored scores (A..E): A 155 / 60, B 100 / 10 - 50, C 20 / 5 - 30, D 210 / 82 (04-20 is after), E 0
    assert rows(stored) == [("big", 3, 0.6, 465.0, 102.0, 102 / 77, R2.isoformat()),
                            ("small", 2, 0.4, 20.0, -25.0, -25 / 77, R2.isoformat()),
                            ("total", 5, 1.0, 485.0, 77.0, 1.0, R2.isoformat())]
    computed = call(SUMMARY, d=R2.isoformat())["valueSummary"]
    # the same figures by the value batch's query, plus G (created on R2, never evaluated: no tier) 40 / 10
    assert rows(computed) == [("big", 3, 0.5, 465.0, 102.0, 102 / 87, R2.isoformat()),
                              ("small", 2, pytest.approx(1 / 3), 20.0, -25.0, -25 / 87, R2.isoformat()),
                              (None, 1, pytest.approx(1 / 6), 40.0, 10.0, 10 / 87, R2.isoformat()),
                              ("total", 6, 1.0, 525.0, 87.0, 1.0, R2.isoformat())]


def test_value_summary_bad_days(api):
    call, _ = api
    before = call.error(SUMMARY, d="2024-02-28")
    assert (code(before), before["extensions"]["argument"]) == ("BAD_ARGUMENT", "asOf")
    assert "before the first evaluation (2024-02-29)" in before["message"]
    after = call.error(SUMMARY, d="2024-04-16")
    assert code(after) == "BAD_ARGUMENT" and "after the data's today (2024-04-15" in after["message"]
    assert code(call.error(SUMMARY, d="9999-12-31")) == "BAD_ARGUMENT"
    assert call(SUMMARY, d=R1.isoformat())["valueSummary"][-1]["customers"] == 4  # the first evaluation's day is fine


def test_top_customers_with_negative_value(api):
    call, _ = api
    q = """query ($from: Date, $to: Date, $first: Int! = 20) {
      topCustomers(by: NEGATIVE_VALUE, from: $from, to: $to, first: $first) { externalId revenue profit } }"""
    # 2024-01-01..04-15: margin - cost to serve: A 60, B 10 - 50, C 5 - 30, D 82, G 10 (E never ordered)
    assert call(q, **{"from": "2024-01-01", "to": "2024-04-15"})["topCustomers"] == [
        {"externalId": "B", "revenue": 100.0, "profit": -40.0}, {"externalId": "C", "revenue": 20.0, "profit": -25.0}]
    assert [c["externalId"] for c in call(q, first=1, **{"from": "2024-01-01", "to": "2024-04-15"})["topCustomers"]] \
        == ["B"]
    # before B's complaint only C costs more than it earns
    assert [c["externalId"] for c in call(q, **{"from": "2024-01-01", "to": "2024-02-29"})["topCustomers"]] == ["C"]
    assert call(q, **{"from": "2024-04-01", "to": "2024-04-15"})["topCustomers"] == []


def test_monthly_revenue_per_customer_in_one_statement(api):
    call, engine = api
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        edges = call(MONTHS, n=4)["customers"]["edges"]
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    got = {e["node"]["externalId"]: [(m["month"], m["revenue"], m["margin"], m["orders"])
                                     for m in e["node"]["monthlyRevenue"]] for e in edges}
    zero = (0.0, 0.0, 0)
    assert got["A"] == [("2024-01", 100.0, 40.0, 1), ("2024-02", 55.0, None, 2), ("2024-03", *zero),
                        ("2024-04", *zero)]
    assert got["B"] == [("2024-01", 30.0, 10.0, 1), ("2024-02", *zero), ("2024-03", *zero),
                        ("2024-04", 70.0, None, 1)]
    # the order of 04-20 is after the data's today (04-15)
    assert got["D"] == [("2024-01", *zero), ("2024-02", *zero), ("2024-03", 200.0, 80.0, 1), ("2024-04", 10.0, 2.0, 1)]
    assert got["E"] == [(m, *zero) for m in ("2024-01", "2024-02", "2024-03", "2024-04")]
    assert got["G"][-1] == ("2024-04", 40.0, 10.0, 1)
    assert len(got) == 6
    assert sum("calendar" in s for s in statements) == 1  # one statement for the six customers


def test_monthly_revenue_default_and_bad_months(api):
    call, _ = api
    months = call('{ customerByExternalId(externalId: "A") { monthlyRevenue { month revenue } } }'
                  )["customerByExternalId"]["monthlyRevenue"]
    assert len(months) == 24 and (months[0]["month"], months[-1]["month"]) == ("2022-05", "2024-04")
    assert sum(m["revenue"] for m in months) == 155.0
    assert len(call(MONTHS, n=120)["customers"]["edges"][0]["node"]["monthlyRevenue"]) == 120
    for n in (0, 121, -3):
        error = call.error('query ($n: Int!) { customerByExternalId(externalId: "A") { monthlyRevenue(months: $n) '
                           '{ month } } }', n=n)
        assert (code(error), error["extensions"]["argument"]) == ("BAD_ARGUMENT", "months")
