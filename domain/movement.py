"""Who moved between two days, and what was in force on a day.

- `movement(start, end, kind)`: per customer the tier (or status) in force on `start` against the one in force on
  `end` (domain.tiers_in_force.labels_in_force on both days, joined on customer id), grouped by (old, new) in ONE
  statement; unchanged pairs are included (a Sankey shows who stayed), and customers created after `start` have
  old = NULL (new customers). Each flow carries the revenue of its customers in the 12 months up to `start`: the
  revenue_12m window of the value scores (domain.value.scores.score_windows(start).w12, both ends inclusive).
- `flow_customers`: the customers of one (old, new) flow, the biggest revenue first, keyset-paged.
- `status_counts(day)`: customers per status in force on a day (None: the stored, latest evaluation).
- `evaluation_dates()`: the distinct as_of of the batch runs, newest first.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Optional, Union

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.db import connected
from domain.models import CustomerEvaluation, EvaluationRun, Order
from domain.tiers_in_force import KINDS, labels_in_force
from domain.value.scores import score_windows

orders_t = Order.__table__
runs_t = EvaluationRun.__table__
evals_t = CustomerEvaluation.__table__

Bind = Union[Engine, Connection]


@dataclass(frozen=True)
class Flow:
    old: Optional[str]  # in force on start; None: no label then (created after start, or not evaluated)
    new: Optional[str]  # in force on end
    customers: int
    revenue: float  # order amounts of the 12 months up to start


@dataclass(frozen=True)
class MovedCustomer:
    customer_id: int
    revenue: float


@dataclass(frozen=True)
class LabelCount:
    label: Optional[str]
    customers: int


def _p(value, type_) -> sa.BindParameter:
    return sa.bindparam(None, value, type_=type_)


def _check(start: date, end: date, kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if start > end:
        raise ValueError(f"start ({start}) is after end ({end})")


def revenue_12m(day: date) -> sa.Subquery:
    """customer_id, revenue: order amounts in the value scores' 12-month window up to `day` (customers with no
    order then have no row)."""
    w12 = score_windows(day).w12
    o = orders_t
    return (sa.select(o.c.customer_id, sa.func.sum(o.c.amount).label("revenue"))
            .where(o.c.ordered_at.between(_p(w12.start, sa.Date), _p(w12.end, sa.Date)))
            .group_by(o.c.customer_id).subquery("revenue_12m"))


def per_customer(start: date, end: date, kind: str) -> sa.Select:
    """One row per customer created on or before `end`: customer_id, old, new and revenue."""
    _check(start, end, kind)
    old = labels_in_force(start, kind).subquery("old_labels")
    new = labels_in_force(end, kind).subquery("new_labels")
    revenue = revenue_12m(start)
    joined = (new.outerjoin(old, old.c.customer_id == new.c.customer_id)
              .outerjoin(revenue, revenue.c.customer_id == new.c.customer_id))
    return sa.select(new.c.customer_id, old.c[kind].label("old"), new.c[kind].label("new"),
                     sa.func.coalesce(revenue.c.revenue, _p(0.0, sa.Float)).label("revenue")).select_from(joined)


def _flow_order(f: Flow) -> tuple:
    return (-f.customers, f.old is None, f.old or "", f.new is None, f.new or "")


def movement(bind: Bind, start: date, end: date, kind: str) -> list[Flow]:
    """Every (old, new) flow between `start` and `end` (both days' labels in force), the biggest first."""
    rows = per_customer(start, end, kind).subquery("per_customer")
    stmt = (sa.select(rows.c.old, rows.c.new, sa.func.count().label("customers"),
                      sa.func.sum(rows.c.revenue).label("revenue"))
            .group_by(rows.c.old, rows.c.new))
    with connected(bind) as conn:
        flows = [Flow(r.old, r.new, int(r.customers), float(r.revenue or 0.0)) for r in conn.execute(stmt)]
    return sorted(flows, key=_flow_order)


def same_label(column: sa.ColumnElement, value: Optional[str]) -> sa.ColumnElement:
    """`column` equals `value`, NULL matching NULL (a flow's old / new may be none)."""
    return column.is_(None) if value is None else column == _p(value, sa.String)


def keyset_after(revenue: sa.ColumnElement, customer_id: sa.ColumnElement,
                 after: Optional[tuple[float, int]]) -> Optional[sa.ColumnElement]:
    """The rows after (revenue, customer id) in the order revenue DESC, customer id ASC; None without `after`."""
    if after is None:
        return None
    r, c = _p(float(after[0]), sa.Float), _p(int(after[1]), sa.Integer)
    return sa.or_(revenue < r, sa.and_(revenue == r, customer_id > c))


def flow_customers(bind: Bind, start: date, end: date, kind: str, old: Optional[str], new: Optional[str], *,
                   limit: int, after: Optional[tuple[float, int]] = None) -> list[MovedCustomer]:
    """The customers of the flow old -> new, the biggest revenue first, ties by customer id, from a keyset
    `after` (revenue, customer id of the last row seen)."""
    rows = per_customer(start, end, kind).subquery("per_customer")
    q = sa.select(rows.c.customer_id, rows.c.revenue).where(same_label(rows.c.old, old), same_label(rows.c.new, new))
    later = keyset_after(rows.c.revenue, rows.c.customer_id, after)
    if later is not None:
        q = q.where(later)
    q = q.order_by(rows.c.revenue.desc(), rows.c.customer_id).limit(limit)
    with connected(bind) as conn:
        return [MovedCustomer(int(r.customer_id), float(r.revenue)) for r in conn.execute(q)]


def status_counts(bind: Bind, day: Optional[date]) -> list[LabelCount]:
    """Customers per status in force on `day`; None: per status of the stored (latest) evaluation. The largest
    count first, then by status (none last)."""
    if day is None:
        stmt = sa.select(evals_t.c.status.label("label"), sa.func.count().label("customers")).group_by(
            evals_t.c.status)
    else:
        s = labels_in_force(day, "status").subquery("in_force")
        stmt = sa.select(s.c.status.label("label"), sa.func.count().label("customers")).group_by(s.c.status)
    with connected(bind) as conn:
        found = [LabelCount(r.label, int(r.customers)) for r in conn.execute(stmt)]
    return sorted(found, key=lambda c: (-c.customers, c.label is None, c.label or ""))


def evaluation_dates(bind: Bind) -> list[date]:
    """The distinct as_of of the batch evaluation runs, newest first."""
    stmt = sa.select(runs_t.c.as_of).distinct().order_by(runs_t.c.as_of.desc())
    with connected(bind) as conn:
        return [date.fromisoformat(d) if isinstance(d, str) else d for d in conn.execute(stmt).scalars()]


def first_evaluation_as_of(bind: Bind) -> Optional[date]:
    """as_of of the earliest batch run (None: nothing was ever evaluated)."""
    with connected(bind) as conn:
        d = conn.execute(sa.select(sa.func.min(runs_t.c.as_of))).scalar()
    return date.fromisoformat(d) if isinstance(d, str) else d
