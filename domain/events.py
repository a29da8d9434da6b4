"""Reading the append-only tier / status change log in order, from any point: the source of every feed."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.change_filter import ChangeFilter
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
    # why and since when (issue 8, section 4); None on rows logged before migration 0007
    effective_on: Optional[date] = None
    exact: Optional[bool] = None
    cause: Optional[str] = None
    cause_record_kind: Optional[str] = None
    cause_record_external_id: Optional[str] = None
    cause_rule_set_version: Optional[int] = None
    rule_line: Optional[int] = None
    rule_text: Optional[str] = None
    rule_set_version: Optional[int] = None
    metrics: Optional[dict[str, Any]] = None
    recorded_at: Optional[datetime] = None


_OPTIONAL = ("effective_on", "exact", "cause", "cause_record_kind", "cause_record_external_id",
             "cause_rule_set_version", "rule_line", "rule_text", "rule_set_version", "metrics", "recorded_at")


def _event(row) -> ChangeEvent:
    m = row._mapping
    fields = {k: m.get(k) for k in _OPTIONAL}
    fields["recorded_at"] = fields["recorded_at"] or m["changed_at"]  # changed_at is when the change committed
    return ChangeEvent(m["id"], m["customer_id"], m["external_id"], m["name"], m["kind"], m["old_value"],
                       m["new_value"], m["as_of"], m["changed_at"], **fields)


def changes_after(engine: Engine, after_id: int, *, limit: int = 500, kinds: Optional[list[str]] = None,
                  customer_id: Optional[int] = None, where: Optional[ChangeFilter] = None) -> list[ChangeEvent]:
    """Changes with id > after_id, oldest first. Ids are handed out in commit order (writers of evaluation state
    take turns: domain.evaluation_state.writer_transaction), so a reader that remembers the last id it saw
    resumes exactly where it stopped, never skipping one, across disconnects and server restarts."""
    stmt = (sa.select(changes_t, customers_t.c.external_id, customers_t.c.name)
            .join(customers_t, customers_t.c.id == changes_t.c.customer_id)
            .where(changes_t.c.id > after_id).order_by(changes_t.c.id).limit(limit))
    if kinds:
        stmt = stmt.where(changes_t.c.kind.in_(kinds))
    if customer_id is not None:
        stmt = stmt.where(changes_t.c.customer_id == customer_id)
    if where is not None:
        stmt = stmt.where(*where.conditions(changes_t, customers_t))
    with engine.connect() as conn:
        return [_event(r) for r in conn.execute(stmt)]


def last_change_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.coalesce(sa.func.max(changes_t.c.id), 0))).scalar_one()
