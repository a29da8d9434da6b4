"""Batched reads for the API: records of many parents in one statement each, so a page of customers with their
nested lists costs a fixed number of statements (schema.loaders wraps each function in a DataLoader).

Each function is synchronous and runs in a worker thread; the keys it is given come from one GraphQL level.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, Hashable, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from domain.models import (Complaint, Customer, Delivery, EvaluationRun, Interaction, Invoice, Opportunity, Order,
                           RuleSet, Survey)


@dataclass(frozen=True)
class ChildList:
    """How to list one kind of child record under its parent, newest first."""

    table: sa.Table
    parent_column: str
    order_by: tuple[str, ...]  # columns, descending, ending with the primary key so the order is total


CHILD_LISTS = {
    "orders": ChildList(Order.__table__, "customer_id", ("ordered_at", "id")),
    "complaints": ChildList(Complaint.__table__, "customer_id", ("opened_at", "id")),
    "deliveries": ChildList(Delivery.__table__, "customer_id", ("promised_at", "id")),
    "interactions": ChildList(Interaction.__table__, "customer_id", ("occurred_at", "id")),
    "surveys": ChildList(Survey.__table__, "customer_id", ("answered_at", "id")),
    "opportunities": ChildList(Opportunity.__table__, "customer_id", ("opened_at", "id")),
    "invoices": ChildList(Invoice.__table__, "customer_id", ("issued_at", "id")),
    "subsidiaries": ChildList(Customer.__table__, "parent_id", ("id",)),
    "referrals": ChildList(Customer.__table__, "referred_by_id", ("id",)),
}


def _select(engine: Engine, stmt: sa.Select) -> list[Row]:
    with engine.connect() as conn:
        return list(conn.execute(stmt))


def rows_by_key(engine: Engine, table: sa.Table, column: str, keys: Sequence[Hashable]) -> list[Optional[Row]]:
    """The row whose `column` equals each key (None where there is none), in the order of the keys."""
    rows = _select(engine, sa.select(table).where(table.c[column].in_(list(keys))))
    found = {row._mapping[column]: row for row in rows}
    return [found.get(k) for k in keys]


def rows_grouped(engine: Engine, table: sa.Table, column: str, order: str, keys: Sequence[Hashable]) -> list[list[Row]]:
    """Every row whose `column` equals each key, ordered by `order`, in the order of the keys."""
    rows = _select(engine, sa.select(table).where(table.c[column].in_(list(keys))).order_by(table.c[column],
                                                                                             table.c[order]))
    groups: dict[Hashable, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row._mapping[column]].append(row)
    return [groups.get(k, []) for k in keys]


def _typed(column: sa.Column, value: Any) -> Any:
    """Cursor keys travel as JSON; dates come back as ISO text and must be dates again for the driver."""
    if isinstance(column.type, sa.Date) and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def child_pages(engine: Engine, spec: ChildList, parent_ids: list[int], limit: int,
                after: Optional[tuple]) -> dict[int, list[Row]]:
    """Up to `limit` children of each parent, newest first, after the keyset `after`: one statement for all."""
    table = spec.table
    parent = table.c[spec.parent_column]
    order_cols = [table.c[c] for c in spec.order_by]
    rank = sa.func.row_number().over(partition_by=parent, order_by=[c.desc() for c in order_cols])
    inner = sa.select(table, rank.label("_rank")).where(parent.in_(parent_ids))
    if after is not None:
        bounds = [sa.literal(_typed(c, v), type_=c.type) for c, v in zip(order_cols, after)]
        inner = inner.where(sa.tuple_(*order_cols) < sa.tuple_(*bounds))
    sub = inner.subquery()
    rows = _select(engine, sa.select(sub).where(sub.c._rank <= limit).order_by(sub.c[spec.parent_column],
                                                                               sub.c._rank))
    grouped: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row._mapping[spec.parent_column]].append(row)
    return grouped


def child_counts(engine: Engine, spec: ChildList, parent_ids: Sequence[int]) -> list[int]:
    """How many children each parent has, in the order of the parents."""
    parent = spec.table.c[spec.parent_column]
    rows = _select(engine, sa.select(parent, sa.func.count()).where(parent.in_(list(parent_ids))).group_by(parent))
    counts = {r[0]: r[1] for r in rows}
    return [counts.get(k, 0) for k in parent_ids]


def rule_versions_of_runs(engine: Engine, run_ids: Sequence[int]) -> list[Optional[int]]:
    """The published rule set version each evaluation run used (None for a run of an unpublished text)."""
    runs, sets = EvaluationRun.__table__, RuleSet.__table__
    rows = _select(engine, sa.select(runs.c.id, sets.c.version)
                   .select_from(runs.join(sets, sets.c.id == runs.c.rule_set_id))
                   .where(runs.c.id.in_(list(run_ids))))
    found = {r[0]: r[1] for r in rows}
    return [found.get(r) for r in run_ids]
