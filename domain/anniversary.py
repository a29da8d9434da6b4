"""How long a customer has been one, and when its next anniversary is: defined once, in Python and in SQL.

- customer since: the earlier of its created date and its first order (on or before the day asked about).
- `customer for W` on D: customer since on or before the day a window W ending on D starts, minus one: for 5y on
  2026-12-02 that is since 2021-12-02 or earlier (rules.windows gives the window's first day).
- the next anniversary on D: the first anniversary of customer since (one year or more after it) on or after D.
  A customer since 29 February has its anniversary on 28 February in common years.
- days until anniversary on D: days from D to the next anniversary, 0 on the day itself.
"""
from __future__ import annotations

import calendar
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement


def customer_since(created_at: date, first_order: date | None) -> date:
    return created_at if first_order is None or created_at <= first_order else first_order


def _on_year(since: date, year: int) -> date:
    if since.month == 2 and since.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return since.replace(year=year)


def next_anniversary(since: date, day: date) -> date:
    year = max(day.year, since.year + 1)
    candidate = _on_year(since, year)
    return candidate if candidate >= day else _on_year(since, year + 1)


def days_until_anniversary(since: date, day: date) -> int:
    return (next_anniversary(since, day) - day).days


# ---------- SQL (SQLite and PostgreSQL), `day` a Python date: every value bound ----------

class _MonthDay(ColumnElement):
    """'MM-DD' of a date column."""

    inherit_cache = True
    type = sa.String()

    def __init__(self, col: ColumnElement):
        self.col = col


class _TextDate(ColumnElement):
    """A 'YYYY-MM-DD' text as a date (SQLite keeps dates as that text already)."""

    inherit_cache = True
    type = sa.Date()

    def __init__(self, text: ColumnElement):
        self.text = text


@compiles(_MonthDay)
def _month_day_sqlite(el, compiler, **kw):
    return compiler.process(sa.func.strftime("%m-%d", el.col), **kw)


@compiles(_MonthDay, "postgresql")
def _month_day_pg(el, compiler, **kw):
    return compiler.process(sa.func.to_char(el.col, "MM-DD"), **kw)


@compiles(_TextDate)
def _text_date_sqlite(el, compiler, **kw):
    return compiler.process(el.text, **kw)


@compiles(_TextDate, "postgresql")
def _text_date_pg(el, compiler, **kw):
    return compiler.process(sa.cast(el.text, sa.Date), **kw)


def customer_since_sql(created_at: ColumnElement, first_order: ColumnElement) -> ColumnElement:
    return sa.case((sa.or_(first_order.is_(None), created_at <= first_order), created_at), else_=first_order)


def days_until_anniversary_sql(since: ColumnElement, day: date) -> ColumnElement:
    """Days from `day` to the next anniversary of the date column `since` (which is on or before `day`)."""
    from rules.to_sql import DaysBetween  # the one date difference the SQL computes, per dialect

    md = _MonthDay(since)
    this_year = sa.and_(md >= sa.literal(day.strftime("%m-%d"), sa.String), since != sa.literal(day, sa.Date))

    def on_year(year: int) -> ColumnElement:
        month_day = md if calendar.isleap(year) else sa.case((md == sa.literal("02-29", sa.String),
                                                               sa.literal("02-28", sa.String)), else_=md)
        return sa.literal(f"{year:04d}-", sa.String) + month_day

    text = sa.case((this_year, on_year(day.year)), else_=on_year(day.year + 1))
    return DaysBetween(_TextDate(text), sa.literal(day, sa.Date))


def first_orders(orders: Any, day: date | None = None) -> Any:
    """customer_id -> first order date (on or before `day`), as a grouped subquery."""
    q = sa.select(orders.c.customer_id, sa.func.min(orders.c.ordered_at).label("first_order"))
    if day is not None:
        q = q.where(orders.c.ordered_at <= sa.literal(day, sa.Date))
    return q.group_by(orders.c.customer_id).subquery("first_orders")
