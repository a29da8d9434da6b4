"""Value reports over the stored scores, evaluations and orders (read by GraphQL).

- `value_summary(engine)`: per tier, customers, share of customers, revenue, profit, share of profit. Together these
  show the customer pyramid (few key customers, many small ones) and the inverted profit pyramid (the few bring most
  of the profit, and the bottom can destroy some of it). A total row is included.
- `arpu_by_tier(engine, months, as_of)`: ARPU per calendar month and tier.
- `top_customers(engine, by, region, sku, start=, end=, first=)`: the largest, most profitable or fastest-growing
  customers in a period, optionally for one region and/or one product.

Every query groups and joins on customer id. Dates, names and limits reach SQL only as bound parameters. The only
SQL text built in Python is column names picked from fixed lists.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from rules.windows import add_months

__all__ = ["TierValue", "ValueSummary", "value_summary", "TierArpu", "arpu_by_tier", "TopCustomer",
           "top_customers", "TOTAL"]

TOTAL = "total"


def _share(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return part / whole


# ----------------------------------------------------------------------------------------------------------------
# Value per tier
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TierValue:
    tier: str | None  # None: scored customers without an evaluation; "total" for the total row
    customers: int
    customer_share: float | None
    revenue: float  # sum of revenue_12m
    profit: float | None  # sum of the known profit_12m (None when no customer's profit is known)
    profit_share: float | None  # profit / total profit (None when total profit <= 0 or unknown)


@dataclass(frozen=True)
class ValueSummary:
    as_of: date | None  # of the value run the scores come from
    tiers: list[TierValue]  # in tier-rule order (the rule's line), customers without a tier last
    total: TierValue


_SUMMARY_SQL = sa.text("""
SELECT e.tier AS tier, MIN(e.tier_line) AS tier_line, COUNT(*) AS customers,
    SUM(s.revenue_12m) AS revenue, SUM(s.profit_12m) AS profit, MAX(s.as_of) AS as_of
FROM customer_scores s
LEFT JOIN customer_evaluations e ON e.customer_id = s.customer_id
GROUP BY e.tier
""")


def value_summary(engine: Engine) -> ValueSummary:
    """Customers, revenue and profit (12 months, from customer_scores) per tier (from customer_evaluations)."""
    with engine.connect() as conn:
        rows = conn.execute(_SUMMARY_SQL).all()
    rows = sorted(rows, key=lambda r: (r.tier is None, r.tier_line if r.tier_line is not None else 1 << 30,
                                       r.tier or ""))
    n = sum(int(r.customers) for r in rows)
    revenue = float(sum(float(r.revenue or 0.0) for r in rows))
    known = [float(r.profit) for r in rows if r.profit is not None]
    profit = float(sum(known)) if known else None
    positive = profit if profit is not None and profit > 0 else None
    tiers = [TierValue(r.tier, int(r.customers), _share(int(r.customers), n), float(r.revenue or 0.0),
                       None if r.profit is None else float(r.profit),
                       _share(None if r.profit is None else float(r.profit), positive)) for r in rows]
    as_ofs = [r.as_of for r in rows if r.as_of is not None]
    as_of = max(as_ofs) if as_ofs else None
    if isinstance(as_of, str):
        as_of = date.fromisoformat(as_of)
    total = TierValue(TOTAL, n, 1.0 if n else None, revenue, profit, 1.0 if positive else None)
    return ValueSummary(as_of, tiers, total)


# ----------------------------------------------------------------------------------------------------------------
# ARPU per month and tier
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TierArpu:
    month: date  # first day of the calendar month
    start: date  # first day counted (= month)
    end: date  # last day counted: the month's last day, or as_of for the month of as_of
    tier: str | None
    customers: int  # customers currently in the tier (customer_evaluations), buying that month or not
    revenue: float  # their order revenue in [start, end]
    arpu: float | None  # revenue / customers


def month_bounds(months: int, as_of: date) -> list[tuple[date, date]]:
    """The `months` calendar months ending with as_of's month, oldest first; the last one ends on as_of."""
    if months < 1 or months > 240:
        raise ValueError(f"months must be between 1 and 240, got {months}")
    first = as_of.replace(day=1)
    out = []
    for back in range(months - 1, -1, -1):
        start = add_months(first, -back)
        end = min(add_months(start, 1) - timedelta(days=1), as_of)
        out.append((start, end))
    return out


def arpu_by_tier(engine: Engine, months: int, as_of: date) -> list[TierArpu]:
    """ARPU = revenue of the tier's customers in the month / number of customers in the tier.

    Tier membership is the current one (customer_evaluations): the question answered is "what does an average
    customer of today's key tier bring per month", over the last `months` calendar months up to as_of. Every
    customer of the tier counts in the denominator, whether or not it ordered that month. One pass over orders,
    one column per month (conditional aggregation), grouped by customer, joined to the evaluations on customer id."""
    bounds = month_bounds(months, as_of)
    params: dict[str, date] = {"lo": bounds[0][0], "hi": bounds[-1][1]}
    cols = []
    for i, (s, e) in enumerate(bounds):
        params[f"s{i}"], params[f"e{i}"] = s, e
        cols.append(f"SUM(CASE WHEN ordered_at BETWEEN :s{i} AND :e{i} THEN amount ELSE 0 END) AS m{i}")
    sums = ", ".join(f"SUM(COALESCE(o.m{i}, 0)) AS m{i}" for i in range(len(bounds)))
    sql = f"""
WITH o AS (
    SELECT customer_id, {", ".join(cols)}
    FROM orders WHERE ordered_at BETWEEN :lo AND :hi
    GROUP BY customer_id
)
SELECT e.tier AS tier, MIN(e.tier_line) AS tier_line, COUNT(*) AS customers, {sums}
FROM customer_evaluations e
LEFT JOIN o ON o.customer_id = e.customer_id
GROUP BY e.tier
"""
    stmt = sa.text(sql).bindparams(*(sa.bindparam(k, type_=sa.Date) for k in params))
    with engine.connect() as conn:
        rows = conn.execute(stmt, params).mappings().all()
    rows = sorted(rows, key=lambda r: (r["tier"] is None,
                                       r["tier_line"] if r["tier_line"] is not None else 1 << 30, r["tier"] or ""))
    out = []
    for i, (s, e) in enumerate(bounds):
        for r in rows:
            n, rev = int(r["customers"]), float(r[f"m{i}"] or 0.0)
            out.append(TierArpu(s, s, e, r["tier"], n, rev, rev / n if n else None))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Top customers
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TopCustomer:
    customer_id: int
    external_id: str
    name: str
    region: str | None
    revenue: float  # in [start, end] (of the product only, with sku)
    previous_revenue: float  # in the same-length period just before start
    growth: float | None  # revenue / previous_revenue - 1; None when previous_revenue = 0
    profit: float | None  # margin - cost to serve in [start, end]; with sku: the product lines' margin only


By = Literal["revenue", "growth", "profit"]
_ORDER_BY = {"revenue": "revenue", "growth": "growth", "profit": "profit"}


def top_customers(engine: Engine, by: By = "revenue", region: str | None = None, sku: str | None = None, *,
                  start: date, end: date, first: int = 20) -> list[TopCustomer]:
    """The `first` customers with the largest revenue / profit / growth in [start, end] (inclusive), optionally
    only customers of `region` and only the lines of product `sku`.

    growth compares [start, end] with the period of the same length just before it. Customers whose growth (or
    profit) is unknown are left out of that ranking. Ties are broken by customer id."""
    if by not in _ORDER_BY:
        raise ValueError(f"by must be one of {sorted(_ORDER_BY)}, not {by!r}")
    if end < start:
        raise ValueError("end is before start")
    if first < 1:
        raise ValueError("first must be at least 1")
    length = (end - start).days + 1
    params: dict = {"start": start, "end": end, "prev_start": start - timedelta(days=length), "first": first}
    dates = ("start", "end", "prev_start")
    with engine.connect() as conn:
        if sku is not None:
            pid = conn.execute(sa.text("SELECT id FROM products WHERE sku = :sku"), {"sku": sku}).scalar()
            if pid is None:
                return []
            params["product_id"] = pid
            source = """
    SELECT l.customer_id AS customer_id,
        SUM(CASE WHEN o.ordered_at >= :start THEN l.quantity * l.unit_price ELSE 0 END) AS revenue,
        SUM(CASE WHEN o.ordered_at < :start THEN l.quantity * l.unit_price ELSE 0 END) AS previous_revenue,
        SUM(CASE WHEN o.ordered_at >= :start THEN l.quantity * (l.unit_price - l.unit_cost) END) AS margin
    FROM order_lines l
    JOIN orders o ON o.id = l.order_id AND o.customer_id = l.customer_id
    WHERE l.product_id = :product_id AND o.ordered_at BETWEEN :prev_start AND :end
    GROUP BY l.customer_id"""
            cost = "0"
            cost_ctes = ""
            cost_joins = ""
        else:
            source = """
    SELECT customer_id,
        SUM(CASE WHEN ordered_at >= :start THEN amount ELSE 0 END) AS revenue,
        SUM(CASE WHEN ordered_at < :start THEN amount ELSE 0 END) AS previous_revenue,
        SUM(CASE WHEN ordered_at >= :start THEN margin END) AS margin
    FROM orders
    WHERE ordered_at BETWEEN :prev_start AND :end
    GROUP BY customer_id"""
            cost_ctes = """,
ic AS (SELECT customer_id, SUM(cost) AS cost FROM interactions
       WHERE occurred_at BETWEEN :start AND :end GROUP BY customer_id),
kc AS (SELECT customer_id, SUM(cost) AS cost FROM complaints
       WHERE opened_at BETWEEN :start AND :end GROUP BY customer_id),
dc AS (SELECT customer_id, SUM(cost) AS cost FROM deliveries
       WHERE promised_at BETWEEN :start AND :end AND cost IS NOT NULL GROUP BY customer_id)"""
            cost_joins = """
    LEFT JOIN ic ON ic.customer_id = c.id
    LEFT JOIN kc ON kc.customer_id = c.id
    LEFT JOIN dc ON dc.customer_id = c.id"""
            cost = "COALESCE(ic.cost, 0) + COALESCE(kc.cost, 0) + COALESCE(dc.cost, 0)"
        where = ""
        if region is not None:
            where = "WHERE c.region = :region"
            params["region"] = region
        col = _ORDER_BY[by]
        sql = f"""
WITH agg AS ({source}
){cost_ctes},
v AS (
    SELECT c.id AS customer_id, c.external_id AS external_id, c.name AS name, c.region AS region,
        agg.revenue AS revenue, agg.previous_revenue AS previous_revenue,
        CASE WHEN agg.previous_revenue = 0 THEN NULL ELSE agg.revenue / agg.previous_revenue - 1 END AS growth,
        agg.margin - ({cost}) AS profit
    FROM customers c
    JOIN agg ON agg.customer_id = c.id{cost_joins}
    {where}
)
SELECT * FROM v WHERE {col} IS NOT NULL
ORDER BY {col} DESC, customer_id
LIMIT :first
"""
        stmt = sa.text(sql).bindparams(*(sa.bindparam(k, type_=sa.Date) for k in dates))
        rows = conn.execute(stmt, params).mappings().all()
    return [TopCustomer(int(r["customer_id"]), r["external_id"], r["name"], r["region"], float(r["revenue"]),
                        float(r["previous_revenue"]), None if r["growth"] is None else float(r["growth"]),
                        None if r["profit"] is None else float(r["profit"])) for r in rows]
