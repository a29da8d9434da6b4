"""The revenue bridge on the real CDNOW purchases against an independent computation in plain Python over the CSV
files (csv module only, no Tiergraph code), on SQLite and PostgreSQL.

CDNOW runs from 1997-01 to 1998-06, so 1998-03 is bridged from 1998-02 and from 1997-03. The data has no costs:
every margin is unknown. CDNOW has no blocked customers, so "lost at the month's end" is stood in for by a
hand-built SELECT, no order in the 90 days up to the month's end, which the Python side computes the same way.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.importer import import_directory
from domain.models import Order
from domain.revenue_bridge import PREVIOUS_MONTH, SAME_MONTH_LAST_YEAR, revenue_bridge

MARCH_1998 = date(1998, 3, 1)
MONTH_END = date(1998, 3, 31)
QUIET_DAYS = 90


def no_order_in_90_days(day: date) -> sa.Select:
    o = Order.__table__
    return (sa.select(o.c.customer_id).where(o.c.ordered_at <= day).group_by(o.c.customer_id)
            .having(sa.func.max(o.c.ordered_at) < day - timedelta(days=QUIET_DAYS - 1)))


def bridge_from_csv(directory, month: tuple[int, int], base: tuple[int, int]) -> dict:
    """category -> (customers, revenue), straight from the definitions, by external id."""
    revenue = defaultdict(lambda: defaultdict(float))  # external id -> (year, month) -> revenue
    order_days = defaultdict(list)
    with open(directory / "orders.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            day = date.fromisoformat(row["ordered_at"])
            revenue[row["customer_external_id"]][(day.year, day.month)] += \
                float(row["quantity"]) * float(row["unit_price"])
            order_days[row["customer_external_id"]].append(day)
    first_day = date(month[0], month[1], 1)
    out = defaultdict(lambda: [0, 0.0])
    for cid, months in revenue.items():
        now, then = month in months, base in months
        if not now and not then:
            continue
        if not then:
            name, effect = ("RETURNING" if min(order_days[cid]) < first_day else "NEW"), months[month]
        elif not now:
            last = max(d for d in order_days[cid] if d <= MONTH_END)
            lost = (MONTH_END - last).days >= QUIET_DAYS
            name, effect = ("STOPPED_LOST" if lost else "STOPPED_QUIET"), months[base]
        elif abs(months[month] - months[base]) < 1e-6:
            continue  # unchanged
        elif months[month] > months[base]:
            name, effect = "EXPANSION", months[month] - months[base]
        else:
            name, effect = "CONTRACTION", months[base] - months[month]
        out[name][0] += 1
        out[name][1] += effect
    return out


@pytest.fixture
def cdnow(engine, cdnow_dir):
    import_directory(engine, cdnow_dir)
    return engine


@pytest.mark.parametrize("compare_to, base", [(PREVIOUS_MONTH, (1998, 2)), (SAME_MONTH_LAST_YEAR, (1997, 3))])
def test_bridge_of_march_1998_matches_a_plain_computation(cdnow, cdnow_dir, compare_to, base):
    b = revenue_bridge(cdnow, MARCH_1998, compare_to, no_order_in_90_days(MONTH_END))
    expected = bridge_from_csv(cdnow_dir, (1998, 3), base)
    found = {k.category: k for k in b.categories}
    for name, k in found.items():
        customers, revenue = expected.get(name, (0, 0.0))
        assert k.customers == customers, name
        assert k.revenue == pytest.approx(revenue, rel=1e-9, abs=1e-6), name
        assert k.margin is None or k.customers == 0, name  # CDNOW has no costs
    assert found["STOPPED_LOST"].customers + found["STOPPED_QUIET"].customers > 0
    if compare_to == SAME_MONTH_LAST_YEAR:  # a year back, some who stopped have been quiet for 90 days
        assert found["STOPPED_LOST"].customers > 0 and found["STOPPED_QUIET"].customers > 0
        assert found["NEW"].customers == 0  # every CDNOW customer's first order was in 1997's first quarter
    r = {name: k.revenue for name, k in found.items()}
    bridged = r["NEW"] + r["RETURNING"] + r["EXPANSION"] - r["CONTRACTION"] - r["STOPPED_LOST"] - r["STOPPED_QUIET"]
    assert b.total - b.base_total == pytest.approx(bridged, rel=1e-6)
