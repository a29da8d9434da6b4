"""Batch runs: stored results, atomic replacement, the append-only change log, the per-customer path."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain import evaluation
from domain.evaluation import (
    CustomerNotEvaluated,
    compute_cutoffs,
    distribution,
    evaluate_customer,
    run_batch,
)
from domain.models import CustomerEvaluation, EvaluationRun, TierChange
from rules import to_sql
from rules.compiler import load_rules_file
from domain.settings import DEFAULT_RULES

AS_OF = date(2026, 11, 23)
evals_t = CustomerEvaluation.__table__
runs_t = EvaluationRun.__table__
changes_t = TierChange.__table__


@pytest.fixture(scope="module")
def rules():
    return load_rules_file(DEFAULT_RULES)


def seed(engine, n_customers: int = 12) -> None:
    """Customers 1..n: profit grows with the id; every third has no orders; customer n+1 is created later."""
    customers, orders = [], []
    for cid in range(1, n_customers + 2):
        customers.append(dict(id=cid, external_id=f"c{cid}", name=f"C{cid}", seasonal=False, region="east",
                              created_at=date(2020, 1, 1) if cid <= n_customers else AS_OF + timedelta(days=1),
                              attributes={}))
        if cid % 3 == 0:
            continue
        for k in range(2):
            oid = len(orders) + 1
            orders.append(dict(id=oid, external_id=f"o{oid}", customer_id=cid,
                               ordered_at=AS_OF - timedelta(days=10 + 40 * k + cid), amount=100.0 * cid,
                               margin=30.0 * cid, cost_of_goods=70.0 * cid, line_count=1))
    with engine.begin() as conn:
        conn.execute(to_sql.customers.insert(), customers)
        conn.execute(to_sql.orders.insert(), orders)


def stored(engine) -> dict[int, tuple]:
    with engine.connect() as conn:
        return {r.customer_id: (r.tier, r.tier_line, r.status, r.status_line, tuple(r.tags), r.run_id)
                for r in conn.execute(sa.select(evals_t))}


def test_run_batch_stores_results_and_cutoffs(engine, rules):
    seed(engine)
    calls = []
    run = run_batch(engine, rules, AS_OF, progress=lambda done, total: calls.append((done, total)))
    assert run.id is not None and run.customer_count == 12 and run.finished_at is not None
    assert calls and calls[-1] == (12, 12)
    rows = stored(engine)
    assert sorted(rows) == list(range(1, 13))  # customer 13 is created after as_of
    assert {r[5] for r in rows.values()} == {run.id}
    assert rows[3][2] == "prospect" and rows[3][3] == 15
    with engine.connect() as conn:
        saved = conn.execute(sa.select(runs_t)).one()
        metrics = conn.execute(sa.select(evals_t.c.metrics).where(evals_t.c.customer_id == 11)).scalar_one()
    assert saved.customer_count == 12 and saved.as_of == AS_OF
    # profits: 30*cid*2 for the 8 customers with orders, 0 for 4: top 20% of 12 = 2.4 -> customers 11 and 10
    assert saved.cutoffs == {"top:profit_12m:20%": 600.0, "top:profit_12m:50%": 240.0}
    assert rows[11][0] == "key" and rows[10][0] == "key" and rows[8][0] == "important"
    assert metrics["revenue_12m"] == 2200.0 and metrics["growth_90d"] is None
    d = distribution(engine)
    assert d.customers == 12 and d.run_id == run.id and d.as_of == AS_OF
    assert d.statuses["prospect"] == 4 and sum(d.tiers.values()) == 12 and d.tiers["key"] == 2


def test_failed_run_leaves_previous_results_whole(engine, rules, monkeypatch):
    seed(engine)
    first = run_batch(engine, rules, AS_OF)
    before = stored(engine)
    with engine.begin() as conn:  # change the data so a successful second run would change results
        conn.execute(to_sql.orders.delete().where(to_sql.orders.c.customer_id == 11))
    monkeypatch.setattr(evaluation, "CHUNK", 5)

    def boom(done, total):
        if done >= 5:  # after the first chunk of new results was written
            raise RuntimeError("injected failure midway")

    with pytest.raises(RuntimeError, match="injected"):
        run_batch(engine, rules, AS_OF, progress=boom)
    assert stored(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(runs_t)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(changes_t)).scalar_one() == 0
    second = run_batch(engine, rules, AS_OF)
    assert second.id != first.id and stored(engine)[11][2] == "prospect"


def test_tier_changes_are_appended(engine, rules):
    seed(engine)
    run_batch(engine, rules, AS_OF)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(changes_t)).scalar_one() == 0
    with engine.begin() as conn:  # customer 3 orders a lot: prospect -> active, maintain -> key
        conn.execute(to_sql.orders.insert(), [dict(id=100, external_id="o100", customer_id=3,
                                                   ordered_at=AS_OF - timedelta(days=1), amount=10000.0,
                                                   margin=5000.0, cost_of_goods=5000.0, line_count=1)])
    second = run_batch(engine, rules, AS_OF)
    with engine.connect() as conn:
        changes = conn.execute(sa.select(changes_t).order_by(changes_t.c.id)).fetchall()
    moved = {(c.customer_id, c.kind): (c.old_value, c.new_value) for c in changes}
    assert moved[(3, "tier")] == ("maintain", "key")
    assert moved[(3, "status")] == ("prospect", "active")
    assert all(c.run_id == second.id and c.as_of == AS_OF for c in changes)
    # the displaced key customer moved down
    assert moved[(10, "tier")] == ("key", "important")
    n_before = len(changes)
    run_batch(engine, rules, AS_OF)  # nothing changed: nothing appended, nothing removed
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(changes_t)).scalar_one() == n_before


def test_evaluate_customer_matches_the_batch(engine, rules):
    seed(engine)
    # without a run: cut-offs come from a one-row SQL query
    assert compute_cutoffs(engine, rules, AS_OF) == {"top:profit_12m:20%": 600.0, "top:profit_12m:50%": 240.0}
    early = {cid: evaluate_customer(engine, rules, cid, AS_OF) for cid in range(1, 13)}
    run_batch(engine, rules, AS_OF)
    rows = stored(engine)
    for cid in range(1, 13):
        py = evaluate_customer(engine, rules, cid, AS_OF)
        assert (py.tier, py.tier_line, py.status, py.status_line, tuple(py.tags)) == rows[cid][:5]
        assert (early[cid].tier, early[cid].status) == (py.tier, py.status)
    with pytest.raises(CustomerNotEvaluated):
        evaluate_customer(engine, rules, 13, AS_OF)
