"""Relationship anniversaries for account managers: the customers whose anniversary comes within the next days,
and each customer's age in whole years, from domain.anniversary's one definition of customer since.

- upcoming on D within N days: the next anniversary is D to D + N (0 <= days until <= N), ordered by days until,
  then customer id. Customers who are not customers yet on D (customer since after D) and erased customers are
  left out.
- the anniversary's number: its year minus customer since's year (a customer since 29 February 2020 has its 3rd
  on 28 February 2023).
- relationship years on D: the largest N for which `customer for Ny` holds in the rule language (customer since
  before the first day of the N years ending on D). On 28 February of a common year a customer since 29 February
  has its anniversary (days until 0) while its year completes the next day, as `customer for 1y` says.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Row

from domain.anniversary import customer_since_sql, days_until_anniversary_sql, first_orders
from domain.db import connected
from domain.models import Customer, Order
from rules.windows import window_start

_customers, _orders = Customer.__table__, Order.__table__


def first_order_dates(bind: Any, customer_ids: list[int], day: date) -> dict[int, date]:
    """customer id -> its first order on or before `day` (customers without one are absent): one statement."""
    fo = first_orders(_orders, day)
    with connected(bind) as conn:
        return {r.customer_id: r.first_order for r in conn.execute(
            sa.select(fo).where(fo.c.customer_id.in_(sorted(set(customer_ids)))))}


def relationship_years(since: date, day: date) -> int:
    """Whole years a customer since `since` has been one on `day`: the largest N with `customer for Ny`."""
    years = day.year - since.year
    while years > 0 and not since < window_start(years, "y", day):
        years -= 1
    return max(years, 0)


@dataclass(frozen=True)
class UpcomingPage:
    rows: list[Row]  # customer columns plus `since` and `days_until`; up to limit + 1 (the extra: a next page)
    total: int


def upcoming_anniversaries(bind: Any, day: date, days: int, limit: int,
                           after: Optional[tuple[int, int]] = None) -> UpcomingPage:
    """Customers whose next anniversary on `day` is at most `days` days away, by (days until, id), keyset-paged
    after (days until, id): customers joined to their grouped first orders, one statement for the page and one
    for the count."""
    fo = first_orders(_orders, day)
    since = customer_since_sql(_customers.c.created_at, fo.c.first_order)
    known = (sa.select(_customers, since.label("since"), days_until_anniversary_sql(since, day).label("days_until"))
             .select_from(_customers.outerjoin(fo, fo.c.customer_id == _customers.c.id))
             .where(since <= sa.literal(day, sa.Date), _customers.c.erased_at.is_(None))
             .subquery("known"))
    within = known.c.days_until <= sa.literal(days, sa.Integer)
    page = sa.select(known).where(within)
    if after is not None:
        page = page.where(sa.tuple_(known.c.days_until, known.c.id)
                          > sa.tuple_(sa.literal(after[0], sa.Integer), sa.literal(after[1], sa.Integer)))
    page = page.order_by(known.c.days_until, known.c.id).limit(limit + 1)
    with connected(bind) as conn:
        rows = list(conn.execute(page))
        total = conn.execute(sa.select(sa.func.count()).select_from(known).where(within)).scalar_one()
    return UpcomingPage(rows, int(total))
