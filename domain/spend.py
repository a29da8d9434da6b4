"""What customers spend per product category and per product in a period, read from the rule language's order_line
records (domain.record_sources.ORDER_LINE_RECORDS), so "amount" and "margin" mean here what they mean in rules.

- revenue: the lines' amounts (quantity x unit price; returns, with their negative quantities, subtract).
- margin: the lines' margins; unknown (None) when any of those lines has an unknown unit cost.
- orders: the distinct orders the lines belong to.
- share: revenue / the customer's revenue over all its lines in the period (None when that is 0).
- share of wallet: revenue / the customer's estimated wallet for the category, the custom attribute
  `wallet.<category>` (a number, or text that is a plain decimal as in rules); None without a positive one or
  without a category. A product-level share of wallet uses its category's wallet.

Lines without a category are grouped under category None. One statement per call for all the customers asked.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, Optional

import sqlalchemy as sa

from domain.db import connected
from domain.models import Product
from domain.record_sources import ORDER_LINE_RECORDS as lines
from rules.to_python import attribute_number

WALLET_PREFIX = "wallet."


@dataclass(frozen=True)
class Spend:
    category: Optional[str]
    revenue: float
    margin: Optional[float]
    orders: int
    share: Optional[float]
    sku: Optional[str] = None  # set for spend per product
    name: Optional[str] = None


def _in_period(start: Optional[date], end: date) -> sa.ColumnElement:
    on_or_before = lines.c.ordered_at <= sa.literal(end, sa.Date)
    return on_or_before if start is None else sa.and_(lines.c.ordered_at >= sa.literal(start, sa.Date), on_or_before)


def _grouped(keys: list[sa.ColumnElement], customer_ids: list[int], start: Optional[date], end: date) -> sa.Subquery:
    """Revenue, margin (None if any unknown), orders and share per (customer id, *keys)."""
    revenue = sa.func.sum(lines.c.amount)
    return (sa.select(lines.c.customer_id, *keys, revenue.label("revenue"),
                      sa.case((sa.func.count(sa.case((lines.c.margin.is_(None), 1))) > 0, sa.null()),
                              else_=sa.func.sum(lines.c.margin)).label("margin"),
                      sa.func.count(sa.distinct(lines.c.order_id)).label("orders"),
                      sa.func.sum(revenue).over(partition_by=lines.c.customer_id).label("customer_revenue"))
            .where(lines.c.customer_id.in_(sorted(set(customer_ids))), _in_period(start, end))
            .group_by(lines.c.customer_id, *keys)
            .subquery("spend"))


def _share(revenue: float, total: Optional[float]) -> Optional[float]:
    return revenue / total if total else None


def spend_by_category(bind: Any, customer_ids: list[int], start: Optional[date], end: date
                      ) -> dict[int, list[Spend]]:
    """Each customer's spend per category in [start, end] (start None: all history), the largest revenue first."""
    if not customer_ids:
        return {}
    g = _grouped([lines.c.category], customer_ids, start, end)
    stmt = sa.select(g).order_by(g.c.customer_id, g.c.revenue.desc(), g.c.category)
    out: dict[int, list[Spend]] = defaultdict(list)
    with connected(bind) as conn:
        for r in conn.execute(stmt):
            out[r.customer_id].append(Spend(r.category, float(r.revenue), _number(r.margin), int(r.orders),
                                            _share(float(r.revenue), _number(r.customer_revenue))))
    return dict(out)


def spend_by_product(bind: Any, customer_ids: list[int], start: Optional[date], end: date, first: int
                     ) -> dict[int, list[Spend]]:
    """Each customer's `first` products by revenue in [start, end] (ties by sku); shares of all its revenue."""
    if not customer_ids or first <= 0:
        return {}
    products = Product.__table__
    g = _grouped([lines.c.product, lines.c.category], customer_ids, start, end)
    rank = sa.func.row_number().over(partition_by=g.c.customer_id, order_by=[g.c.revenue.desc(), g.c.product])
    ranked = sa.select(g, rank.label("rank")).subquery("ranked")
    stmt = (sa.select(ranked, products.c.name)
            .select_from(ranked.join(products, products.c.sku == ranked.c.product))
            .where(ranked.c.rank <= first)
            .order_by(ranked.c.customer_id, ranked.c.rank))
    out: dict[int, list[Spend]] = defaultdict(list)
    with connected(bind) as conn:
        for r in conn.execute(stmt):
            out[r.customer_id].append(Spend(r.category, float(r.revenue), _number(r.margin), int(r.orders),
                                            _share(float(r.revenue), _number(r.customer_revenue)),
                                            sku=r.product, name=r.name))
    return dict(out)


def wallet(attributes: Optional[dict], category: Optional[str]) -> Optional[float]:
    """The customer's estimated wallet for a category: attribute `wallet.<category>` when it is a positive number."""
    if category is None or not attributes:
        return None
    value = attribute_number(attributes.get(WALLET_PREFIX + category))
    return value if value is not None and value > 0 else None


def share_of_wallet(attributes: Optional[dict], spend: Spend) -> Optional[float]:
    size = wallet(attributes, spend.category)
    return spend.revenue / size if size else None


def _number(value: Any) -> Optional[float]:
    return None if value is None else float(value)
