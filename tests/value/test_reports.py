"""Value reports on a hand-computed base, on SQLite and PostgreSQL: value per tier (customer and profit pyramids),
ARPU per month and tier, top customers by revenue / growth / profit, by region and by product."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from domain.models import (Complaint, Customer, CustomerEvaluation, EvaluationRun, Interaction, Order, OrderLine,
                           Product, TierChange, utcnow)
from domain.value.batch import run_value_batch
from domain.value.reports import arpu_by_tier, month_bounds, top_customers, value_summary

AS_OF = date(2025, 6, 30)
MAY_RUN = date(2025, 5, 31)
D = date.fromisoformat
REGION = {1: "east", 2: "east", 3: "west", 4: "west", 5: "east"}
TIER = {1: ("key", 10), 2: ("key", 10), 3: ("general", 12), 4: ("maintain", 13)}  # 5 has no evaluation
# (customer, day, [(sku, quantity, unit_price, unit_cost)])
ORDERS = [
    (1, "2025-06-10", [("A", 10, 60.0, 40.0), ("B", 4, 100.0, 50.0)]),  # 1000, margin 400
    (1, "2025-05-10", [("B", 5, 100.0, 60.0)]),  # 500, margin 200
    (2, "2025-06-15", [("A", 3, 100.0, None)]),  # 300, margin unknown
    (3, "2025-05-20", [("A", 2, 100.0, 90.0)]),  # 200, margin 20
    (5, "2025-06-01", [("B", 1, 50.0, 40.0)]),  # 50, margin 10
]


@pytest.fixture
def base(engine):
    with engine.begin() as c:
        c.execute(sa.insert(Customer.__table__), [
            {"id": i, "external_id": f"C{i}", "name": f"customer {i}", "region": r, "seasonal": False,
             "created_at": date(2020, 1, 1), "attributes": {}} for i, r in REGION.items()])
        c.execute(sa.insert(Product.__table__), [{"id": 1, "sku": "A", "name": "a", "seasonal": False},
                                                 {"id": 2, "sku": "B", "name": "b", "seasonal": False}])
        for oid, (cid, day, lines) in enumerate(ORDERS, start=1):
            amount = sum(q * p for _, q, p, _ in lines)
            known = all(cost is not None for *_, cost in lines)
            margin = sum(q * (p - cost) for _, q, p, cost in lines) if known else None
            c.execute(sa.insert(Order.__table__), {
                "id": oid, "external_id": f"O{oid}", "customer_id": cid, "ordered_at": D(day), "amount": amount,
                "cost_of_goods": None if margin is None else amount - margin, "margin": margin,
                "line_count": len(lines)})
            c.execute(sa.insert(OrderLine.__table__), [
                {"order_id": oid, "customer_id": cid, "line_no": n, "product_id": 1 if sku == "A" else 2,
                 "quantity": q, "unit_price": p, "unit_cost": cost, "is_return": False}
                for n, (sku, q, p, cost) in enumerate(lines, start=1)])
        c.execute(sa.insert(Complaint.__table__), {"id": 1, "external_id": "K1", "customer_id": 3,
                                                   "opened_at": D("2025-05-21"), "cost": 100.0})
        c.execute(sa.insert(Interaction.__table__), {"id": 1, "external_id": "I1", "customer_id": 4,
                                                     "occurred_at": D("2025-06-02"), "kind": "call", "cost": 10.0})
        # two runs: at the end of May customer 2 was "general" and 3 "key"; the June run moved them
        c.execute(sa.insert(EvaluationRun.__table__), [
            {"id": run_id, "rules_checksum": "x", "as_of": day, "started_at": utcnow(), "customer_count": 4,
             "cutoffs": {}} for run_id, day in ((1, MAY_RUN), (2, AS_OF))])
        c.execute(sa.insert(CustomerEvaluation.__table__), [
            {"customer_id": i, "run_id": 2, "as_of": AS_OF, "tier": t, "tier_line": line, "status": "active",
             "status_line": 20, "tags": [], "metrics": {}} for i, (t, line) in TIER.items()])
        c.execute(sa.insert(TierChange.__table__), [
            {"customer_id": 2, "run_id": 2, "as_of": AS_OF, "kind": "tier", "old_value": "general",
             "new_value": "key"},
            {"customer_id": 3, "run_id": 2, "as_of": AS_OF, "kind": "tier", "old_value": "key",
             "new_value": "general"}])
    return engine


def test_value_summary_pyramids(base):
    run_value_batch(base, AS_OF)
    summary = value_summary(base)
    assert summary.as_of == AS_OF
    # revenue_12m: 1: 1500, 2: 300, 3: 200, 4: 0, 5: 50
    # profit_12m: 1: 600, 2: unknown (margin unknown), 3: 20 - 100 = -80, 4: 0 - 10 = -10, 5: 10
    rows = [(t.tier, t.customers, t.revenue, t.profit) for t in summary.tiers]
    assert rows == [("key", 2, 1800.0, 600.0), ("general", 1, 200.0, -80.0), ("maintain", 1, 0.0, -10.0),
                    (None, 1, 50.0, 10.0)]
    total = summary.total
    assert (total.tier, total.customers, total.revenue, total.profit) == ("total", 5, 2050.0, 520.0)
    key = summary.tiers[0]
    assert key.customer_share == pytest.approx(0.4)
    assert key.profit_share == pytest.approx(600 / 520)  # the inverted pyramid: the key tier earns > 100%
    assert summary.tiers[1].profit_share == pytest.approx(-80 / 520)
    assert sum(t.customer_share for t in summary.tiers) == pytest.approx(1.0)


def test_value_summary_empty(engine):
    s = value_summary(engine)
    assert s.tiers == [] and s.total.customers == 0 and s.total.profit is None and s.as_of is None


def test_month_bounds_leave_out_the_incomplete_month_unless_asked():
    assert month_bounds(2, AS_OF) == [(D("2025-05-01"), D("2025-05-31")), (D("2025-06-01"), AS_OF)]  # complete
    assert month_bounds(3, D("2025-03-31"))[0] == (D("2025-01-01"), D("2025-01-31"))
    assert month_bounds(2, D("2025-06-01")) == [(D("2025-04-01"), D("2025-04-30")), (D("2025-05-01"), D("2025-05-31"))]
    assert month_bounds(2, D("2025-06-01"), include_current_month=True) == [
        (D("2025-05-01"), D("2025-05-31")), (D("2025-06-01"), D("2025-06-01"))]


def test_arpu_by_tier_uses_the_tiers_in_force_each_month(base):
    got = {(a.month, a.tier): (a.customers, a.revenue, a.arpu, a.evaluation_as_of)
           for a in arpu_by_tier(base, 3, AS_OF)}
    april, may, june = D("2025-04-01"), D("2025-05-01"), D("2025-06-01")
    assert got == {
        # before the first evaluation nobody had a tier: every customer in the tier None row, and it says so
        (april, None): (5, 0.0, 0.0, None),
        # May with the May run's tiers: 3 was still "key" (its 200 counts there), 2 still "general"
        (may, "key"): (2, 700.0, 350.0, MAY_RUN), (may, "general"): (1, 0.0, 0.0, MAY_RUN),
        (may, "maintain"): (1, 0.0, 0.0, MAY_RUN), (may, None): (1, 0.0, 0.0, MAY_RUN),
        # June with June's: 2 moved up to "key", 3 down to "general"; 5 was never evaluated
        (june, "key"): (2, 1300.0, 650.0, AS_OF), (june, "general"): (1, 0.0, 0.0, AS_OF),
        (june, "maintain"): (1, 0.0, 0.0, AS_OF), (june, None): (1, 50.0, 50.0, AS_OF),
    }
    rows = arpu_by_tier(base, 1, AS_OF)
    assert [r.tier for r in rows] == ["key", "general", "maintain", None]  # rule order, no tier last
    with pytest.raises(ValueError):
        arpu_by_tier(base, 0, AS_OF)


def test_arpu_includes_the_incomplete_month_only_when_asked(base):
    day = D("2025-06-12")
    assert {a.month for a in arpu_by_tier(base, 1, day)} == {D("2025-05-01")}
    current = {a.tier: (a.end, a.arpu) for a in arpu_by_tier(base, 1, day, include_current_month=True)}
    # June 1-12 with the tiers in force on the 12th (the May run): 1's order of the 10th, not 2's of the 15th
    assert current == {"key": (day, 500.0), "general": (day, 0.0), "maintain": (day, 0.0), None: (day, 50.0)}


def test_top_customers(base):
    june = {"start": D("2025-06-01"), "end": D("2025-06-30")}  # previous period: 2025-05-02..2025-05-31
    ids = lambda rows: [r.customer_id for r in rows]  # noqa: E731
    by_rev = top_customers(base, "revenue", **june)
    assert ids(by_rev) == [1, 2, 5, 3]
    assert (by_rev[0].revenue, by_rev[0].previous_revenue, by_rev[0].growth) == (1000.0, 500.0, 1.0)
    assert by_rev[1].growth is None and by_rev[3].growth == -1.0
    assert by_rev[0].external_id == "C1" and by_rev[0].region == "east"
    assert ids(top_customers(base, "growth", **june)) == [1, 3]
    prof = top_customers(base, "profit", **june)
    assert [(r.customer_id, r.profit) for r in prof] == [(1, 400.0), (5, 10.0)]  # 2: margin unknown
    assert ids(top_customers(base, "revenue", region="west", **june)) == [3]
    assert ids(top_customers(base, "revenue", region="east", first=2, **june)) == [1, 2]
    # product A only: the lines of sku A, joined through their orders
    a = top_customers(base, "revenue", sku="A", **june)
    assert [(r.customer_id, r.revenue, r.previous_revenue) for r in a] == [(1, 600.0, 0.0), (2, 300.0, 0.0),
                                                                           (3, 0.0, 200.0)]
    assert ids(top_customers(base, "growth", sku="A", **june)) == [3]
    assert [(r.customer_id, r.profit) for r in top_customers(base, "profit", sku="A", **june)] == [(1, 200.0)]
    assert ids(top_customers(base, "revenue", sku="A", region="west", **june)) == [3]
    assert top_customers(base, "revenue", sku="nope", **june) == []
    with pytest.raises(ValueError):
        top_customers(base, "size", **june)
