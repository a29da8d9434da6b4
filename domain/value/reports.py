"""Value reports over the stored scores, evaluations and orders (read by GraphQL).

- `value_summary(engine)`: per tier, customers, share of customers, revenue, profit, share of profit. Together these
  show the customer pyramid (few key customers, many small ones) and the inverted profit pyramid (the few bring most
  of the profit, and the bottom can destroy some of it). A total row is included.
- `value_summary_as_of(engine, as_of)`: the same for a past day: the tiers in force then, and revenue / profit of
  the 12 months up to it from the value batch's own aggregate query (domain.value.scores).
- `arpu_by_tier(engine, months, as_of, include_current_month=)`: ARPU per calendar month and tier, each month
  with the tiers in force at its end (domain.tiers_in_force); the incomplete month of as_of only when asked.
- `top_customers(engine, by, region, sku, start=, end=, first=)`: the largest, most profitable or fastest-growing
  customers in a period, optionally for one region and/or one product; or those whose profit was negative, the
  most negative first.
- `monthly_revenue(engine, customer_ids, months, today)`: per customer, revenue, margin and orders of each calendar
  month up to today's, zero months included.

Every query groups and joins on customer id. Dates, names and limits reach SQL only as bound parameters. The only
SQL text built in Python is column names picked from fixed lists.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.models import CustomerEvaluation, Order
from domain.tiers_in_force import tiers_in_force
from domain.value.scores import aggregates_sql, score_windows
from rules.windows import add_months

__all__ = ["TierValue", "ValueSummary", "value_summary", "value_summary_as_of", "TierArpu", "arpu_by_tier",
           "TopCustomer", "top_customers", "MonthRevenue", "monthly_revenue", "TOTAL"]

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
    as_ofs = [_as_date(r.as_of) for r in rows if r.as_of is not None]
    return _summary(rows, max(as_ofs) if as_ofs else None)


def _scores_as_of(as_of: date) -> sa.Subquery:
    """customer_id, revenue_12m and profit_12m as of `as_of`, for every customer created by then: the value
    batch's aggregate query itself (one definition of each figure), as a subquery."""
    windows = score_windows(as_of)
    params = windows.params()
    stmt = (sa.text(aggregates_sql("revenue"))
            .bindparams(*(sa.bindparam(k, v, type_=sa.Date) for k, v in params.items()))
            .columns(sa.column("customer_id", sa.Integer), sa.column("revenue_12m", sa.Float),
                     sa.column("profit_12m", sa.Float)))
    return stmt.subquery("scores_as_of")


def value_summary_as_of(engine: Engine, as_of: date) -> ValueSummary:
    """value_summary for a past day: customers per tier in force on `as_of` (domain.tiers_in_force), with their
    revenue and profit of the 12 months up to it computed as the value batch computes them. Tiers are in the rule
    order of today's evaluation (tiers no longer in use after those)."""
    scores = _scores_as_of(as_of)
    t = tiers_in_force(as_of).subquery("tiers")
    evals = CustomerEvaluation.__table__
    lines = (sa.select(evals.c.tier, sa.func.min(evals.c.tier_line).label("tier_line"))
             .group_by(evals.c.tier).subquery("lines"))
    stmt = (sa.select(t.c.tier, lines.c.tier_line, sa.func.count().label("customers"),
                      sa.func.sum(scores.c.revenue_12m).label("revenue"),
                      sa.func.sum(scores.c.profit_12m).label("profit"))
            .select_from(t.join(scores, scores.c.customer_id == t.c.customer_id)
                         .outerjoin(lines, lines.c.tier == t.c.tier))
            .group_by(t.c.tier, lines.c.tier_line))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return _summary(rows, as_of)


def _summary(rows, as_of: date | None) -> ValueSummary:
    """Shares and the total row from (tier, tier_line, customers, revenue, profit) rows."""
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
    total = TierValue(TOTAL, n, 1.0 if n else None, revenue, profit, 1.0 if positive else None)
    return ValueSummary(as_of, tiers, total)


# ----------------------------------------------------------------------------------------------------------------
# ARPU per month and tier
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TierArpu:
    month: date  # first day of the calendar month
    start: date  # first day counted (= month)
    end: date  # last day counted: the month's last day, or as_of for the (incomplete) month of as_of
    tier: str | None  # the tier in force at `end`; None: no tier then (not evaluated, or no evaluation in force)
    evaluation_as_of: date | None  # as_of of the evaluation in force at `end`; None when there was none
    customers: int  # customers in that tier at `end`, buying that month or not
    revenue: float  # their order revenue in [start, end]
    arpu: float | None  # revenue / customers


def month_bounds(months: int, as_of: date, *, include_current_month: bool = False) -> list[tuple[date, date]]:
    """The `months` calendar months up to as_of, oldest first.

    The month of as_of is complete when as_of is its last day; otherwise it is included (ending on as_of) only
    when asked, and the months end with the one before."""
    if months < 1 or months > 240:
        raise ValueError(f"months must be between 1 and 240, got {months}")
    first = as_of.replace(day=1)
    complete = add_months(first, 1) - timedelta(days=1) == as_of
    last = first if complete or include_current_month else add_months(first, -1)
    out = []
    for back in range(months - 1, -1, -1):
        start = add_months(last, -back)
        end = min(add_months(start, 1) - timedelta(days=1), as_of)
        out.append((start, end))
    return out


def _as_date(v) -> date | None:
    return date.fromisoformat(v) if isinstance(v, str) else v


def arpu_by_tier(engine: Engine, months: int, as_of: date, *, include_current_month: bool = False
                 ) -> list[TierArpu]:
    """ARPU = revenue of the tier's customers in the month / number of customers in the tier.

    Each month uses the tiers in force at its last counted day (domain.tiers_in_force): a customer that moved
    from "key" to "general" in June counts as "key" in May. Every customer of the tier counts in the denominator,
    whether or not it ordered that month. Customers without a tier then (created after the evaluation in force,
    or every customer of a month before the first evaluation) form the tier None row. One pass over orders with
    one column per month (conditional aggregation), grouped by customer, joined to each month's tiers on customer
    id."""
    bounds = month_bounds(months, as_of, include_current_month=include_current_month)
    orders = Order.__table__
    amount_in = [sa.func.sum(sa.case((orders.c.ordered_at.between(sa.literal(s, sa.Date), sa.literal(e, sa.Date)),
                                      orders.c.amount), else_=0.0)).label(f"m{i}")
                 for i, (s, e) in enumerate(bounds)]
    spent = (sa.select(orders.c.customer_id, *amount_in)
             .where(orders.c.ordered_at.between(sa.literal(bounds[0][0], sa.Date), sa.literal(bounds[-1][1], sa.Date)))
             .group_by(orders.c.customer_id).cte("spent"))
    per_month = []
    for i, (_s, e) in enumerate(bounds):
        t = tiers_in_force(e).subquery(f"t{i}")
        per_month.append(
            sa.select(sa.literal(i).label("month_index"), t.c.tier, t.c.evaluation_as_of,
                      sa.func.count().label("customers"),
                      sa.func.sum(sa.func.coalesce(spent.c[f"m{i}"], 0.0)).label("revenue"))
            .select_from(t.outerjoin(spent, spent.c.customer_id == t.c.customer_id))
            .group_by(t.c.tier, t.c.evaluation_as_of))
    evals = CustomerEvaluation.__table__
    with engine.connect() as conn:
        rows = conn.execute(sa.union_all(*per_month)).mappings().all()
        lines = {r.tier: r.line for r in conn.execute(
            sa.select(evals.c.tier, sa.func.min(evals.c.tier_line).label("line")).group_by(evals.c.tier))}

    def order(r) -> tuple:  # month, then the rule order of today's tiers, tiers no longer in use, no tier last
        line = lines.get(r["tier"])
        return (r["month_index"], r["tier"] is None, line is None, line or 0, r["tier"] or "")

    out = []
    for r in sorted(rows, key=order):
        s, e = bounds[int(r["month_index"])]
        n, rev = int(r["customers"]), float(r["revenue"] or 0.0)
        out.append(TierArpu(s, s, e, r["tier"], _as_date(r["evaluation_as_of"]), n, rev, rev / n if n else None))
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


By = Literal["revenue", "growth", "profit", "negative_value"]
# by -> (column, condition on it, direction): negative_value keeps the customers whose profit is below zero, the
# most negative first
_ORDER_BY = {"revenue": ("revenue", "IS NOT NULL", "DESC"), "growth": ("growth", "IS NOT NULL", "DESC"),
             "profit": ("profit", "IS NOT NULL", "DESC"), "negative_value": ("profit", "< 0", "ASC")}


def top_customers(engine: Engine, by: By = "revenue", region: str | None = None, sku: str | None = None, *,
                  start: date, end: date, first: int = 20) -> list[TopCustomer]:
    """The `first` customers with the largest revenue / profit / growth in [start, end] (inclusive), or with
    negative_value those whose profit there is below zero, the most negative first; optionally only customers of
    `region` and only the lines of product `sku`.

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
        col, keep, direction = _ORDER_BY[by]
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
SELECT * FROM v WHERE {col} {keep}
ORDER BY {col} {direction}, customer_id
LIMIT :first
"""
        stmt = sa.text(sql).bindparams(*(sa.bindparam(k, type_=sa.Date) for k in dates))
        rows = conn.execute(stmt, params).mappings().all()
    return [TopCustomer(int(r["customer_id"]), r["external_id"], r["name"], r["region"], float(r["revenue"]),
                        float(r["previous_revenue"]), None if r["growth"] is None else float(r["growth"]),
                        None if r["profit"] is None else float(r["profit"])) for r in rows]


# ----------------------------------------------------------------------------------------------------------------
# One customer's revenue per calendar month
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MonthRevenue:
    month: date  # first day of the calendar month
    revenue: float  # order amounts dated in the month (up to today in today's month)
    margin: float | None  # their margins; None when any of those orders has an unknown margin
    orders: int


def monthly_revenue(engine: Engine, customer_ids: list[int], months: int, today: date
                    ) -> dict[int, list[MonthRevenue]]:
    """For each customer, the `months` calendar months ending with today's month (that one up to today), oldest
    first, months without orders included (zero). One statement for all the customers: their orders joined to the
    months (a small UNION ALL of the month bounds) and grouped by (customer id, month)."""
    bounds = month_bounds(months, today, include_current_month=True)
    if not customer_ids:
        return {}
    each = [sa.select(sa.literal(i, sa.Integer).label("month_index"), sa.literal(s, sa.Date).label("first_day"),
                      sa.literal(e, sa.Date).label("last_day")) for i, (s, e) in enumerate(bounds)]
    calendar = (sa.union_all(*each) if len(each) > 1 else each[0]).cte("calendar")
    o = Order.__table__
    stmt = (sa.select(o.c.customer_id, calendar.c.month_index,
                      sa.func.sum(o.c.amount).label("revenue"), sa.func.sum(o.c.margin).label("margin"),
                      sa.func.count().label("orders"),
                      sa.func.count(sa.case((o.c.margin.is_(None), 1))).label("margin_unknown"))
            .select_from(o.join(calendar, o.c.ordered_at.between(calendar.c.first_day, calendar.c.last_day)))
            .where(o.c.customer_id.in_(sorted(set(customer_ids))),
                   o.c.ordered_at.between(sa.literal(bounds[0][0], sa.Date), sa.literal(today, sa.Date)))
            .group_by(o.c.customer_id, calendar.c.month_index))
    with engine.connect() as conn:
        found = {(r.customer_id, r.month_index): r for r in conn.execute(stmt)}
    out: dict[int, list[MonthRevenue]] = {}
    for cid in customer_ids:
        per_month = []
        for i, (start, _end) in enumerate(bounds):
            r = found.get((cid, i))
            if r is None:
                per_month.append(MonthRevenue(start, 0.0, 0.0, 0))
            else:
                margin = None if r.margin_unknown else float(r.margin or 0.0)
                per_month.append(MonthRevenue(start, float(r.revenue or 0.0), margin, int(r.orders)))
        out[cid] = per_month
    return out
