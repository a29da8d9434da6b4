"""margin_12m means one thing: the rule metric `sum(order.margin, 12m)` and the value score margin_12m agree on a
base where costs are unknown (unknown when every margin of the window's orders is unknown, 0 with no orders)."""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from domain.evaluation import evaluate_customer, run_batch
from domain.models import Customer, CustomerEvaluation, CustomerScore, Order
from domain.value.batch import run_value_batch
from rules.compiler import compile_rules

AS_OF = date(2025, 6, 30)
RULES = "metric margin_12m = sum(order.margin, 12m)\ntier any otherwise\n"


def test_rule_metric_and_value_score_margin_12m_agree(engine):
    # 1: every cost unknown; 2: one known, one unknown; 3: no orders at all; 4: only an unknown order before
    # the window; 5: known margins only
    orders = [(1, "2025-05-01", None), (1, "2025-06-01", None), (2, "2025-05-01", 30.0), (2, "2025-06-01", None),
              (4, "2023-01-01", None), (5, "2025-03-01", 12.5), (5, "2025-06-30", -2.5)]
    with engine.begin() as conn:
        conn.execute(sa.insert(Customer.__table__), [
            dict(id=i, external_id=f"C{i}", name=f"customer {i}", seasonal=False, created_at=date(2020, 1, 1),
                 attributes={}) for i in range(1, 6)])
        conn.execute(sa.insert(Order.__table__), [
            dict(id=k, external_id=f"O{k}", customer_id=cid, ordered_at=date.fromisoformat(day), amount=100.0,
                 cost_of_goods=None if margin is None else 100.0 - margin, margin=margin, line_count=1)
            for k, (cid, day, margin) in enumerate(orders, 1)])
    run_value_batch(engine, AS_OF)
    rules = compile_rules(RULES)
    run_batch(engine, rules, AS_OF)
    with engine.connect() as conn:
        scores = dict(conn.execute(sa.select(CustomerScore.__table__.c.customer_id,
                                             CustomerScore.__table__.c.margin_12m)).all())
        stored = dict(conn.execute(sa.select(CustomerEvaluation.__table__.c.customer_id,
                                             CustomerEvaluation.__table__.c.metrics)).all())
    want = {1: None, 2: 30.0, 3: 0.0, 4: 0.0, 5: 10.0}
    assert scores == want
    assert {cid: m["margin_12m"] for cid, m in stored.items()} == want  # the batch (SQL) back end
    assert {cid: evaluate_customer(engine, rules, cid, AS_OF).metrics["margin_12m"] for cid in want} == want
