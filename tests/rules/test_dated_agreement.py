"""The rules evaluated on many days in one query (rules.to_sql_dated) agree with the Python back end on each day,
and the loss history's first lost day of every gap is the one found by evaluating every day in Python.

The random rule sets and edge-heavy data are test_agreement's. On a past day ranks are unknown in the dated query
(NULL: documented), so rule sets reading a rank are left to test_agreement.
"""
from __future__ import annotations

import os
from datetime import date, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from domain.loss_history import LossRules, condition_episodes, rule_episodes
from domain.records import load_all_records
from rules import nodes as n
from rules.to_python import PyEvaluator, evaluate
from rules.to_sql import _first_index
from rules.to_sql_dated import DatedSqlCompiler, DayShift, MonthShift
from rules.change_days import reads
from rules.tree import rank_nodes, walk
from rules.windows import add_months
from tests.rules.test_agreement import (AS_OFS, customer_data, edge_dates, load, probe_ruleset, rule_sets,
                                        same_number)

EXAMPLES = max(10, int(os.environ.get("TIERGRAPH_HYPOTHESIS_EXAMPLES", "60")) // 5)
SETTINGS = dict(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])


def _no_ranks(ruleset: n.RuleSet) -> bool:
    """Neither ranks nor the relationship's age (which changes every day: the dated back end refuses it)."""
    exprs = [m.expr for m in ruleset.metrics]
    exprs += [r.condition for r in (*ruleset.tiers, *ruleset.statuses, *ruleset.tags) if r.condition is not None]
    daily = (n.DaysUntilAnniversary, n.CustomerFor)
    return not rank_nodes(exprs) and not any(isinstance(x, daily) for e in exprs for x in walk(e))


def _candidates(customer_ids: list[int], days: list[date]) -> sa.CTE:
    rows = [sa.select(sa.literal(c).label("customer_id"), sa.literal(d, sa.Date).label("day"))
            for c in customer_ids for d in days]
    return sa.union_all(*rows).cte("cand")


@settings(**SETTINGS)
@given(data=st.data())
def test_dated_query_agrees_with_python_on_each_day(engine, data):
    as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
    ruleset = probe_ruleset(data.draw(rule_sets(), label="rules"), relationship=False)
    assume(_no_ranks(ruleset))
    rows = data.draw(customer_data(as_of), label="data")
    load(engine, rows)
    days = sorted(set(data.draw(st.lists(st.sampled_from(edge_dates(as_of)), min_size=1, max_size=4), label="days"))
                  | {as_of})
    cand = _candidates([c["id"] for c in rows["customers"]], days)

    comp = DatedSqlCompiler(ruleset, cand)
    conditions = [r.condition for r in (*ruleset.statuses, *ruleset.tags) if r.condition is not None]
    metric_names = [m.name for m in ruleset.metrics]
    layer, _ = comp.build(conditions, metric_names)
    cols = [layer.c.customer_id, layer.c.day, _first_index(comp, ruleset.statuses).label("status_index")]
    cols += [sa.case((comp.boolean(r.condition), 1), (sa.not_(comp.boolean(r.condition)), 0)).label(f"t{i}")
             for i, r in enumerate(ruleset.tags)]
    cols += [layer.c[comp.metric_cols[name]] for name in metric_names]
    with engine.connect() as conn:
        got = conn.execute(sa.select(*cols).select_from(layer)).fetchall()
    records = load_all_records(engine)

    want_keys = sorted((c["id"], d) for c in rows["customers"] for d in days if c["created_at"] <= d)
    assert sorted((r.customer_id, r.day) for r in got) == want_keys
    for row in got:
        m = row._mapping
        cid, day = m["customer_id"], m["day"]
        py = evaluate(ruleset, records[cid], day, {})
        ev = PyEvaluator(ruleset, records[cid], day, {})
        index = None if m["status_index"] is None else int(m["status_index"])
        first = ev.first_match(ruleset.statuses)
        assert index == (None if first is None else ruleset.statuses.index(first)), (cid, day)
        for i, rule in enumerate(ruleset.tags):
            value = ev.boolean(rule.condition)
            assert m[f"t{i}"] == (None if value is None else int(value)), (cid, day, rule.text)
        for name in metric_names:
            assert same_number(m[comp.metric_cols[name]], py.metrics[name]), (cid, day, name)


def _first_lost_days(ruleset: n.RuleSet, records, rows, hi: date, is_lost) -> set[tuple[int, date]]:
    """Brute force: per customer, walk every day from its creation to `hi` in Python; in each gap between
    orders the first day on which `is_lost(evaluator)` holds."""
    out = set()
    for c in rows["customers"]:
        cid = c["id"]
        order_days = sorted({o["ordered_at"] for o in rows["orders"] if o["customer_id"] == cid})
        day, lost_in_gap, gap = c["created_at"], False, None
        while day <= hi:
            current = max((d for d in order_days if d <= day), default=None)
            if current != gap:
                gap, lost_in_gap = current, False
            if not lost_in_gap and is_lost(PyEvaluator(ruleset, records[cid], day, {})):
                out.add((cid, day))
                lost_in_gap = True
            if lost_in_gap:  # nothing more to find in this gap: jump to its end
                later = [d for d in order_days if d > day]
                day = later[0] if later else hi + timedelta(days=1)
            else:
                day += timedelta(days=1)
    return out


LOSS_STATUSES = st.sampled_from(["lost", "at_risk", "active"])


@settings(**SETTINGS)
@given(data=st.data())
def test_rule_losses_are_the_first_lost_day_of_each_gap(engine, data):
    as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
    ruleset = data.draw(rule_sets(), label="rules")
    assume(_no_ranks(ruleset))
    rows = data.draw(customer_data(as_of), label="data")
    for c in rows["customers"]:  # keep the brute force short: nobody created years before the records
        c["created_at"] = max(c["created_at"], as_of - timedelta(days=810))
    load(engine, rows)
    records = load_all_records(engine)
    hi = as_of + timedelta(days=1)
    lo = data.draw(st.sampled_from([as_of - timedelta(days=810), as_of - timedelta(days=90), as_of]), label="lo")

    assume(not reads(ruleset, [r.condition for r in (*ruleset.statuses, *ruleset.tiers)]).daily)
    rules = LossRules.of(ruleset)
    want = {(cid, d) for cid, d in _first_lost_days(
        ruleset, records, rows, hi, lambda ev: (ev.first_match(ruleset.statuses) or n.Rule("", "", None, None, ""))
        .label == "lost") if d >= lo}
    with engine.connect() as conn:
        got = {(r.customer_id, r.lost_on) for r in conn.execute(rule_episodes(rules, lo, hi)) if r.lost_on >= lo}
    assert got == want

    conditions = [r.condition for r in (*ruleset.statuses, *ruleset.tiers) if r.condition is not None]
    if conditions:
        cond = data.draw(st.sampled_from(conditions), label="condition")
        want = {(cid, d) for cid, d in _first_lost_days(ruleset, records, rows, hi,
                                                         lambda ev: ev.boolean(cond) is True) if d >= lo}
        with engine.connect() as conn:
            got = {(r.customer_id, r.lost_on) for r in conn.execute(condition_episodes(cond, ruleset, lo, hi))
                   if r.lost_on >= lo}
        assert got == want


def test_date_shifts_match_the_python_calendar(engine):
    days = [date(2024, 1, 31), date(2024, 2, 29), date(2023, 3, 31), date(2026, 12, 31), date(2026, 5, 15)]
    for d in days:
        for months in (-13, -12, -1, 1, 3, 12):
            with engine.connect() as conn:
                got = conn.execute(sa.select(MonthShift(sa.literal(d, sa.Date), months))).scalar()
            assert got == add_months(d, months), (d, months)
        with engine.connect() as conn:
            assert conn.execute(sa.select(DayShift(sa.literal(d, sa.Date), -89))).scalar() == d - timedelta(days=89)
