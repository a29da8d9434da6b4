"""The backtest of a loss condition on a hand-checked base, on SQLite and PostgreSQL: which episodes it would
have started in the period, who ordered again within the horizon (both ends inclusive), the episodes whose horizon
is not over yet, the median gap from the last order, and the period clamped to the data's today.

Every expected number below is worked out by hand from the orders in BASE (2024 is a leap year: Feb has 29 days).
`no order 90d` holds from the 90th day after the last order: order on d, loss on d + 90.
"""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from domain.backtest import Backtest, backtest
from domain.models import Customer, Order
from rules.compiler import compile_condition, compile_rules
from rules.to_sql_dated import DailyCondition

D = date.fromisoformat
# id: (created_at, seasonal, blocked_from, order days)
BASE = {
    1: ("2023-12-01", False, None, ["2024-01-01", "2024-05-10"]),  # A: lost 2024-03-31 (before), 2024-08-08
    2: ("2023-12-01", False, None, ["2024-01-02", "2024-05-31"]),  # B: lost 04-01, back after 60 days
    3: ("2023-12-01", False, None, ["2024-01-03", "2024-06-02"]),  # C: lost 04-02, back after 61 days
    4: ("2023-12-01", False, None, ["2023-12-01", "2024-03-15"]),  # D: lost 06-13, never back
    5: ("2024-05-01", False, None, []),                           # E: never ordered: lost the day it was created
    6: ("2023-12-01", True, None, ["2024-02-01", "2024-05-20"]),   # G: seasonal, lost 05-01, back after 19 days
    7: ("2023-12-01", False, "2024-04-25", ["2024-04-10"]),        # H: blocked 15 days after its order (lost 07-09)
    8: ("2023-12-01", False, "2024-05-01", ["2024-04-05"]),        # I: blocked after 26 days (lost 07-04)
    9: ("2023-12-01", False, "2024-06-09", ["2024-04-10"]),        # J: blocked after 60 days (lost 07-09)
}
RULES = compile_rules("metric recent_orders = count(order, 90d)\n"
                      "status lost if no order 90d\n"
                      "status active otherwise\n")
TODAY = D("2024-07-31")
APRIL, JUNE_END = D("2024-04-01"), D("2024-06-30")


def load_base(engine) -> None:
    """BASE into an empty database."""
    with engine.begin() as conn:
        conn.execute(sa.insert(Customer.__table__), [
            {"id": cid, "external_id": f"K{cid}", "name": f"customer {cid}", "seasonal": seasonal,
             "blocked_from": D(blocked) if blocked else None, "created_at": D(created), "attributes": {}}
            for cid, (created, seasonal, blocked, _) in BASE.items()])
        conn.execute(sa.insert(Order.__table__), [
            {"external_id": f"O{cid}-{day}", "customer_id": cid, "ordered_at": D(day), "amount": 10.0,
             "line_count": 1}
            for cid, (_, _, _, days) in BASE.items() for day in days])


@pytest.fixture
def base(engine):
    load_base(engine)
    return engine


def run(engine, condition: str, start=APRIL, end=JUNE_END, horizon=60, today=TODAY) -> Backtest:
    return backtest(engine, compile_condition(condition, RULES), RULES, start, end, horizon, today)


def test_no_order_90d_over_a_quarter(base):
    got = run(base, "no order 90d")
    # declared: B 04-01, C 04-02, D 06-13, E 05-01, G 05-01 (A's 03-31 is before the period, H, I, J after it)
    # ordered again within 60 days: B (60 days: the horizon's last day counts), G (19); not C (61)
    # horizon past today: D (06-13 + 60 = 08-12 > 07-31); E and G end 06-30, B 05-31, C 06-01
    assert (got.declared, got.ordered_again, got.horizon_incomplete) == (5, 2, 1)
    assert got.false_loss_rate == pytest.approx(2 / 5)
    assert got.median_days_from_last_order == 90.0  # B, C, D, G; E never ordered
    assert (got.start, got.end, got.horizon_days) == (APRIL, JUNE_END, 60)


def test_the_horizon_s_ends(base):
    assert run(base, "no order 90d", horizon=59).ordered_again == 1  # B's 60 days are now too late
    assert run(base, "no order 90d", horizon=61).ordered_again == 3  # C's 61 now count
    # D's horizon ends on 08-12: complete on that day, not the day before
    assert run(base, "no order 90d", today=D("2024-08-12")).horizon_incomplete == 0
    assert run(base, "no order 90d", today=D("2024-08-11")).horizon_incomplete == 1


def test_a_metric_of_the_rule_set_and_the_median(base):
    # blocked customers are lost the day they are blocked: H after 15 days, I after 26, J after 60
    got = run(base, "recent_orders = 0 or blocked", start=D("2024-04-15"))
    # declared: D (90), E (no last order), G (90), H (15), I (26), J (60); sorted 15 26 60 90 90
    assert (got.declared, got.ordered_again, got.median_days_from_last_order) == (6, 1, 60.0)
    even = run(base, "recent_orders = 0 or blocked", start=D("2024-04-20"), end=D("2024-06-10"))
    # G (90), H (15), I (26), J (60), E: the two middle ones of 15 26 60 90
    assert (even.declared, even.median_days_from_last_order) == (5, 43.0)


def test_unless_seasonal_keeps_the_seasonal_buyer(base):
    got = run(base, "no order 90d unless seasonal")
    assert (got.declared, got.ordered_again) == (4, 1)  # G is seasonal: only B ordered again


def test_the_period_ends_at_the_data_s_today(base):
    got = run(base, "no order 90d", end=D("2024-12-31"))
    # up to 07-31: also H 07-09, I 07-04, J 07-09; A's 08-08 is after the data's today
    assert (got.end, got.declared, got.ordered_again) == (TODAY, 8, 2)
    assert got.horizon_incomplete == 4  # D, H, I, J
    later = run(base, "no order 90d", start=D("2024-08-01"), end=D("2024-12-31"))
    assert (later.end, later.declared, later.ordered_again, later.horizon_incomplete) == (TODAY, 0, 0, 0)
    assert later.false_loss_rate is None and later.median_days_from_last_order is None


def test_nothing_declared_gives_no_rate_and_no_median(base):
    got = run(base, "no order 400d")
    assert (got.declared, got.false_loss_rate, got.median_days_from_last_order) == (1, 0.0, None)  # E only
    none = run(base, "no order 90d and count(order) > 5")
    assert (none.declared, none.ordered_again, none.false_loss_rate, none.median_days_from_last_order) == \
        (0, 0, None, None)


def test_days_since_has_no_history(base):
    with pytest.raises(DailyCondition):
        run(base, "days since last order > 89")


def test_only_the_first_day_of_each_gap_counts(base):
    # `count(order, 120d) <= 1` holds already on A's first order day (one order in the window): that gap starts
    # before April; its second gap (05-10) holds from 05-10 itself, and so on: one episode per gap at most
    got = run(base, "count(order, 120d) <= 1")
    # gaps with their first holding day in April..June: A 05-10 (0 days), B 05-31 (0), C 06-02 (0), E 05-01,
    # H 04-10 (0), I 04-05 (0), J 04-10 (0), and G 05-31 (11: its 02-01 order leaves the window 120 days later);
    # D's gap from 03-15 holds from 03-30 (120 days after 12-01), before April
    assert got.declared == 8
    assert got.median_days_from_last_order == 0.0
