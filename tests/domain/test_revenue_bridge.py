"""The revenue bridge on a hand-computed base (every number below worked out by hand), and for any data the
categories add up to the change of revenue (hypothesis, against an exact computation in the test), on SQLite and
PostgreSQL."""
from __future__ import annotations

import math
import os
from datetime import date
from fractions import Fraction

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.models import Customer, Order
from domain.revenue_bridge import (CATEGORIES, PREVIOUS_MONTH, SAME_MONTH_LAST_YEAR, base_month, bridge_customers,
                                   revenue_bridge)

customers_t = Customer.__table__
MARCH = date(2024, 3, 1)
D = date.fromisoformat

# customer id -> blocked_from (the hand-built "lost at the month's end" SELECT: blocked on or before 2024-03-31)
BLOCKED = {6: D("2024-03-20"), 7: D("2024-04-05")}
# (customer id, day, amount, margin or None)
ORDERS = [
    (1, "2024-03-05", 100.0, 40.0), (1, "2024-03-20", 50.0, 20.0),  # NEW 150, margin 60
    (2, "2023-11-10", 80.0, 30.0), (2, "2024-03-10", 70.0, None),  # RETURNING 70, margin unknown
    (3, "2024-02-10", 100.0, 30.0), (3, "2024-03-10", 250.0, 100.0),  # EXPANSION 250 - 100 = 150, margin 70
    (4, "2024-02-15", 300.0, 90.0), (4, "2024-03-15", 120.0, 30.0),  # CONTRACTION 300 - 120 = 180, margin 60
    # 0.10 + 0.20 in February, 0.30 in March: the same revenue, though the float sums differ in the last bit
    (5, "2024-02-01", 0.1, 0.05), (5, "2024-02-02", 0.2, 0.05), (5, "2024-03-31", 0.3, 0.1),  # UNCHANGED
    (6, "2024-02-29", 200.0, 50.0),  # STOPPED, blocked 2024-03-20: STOPPED_LOST 200, margin 50
    (7, "2024-02-05", 90.0, None),  # STOPPED, blocked only after the month: STOPPED_QUIET 90, margin unknown
    (8, "2024-01-31", 500.0, 1.0), (8, "2024-04-01", 999.0, 1.0),  # just outside both months: nowhere
    (9, "2024-02-10", -50.0, -20.0), (9, "2024-03-10", 20.0, 8.0),  # a return, then 20: EXPANSION 70, margin 28
    (10, "2024-03-03", 40.0, 10.0), (10, "2024-03-04", -40.0, -10.0),  # ordered, nets to 0: NEW 0, margin 0
    (11, "2024-02-10", 60.0, 24.0), (11, "2024-03-10", -15.0, -6.0),  # CONTRACTION 60 - (-15) = 75, margin 30
    (12, "2024-03-01", 10.0, 4.0),  # first order on the month's first day: NEW 10, margin 4
    (13, "2024-01-31", 5.0, 2.0), (13, "2024-03-01", 30.0, 12.0),  # RETURNING 30, margin 12
    (14, "2024-02-20", 10.0, 5.0), (14, "2024-03-20", 160.0, 15.0),  # EXPANSION 150 (ties with 3), margin 10
    (15, "2023-03-15", 40.0, 16.0),  # only a year before: STOPPED_QUIET against 2023-03, nowhere against 2024-02
]
# March 2024: 150 + 70 + 250 + 120 + 0.3 + 20 + 0 - 15 + 10 + 30 + 160 = 795.3
# February 2024: 100 + 300 + 0.3 + 200 + 90 - 50 + 60 + 10 = 710.3; change +85
# NEW 150 + 0 + 10 = 160 | RETURNING 70 + 30 = 100 | EXPANSION 150 + 70 + 150 = 370 | CONTRACTION 180 + 75 = 255
# STOPPED_LOST 200 | STOPPED_QUIET 90: 160 + 100 + 370 - 255 - 200 - 90 = 85
EXPECTED_VS_FEBRUARY = {  # category: (customers, revenue, margin)
    "NEW": (3, 160.0, 64.0), "RETURNING": (2, 100.0, None), "EXPANSION": (3, 370.0, 108.0),
    "CONTRACTION": (2, 255.0, 90.0), "STOPPED_LOST": (1, 200.0, 50.0), "STOPPED_QUIET": (1, 90.0, None),
}
# Against March 2023 (only customer 15 ordered then, 40): NEW 1, 10, 12 (nothing before 2024-03) = 160;
# RETURNING every other March 2024 customer, its March revenue: 70 + 250 + 120 + 0.3 + 20 - 15 + 30 + 160 = 635.3
# (customer 11's -15 included: effects are signed); STOPPED_QUIET 15: 40. 160 + 635.3 - 40 = 795.3 - 40
EXPECTED_VS_LAST_YEAR = {
    "NEW": (3, 160.0, 64.0), "RETURNING": (8, 635.3, None), "EXPANSION": (0, 0.0, 0.0),
    "CONTRACTION": (0, 0.0, 0.0), "STOPPED_LOST": (0, 0.0, 0.0), "STOPPED_QUIET": (1, 40.0, 16.0),
}


def lost_by_blocking(day: date) -> sa.Select:
    """Stands in for domain.loss_history.lost_customers_on: the customers blocked on or before `day`."""
    return sa.select(customers_t.c.id.label("customer_id")).where(customers_t.c.blocked_from <= day)


def insert_base(engine, orders, blocked=None) -> None:
    blocked = blocked or {}
    ids = sorted({o[0] for o in orders} | set(blocked))
    if not ids:
        return
    with engine.begin() as c:
        c.execute(sa.insert(customers_t), [
            {"id": i, "external_id": f"C{i:03d}", "name": f"customer {i}", "seasonal": False,
             "blocked_from": blocked.get(i), "created_at": date(2020, 1, 1), "attributes": {}} for i in ids])
        if orders:
            c.execute(sa.insert(Order.__table__), [
                {"id": n, "external_id": f"O{n}", "customer_id": cid, "ordered_at": D(day) if isinstance(day, str)
                 else day, "amount": amount, "margin": margin, "line_count": 1}
                for n, (cid, day, amount, margin) in enumerate(orders, start=1)])


@pytest.fixture
def base(engine):
    insert_base(engine, ORDERS, BLOCKED)
    return engine


def by_name(bridge) -> dict:
    return {k.category: (k.customers, k.revenue, k.margin) for k in bridge.categories}


def assert_categories(found: dict, expected: dict) -> None:
    assert list(found) == list(CATEGORIES)
    for name, (customers, revenue, margin) in expected.items():
        got = found[name]
        assert got[0] == customers, name
        assert got[1] == pytest.approx(revenue, abs=1e-9), name
        assert (got[2] is None) == (margin is None), name
        if margin is not None:
            assert got[2] == pytest.approx(margin, abs=1e-9), name


def test_each_category_against_the_previous_month(base):
    b = revenue_bridge(base, MARCH, PREVIOUS_MONTH, lost_by_blocking(date(2024, 3, 31)))
    assert (b.month, b.base_month) == (MARCH, date(2024, 2, 1))
    assert b.total == pytest.approx(795.3) and b.base_total == pytest.approx(710.3)
    assert_categories(by_name(b), EXPECTED_VS_FEBRUARY)
    assert b.unchanged == 1  # customer 5: 0.10 + 0.20 against 0.30


def test_each_category_against_the_same_month_last_year(base):
    b = revenue_bridge(base, MARCH, SAME_MONTH_LAST_YEAR, lost_by_blocking(date(2024, 3, 31)))
    assert b.base_month == date(2023, 3, 1)
    assert b.total == pytest.approx(795.3) and b.base_total == pytest.approx(40.0)
    assert_categories(by_name(b), EXPECTED_VS_LAST_YEAR)
    assert b.unchanged == 0


def test_without_a_lost_select_every_stopped_customer_is_quiet(base):
    found = by_name(revenue_bridge(base, MARCH, PREVIOUS_MONTH, None))
    assert found["STOPPED_LOST"] == (0, 0.0, 0.0)
    assert found["STOPPED_QUIET"][:2] == (2, pytest.approx(290.0)) and found["STOPPED_QUIET"][2] is None


def test_customer_lists_biggest_effect_first_ties_by_id_and_pages(base):
    def page(category, limit, after=None, compare_to=PREVIOUS_MONTH):
        rows = bridge_customers(base, MARCH, compare_to, lost_by_blocking(date(2024, 3, 31)), category,
                                limit=limit, after=after)
        return [(r.customer_id, r.revenue, r.base_revenue, r.effect) for r in rows]

    assert page("EXPANSION", 10) == [(3, 250.0, 100.0, 150.0), (14, 160.0, 10.0, 150.0), (9, 20.0, -50.0, 70.0)]
    first = page("NEW", 2)
    assert first == [(1, 150.0, 0.0, 150.0), (12, 10.0, 0.0, 10.0)]
    assert page("NEW", 2, after=(first[-1][3], first[-1][0])) == [(10, 0.0, 0.0, 0.0)]
    assert page("EXPANSION", 5, after=(150.0, 3)) == [(14, 160.0, 10.0, 150.0), (9, 20.0, -50.0, 70.0)]
    assert page("CONTRACTION", 10) == [(4, 120.0, 300.0, 180.0), (11, -15.0, 60.0, 75.0)]
    assert page("STOPPED_LOST", 10) == [(6, 0.0, 200.0, 200.0)]
    assert page("STOPPED_QUIET", 10) == [(7, 0.0, 90.0, 90.0)]
    assert [r[0] for r in page("RETURNING", 10, compare_to=SAME_MONTH_LAST_YEAR)] == [3, 14, 4, 2, 13, 9, 5, 11]
    assert page("RETURNING", 10, compare_to=SAME_MONTH_LAST_YEAR)[-1] == (11, -15.0, 0.0, -15.0)


def test_a_month_without_orders_is_all_zeros(engine):
    b = revenue_bridge(engine, MARCH, PREVIOUS_MONTH, lost_by_blocking(date(2024, 3, 31)))
    assert (b.total, b.base_total, b.unchanged) == (0.0, 0.0, 0)
    assert by_name(b) == {name: (0, 0.0, 0.0) for name in CATEGORIES}  # a sum over no records is 0


def test_arguments_are_checked(engine):
    with pytest.raises(ValueError, match="first day"):
        revenue_bridge(engine, date(2024, 3, 2), PREVIOUS_MONTH)
    with pytest.raises(ValueError, match="compare_to"):
        revenue_bridge(engine, MARCH, "last_week")
    with pytest.raises(ValueError, match="category"):
        bridge_customers(engine, MARCH, PREVIOUS_MONTH, None, "UNCHANGED", limit=5)


def test_base_months():
    assert base_month(date(2024, 1, 1), PREVIOUS_MONTH) == date(2023, 12, 1)
    assert base_month(date(2024, 2, 1), SAME_MONTH_LAST_YEAR) == date(2023, 2, 1)


# ---------------------------------------------------------------------------------------------------------------
# Any data: an exact computation in the test (amounts in cents, Fractions) against the SQL
# ---------------------------------------------------------------------------------------------------------------

EXAMPLES = int(os.environ.get("TIERGRAPH_HYPOTHESIS_EXAMPLES", "60"))
DAYS = [D(d) for d in ("2023-02-28", "2023-03-01", "2023-03-31", "2023-09-15", "2024-01-31", "2024-02-01",
                       "2024-02-29", "2024-03-01", "2024-03-17", "2024-03-31", "2024-04-01")]
cents = st.integers(min_value=-50_000, max_value=500_000)
an_order = st.tuples(st.integers(1, 8), st.sampled_from(DAYS), cents, st.none() | cents)


def exact_bridge(orders, lost: set[int], month: date, compare_to: str) -> dict:
    """category -> (customers, revenue, margin) computed from the definitions, in exact arithmetic."""
    base = base_month(month, compare_to)

    def in_month(day, start):
        return (day.year, day.month) == (start.year, start.month)

    out = {name: [0, Fraction(0), Fraction(0)] for name in CATEGORIES}
    for cid in {o[0] for o in orders}:
        mine = [o for o in orders if o[0] == cid]
        now = [o for o in mine if in_month(o[1], month)]
        then = [o for o in mine if in_month(o[1], base)]
        rev, base_rev = sum(Fraction(o[2], 100) for o in now), sum(Fraction(o[2], 100) for o in then)
        margin = lambda rows: None if any(o[3] is None for o in rows) else sum(Fraction(o[3], 100) for o in rows)
        if not now and not then:
            continue
        if not then:
            name = "RETURNING" if any(o[1] < month for o in mine) else "NEW"
            effect, margin_effect = rev, margin(now)
        elif not now:
            name = "STOPPED_LOST" if cid in lost else "STOPPED_QUIET"
            effect, margin_effect = base_rev, margin(then)
        elif rev == base_rev:
            continue  # UNCHANGED
        else:
            name = "EXPANSION" if rev > base_rev else "CONTRACTION"
            m, bm = margin(now), margin(then)
            sign = 1 if name == "EXPANSION" else -1
            effect = sign * (rev - base_rev)
            margin_effect = None if m is None or bm is None else sign * (m - bm)
        k = out[name]
        k[0] += 1
        k[1] += effect
        k[2] = None if k[2] is None or margin_effect is None else k[2] + margin_effect
    return out


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=st.lists(an_order, max_size=25), lost=st.sets(st.integers(1, 8)),
       compare_to=st.sampled_from([PREVIOUS_MONTH, SAME_MONTH_LAST_YEAR]))
def test_categories_add_up_for_any_data(engine, orders, lost, compare_to):
    with engine.begin() as c:
        c.execute(sa.delete(Order.__table__))
        c.execute(sa.delete(customers_t))
    insert_base(engine, [(cid, day, a / 100, None if m is None else m / 100) for cid, day, a, m in orders],
                {cid: date(2024, 3, 1) for cid in lost})
    b = revenue_bridge(engine, MARCH, compare_to, lost_by_blocking(date(2024, 3, 31)))
    expected = exact_bridge(orders, lost, MARCH, compare_to)
    scale = max([1.0] + [abs(a) / 100 for _, _, a, _ in orders])
    for k in b.categories:
        customers, revenue, margin = expected[k.category]
        assert k.customers == customers, k
        assert math.isclose(k.revenue, float(revenue), rel_tol=1e-9, abs_tol=1e-9 * scale), k
        assert (k.margin is None) == (margin is None), k
        if margin is not None:
            assert math.isclose(k.margin, float(margin), rel_tol=1e-9, abs_tol=1e-9 * scale), k
    r = {k.category: k.revenue for k in b.categories}
    bridged = r["NEW"] + r["RETURNING"] + r["EXPANSION"] - r["CONTRACTION"] - r["STOPPED_LOST"] - r["STOPPED_QUIET"]
    assert math.isclose(b.total - b.base_total, bridged, rel_tol=1e-6, abs_tol=1e-6 * scale)
    in_a_category = sum(k.customers for k in b.categories) + b.unchanged
    assert in_a_category == len({cid for cid, day, _, _ in orders
                                 if (day.year, day.month) in {(2024, 3), (b.base_month.year, b.base_month.month)}})
