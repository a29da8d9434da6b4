"""Explanations: the deciding rule (line and text), the values it read, and when the outcome changes by itself."""
from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from domain.evaluation import explain_customer, run_batch
from domain.settings import DEFAULT_RULES
from rules import to_sql
from rules.compiler import compile_rules, load_rules_file
from rules.explain import PyEvaluator, candidate_days, explain, forecast
from rules.to_python import CustomerRecords

AS_OF = date(2026, 11, 23)


@pytest.fixture(scope="module")
def rules():
    return load_rules_file(DEFAULT_RULES)


def customer(cid=1, **kw):
    base = dict(id=cid, seasonal=False, blocked_from=None, created_at=date(2020, 1, 1), region=None,
                industry=None, size=None, name=f"C{cid}", external_id=f"c{cid}", attributes={})
    base.update(kw)
    return SimpleNamespace(**base)


def order(day, amount=100.0, margin=30.0):
    return SimpleNamespace(ordered_at=day, amount=amount, margin=margin, cost_of_goods=None)


def complaint(opened, resolved=None, due=None, cost=0.0):
    return SimpleNamespace(opened_at=opened, resolved_at=resolved, due_at=due, cost=cost, category=None)


def line_of(rules, kind, text):
    for r in (*rules.tiers, *rules.statuses, *rules.tags):
        if r.kind == kind and text in r.text:
            return r.pos.line
    raise AssertionError(text)


def test_lost_explained_with_last_order_and_flag(rules):
    recs = CustomerRecords(customer(), orders=[order(date(2026, 7, 30))])
    ex = explain(rules, recs, AS_OF, {"top:profit_12m:20%": 1e9, "top:profit_12m:50%": 1e9})
    line = line_of(rules, "status", "no order 90d unless seasonal")
    assert ex.status.text() == (f"lost (line {line}: no order 90d unless seasonal) — "
                                "last order 2026-07-30, 116 days ago; seasonal = false")
    assert ex.result.status == "lost" and ex.status.line == line


def test_at_risk_now_lost_later_unless_an_order_arrives(rules):
    recs = CustomerRecords(customer(), orders=[order(date(2026, 9, 20))])
    cutoffs = {"top:profit_12m:20%": 1e9, "top:profit_12m:50%": 1e9}
    ex = explain(rules, recs, AS_OF, cutoffs)
    assert ex.result.status == "at_risk"
    status_forecast = [f for f in ex.forecasts if f.kind == "status"][0]
    # 2026-09-20 leaves the 90d window on 2026-12-19
    assert status_forecast.text() == "at_risk now; lost on 2026-12-19 unless an order arrives"
    assert "status: at_risk now; lost on 2026-12-19 unless an order arrives" in ex.text()
    # the tier `general` (2 orders in 12m) runs out when the older order leaves the 12m window
    recs2 = CustomerRecords(customer(), orders=[order(date(2026, 1, 10)), order(date(2026, 9, 20))])
    tier_forecast = forecast(rules, rules.tiers, "tier", recs2, AS_OF, cutoffs)
    assert (tier_forecast.current, tier_forecast.new, tier_forecast.on) == ("general", "maintain", date(2027, 1, 10))
    assert tier_forecast.unless is None


def test_stable_customer_has_no_forecast_within_horizon(rules):
    recs = CustomerRecords(customer(seasonal=True), orders=[])
    ex = explain(rules, recs, AS_OF, {"top:profit_12m:20%": None, "top:profit_12m:50%": None})
    assert ex.result.status == "prospect" and ex.forecasts == []
    assert ex.status.text().startswith("prospect (line ")
    assert "count(order) = 0" in ex.status.text()


def test_tags_and_ranks_show_what_they_read(rules):
    recs = CustomerRecords(customer(), orders=[order(date(2026, 11, 1), 20000.0, 8000.0),
                                               order(date(2026, 7, 15), 5000.0, 2000.0)])
    ex = explain(rules, recs, AS_OF, {"top:profit_12m:20%": 5000.0, "top:profit_12m:50%": 100.0})
    assert ex.tier.label == "key"
    assert "profit_12m = 10000" in ex.tier.facts
    assert "least value in top 20% = 5000" in ex.tier.facts
    hot = [t for t in ex.tags if t.label == "hot"][0]
    assert hot.facts == ["growth_90d = 3", "revenue_12m = 25000"]
    assert ex.tier.text().startswith(f"key (line {ex.tier.line}: profit_12m in top 20%) — ")


def test_complaint_driven_status_and_unknown_values():
    rules = compile_rules("\n".join([
        "metric ratio = sum(order.amount, 30d) / count(complaint, 30d)",
        "tier any otherwise",
        "status at_risk if count(complaint where open, 30d) >= 2",
        "status odd if ratio > 1",
        "status active otherwise",
        "tag nothing if ratio > 1",
    ]))
    recs = CustomerRecords(customer(), orders=[order(date(2026, 11, 20))],
                           complaints=[complaint(date(2026, 11, 1), resolved=date(2026, 12, 1)),
                                       complaint(date(2026, 11, 2))])
    ex = explain(rules, recs, AS_OF)
    assert ex.status.text() == "at_risk (line 3: count(complaint where open, 30d) >= 2) — " \
                               "count(complaint where open, 30d) = 2"
    # its resolution on 2026-12-01 is not known on as_of, but the first complaint leaves the 30-day window then
    f = [f for f in ex.forecasts if f.kind == "status"][0]
    assert (f.current, f.new, f.on) == ("at_risk", "odd", date(2026, 12, 1))
    no_orders = CustomerRecords(customer(), orders=[])
    ex2 = explain(rules, no_orders, AS_OF)
    assert ex2.status.label == "active" and ex2.tags == []


def test_candidate_days_agree_with_day_by_day(rules):
    """Evaluating only candidate days finds the same first change as checking every day (on what is known on
    as_of: the order of 2026-12-05 in the last history is after it and must not count)."""
    cutoffs = {"top:profit_12m:20%": 500.0, "top:profit_12m:50%": 100.0}
    histories = [
        [date(2026, 9, 20)],
        [date(2026, 1, 31), date(2026, 2, 28), date(2026, 10, 9)],
        [date(2025, 11, 24), date(2026, 8, 26)],
        [date(2026, 11, 23), date(2026, 12, 5)],
    ]
    for days in histories:
        recs = CustomerRecords(customer(), orders=[order(d) for d in days],
                               complaints=[complaint(date(2026, 11, 10), due=date(2026, 11, 30))])
        for rule_list in (rules.tiers, rules.statuses):
            got = forecast(rules, rule_list, "x", recs, AS_OF, cutoffs)
            known = recs.known_on(AS_OF)
            now = PyEvaluator(rules, known, AS_OF, cutoffs).first_match(rule_list).label
            want = None
            for i in range(1, 401):
                d = AS_OF + timedelta(days=i)
                label = PyEvaluator(rules, known, d, cutoffs).first_match(rule_list).label
                if label != now:
                    want = (d, label)
                    break
            assert (None if got is None else (got.on, got.new)) == want, days
        assert len(candidate_days(rules, rules.statuses, recs, AS_OF)) < 100


def test_explain_customer_from_the_database(engine, rules):
    with engine.begin() as conn:
        conn.execute(to_sql.customers.insert(), [
            dict(id=1, external_id="c1", name="C1", seasonal=False, created_at=date(2020, 1, 1), attributes={}),
            dict(id=2, external_id="c2", name="C2", seasonal=False, created_at=date(2020, 1, 1), attributes={})])
        conn.execute(to_sql.orders.insert(), [
            dict(id=1, external_id="o1", customer_id=1, ordered_at=date(2026, 7, 30), amount=50.0, margin=5.0,
                 line_count=1),
            dict(id=2, external_id="o2", customer_id=2, ordered_at=date(2026, 11, 1), amount=500.0, margin=50.0,
                 line_count=1)])
    run_batch(engine, rules, AS_OF)
    ex = explain_customer(engine, rules, 1, AS_OF)
    assert ex.status.label == "lost" and "last order 2026-07-30, 116 days ago" in ex.status.facts
    # profits 5 and 50: the top 50% of 2 customers is 1 customer, so only customer 2 is important
    assert ex.tier.label == "maintain"
    ex2 = explain_customer(engine, rules, 2, AS_OF)
    assert ex2.tier.label == "important" and "least value in top 50% = 50" in ex2.tier.facts


def test_explanation_says_which_unless_spared_the_customer():
    from datetime import date
    from types import SimpleNamespace

    from rules.compiler import compile_rules
    from rules.explain import explain
    from rules.to_python import CustomerRecords

    rules = compile_rules("status lost if no order 90d unless seasonal\nstatus at_risk if no order 45d\n"
                          "status active otherwise\n")
    customer = SimpleNamespace(id=1, seasonal=True, blocked_from=None, created_at=date(2024, 1, 1),
                               region=None, industry=None, size=None, attributes={})
    order = SimpleNamespace(id=1, customer_id=1, ordered_at=date(2024, 1, 10), amount=10.0, margin=None,
                            cost_of_goods=None)
    text = explain(rules, CustomerRecords(customer, orders=[order]), date(2024, 6, 1)).status.text()
    assert text.startswith("at_risk (line 2: no order 45d) — last order 2024-01-10, 143 days ago")
    assert text.endswith("not lost (line 1: no order 90d unless seasonal): seasonal = true")
    customer.seasonal = False
    assert "not lost" not in explain(rules, CustomerRecords(customer, orders=[order]), date(2024, 6, 1)).status.text()
