"""Reading the append-only tier / status change log in order, from any point: the source of every feed."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.models import Customer, TierChange

changes_t = TierChange.__table__
customers_t = Customer.__table__


@dataclass(frozen=True)
class ChangeEvent:
    id: int
    customer_id: int
    customer_external_id: str
    customer_name: str
    kind: str
    old_value: Optional[str]
    new_value: Optional[str]
    as_of: date
    changed_at: datetime


def changes_after(engine: Engine, after_id: int, *, limit: int = 500, kinds: Optional[list[str]] = None,
                  customer_id: Optional[int] = None) -> list[ChangeEvent]:
    """Changes with id > after_id, oldest first. Ids only grow, so a reader that remembers the last id it saw
    resumes exactly where it stopped, across disconnects and server restarts."""
    stmt = (sa.select(changes_t, customers_t.c.external_id, customers_t.c.name)
            .join(customers_t, customers_t.c.id == changes_t.c.customer_id)
            .where(changes_t.c.id > after_id).order_by(changes_t.c.id).limit(limit))
    if kinds:
        stmt = stmt.where(changes_t.c.kind.in_(kinds))
    if customer_id is not None:
        stmt = stmt.where(changes_t.c.customer_id == customer_id)
    with engine.connect() as conn:
        return [ChangeEvent(r.id, r.customer_id, r.external_id, r.name, r.kind, r.old_value, r.new_value, r.as_of,
                            r.changed_at) for r in conn.execute(stmt)]


def last_change_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.coalesce(sa.func.max(changes_t.c.id), 0))).scalar_one()
