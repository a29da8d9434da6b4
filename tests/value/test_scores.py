"""Per-customer value scores on tiny hand-computed bases, on SQLite and PostgreSQL (the `engine` fixture).

Each test writes a few customers and records directly, runs run_value_batch and compares customer_scores with
figures worked out by hand in the comments. Window bounds for as_of 2025-06-30 (rules.windows):
12m = 2024-07-01..2025-06-30, 12m before 12m = 2023-07-01..2024-06-30, 90d = 2025-04-02..2025-06-30,
90d before 90d = 2025-01-02..2025-04-01.
"""
from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pytest
import sqlalchemy as sa

from domain.models import Complaint, Customer, CustomerScore, Delivery, Interaction, Order
from domain.value.batch import run_value_batch
from domain.value.scores import gap_and_seasonality, score_windows

AS_OF = date(2025, 6, 30)
D = date.fromisoformat


class World:
    """Insert customers and records with explicit ids; every missing column gets a neutral default."""

    def __init__(self, engine):
        self.engine = engine
        self.seq = itertools.count(1)

    def customers(self, *ids, created=date(2020, 1, 1), **links):
        rows = [{"id": i, "external_id": f"C{i}", "name": f"customer {i}", "seasonal": False, "created_at": created,
                 "attributes": {}, "parent_id": None, "referred_by_id": None} for i in ids]
        with self.engine.begin() as c:
            c.execute(sa.insert(Customer.__table__), rows)
            for i, (parent, ref) in links.items():
                c.execute(sa.update(Customer.__table__).where(Customer.__table__.c.id == int(i[1:]))
                          .values(parent_id=parent, referred_by_id=ref))

    def order(self, cid, day, amount, margin="same"):
        margin = amount if margin == "same" else margin
        oid = next(self.seq)
        with self.engine.begin() as c:
            c.execute(sa.insert(Order.__table__), {
                "id": oid, "external_id": f"O{oid}", "customer_id": cid, "ordered_at": D(day), "amount": amount,
                "cost_of_goods": None if margin is None else amount - margin, "margin": margin, "line_count": 1})
        return oid

    def orders(self, cid, *days, amount=100.0):
        for d in days:
            self.order(cid, d, amount)

    def interaction(self, cid, day, cost):
        n = next(self.seq)
        with self.engine.begin() as c:
            c.execute(sa.insert(Interaction.__table__), {"id": n, "external_id": f"I{n}", "customer_id": cid,
                                                         "occurred_at": D(day), "kind": "call", "cost": cost})

    def complaint(self, cid, day, cost):
        n = next(self.seq)
        with self.engine.begin() as c:
            c.execute(sa.insert(Complaint.__table__), {"id": n, "external_id": f"K{n}", "customer_id": cid,
                                                       "opened_at": D(day), "cost": cost})

    def delivery(self, cid, order_id, day, cost):
        n = next(self.seq)
        with self.engine.begin() as c:
            c.execute(sa.insert(Delivery.__table__), {"id": n, "external_id": f"D{n}", "customer_id": cid,
                                                      "order_id": order_id, "promised_at": D(day), "cost": cost})

    def scores(self) -> dict[int, dict]:
        t = CustomerScore.__table__
        with self.engine.connect() as c:
            return {r["customer_id"]: dict(r) for r in c.execute(sa.select(t)).mappings()}


@pytest.fixture
def world(engine):
    return World(engine)


def test_windows_come_from_rules_windows():
    w = score_windows(AS_OF)
    assert (w.w12.start, w.w12.end) == (D("2024-07-01"), AS_OF)
    assert (w.w12_prev.start, w.w12_prev.end) == (D("2023-07-01"), D("2024-06-30"))
    assert (w.w90.start, w.w90.end) == (D("2025-04-02"), AS_OF)
    assert (w.w90_prev.start, w.w90_prev.end) == (D("2025-01-02"), D("2025-04-01"))
    assert w.calibration_end == D("2025-04-01")


def test_rfm_quintiles_ties_direction_and_never_ordered(world, engine):
    world.customers(1, 2, 3, 4, 5, 6)
    world.customers(7, created=D("2025-07-01"))  # created after as_of: not scored
    world.order(1, "2025-06-20", 100.0)
    world.order(1, "2025-05-01", 100.0)
    world.order(2, "2025-06-20", 200.0)
    world.orders(3, "2025-01-10", "2025-02-10", "2025-03-10", amount=50.0)
    world.order(4, "2024-01-15", 1000.0)  # before the 12m window: recency known, frequency and monetary 0
    world.order(6, "2025-06-01", 30.0)
    world.order(6, "2025-06-01", 20.0)  # same day: one order day
    world.order(7, "2025-06-01", 999.0)
    run = run_value_batch(engine, AS_OF)
    s = world.scores()
    assert sorted(s) == [1, 2, 3, 4, 5, 6] and run.customer_count == 6
    # N = 5 customers who ever ordered; score = 1 + floor(5 * (customers strictly worse) / 5)
    # recency days: 1: 10, 2: 10, 3: 112, 4: 532, 6: 29 (smaller is better)
    assert {k: v["recency_days"] for k, v in s.items()} == {1: 10, 2: 10, 3: 112, 4: 532, 5: None, 6: 29}
    assert {k: v["rfm_r"] for k, v in s.items()} == {1: 4, 2: 4, 3: 2, 4: 1, 5: None, 6: 3}
    # frequency (distinct order days in 12m): 1: 2, 2: 1, 3: 3, 4: 0, 6: 1
    assert {k: v["frequency"] for k, v in s.items()} == {1: 2, 2: 1, 3: 3, 4: 0, 5: 0, 6: 1}
    assert {k: v["rfm_f"] for k, v in s.items()} == {1: 4, 2: 2, 3: 5, 4: 1, 5: None, 6: 2}
    # monetary (revenue in 12m): 1: 200, 2: 200, 3: 150, 4: 0, 6: 50
    assert {k: v["monetary"] for k, v in s.items()} == {1: 200, 2: 200, 3: 150, 4: 0, 5: None, 6: 50}
    assert {k: v["rfm_m"] for k, v in s.items()} == {1: 4, 2: 4, 3: 3, 4: 1, 5: None, 6: 2}
    assert {k: v["rfm_cell"] for k, v in s.items()} == {1: "4-4-4", 2: "4-2-4", 3: "2-5-3", 4: "1-1-1", 5: None,
                                                         6: "3-2-2"}
    # the never-ordered customer has no model scores, no gap, and is not seasonal
    assert s[5]["p_alive"] is None and s[5]["clv"] is None and s[5]["usual_gap_days"] is None
    assert not s[5]["seasonal_auto"]
    # far too small a base for the lifetime-value models: NULL columns, the reason in the run
    assert run.fit["status"] == "skipped" and "repeat buyers" in run.fit["reason"]
    assert all(v["p_alive"] is None and v["expected_spend"] is None for v in s.values())


def test_rfm_quintiles_spread_over_ten_distinct_values(world, engine):
    world.customers(*range(1, 11))
    for i in range(1, 11):  # customer i orders i times (distinct days) for i * 10 each
        world.orders(i, *[f"2025-0{1 + k % 6}-{10 + k}" for k in range(i)], amount=10.0)
    run_value_batch(engine, AS_OF)
    s = world.scores()
    # N = 10: customer i has i-1 customers strictly below -> 1 + floor((i-1)/2)
    assert [s[i]["rfm_f"] for i in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [s[i]["rfm_m"] for i in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_profit_after_cost_to_serve(world, engine):
    world.customers(1, 2, 3, 4)
    # 1: revenue 1500, known margin 300 (the 500 order has an unknown cost), older order outside 12m
    o1 = world.order(1, "2025-03-01", 1000.0, 300.0)
    o2 = world.order(1, "2025-04-01", 500.0, None)
    world.order(1, "2024-05-01", 9999.0, 1.0)
    world.interaction(1, "2025-02-01", 50.0)
    world.complaint(1, "2025-05-01", 70.0)
    world.complaint(1, "2024-06-01", 999.0)  # before the window
    world.delivery(1, o1, "2025-03-05", 30.0)
    world.delivery(1, o2, "2025-04-05", None)  # cost unknown: not counted
    world.delivery(1, o1, "2024-06-30", 500.0)  # the day before the 12m window
    # 2: margin unknown on every order -> margin and profit unknown
    world.order(2, "2025-03-01", 800.0, None)
    world.interaction(2, "2025-03-02", 20.0)
    # 3: no orders, only cost -> profit is minus the cost
    world.interaction(3, "2025-03-02", 40.0)
    # 4: high revenue, negative value
    world.order(4, "2025-03-01", 5000.0, 200.0)
    world.complaint(4, "2025-06-30", 900.0)
    run_value_batch(engine, AS_OF)
    s = world.scores()
    assert (s[1]["revenue_12m"], s[1]["margin_12m"], s[1]["service_cost_12m"], s[1]["profit_12m"]) == \
        (1500.0, 300.0, 150.0, 150.0)
    assert (s[2]["revenue_12m"], s[2]["margin_12m"], s[2]["service_cost_12m"], s[2]["profit_12m"]) == \
        (800.0, None, 20.0, None)
    assert (s[3]["revenue_12m"], s[3]["margin_12m"], s[3]["service_cost_12m"], s[3]["profit_12m"]) == \
        (0.0, 0.0, 40.0, -40.0)
    assert (s[4]["revenue_12m"], s[4]["profit_12m"]) == (5000.0, -700.0)


def test_monetary_margin_mode(world, engine):
    world.customers(1, 2, 3)
    world.order(1, "2025-03-01", 1000.0, 100.0)
    world.order(2, "2025-03-01", 100.0, 90.0)
    world.order(3, "2025-03-01", 500.0, None)
    run_value_batch(engine, AS_OF, monetary="margin")
    s = world.scores()
    assert (s[1]["monetary"], s[2]["monetary"], s[3]["monetary"]) == (100.0, 90.0, None)
    # N = 2 known margins: 2 is below 1
    assert (s[1]["rfm_m"], s[2]["rfm_m"], s[3]["rfm_m"]) == (1 + 5 * 1 // 2, 1, None)
    assert s[3]["rfm_r"] == s[1]["rfm_r"] and s[3]["rfm_cell"] is None


def test_growth_windows_and_zero_earlier_window(world, engine):
    world.customers(1, 2, 3, 4)
    world.order(1, "2025-02-01", 100.0)  # 90d before 90d
    world.order(1, "2025-05-01", 150.0)  # 90d
    world.order(1, "2024-03-01", 200.0)  # 12m before 12m
    world.order(2, "2025-05-01", 100.0)  # nothing earlier -> unknown growth
    world.order(3, "2025-02-01", 100.0)  # nothing recent -> -100%
    world.order(4, "2025-04-01", 100.0)  # last day of the earlier 90 days
    world.order(4, "2025-04-02", 300.0)  # first day of the last 90 days
    world.order(4, "2023-07-01", 50.0)  # first day of 12m before 12m
    run_value_batch(engine, AS_OF)
    s = world.scores()
    assert s[1]["growth_90d"] == pytest.approx(0.5)
    assert s[1]["growth_yoy"] == pytest.approx(250 / 200 - 1)
    assert s[2]["growth_90d"] is None and s[2]["growth_yoy"] is None
    assert s[3]["growth_90d"] == pytest.approx(-1.0)
    assert s[4]["growth_90d"] == pytest.approx(2.0)
    assert s[4]["growth_yoy"] == pytest.approx(400 / 50 - 1)


def test_seasonal_auto_and_usual_gap(world, engine):
    world.customers(*range(1, 10))
    world.orders(1, "2022-11-10", "2022-12-05", "2023-11-12", "2023-12-01", "2024-11-15")  # Nov/Dec, 3 years
    world.orders(2, "2024-10-01", "2024-11-01", "2024-11-15", "2024-12-01", "2024-12-20")  # one year only
    world.orders(3, *[f"{y}-{m:02d}-15" for y in (2023, 2024) for m in range(1, 13)])  # all year round
    world.orders(4, "2022-11-10", "2023-11-10", "2024-11-10")  # only 3 order days
    world.orders(5, "2023-11-01", "2023-12-01", "2024-11-01", "2024-12-01", "2024-06-01")  # 4 of 5 = 80%
    world.orders(6, "2023-01-05", "2023-04-05", "2024-07-05", "2024-10-05")  # 4 months: best 3 = 75%
    world.orders(7, "2025-01-01", "2025-01-11", "2025-01-31", "2025-02-03")  # gaps 10, 20, 3 -> 10
    world.orders(8, "2025-01-01", "2025-01-05", "2025-01-05", "2025-01-15", "2025-01-16", "2025-02-15")
    world.order(9, "2025-03-03", 10.0)
    world.order(9, "2025-03-03", 20.0)  # one order day only
    run_value_batch(engine, AS_OF)
    s = world.scores()
    assert {k: v["seasonal_auto"] for k, v in s.items()} == {
        1: True, 2: False, 3: False, 4: False, 5: True, 6: False, 7: False, 8: False, 9: False}
    assert s[7]["usual_gap_days"] == 10.0
    assert s[8]["usual_gap_days"] == 7.0  # gaps 4, 10, 1, 31 -> median of 1, 4, 10, 31 = (4 + 10) / 2
    assert s[9]["usual_gap_days"] is None
    assert s[3]["usual_gap_days"] in (30.0, 31.0)


def test_gap_and_seasonality_vectorised_equals_loop():
    rng = np.random.default_rng(3)
    ids = np.sort(rng.choice(np.arange(1, 400), 300, replace=False))
    pairs = {(int(c), int(d)) for c, d in zip(rng.choice(ids, 4000), rng.integers(18000, 20000, 4000))}
    pairs |= {(int(c), int(d)) for c in ids[:30] for d in (19000 + 365 * k + rng.integers(0, 40) for k in range(4))}
    oc, od = (np.array(v, dtype=np.int64) for v in zip(*sorted(pairs)))
    gap, seas = gap_and_seasonality(ids, oc, od)
    for i, cid in enumerate(ids):
        days = od[oc == cid]
        gaps = np.diff(days)
        assert (np.isnan(gap[i]) if gaps.size == 0 else gap[i] == np.median(gaps))
        dd = days.astype("datetime64[D]")
        months = np.bincount(dd.astype("datetime64[M]").astype(int) % 12, minlength=12)
        years = set(dd.astype("datetime64[Y]").astype(int).tolist())
        expect = len(days) >= 4 and len(years) >= 2 and np.sort(months)[-3:].sum() >= 0.8 * len(days)
        assert seas[i] == expect


def test_referred_and_group_rollup_over_three_levels(world, engine):
    world.customers(1, 2, 3, 4, 5)
    world.customers(6, created=D("2025-08-01"))  # not yet a customer on as_of
    links = {"c2": (1, 5), "c3": (2, 5), "c4": (1, None), "c5": (None, 1), "c6": (3, 1)}
    with engine.begin() as c:
        for key, (parent, ref) in links.items():
            c.execute(sa.update(Customer.__table__).where(Customer.__table__.c.id == int(key[1:]))
                      .values(parent_id=parent, referred_by_id=ref))
    world.order(1, "2025-03-01", 100.0, 40.0)
    world.order(2, "2025-03-01", 200.0, 50.0)
    world.order(3, "2025-03-01", 300.0, None)  # profit unknown
    world.order(4, "2025-03-01", 400.0, 100.0)
    world.interaction(4, "2025-03-01", 10.0)
    world.order(5, "2025-03-01", 500.0, 200.0)
    run_value_batch(engine, AS_OF)
    s = world.scores()
    # hierarchy 1 <- 2 <- 3, 1 <- 4; profits 1: 40, 2: 50, 3: unknown, 4: 90, 5: 200
    assert {k: v["group_revenue_12m"] for k, v in s.items()} == {1: 1000.0, 2: 500.0, 3: 300.0, 4: 400.0,
                                                                  5: 500.0}
    assert {k: v["group_profit_12m"] for k, v in s.items()} == {1: 180.0, 2: 50.0, 3: None, 4: 90.0, 5: 200.0}
    # 5 referred 2 and 3, 1 referred 5 (and 6, not a customer yet)
    assert {k: v["referred_revenue_12m"] for k, v in s.items()} == {1: 500.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 500.0}
    assert {k: v["referred_profit_12m"] for k, v in s.items()} == {1: 200.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 50.0}


def test_group_rollup_survives_a_cycle(world, engine):
    world.customers(1, 2, 3)
    with engine.begin() as c:  # 1 -> 2 -> 3 -> 1 (the importer refuses this; the batch must not loop)
        for child, parent in ((1, 2), (2, 3), (3, 1)):
            c.execute(sa.update(Customer.__table__).where(Customer.__table__.c.id == child).values(parent_id=parent))
    for i in (1, 2, 3):
        world.order(i, "2025-03-01", 100.0 * i, 10.0 * i)
    run_value_batch(engine, AS_OF)
    s = world.scores()
    assert all(v["group_revenue_12m"] == 600.0 and v["group_profit_12m"] == 60.0 for v in s.values())


def test_empty_database(engine):
    run = run_value_batch(engine, AS_OF)
    assert run.customer_count == 0 and run.fit["status"] == "skipped"
