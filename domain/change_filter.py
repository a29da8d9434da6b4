"""Which tier / status / tag changes a reader wants: one definition, used in SQL for history and replay and in
memory for the live feed, so a subscriber sees the same events live as it would page through later."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Optional

import sqlalchemy as sa

KINDS = ("tier", "status", "tag")


@dataclass(frozen=True)
class ChangeFilter:
    kinds: Optional[tuple[str, ...]] = None
    new_values: Optional[tuple[str, ...]] = None   # e.g. ("lost",): only moves into lost (for a tag: added)
    old_values: Optional[tuple[str, ...]] = None   # e.g. ("key",): only moves out of key (for a tag: removed)
    customer_external_id: Optional[str] = None
    effective_from: Optional[date] = None          # inclusive, on the change's effective date
    effective_to: Optional[date] = None            # inclusive

    def conditions(self, changes: sa.Table, customers: sa.Table) -> list[Any]:
        """SQL conditions on tier_changes joined to customers; values only ever as bound parameters."""
        out: list[Any] = []
        if self.kinds:
            out.append(changes.c.kind.in_(self.kinds))
        if self.new_values:
            out.append(changes.c.new_value.in_(self.new_values))
        if self.old_values:
            out.append(changes.c.old_value.in_(self.old_values))
        if self.customer_external_id is not None:
            out.append(customers.c.external_id == self.customer_external_id)
        effective = _effective_column(changes)
        if self.effective_from is not None:
            out.append(effective >= self.effective_from)
        if self.effective_to is not None:
            out.append(effective <= self.effective_to)
        return out

    def matches(self, event: Any) -> bool:
        """The same test on one domain.events.ChangeEvent."""
        if self.kinds and event.kind not in self.kinds:
            return False
        if self.new_values and event.new_value not in self.new_values:
            return False
        if self.old_values and event.old_value not in self.old_values:
            return False
        if self.customer_external_id is not None and event.customer_external_id != self.customer_external_id:
            return False
        effective = event.effective_on if event.effective_on is not None else event.as_of
        if self.effective_from is not None and effective < self.effective_from:
            return False
        return self.effective_to is None or effective <= self.effective_to


def _effective_column(changes: sa.Table) -> Any:
    # rows logged before effective dates existed (migration 0007) are dated by their evaluation
    if "effective_on" in changes.c:
        return sa.func.coalesce(changes.c.effective_on, changes.c.as_of)
    return changes.c.as_of
