"""Listing customers: plain filters, a rule-language condition as of a date, keyset pages in id order."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from domain.data_date import data_today
from domain.models import Customer as CustomerTable
from domain.models import CustomerEvaluation
from rules import nodes
from rules.to_sql import compile_filter

customers_t = CustomerTable.__table__
evals_t = CustomerEvaluation.__table__


@dataclass(frozen=True)
class CustomerFilter:
    """Plain filters of the customer list; combined with AND."""

    region: Optional[str] = None
    industry: Optional[str] = None
    size: Optional[str] = None
    tier: Optional[str] = None
    status: Optional[str] = None
    tag: Optional[str] = None


@dataclass(frozen=True)
class CustomerPage:
    rows: list[Row]  # up to first + 1: the extra one only tells that a next page exists
    total: int
    as_of: Optional[date]  # the date the condition was evaluated at; None without a condition


def _clauses(flt: CustomerFilter) -> tuple[list[sa.ColumnElement], bool]:
    """WHERE clauses for the filter, and whether they need the evaluation results joined."""
    clauses: list[sa.ColumnElement] = []
    needs_eval = False
    for name in ("region", "industry", "size"):
        value = getattr(flt, name)
        if value is not None:
            clauses.append(customers_t.c[name] == value)
    for name in ("tier", "status"):
        value = getattr(flt, name)
        if value is not None:
            clauses.append(evals_t.c[name] == value)
            needs_eval = True
    if flt.tag is not None:
        # tags are a small JSON list; a LIKE on its text form works on both databases
        clauses.append(sa.cast(evals_t.c.tags, sa.String).like(f'%"{_like_escape(flt.tag)}"%', escape="\\"))
        needs_eval = True
    return clauses, needs_eval


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_customers(engine: Engine, first: int, after_id: Optional[int] = None,
                   flt: CustomerFilter = CustomerFilter(), condition: Any = None,
                   ruleset: Optional[nodes.RuleSet] = None, as_of: Optional[date] = None) -> CustomerPage:
    """A page of customers matching the filter and the checked condition (as of `as_of`, or the data's "now":
    the latest evaluation's date), with the total count."""
    clauses, needs_eval = _clauses(flt)
    day = None
    if condition is not None:
        day = data_today(engine, as_of)
        matching = compile_filter(condition, ruleset, day).subquery()
        clauses.append(customers_t.c.id.in_(sa.select(matching.c.customer_id)))
    source = customers_t.join(evals_t, evals_t.c.customer_id == customers_t.c.id) if needs_eval else customers_t
    page = sa.select(customers_t).select_from(source).where(*clauses)
    if after_id is not None:
        page = page.where(customers_t.c.id > after_id)
    page = page.order_by(customers_t.c.id).limit(first + 1)
    total = sa.select(sa.func.count()).select_from(source).where(*clauses)
    with engine.connect() as conn:
        return CustomerPage(list(conn.execute(page)), conn.execute(total).scalar_one(), day)
