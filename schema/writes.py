"""Writing data through the API (admin): each mutation stores one record and re-evaluates its customer at once.

The answer carries the stored record and the customer, so the new tier and status are in the same response.
Errors: BAD_ARGUMENT with `field` (e.g. "input.lines[0].quantity"), `reason` and every `problems` entry, nothing
written; CONFLICT with `differences` when the external id is stored with other content; BUSY when another writer
held the evaluation state too long. The rules of each write (what a retry does) are in domain.writes.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Callable, Optional

import sqlalchemy as sa
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from domain import writes
from domain.evaluation_state import WriterBusy
from domain.models import Customer as CustomerTable
from schema.context import ctx
from schema.customers import Complaint, Customer, Delivery, Interaction, Order
from schema.errors import UserError
from schema.permissions import IsAdmin

_customers = CustomerTable.__table__


@strawberry.input
class OrderLineInput:
    sku: str = strawberry.field(description="The product; a sku not yet known defines the product (cost unknown).")
    quantity: float = strawberry.field(description="Negative for a return line (with isReturn: true).")
    unit_price: float
    unit_cost: Optional[float] = strawberry.field(default=None, description="Default: the product's unit cost.")
    is_return: bool = False


@strawberry.input
class OrderInput:
    external_id: str = strawberry.field(description="Your id of the order: a retry with it is safe.")
    customer_external_id: str
    ordered_at: date
    lines: list[OrderLineInput]


@strawberry.input
class ComplaintInput:
    external_id: str
    customer_external_id: str
    opened_at: date
    order_external_id: Optional[str] = None
    due_at: Optional[date] = None
    resolved_at: Optional[date] = None
    category: Optional[str] = None
    cost: Optional[float] = None


@strawberry.input
class DeliveryInput:
    external_id: str
    order_external_id: str
    promised_at: date
    delivered_at: Optional[date] = strawberry.field(default=None, description="Left out: keeps the stored date.")
    delay_reason: Optional[str] = None
    cost: Optional[float] = None


@strawberry.input
class InteractionInput:
    external_id: str
    customer_external_id: str
    occurred_at: date
    kind: str = strawberry.field(description="call / visit / email / win_back / ...")
    rep_external_id: Optional[str] = None
    cost: Optional[float] = None
    note: Optional[str] = None


@strawberry.input(description="Only the fields given change; a field given as null is cleared (not name or "
                              "createdAt). attributes merge: a null value removes that attribute.")
class CustomerInput:
    external_id: str
    name: Optional[str] = strawberry.UNSET
    region: Optional[str] = strawberry.UNSET
    industry: Optional[str] = strawberry.UNSET
    size: Optional[str] = strawberry.UNSET
    owner_rep_external_id: Optional[str] = strawberry.UNSET
    seasonal: Optional[bool] = strawberry.UNSET
    blocked_from: Optional[date] = strawberry.UNSET
    created_at: Optional[date] = strawberry.field(default=strawberry.UNSET,
                                                  description="Default for a new customer: the data's now.")
    parent_external_id: Optional[str] = strawberry.UNSET
    referred_by_external_id: Optional[str] = strawberry.UNSET
    attributes: Optional[JSON] = strawberry.UNSET


@strawberry.type(description="The stored order (an identical retry: the one stored before) and its customer, "
                             "re-evaluated in the same transaction.")
class RecordOrderResult:
    order: Order
    customer: Customer
    changed: bool = strawberry.field(description="False: the same order was already stored; nothing changed.")


@strawberry.type
class RecordComplaintResult:
    complaint: Complaint
    customer: Customer
    changed: bool


@strawberry.type
class RecordDeliveryResult:
    delivery: Delivery
    customer: Customer
    changed: bool


@strawberry.type
class RecordInteractionResult:
    interaction: Interaction
    customer: Customer
    changed: bool


@strawberry.type
class UpsertCustomerResult:
    customer: Customer
    changed: bool


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _field(path: tuple, root: str) -> str:
    """("lines", 0, "unit_price") under "input" -> "input.lines[0].unitPrice"."""
    out = root
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{_camel(str(part))}"
    return out.lstrip(".")


def _json(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list):
        return [_json(x) for x in v]
    if isinstance(v, dict):
        return {_camel(str(k)): _json(x) for k, x in v.items()}
    return v


def _run(engine, write: Callable[..., writes.Written], root: str, *args: Any, **kwargs: Any):
    """The write and the customer's row, in a worker thread; domain errors become typed client errors."""
    try:
        done = write(engine, *args, **kwargs)
    except writes.BadInput as exc:
        problems = [{"field": _field(p.path, root), "reason": p.reason} for p in exc.problems]
        raise UserError("BAD_ARGUMENT", f"nothing was written: {exc}", field=problems[0]["field"],
                        reason=problems[0]["reason"], problems=problems) from None
    except writes.WriteConflict as exc:
        raise UserError("CONFLICT", str(exc), externalId=exc.external_id,
                        differences={_camel(k): {"stored": _json(s), "given": _json(g)}
                                     for k, (s, g) in exc.differences.items()}) from None
    except WriterBusy as exc:
        raise UserError("BUSY", str(exc)) from None
    with engine.connect() as conn:
        customer = conn.execute(sa.select(_customers).where(_customers.c.id == done.customer_id)).one()
    return done, Customer.from_row(customer)


def _given(value: Any) -> dict[str, Any]:
    """An input object as the domain's values: snake_case keys, fields left out (UNSET) omitted."""
    out = {}
    for name, v in vars(value).items():
        if v is strawberry.UNSET:
            continue
        out[name] = [_given(x) for x in v] if isinstance(v, list) else v
    return out


async def _write(info: Info, write: Callable[..., writes.Written], root: str, *args: Any):
    # the rules are read inside the write's transaction, never from the request: a publish committed since the
    # request began must not be evaluated over with the version it replaced
    c = ctx(info)
    return await c.loaders.run(_run, c.engine, write, root, *args)


@strawberry.type
class WriteMutations:
    @strawberry.mutation(description="Record an order with its lines and re-evaluate its customer at once (admin). "
                                     "A retry with the same externalId and content changes nothing; other content "
                                     "under it is a CONFLICT.", permission_classes=[IsAdmin])
    async def record_order(self, info: Info, input: OrderInput) -> RecordOrderResult:
        done, customer = await _write(info, writes.record_order, "input", _given(input))
        return RecordOrderResult(order=Order.from_row(done.record), customer=customer, changed=done.changed)

    @strawberry.mutation(description="Record a complaint (admin). A retry is a no-op; other content is a CONFLICT "
                                     "(resolve it with resolveComplaint).", permission_classes=[IsAdmin])
    async def record_complaint(self, info: Info, input: ComplaintInput) -> RecordComplaintResult:
        done, customer = await _write(info, writes.record_complaint, "input", _given(input))
        return RecordComplaintResult(complaint=Complaint.from_row(done.record), customer=customer,
                                     changed=done.changed)

    @strawberry.mutation(description="Set (or correct) the day a complaint was resolved (admin).",
                         permission_classes=[IsAdmin])
    async def resolve_complaint(self, info: Info, external_id: str, resolved_on: date) -> RecordComplaintResult:
        done, customer = await _write(info, _resolve, "", external_id, resolved_on)
        return RecordComplaintResult(complaint=Complaint.from_row(done.record), customer=customer,
                                     changed=done.changed)

    @strawberry.mutation(description="Record a delivery (admin); record it again with deliveredAt / delayReason "
                                     "when it arrives. Another order or promised date is a CONFLICT.",
                         permission_classes=[IsAdmin])
    async def record_delivery(self, info: Info, input: DeliveryInput) -> RecordDeliveryResult:
        done, customer = await _write(info, writes.record_delivery, "input", _given(input))
        return RecordDeliveryResult(delivery=Delivery.from_row(done.record), customer=customer,
                                    changed=done.changed)

    @strawberry.mutation(description="Record a call, visit, email or win-back attempt (admin). A retry is a no-op; "
                                     "other content is a CONFLICT.", permission_classes=[IsAdmin])
    async def record_interaction(self, info: Info, input: InteractionInput) -> RecordInteractionResult:
        done, customer = await _write(info, writes.record_interaction, "input", _given(input))
        return RecordInteractionResult(interaction=Interaction.from_row(done.record), customer=customer,
                                       changed=done.changed)

    @strawberry.mutation(description="Create a customer or change the fields given, and re-evaluate it (and the "
                                     "parent / referrer whose roll-ups it changes) at once (admin).",
                         permission_classes=[IsAdmin])
    async def upsert_customer(self, info: Info, input: CustomerInput) -> UpsertCustomerResult:
        done, customer = await _write(info, writes.upsert_customer, "input", _given(input))
        return UpsertCustomerResult(customer=customer, changed=done.changed)


def _resolve(engine, external_id: str, resolved_on: date) -> writes.Written:
    try:
        return writes.resolve_complaint(engine, external_id, resolved_on)
    except writes.BadInput as exc:  # the arguments are top-level: name them as the client wrote them
        raise writes.BadInput([writes.FieldProblem((_ARGS.get(p.path[0] if p.path else None, "externalId"),),
                                                   p.reason) for p in exc.problems]) from None


_ARGS = {"external_id": "externalId", "resolved_at": "resolvedOn"}
