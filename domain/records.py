"""Loading customers' records for the per-customer (Python) rule path: one query per record kind."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from rules.to_python import CustomerRecords
from rules.to_sql import TABLES, customer_scores, customers


class CustomerNotFound(LookupError):
    pass


def _rows(conn: Connection, stmt) -> list:
    return list(conn.execute(stmt))


def _load(conn: Connection, ids: Iterable[int] | None) -> dict[int, CustomerRecords]:
    c = customers
    q = sa.select(c)
    if ids is not None:
        ids = list(ids)
        q = q.where(c.c.id.in_(ids))
    out = {row.id: CustomerRecords(customer=row) for row in conn.execute(q)}
    if not out:
        return out
    for source, table in TABLES.items():
        q = sa.select(table).order_by(table.c.customer_id, table.c.id)
        if ids is not None:
            q = q.where(table.c.customer_id.in_(ids))
        grouped: dict[int, list] = defaultdict(list)
        for row in conn.execute(q):
            grouped[row.customer_id].append(row)
        for cid, recs in out.items():
            recs.of(source).extend(grouped.get(cid, ()))
    scores = sa.select(customer_scores)
    if ids is not None:
        scores = scores.where(customer_scores.c.customer_id.in_(ids))
    for row in conn.execute(scores):
        if row.customer_id in out:
            out[row.customer_id].scores = row
    return out


def load_records(bind: Engine | Connection, customer_id: int) -> CustomerRecords:
    """One customer and all its orders, complaints, deliveries and interactions (5 queries)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return load_records(conn, customer_id)
    found = _load(bind, [customer_id])
    if customer_id not in found:
        raise CustomerNotFound(f"no customer with id {customer_id}")
    return found[customer_id]


def load_all_records(bind: Engine | Connection, ids: Iterable[int] | None = None) -> dict[int, CustomerRecords]:
    """Several customers at once (all of them by default), still one query per record kind: for tests and tools."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return _load(conn, ids)
    return _load(bind, ids)
