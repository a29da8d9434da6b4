"""exportCustomer / eraseCustomer (admin): privacy law's export and erasure of one customer (domain.privacy).

Errors: BAD_ID (an id not issued for a customer); NOT_FOUND (no such customer: also the id an erased customer had,
since its external id is gone); CONFLICT (another customer has the external id erasure would give); BUSY (another writer held its turn too long); UNAUTHENTICATED / FORBIDDEN from
IsAdmin. Both run in a worker thread, off the event loop.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from domain import privacy
from domain.evaluation_state import WriterBusy
from schema.context import ctx
from schema.customers import Customer
from schema.errors import UserError
from schema.permissions import IsAdmin

# the admin token is the one identity the API knows (as publishRules and the loss marks record it)
_CALLER = "admin"


@strawberry.type(description="How many values of one personal field were replaced by anonymous ones.")
class ErasedField:
    field: str = strawberry.field(description="table.column, e.g. \"surveys.comment\".")
    values: int


@strawberry.type(description="How many of the customer's rows of one table were kept, anonymised.")
class KeptRecords:
    table: str
    rows: int


@strawberry.type(description="The customer after erasure: its personal fields replaced, its records kept.")
class EraseResult:
    customer: Customer = strawberry.field(description="The anonymised customer; its id is new (the external id "
                                                      "is now erased-<n>).")
    changed: bool = strawberry.field(description="False: the customer was already erased; nothing changed.")
    erased_at: datetime
    erased: list[ErasedField]
    kept: list[KeptRecords]


def _customer_key(id: str) -> str:
    from schema.query import customer_key  # schema.query assembles Query from this module's mixin

    return customer_key(id)


def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The domain call in a worker thread; its errors become typed client errors."""
    try:
        return fn(*args, **kwargs)
    except privacy.CustomerNotFound as exc:
        raise UserError("NOT_FOUND", str(exc)) from None
    except privacy.ErasedIdTaken as exc:
        raise UserError("CONFLICT", str(exc)) from None
    except WriterBusy as exc:
        raise UserError("BUSY", str(exc)) from None


@strawberry.type
class PrivacyQueries:
    @strawberry.field(description="Everything held about one customer, as JSON (admin): its row and every row of "
                                  "every table that belongs to it. The export is recorded in the privacy audit.",
                      permission_classes=[IsAdmin])
    async def export_customer(self, info: Info, id: strawberry.ID) -> JSON:
        external_id = _customer_key(id)
        c = ctx(info)
        return await c.loaders.run(_run, privacy.export_customer, c.engine, external_id, by=_CALLER)


@strawberry.type
class PrivacyMutations:
    @strawberry.mutation(description="Erase a customer's personal data (admin): name, external id, custom "
                                     "attributes and free text become anonymous; orders, scores, tiers, statuses "
                                     "and loss history stay as they were. Recorded in the privacy audit. An "
                                     "erased customer again changes nothing.",
                         permission_classes=[IsAdmin])
    async def erase_customer(self, info: Info, id: strawberry.ID) -> EraseResult:
        external_id = _customer_key(id)
        c = ctx(info)
        done = await c.loaders.run(_run, privacy.erase_customer, c.engine, external_id, _CALLER)
        return EraseResult(customer=Customer.from_row(done.customer), changed=done.changed,
                           erased_at=done.erased_at,
                           erased=[ErasedField(field=k, values=v) for k, v in sorted(done.erased.items())],
                           kept=[KeptRecords(table=k, rows=v) for k, v in sorted(done.kept.items())])
