"""Defect 2: every rule path that takes an as_of sees only what was known on it.

One customer last ordered on 2026-06-01 and has a big order on 2026-09-20, and a complaint opened on 2026-09-01
that is resolved on 2026-09-20. As of 2026-09-15 it is small, lost and upset, and nothing changes by itself: the
order and the resolution of 2026-09-20 have not happened yet. Before the fix, the explanation forecast
"small now; big on 2026-09-20" from the future order.
"""
from __future__ import annotations

from datetime import date

import pytest

from domain.evaluation import explain_customer, evaluate_customer, run_batch
from domain.models import Complaint, Customer, Order
from domain.records import load_records
from rules.compiler import compile_rules
from rules.explain import explain
from rules.to_sql import compile_filter

AS_OF = date(2026, 9, 15)
LATER = date(2026, 9, 20)
RULES = """metric revenue_12m = sum(order.amount, 12m)
tier big if revenue_12m >= 1000
tier small otherwise
status upset if count(complaint where open) >= 1
status lost if no order 90d
status active otherwise
"""


@pytest.fixture
def base(engine):
    with engine.begin() as conn:
        conn.execute(Customer.__table__.insert(), [dict(id=1, external_id="C00024", name="Late big order",
                                                        seasonal=False, created_at=date(2020, 1, 1),
                                                        attributes={})])
        conn.execute(Order.__table__.insert(), [
            dict(id=1, external_id="o1", customer_id=1, ordered_at=date(2026, 6, 1), amount=100.0, line_count=1),
            dict(id=2, external_id="o2", customer_id=1, ordered_at=LATER, amount=10000.0, line_count=1)])
        conn.execute(Complaint.__table__.insert(), [
            dict(id=1, external_id="k1", customer_id=1, opened_at=date(2026, 9, 1), resolved_at=LATER, cost=0.0)])
    return engine


def _check(lines: list[str]) -> None:
    assert lines[0].startswith("tier small") and any(line.startswith("status upset") for line in lines), lines
    assert not any("2026-09-20" in line or "big" in line or "10000" in line for line in lines), lines


def test_explain_ignores_records_after_as_of(base):
    rules = compile_rules(RULES)
    everything = load_records(base, 1)  # all records, the future ones included: explain must leave them out
    assert len(everything.orders) == 2
    ex = explain(rules, everything, AS_OF)
    _check(ex.lines())
    assert ex.forecasts == []
    # the same question a day after the order sees it
    assert explain(rules, everything, LATER).tier.label == "big"


def test_records_loaded_for_an_as_of_stop_there(base):
    recs = load_records(base, 1, AS_OF)
    assert [o.ordered_at for o in recs.orders] == [date(2026, 6, 1)]
    assert recs.complaints[0].resolved_at is None  # resolved after as_of: not known yet


def test_explain_customer_and_evaluate_customer(base):
    rules = compile_rules(RULES)
    _check(explain_customer(base, rules, 1, AS_OF).lines())
    assert explain_customer(base, rules, 1, AS_OF).forecasts == []
    result = evaluate_customer(base, rules, 1, AS_OF)
    assert (result.tier, result.status, result.metrics["revenue_12m"]) == ("small", "upset", 100.0)


def test_cli_explain_with_as_of(base, empty_db_url, tmp_path, monkeypatch, capsys):
    from cli import main

    rules_file = tmp_path / "look_ahead.rules"
    rules_file.write_text(RULES, encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    monkeypatch.setenv("TIERGRAPH_RULES", str(rules_file))
    assert main(["explain", "C00024", "--as-of", AS_OF.isoformat()]) == 0
    out = capsys.readouterr().out
    assert out.startswith("C00024 Late big order, as of 2026-09-15:")
    _check([line.strip() for line in out.splitlines()[1:]])


def test_stored_evaluation_explanation_and_upcoming(base):
    """Customer.evaluation { explanation upcoming } come from the batch explainer of stored evaluations."""
    from domain.evaluation import explain_stored

    rules = compile_rules(RULES)
    run_batch(base, rules, AS_OF)
    [ex] = explain_stored(base, rules, [1])
    _check(ex.lines())
    assert ex.forecasts == []


def test_sql_paths_ignore_records_after_as_of(base):
    """customers(where:, asOf:) and previewRules run the compiled SQL: the order of 2026-09-20 is not counted."""
    from domain.rulesets import preview

    rules = compile_rules(RULES)
    condition = compile_rules(RULES + "tag probe if revenue_12m >= 1000 or count(complaint where open) = 0\n").tags[0]
    with base.connect() as conn:
        assert [r[0] for r in conn.execute(compile_filter(condition.condition, rules, AS_OF))] == []
        assert [r[0] for r in conn.execute(compile_filter(condition.condition, rules, LATER))] == [1]
    p = preview(base, rules, AS_OF)
    assert {(m.kind, m.new) for m in p.moves} == {("tier", "small"), ("status", "upset")}
    assert {(m.kind, m.new) for m in preview(base, rules, LATER).moves} == {("tier", "big"), ("status", "active")}
