"""Loading customers' records for the per-customer (Python) rule path: one query per record kind.

Given an as_of, only what was known on that day is loaded (domain.record_flags.known_on): records dated after
it are left out and later resolution / delivery dates are hidden, so nothing computed for as_of can look ahead.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Iterable, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.models import Customer, CustomerScore
from domain.record_flags import RECORD_DATE
from rules.to_python import CustomerRecords
from rules.to_sql import TABLES

customers = Customer.__table__
customer_scores = CustomerScore.__table__


class CustomerNotFound(LookupError):
    pass


def _load(conn: Connection, ids: Iterable[int] | None, as_of: Optional[date],
          sources: Iterable[str] | None = None) -> dict[int, CustomerRecords]:
    c = customers
    q = sa.select(c)
    if ids is not None:
        ids = list(ids)
        q = q.where(c.c.id.in_(ids))
    out = {row.id: CustomerRecords(customer=row) for row in conn.execute(q)}
    if not out:
        return out
    wanted = set(TABLES) if sources is None else set(sources)
    for source, table in TABLES.items():
        if source not in wanted:  # what the caller reads, no more: one query per source it needs
            continue
        q = sa.select(table).order_by(table.c.customer_id, table.c.id)
        if ids is not None:
            q = q.where(table.c.customer_id.in_(ids))
        if as_of is not None:
            q = q.where(table.c[RECORD_DATE[source]] <= sa.bindparam(None, as_of, type_=sa.Date))
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
    if as_of is not None:
        out = {cid: recs.known_on(as_of) for cid, recs in out.items()}
    return out


def load_records(bind: Engine | Connection, customer_id: int, as_of: Optional[date] = None) -> CustomerRecords:
    """One customer and its orders, complaints, deliveries and interactions (5 queries); only those known on
    `as_of` when given."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return load_records(conn, customer_id, as_of)
    found = _load(bind, [customer_id], as_of)
    if customer_id not in found:
        raise CustomerNotFound(f"no customer with id {customer_id}")
    return found[customer_id]


def load_all_records(bind: Engine | Connection, ids: Iterable[int] | None = None,
                     as_of: Optional[date] = None, sources: Iterable[str] | None = None
                     ) -> dict[int, CustomerRecords]:
    """Several customers at once (all of them by default), still one query per record kind; only the records
    known on `as_of` when given, and only of the `sources` given (default: every source)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return _load(conn, ids, as_of, sources)
    return _load(bind, ids, as_of, sources)
