"""Built-in metrics (value scores) in rules: the same values in SQL and Python, unknown on another date."""
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.demo import generate_demo
from domain.evaluation import evaluate_customer, run_batch
from domain.importer import import_directory
from domain.models import CustomerEvaluation
from domain.value.batch import run_value_batch
from rules.compiler import compile_rules

AS_OF = date(2026, 3, 31)
RULES = """
metric lifetime = clv * p_alive
tier loyal     if rfm_r >= 4 and rfm_f >= 4
tier fading    if p_alive < 0.5
tier seasonal  if seasonal_auto
tier other     otherwise
status late    if no order for 3x usual gap
status fine    otherwise
tag group_heavy if group_revenue_12m > 2 * revenue_12m
tag referrer    if referred_revenue_12m > 0
tag valuable    if lifetime in top 10%
metric revenue_12m = sum(order.amount, 12m)
"""


@pytest.fixture
def scored(engine, tmp_path):
    generate_demo(tmp_path / "d", seed=9, customers=300, until=AS_OF)
    import_directory(engine, tmp_path / "d")
    run_value_batch(engine, AS_OF)
    return engine


def stored(engine) -> dict[int, tuple]:
    table = CustomerEvaluation.__table__
    with engine.connect() as conn:
        return {r.customer_id: (r.tier, r.status, sorted(r.tags)) for r in conn.execute(
            sa.select(table.c.customer_id, table.c.tier, table.c.status, table.c.tags))}


def test_builtins_agree_between_sql_and_python(scored):
    ruleset = compile_rules(RULES)
    run_batch(scored, ruleset, AS_OF)
    results = stored(scored)
    with scored.connect() as conn:
        scores = {r.customer_id: r for r in conn.execute(sa.text("select * from customer_scores"))}
    seen = {t for t, _, _ in results.values()}
    assert {"loyal", "fading", "other"} <= seen, seen
    assert any(s == "late" for _, s, _ in results.values())
    assert any("valuable" in tags for _, _, tags in results.values())
    for cid, (tier, status, tags) in results.items():
        py = evaluate_customer(scored, ruleset, cid, AS_OF)
        assert (py.tier, py.status, sorted(py.tags)) == (tier, status, tags), cid
        s = scores[cid]
        if tier == "loyal":
            assert s.rfm_r >= 4 and s.rfm_f >= 4
        if tier == "fading":
            assert s.p_alive < 0.5
        if status == "late":
            assert s.recency_days > 3 * s.usual_gap_days


def test_builtins_are_unknown_without_scores_for_that_date(scored):
    ruleset = compile_rules(RULES)
    later = AS_OF + timedelta(days=1)
    run_batch(scored, ruleset, later)
    results = stored(scored)
    assert {t for t, _, _ in results.values()} == {"other"}
    assert {s for _, s, _ in results.values()} == {"fine"}
    cid = next(iter(results))
    assert evaluate_customer(scored, ruleset, cid, later).tier == "other"
