"""Marking a customer lost by hand, and reactivating it (admin): the MANUAL loss episodes of the loss history.

Each mutation stores one mark (domain.loss_marks, where the rules are) and answers with the stored mark, whether it
was written, and the customer. Errors: BAD_ID (an id not issued for a customer, e.g. an external id);
BAD_ARGUMENT with `field` ("on", "reason", "note") and `reason`, nothing written; NOT_FOUND; CONFLICT (a mark that
contradicts a stored one, with `lostOn` / `reason` of the lost mark it collides with); NOT_LOST (a reactivation
with no manual loss open on its day); BUSY (another writer held its turn too long).
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from enum import Enum
from typing import Any, Callable, Optional

import strawberry
from strawberry.types import Info

from domain import loss_marks
from domain.evaluation_state import WriterBusy
from domain.writes import BadInput
from schema.context import ctx
from domain.data_date import FIRST_DAY, LAST_DAY
from schema.customers import Customer
from schema.errors import UserError
from schema.permissions import IsAdmin
from schema.query import customer_key


@strawberry.enum
class LossMarkKind(Enum):
    LOST = "lost"
    REACTIVATED = "reactivated"


@strawberry.type(description="A customer marked lost by hand (with a reason) or reactivated (with a note).")
class LossMark:
    id: int
    kind: LossMarkKind
    marked_on: date = strawberry.field(description="The day the customer was lost, or reactivated.")
    text: Optional[str] = strawberry.field(description="The reason of a lost mark; the note of a reactivation.")
    recorded_at: datetime = strawberry.field(description="When the mark was stored (UTC).")
    recorded_by: Optional[str]

    @classmethod
    def from_row(cls, row: Any) -> "LossMark":
        m = row._mapping
        recorded = m["recorded_at"]
        if recorded.tzinfo is None:  # SQLite keeps no offset; the value was stored as UTC
            recorded = recorded.replace(tzinfo=timezone.utc)
        return cls(id=m["id"], kind=LossMarkKind(m["kind"]), marked_on=m["marked_on"], text=m["text"],
                   recorded_at=recorded, recorded_by=m["recorded_by"])


@strawberry.type(description="The stored mark (an identical retry: the one stored before) and its customer.")
class LossMarkResult:
    mark: LossMark
    customer: Customer
    changed: bool = strawberry.field(description="False: the same mark was already stored; nothing changed.")


# the admin token is the one identity the API knows (as publishRules records it)
_CALLER = "admin"


def _run(engine, write: Callable[..., loss_marks.MarkWritten], external_id: str, on: date,
         text: Optional[str]) -> loss_marks.MarkWritten:
    """The write in a worker thread; domain errors become typed client errors."""
    try:
        return write(engine, external_id, on, text, by=_CALLER)
    except BadInput as exc:
        problems = [{"field": str(p.path[0]) if p.path else "", "reason": p.reason} for p in exc.problems]
        raise UserError("BAD_ARGUMENT", f"nothing was written: {exc}", field=problems[0]["field"],
                        reason=problems[0]["reason"], problems=problems) from None
    except loss_marks.CustomerNotFound as exc:
        raise UserError("NOT_FOUND", str(exc)) from None
    except loss_marks.MarkConflict as exc:
        details = {"lostOn": exc.lost_on.isoformat(), "reason": exc.reason} if exc.lost_on else {}
        raise UserError("CONFLICT", str(exc), **details) from None
    except loss_marks.NotLost as exc:
        raise UserError("NOT_LOST", str(exc), customerExternalId=exc.customer_external_id,
                        on=exc.on.isoformat()) from None
    except WriterBusy as exc:
        raise UserError("BUSY", str(exc)) from None


async def _mark(info: Info, write: Callable[..., loss_marks.MarkWritten], id: strawberry.ID, on: date,
                text: Optional[str]) -> LossMarkResult:
    if not FIRST_DAY <= on <= LAST_DAY:  # the date before the id: outside the calendar is BAD_ARGUMENT anywhere
        reason = f"'on' must be between {FIRST_DAY} and {LAST_DAY}, got {on}"
        raise UserError("BAD_ARGUMENT", f"nothing was written: {reason}", field="on", argument="on", reason=reason,
                        problems=[{"field": "on", "reason": reason}])
    external_id = customer_key(id)
    c = ctx(info)
    done = await c.loaders.run(_run, c.engine, write, external_id, on, text)
    return LossMarkResult(mark=LossMark.from_row(done.mark), customer=Customer.from_row(done.customer),
                          changed=done.changed)


@strawberry.type
class LossMarkMutations:
    @strawberry.mutation(description="Mark a customer lost from `on`, for a reason (admin): a MANUAL loss episode "
                                     "that ends at its next order after that day or its reactivation. The same "
                                     "mark again changes nothing; a mark while a manual loss is open is a CONFLICT.",
                         permission_classes=[IsAdmin])
    async def mark_customer_lost(self, info: Info, id: strawberry.ID, on: date, reason: str) -> LossMarkResult:
        return await _mark(info, loss_marks.mark_lost, id, on, reason)

    @strawberry.mutation(description="End the customer's manual loss open on `on` (admin); NOT_LOST when none is. "
                                     "The same reactivation again changes nothing.",
                         permission_classes=[IsAdmin])
    async def reactivate_customer(self, info: Info, id: strawberry.ID, on: date,
                                  note: Optional[str] = None) -> LossMarkResult:
        return await _mark(info, loss_marks.reactivate, id, on, note)
