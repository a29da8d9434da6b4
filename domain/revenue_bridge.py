"""The revenue bridge: how the revenue of one month moved from a base month, customer by customer.

Every customer who ordered in the month or in the base month falls in exactly one place (docs/api.md
"Revenue bridge"):

- NEW: no order in the base month and none ever before the month; effect = its month revenue;
- RETURNING: no order in the base month, but some order before the month; effect = its month revenue;
- EXPANSION / CONTRACTION: orders in both months, the month's sum above / below the base month's; effect = the
  difference, month - base for EXPANSION and base - month for CONTRACTION (positive in both);
- UNCHANGED: orders in both months with equal sums (up to float rounding, EQUAL_RELATIVE): counted apart, in no
  category, since its effect is zero;
- STOPPED_LOST / STOPPED_QUIET: orders in the base month, none in the month; effect = its base month revenue;
  LOST when the customer is in the caller's `lost_at_month_end` SELECT, else QUIET.

"Ordered in a month" means at least one order dated in it, whatever the amounts: a month whose orders net to 0 or
less (returns) still counts. Effects are signed sums, never clipped, so for any data

    total - base_total = NEW + RETURNING + EXPANSION - CONTRACTION - STOPPED_LOST - STOPPED_QUIET

(up to the last bits of float summation order). With ordinary data every effect is positive; a NEW customer
whose only order of the month is a credit note has a negative effect and makes its category's sum smaller.

One statement does the work: orders of the two months grouped by customer id (conditional aggregation), each
customer classified, then grouped by category; "ordered before the month" is an EXISTS on the
(customer_id, ordered_at) index, asked only for customers without a base-month order.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Optional, Union

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.db import connected
from domain.models import Order
from rules.windows import add_months

orders_t = Order.__table__

PREVIOUS_MONTH = "previous_month"
SAME_MONTH_LAST_YEAR = "same_month_last_year"
COMPARISONS = {PREVIOUS_MONTH: -1, SAME_MONTH_LAST_YEAR: -12}  # months back to the base month

NEW, RETURNING, EXPANSION, CONTRACTION = "NEW", "RETURNING", "EXPANSION", "CONTRACTION"
STOPPED_LOST, STOPPED_QUIET, UNCHANGED = "STOPPED_LOST", "STOPPED_QUIET", "UNCHANGED"
CATEGORIES = (NEW, RETURNING, EXPANSION, CONTRACTION, STOPPED_LOST, STOPPED_QUIET)  # the bridge, in its order
TOTAL = "TOTAL"  # the row of the bridge statement that carries the two months' totals
# Two sums that differ by less than this share of their size are equal: 0.10 + 0.20 one month and 0.30 the other
# is no expansion of 5.6e-17. Money amounts differing by a cent are ~1e-12 apart only beyond ten billion.
EQUAL_RELATIVE = 1e-12

Bind = Union[Engine, Connection]


@dataclass(frozen=True)
class BridgeCategory:
    category: str
    customers: int
    revenue: float  # the sum of its customers' effects
    margin: Optional[float]  # the same from order margins; None when any order involved has an unknown margin


@dataclass(frozen=True)
class RevenueBridge:
    month: date  # first day
    base_month: date  # first day
    total: float  # revenue of the month
    base_total: float  # revenue of the base month
    categories: list[BridgeCategory]  # all six, in CATEGORIES order
    unchanged: int  # customers who ordered in both months with equal revenue: in no category


@dataclass(frozen=True)
class BridgeCustomer:
    customer_id: int
    revenue: float  # in the month
    base_revenue: float  # in the base month
    effect: float  # its contribution to its category's revenue


def base_month(month: date, compare_to: str) -> date:
    """First day of the month the bridge compares `month` with."""
    _check(month, compare_to)
    return add_months(month, COMPARISONS[compare_to])


def month_end(month: date) -> date:
    return add_months(month.replace(day=1), 1) - timedelta(days=1)


def _check(month: date, compare_to: str) -> None:
    if month.day != 1:
        raise ValueError(f"month must be the first day of a month, got {month}")
    if compare_to not in COMPARISONS:
        raise ValueError(f"compare_to must be one of {sorted(COMPARISONS)}, got {compare_to!r}")


def _p(value, type_) -> sa.BindParameter:
    return sa.bindparam(None, value, type_=type_)


def per_customer(month: date, compare_to: str, lost_at_month_end: Optional[sa.Select]) -> sa.Select:
    """One row per customer who ordered in the month or the base month: customer_id, revenue, base_revenue,
    category (one of CATEGORIES or UNCHANGED), effect, margin_effect and margin_unknown (orders involved whose
    margin is unknown)."""
    start, end = _p(month, sa.Date), _p(month_end(month), sa.Date)
    base = base_month(month, compare_to)
    base_start, base_end = _p(base, sa.Date), _p(month_end(base), sa.Date)
    zero = _p(0.0, sa.Float)
    o = orders_t
    in_month = o.c.ordered_at.between(start, end)
    in_base = o.c.ordered_at.between(base_start, base_end)
    sums = (sa.select(o.c.customer_id,
                      sa.func.count(sa.case((in_month, 1))).label("orders"),
                      sa.func.count(sa.case((in_base, 1))).label("base_orders"),
                      sa.func.sum(sa.case((in_month, o.c.amount), else_=zero)).label("revenue"),
                      sa.func.sum(sa.case((in_base, o.c.amount), else_=zero)).label("base_revenue"),
                      sa.func.sum(sa.case((in_month, o.c.margin))).label("margin"),
                      sa.func.sum(sa.case((in_base, o.c.margin))).label("base_margin"),
                      sa.func.count(sa.case((sa.and_(in_month, o.c.margin.is_(None)), 1))).label("margin_unknown"),
                      sa.func.count(sa.case((sa.and_(in_base, o.c.margin.is_(None)), 1)))
                      .label("base_margin_unknown"))
            .where(sa.or_(in_month, in_base))
            .group_by(o.c.customer_id).subquery("sums"))

    earlier = orders_t.alias("earlier")
    ordered_before = sa.exists().where(earlier.c.customer_id == sums.c.customer_id, earlier.c.ordered_at < start)
    difference = sums.c.revenue - sums.c.base_revenue
    size = sa.func.abs(sums.c.revenue) + sa.func.abs(sums.c.base_revenue)
    equal = sa.func.abs(difference) <= _p(EQUAL_RELATIVE, sa.Float) * size
    if lost_at_month_end is None:
        stopped = [(sums.c.orders == 0, STOPPED_QUIET)]
    else:
        lost = lost_at_month_end.subquery("lost_at_month_end")
        stopped = [(sa.and_(sums.c.orders == 0, sums.c.customer_id.in_(sa.select(lost.c.customer_id))),
                    STOPPED_LOST),
                   (sums.c.orders == 0, STOPPED_QUIET)]
    category = sa.case((sa.and_(sums.c.base_orders == 0, ~ordered_before), NEW),
                       (sums.c.base_orders == 0, RETURNING),
                       *stopped,
                       (equal, UNCHANGED),
                       (sums.c.revenue > sums.c.base_revenue, EXPANSION),
                       else_=CONTRACTION)
    classified = sa.select(sums, category.label("category")).subquery("classified")

    c = classified.c
    margin, base_margin = sa.func.coalesce(c.margin, zero), sa.func.coalesce(c.base_margin, zero)
    gained, stopped_any = c.category.in_([NEW, RETURNING]), c.category.in_([STOPPED_LOST, STOPPED_QUIET])
    effect = sa.case((gained, c.revenue), (c.category == EXPANSION, c.revenue - c.base_revenue),
                     (c.category == CONTRACTION, c.base_revenue - c.revenue), (stopped_any, c.base_revenue),
                     else_=zero)
    margin_effect = sa.case((gained, margin), (c.category == EXPANSION, margin - base_margin),
                            (c.category == CONTRACTION, base_margin - margin), (stopped_any, base_margin),
                            else_=zero)
    both = c.category.in_([EXPANSION, CONTRACTION])
    unknown = sa.case((gained, c.margin_unknown), (both, c.margin_unknown + c.base_margin_unknown),
                      (stopped_any, c.base_margin_unknown), else_=0)
    return sa.select(c.customer_id, c.revenue, c.base_revenue, c.category, effect.label("effect"),
                     margin_effect.label("margin_effect"), unknown.label("margin_unknown"))


def revenue_bridge(bind: Bind, month: date, compare_to: str,
                   lost_at_month_end: Optional[sa.Select] = None) -> RevenueBridge:
    """The bridge from the base month's revenue to `month`'s (first day). `lost_at_month_end` is a SELECT of
    `customer_id`: the customers whose status is lost at the month's end (None: every stopped customer is quiet)."""
    rows = per_customer(month, compare_to, lost_at_month_end).cte("per_customer")
    margin = sa.case((sa.func.sum(rows.c.margin_unknown) > 0, sa.null()),
                     else_=sa.func.coalesce(sa.func.sum(rows.c.margin_effect), _p(0.0, sa.Float)))
    by_category = sa.select(rows.c.category, sa.func.count().label("customers"),
                            sa.func.sum(rows.c.effect).label("revenue"), margin.label("margin"),
                            sa.literal(None, sa.Float).label("total"), sa.literal(None, sa.Float).label("base_total")
                            ).group_by(rows.c.category)
    totals = sa.select(_p(TOTAL, sa.String).label("category"), sa.func.count().label("customers"),
                       sa.literal(None, sa.Float).label("revenue"), sa.literal(None, sa.Float).label("margin"),
                       sa.func.sum(rows.c.revenue).label("total"), sa.func.sum(rows.c.base_revenue).label("base_total"))
    with connected(bind) as conn:
        found = {r.category: r for r in conn.execute(sa.union_all(by_category, totals))}
    t = found[TOTAL]
    categories = [BridgeCategory(name, int(r.customers), float(r.revenue),
                                 None if r.margin is None else float(r.margin))
                  if (r := found.get(name)) is not None else BridgeCategory(name, 0, 0.0, 0.0)
                  for name in CATEGORIES]
    unchanged = found.get(UNCHANGED)
    return RevenueBridge(month=month, base_month=base_month(month, compare_to), total=float(t.total or 0.0),
                         base_total=float(t.base_total or 0.0), categories=categories,
                         unchanged=int(unchanged.customers) if unchanged is not None else 0)


def bridge_customers(bind: Bind, month: date, compare_to: str, lost_at_month_end: Optional[sa.Select],
                     category: str, *, limit: int, after: Optional[tuple[float, int]] = None
                     ) -> list[BridgeCustomer]:
    """The customers of one category, the biggest effect first, ties by customer id, from a keyset `after`
    (effect, customer id of the last row seen)."""
    if category not in CATEGORIES:
        raise ValueError(f"category must be one of {CATEGORIES}, got {category!r}")
    rows = per_customer(month, compare_to, lost_at_month_end).subquery("per_customer")
    q = sa.select(rows.c.customer_id, rows.c.revenue, rows.c.base_revenue, rows.c.effect).where(
        rows.c.category == _p(category, sa.String))
    if after is not None:
        effect, customer_id = _p(float(after[0]), sa.Float), _p(int(after[1]), sa.Integer)
        q = q.where(sa.or_(rows.c.effect < effect, sa.and_(rows.c.effect == effect, rows.c.customer_id > customer_id)))
    q = q.order_by(rows.c.effect.desc(), rows.c.customer_id).limit(limit)
    with connected(bind) as conn:
        return [BridgeCustomer(int(r.customer_id), float(r.revenue), float(r.base_revenue), float(r.effect))
                for r in conn.execute(q)]
