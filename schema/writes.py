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
from domain.product_writes import upsert_product
from domain.evaluation_state import WriterBusy
from domain.models import Customer as CustomerTable
from schema.context import ctx
from schema.customer_records import Invoice, Opportunity, Survey
from schema.customers import Complaint, Customer, Delivery, Interaction, Order, Product
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


@strawberry.input
class SurveyInput:
    external_id: str
    customer_external_id: str
    answered_at: date
    kind: str = strawberry.field(description="nps (score 0-10) or csat (score 1-5), in any letter case.")
    score: float
    channel: Optional[str] = None
    comment: Optional[str] = None


@strawberry.input(description="A deal's current state: recording it again with the same externalId updates it. "
                              "An optional field left out keeps its stored value; given as null it is cleared.")
class OpportunityInput:
    external_id: str
    customer_external_id: str = strawberry.field(description="Another customer under a stored externalId is a "
                                                             "CONFLICT.")
    opened_at: date
    stage: str
    amount: float = strawberry.field(description="0 or more.")
    probability: float = strawberry.field(description="0 to 1.")
    expected_close_on: Optional[date] = strawberry.UNSET
    owner_rep_external_id: Optional[str] = strawberry.UNSET
    closed_at: Optional[date] = strawberry.field(default=strawberry.UNSET,
                                                 description="Closing a deal needs its outcome.")
    outcome: Optional[str] = strawberry.field(default=strawberry.UNSET,
                                              description="won or lost: required when closed, refused when open.")


@strawberry.input
class InvoiceInput:
    external_id: str
    customer_external_id: str
    issued_at: date
    amount: float = strawberry.field(description="0 or more.")
    due_at: Optional[date] = strawberry.field(
        default=None, description="Default: issuedAt + the customer's paymentTermsDays (30 days when it has none). "
                                  "Left out on a stored invoice: keeps its due date.")
    paid_at: Optional[date] = strawberry.field(
        default=None, description="The day it was paid in full. Left out: keeps the stored payment.")


@strawberry.input(description="Only the fields given change; a field given as null is cleared (not name or "
                              "createdAt; consent null is no consent). attributes merge: a null value removes that "
                              "attribute.")
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
    payment_terms_days: Optional[int] = strawberry.field(
        default=strawberry.UNSET, description="Days from invoice to due date (0 to 3650); new invoices use them.")
    credit_grade: Optional[str] = strawberry.UNSET
    credit_limit: Optional[float] = strawberry.field(default=strawberry.UNSET, description="0 or more.")
    consent: Optional[bool] = strawberry.field(default=strawberry.UNSET,
                                               description="Whether the customer consented to being contacted.")
    consent_at: Optional[date] = strawberry.field(default=strawberry.UNSET,
                                                  description="When consent was given or withdrawn.")
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
class RecordSurveyResult:
    survey: Survey
    customer: Customer
    changed: bool


@strawberry.type(description="The deal as stored now and its customer, re-evaluated in the same transaction.")
class RecordOpportunityResult:
    opportunity: Opportunity
    customer: Customer
    changed: bool = strawberry.field(description="False: the deal was already stored in this state.")


@strawberry.type
class RecordInvoiceResult:
    invoice: Invoice
    customer: Customer
    changed: bool


@strawberry.input(description="Only the fields given change; a field given as null is cleared (not name).")
class ProductInput:
    sku: str
    name: Optional[str] = strawberry.field(default=strawberry.UNSET, description="Needed for a new product.")
    unit_cost: Optional[float] = strawberry.field(
        default=strawberry.UNSET, description="0 or more; order lines recorded later take it (stored lines keep theirs).")
    seasonal: Optional[bool] = strawberry.UNSET
    category: Optional[str] = strawberry.field(
        default=strawberry.UNSET, description="Read by rules over order lines: a change re-evaluates its buyers.")


@strawberry.type
class UpsertProductResult:
    product: Product
    changed: bool
    reevaluated: int = strawberry.field(description="Customers re-evaluated because the category changed.")


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
    done = _typed(write, root, engine, *args, **kwargs)
    with engine.connect() as conn:
        customer = conn.execute(sa.select(_customers).where(_customers.c.id == done.customer_id)).one()
    return done, Customer.from_row(customer)


def _typed(write: Callable[..., Any], root: str, *args: Any, **kwargs: Any) -> Any:
    """The write's answer; its domain errors as typed client errors (BAD_ARGUMENT with the field, CONFLICT, BUSY)."""
    try:
        return write(*args, **kwargs)
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

    @strawberry.mutation(description="Record an NPS or CSAT answer (admin). A retry is a no-op; other content is a "
                                     "CONFLICT.", permission_classes=[IsAdmin])
    async def record_survey(self, info: Info, input: SurveyInput) -> RecordSurveyResult:
        done, customer = await _write(info, writes.record_survey, "input", _given(input))
        return RecordSurveyResult(survey=Survey.from_row(done.record), customer=customer, changed=done.changed)

    @strawberry.mutation(description="Record a deal or its new state (admin): an upsert, since a deal moves through "
                                     "stages and closes; the same externalId with other content updates it (the "
                                     "last write wins), the same state again changes nothing. Another customer "
                                     "under the externalId is a CONFLICT.", permission_classes=[IsAdmin])
    async def record_opportunity(self, info: Info, input: OpportunityInput) -> RecordOpportunityResult:
        done, customer = await _write(info, writes.record_opportunity, "input", _given(input))
        return RecordOpportunityResult(opportunity=Opportunity.from_row(done.record), customer=customer,
                                       changed=done.changed)

    @strawberry.mutation(description="Record an invoice (admin). A retry is a no-op; another customer, issue date, "
                                     "amount or due date is a CONFLICT. Recording it again with paidAt records the "
                                     "payment (as payInvoice does).", permission_classes=[IsAdmin])
    async def record_invoice(self, info: Info, input: InvoiceInput) -> RecordInvoiceResult:
        done, customer = await _write(info, writes.record_invoice, "input", _given(input))
        return RecordInvoiceResult(invoice=Invoice.from_row(done.record), customer=customer, changed=done.changed)

    @strawberry.mutation(description="Set (or correct) the day an invoice was paid in full (admin); not before it "
                                     "was issued.", permission_classes=[IsAdmin])
    async def pay_invoice(self, info: Info, external_id: str, paid_on: date) -> RecordInvoiceResult:
        done, customer = await _write(info, _pay, "", external_id, paid_on)
        return RecordInvoiceResult(invoice=Invoice.from_row(done.record), customer=customer, changed=done.changed)

    @strawberry.mutation(description="Create a product or change the fields given (admin). A category change "
                                     "re-evaluates every customer who bought it, in the same transaction.",
                         permission_classes=[IsAdmin])
    async def upsert_product(self, info: Info, input: ProductInput) -> UpsertProductResult:
        c = ctx(info)
        done = await c.loaders.run(_typed, upsert_product, "input", c.engine, _given(input))
        return UpsertProductResult(product=Product.from_row(done.record), changed=done.changed,
                                   reevaluated=done.reevaluated)

    @strawberry.mutation(description="Create a customer or change the fields given, and re-evaluate it (and the "
                                     "parent / referrer whose roll-ups it changes) at once (admin).",
                         permission_classes=[IsAdmin])
    async def upsert_customer(self, info: Info, input: CustomerInput) -> UpsertCustomerResult:
        done, customer = await _write(info, writes.upsert_customer, "input", _given(input))
        return UpsertCustomerResult(customer=customer, changed=done.changed)


def _top_level(write: Callable[..., writes.Written], names: dict[str, str]) -> Callable[..., writes.Written]:
    """A write whose arguments are top-level: its problems named as the client wrote them (`names`)."""
    def run(engine, external_id: str, on: date) -> writes.Written:
        try:
            return write(engine, external_id, on)
        except writes.BadInput as exc:
            raise writes.BadInput([writes.FieldProblem((names.get(p.path[0] if p.path else None, "externalId"),),
                                                       p.reason) for p in exc.problems]) from None
    return run


_resolve = _top_level(writes.resolve_complaint, {"external_id": "externalId", "resolved_at": "resolvedOn"})
_pay = _top_level(writes.pay_invoice, {"external_id": "externalId", "paid_at": "paidOn"})
