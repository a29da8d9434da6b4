"""The customer graph: customers, what they bought, what they cost, and how they relate to each other."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Iterable, Optional

import strawberry
from sqlalchemy.engine import Row
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from domain import record_summaries as summaries
from domain.anniversaries import relationship_years
from domain.anniversary import customer_since, next_anniversary
from domain.record_flags import record_flag
from rules.windows import bounds
from schema.context import ctx
from schema.customer_records import Invoice, Opportunity, Payment, Pipeline, Satisfaction, Survey
from schema.dates import checked_window
from schema.spend import CategorySpend, ProductSpend
from schema.errors import UserError
from domain.lookups import CHILD_LISTS
from schema.pagination import Connection, build_connection, decode_cursor, page_size
from schema.loss import LossEpisode
from schema.rules import Assignment, Evaluation, rule_text
from schema.value import CustomerValue, customer_value


async def _flag_day(info: Info, as_of: Optional[date]) -> date:
    """The day a record flag is seen on: the one asked for, else the data's now (domain.data_date)."""
    return as_of if as_of is not None else await ctx(info).loaders.data_today()


@strawberry.type
class SalesRep:
    external_id: str
    name: str
    email: Optional[str]
    region: Optional[str]

    @classmethod
    def from_row(cls, row: Row) -> "SalesRep":
        m = row._mapping
        return cls(external_id=m["external_id"], name=m["name"], email=m["email"], region=m["region"])


@strawberry.type
class Product:
    sku: str
    name: str
    unit_cost: Optional[float]
    seasonal: bool
    category: Optional[str] = strawberry.field(description="Read by rules over order lines and by spendByCategory.")

    @classmethod
    def from_row(cls, row: Row) -> "Product":
        m = row._mapping
        return cls(sku=m["sku"], name=m["name"], unit_cost=m["unit_cost"], seasonal=m["seasonal"],
                   category=m["category"])


@strawberry.type
class OrderLine:
    line_no: int
    quantity: float
    unit_price: float
    unit_cost: Optional[float] = strawberry.field(description="Unknown cost stays null: margin is then unknown.")
    is_return: bool
    product_id: strawberry.Private[int]

    @strawberry.field
    async def product(self, info: Info) -> Optional[Product]:
        row = await ctx(info).loaders.product_by_id.load(self.product_id)
        if row is None:
            return None
        return Product.from_row(row)


@strawberry.type
class Delivery:
    external_id: str
    promised_at: date
    delivered_at: Optional[date]
    delay_reason: Optional[str]
    cost: Optional[float]

    @strawberry.field(description="On asOf (default: the data's now, the latest evaluation date): delivered after "
                                  "the promised date, or not delivered by asOf and the promised date has passed.")
    async def late(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("delivery", "late").python(self, await _flag_day(info, as_of))

    @classmethod
    def from_row(cls, row: Row) -> "Delivery":
        m = row._mapping
        return cls(external_id=m["external_id"], promised_at=m["promised_at"], delivered_at=m["delivered_at"],
                   delay_reason=m["delay_reason"], cost=m["cost"])


@strawberry.type
class Order:
    external_id: str
    ordered_at: date
    amount: float
    cost_of_goods: Optional[float]
    margin: Optional[float] = strawberry.field(description="amount - cost of goods; null when any cost is unknown.")
    row_id: strawberry.Private[int]

    @strawberry.field
    async def lines(self, info: Info) -> list[OrderLine]:
        rows = await ctx(info).loaders.lines_by_order.load(self.row_id)
        return [OrderLine(line_no=m["line_no"], quantity=m["quantity"], unit_price=m["unit_price"],
                          unit_cost=m["unit_cost"], is_return=m["is_return"], product_id=m["product_id"])
                for m in (r._mapping for r in rows)]

    @strawberry.field
    async def deliveries(self, info: Info) -> list[Delivery]:
        return [Delivery.from_row(r) for r in await ctx(info).loaders.deliveries_by_order.load(self.row_id)]

    @classmethod
    def from_row(cls, row: Row) -> "Order":
        m = row._mapping
        return cls(external_id=m["external_id"], ordered_at=m["ordered_at"], amount=m["amount"],
                   cost_of_goods=m["cost_of_goods"], margin=m["margin"], row_id=m["id"])


@strawberry.type
class Complaint:
    external_id: str
    opened_at: date
    due_at: Optional[date]
    resolved_at: Optional[date]
    category: Optional[str]
    cost: float

    @strawberry.field(description="Not resolved by asOf (default: the data's now, the latest evaluation date).")
    async def open(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("complaint", "open").python(self, await _flag_day(info, as_of))

    @strawberry.field(description="On asOf (default: the data's now): the due date has passed and it was not "
                                  "resolved by its due date. Resolved late stays overdue; open and overdue: pending.")
    async def overdue(self, info: Info, as_of: Optional[date] = None) -> bool:
        return record_flag("complaint", "overdue").python(self, await _flag_day(info, as_of))

    @classmethod
    def from_row(cls, row: Row) -> "Complaint":
        m = row._mapping
        return cls(external_id=m["external_id"], opened_at=m["opened_at"], due_at=m["due_at"],
                   resolved_at=m["resolved_at"], category=m["category"], cost=m["cost"])


@strawberry.type
class Interaction:
    external_id: str
    occurred_at: date
    kind: str
    cost: float
    note: Optional[str]
    rep_id: strawberry.Private[Optional[int]]

    @strawberry.field(description="A win-back attempt: kind win_back, win-back, winback or win back, in any case.")
    def win_back(self) -> bool:
        return record_flag("interaction", "win_back").python(self, date.min)

    @strawberry.field
    async def rep(self, info: Info) -> Optional[SalesRep]:
        if self.rep_id is None:
            return None
        row = await ctx(info).loaders.rep_by_id.load(self.rep_id)
        return SalesRep.from_row(row) if row else None

    @classmethod
    def from_row(cls, row: Row) -> "Interaction":
        m = row._mapping
        return cls(external_id=m["external_id"], occurred_at=m["occurred_at"], kind=m["kind"], cost=m["cost"],
                   note=m["note"], rep_id=m["rep_id"])


async def child_connection(info: Info, name: str, parent_id: int, first: Optional[int], after: Optional[str],
                           to_node) -> Connection:
    """A page of one kind of child record, batched with the same page of every other parent in the request."""
    spec = CHILD_LISTS[name]
    limit = page_size(first)
    after_key = decode_cursor(name, after)
    loaders = ctx(info).loaders
    rows = await loaders.child_pages[name].load((parent_id, limit, tuple(after_key) if after_key else None))
    total = await loaders.child_counts[name].load(parent_id)
    pairs = [(to_node(r), [r._mapping[c] for c in spec.order_by]) for r in rows]
    return build_connection(pairs, kind=name, first=limit, total=total, after=after)


@strawberry.type(description="One calendar month of a customer's orders.")
class MonthRevenue:
    month: str = strawberry.field(description="YYYY-MM.")
    revenue: float = strawberry.field(description="Order amounts dated in the month (today's month: up to the "
                                                  "data's today).")
    margin: Optional[float] = strawberry.field(description="Their margins; null when any of those orders has an "
                                                           "unknown margin.")
    orders: int


MAX_MONTHS = 120
MAX_PRODUCTS = 100
WINDOW = "A window ending on the data's now, as rules write one: 90d, 12w, 12m, 2y."


@strawberry.type
class Customer(relay.Node):
    """A customer account. Its global id is derived from the external id, so it survives re-imports."""

    node_key: relay.NodeID[str]
    external_id: str
    name: str
    region: Optional[str]
    industry: Optional[str]
    size: Optional[str]
    seasonal: bool
    blocked_from: Optional[date]
    created_at: date
    attributes: JSON
    consent: bool = strawberry.field(description="Whether the customer consented to being contacted.")
    consent_at: Optional[date] = strawberry.field(description="When consent was given or withdrawn.")
    payment_terms_days: Optional[int] = strawberry.field(description="Days from invoice to due date.")
    credit_grade: Optional[str]
    credit_limit: Optional[float] = strawberry.field(description="The most the customer may owe at once.")
    row_id: strawberry.Private[int]
    owner_rep_id: strawberry.Private[Optional[int]]
    parent_id: strawberry.Private[Optional[int]]
    referred_by_id: strawberry.Private[Optional[int]]

    @classmethod
    def from_row(cls, row: Row) -> "Customer":
        m = row._mapping
        return cls(node_key=m["external_id"], external_id=m["external_id"], name=m["name"], region=m["region"],
                   industry=m["industry"],
                   size=m["size"], seasonal=m["seasonal"], blocked_from=m["blocked_from"], created_at=m["created_at"],
                   attributes=m["attributes"] or {}, consent=bool(m["consent"]), consent_at=m["consent_at"],
                   payment_terms_days=m["payment_terms_days"], credit_grade=m["credit_grade"],
                   credit_limit=m["credit_limit"], row_id=m["id"], owner_rep_id=m["owner_rep_id"],
                   parent_id=m["parent_id"], referred_by_id=m["referred_by_id"])

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        rows = await ctx(info).loaders.customer_by_external_id.load_many(list(node_ids))
        return [cls.from_row(r) if r is not None else None for r in rows]

    async def _evaluation(self, info: Info) -> Optional[Row]:
        return await ctx(info).loaders.evaluation_by_customer.load(self.row_id)

    @strawberry.field(description="The tier from the last batch evaluation, with the rule that gave it.")
    async def tier(self, info: Info) -> Optional[Assignment]:
        row = await self._evaluation(info)
        if row is None or row.tier is None:
            return None
        return Assignment(name=row.tier, line=row.tier_line, rule=rule_text(info, row.tier_line),
                          since=row.tier_since, customer_id=self.row_id, kind="tier")

    @strawberry.field(description="The status (prospect, active, at_risk, lost, ...) with the rule that gave it.")
    async def status(self, info: Info) -> Optional[Assignment]:
        row = await self._evaluation(info)
        if row is None or row.status is None:
            return None
        return Assignment(name=row.status, line=row.status_line, rule=rule_text(info, row.status_line),
                          since=row.status_since, customer_id=self.row_id, kind="status")

    @strawberry.field(description="Every tag whose rule matched.")
    async def tags(self, info: Info) -> list[Assignment]:
        row = await self._evaluation(info)
        if row is None:
            return []
        lines = {r.label: r.pos.line for r in ctx(info).rules.tags} if ctx(info).rules else {}
        return [Assignment(name=t, line=lines.get(t), rule=rule_text(info, lines.get(t)), customer_id=self.row_id,
                           kind="tag") for t in row.tags]

    @strawberry.field(description="Metric values and the evaluation date of the last batch run.")
    async def evaluation(self, info: Info) -> Optional[Evaluation]:
        row = await self._evaluation(info)
        if row is None:
            return None
        return Evaluation(as_of=row.as_of, metrics=row.metrics, run_id=row.run_id, customer_id=self.row_id)

    @strawberry.field(description="Value scores: revenue, profit after cost to serve, growth, RFM, CLV, P(alive).")
    async def value(self, info: Info, as_of: Optional[date] = None) -> Optional[CustomerValue]:
        return await customer_value(info, self.row_id, as_of)

    @strawberry.field(description="Revenue, margin and orders per calendar month: the `months` months ending with "
                                  "the data's today's month (that one up to today), oldest first, months without "
                                  "orders included.")
    async def monthly_revenue(self, info: Info, months: int = 24) -> list[MonthRevenue]:
        if not 1 <= months <= MAX_MONTHS:
            raise UserError("BAD_ARGUMENT", f"'months' must be between 1 and {MAX_MONTHS}, got {months}",
                            argument="months")
        found = await ctx(info).loaders.monthly_revenue.load((self.row_id, months))
        return [MonthRevenue(month=f"{m.month:%Y-%m}", revenue=m.revenue, margin=m.margin, orders=m.orders)
                for m in found]

    @strawberry.field(description="The loss episode the customer is in on the data's today (null: not lost): "
                                  "when, how, what it was worth, and why.")
    async def loss(self, info: Info) -> Optional[LossEpisode]:
        episode = await ctx(info).loaders.loss_by_customer.load(self.row_id)
        return LossEpisode.of(episode) if episode else None

    @strawberry.field(description="Every loss episode of the customer up to the data's today, the newest first.")
    async def loss_history(self, info: Info) -> list[LossEpisode]:
        return [LossEpisode.of(e) for e in await ctx(info).loaders.loss_history_by_customer.load(self.row_id)]

    @strawberry.field
    async def owner(self, info: Info) -> Optional[SalesRep]:
        if self.owner_rep_id is None:
            return None
        row = await ctx(info).loaders.rep_by_id.load(self.owner_rep_id)
        return SalesRep.from_row(row) if row else None

    @strawberry.field(description="The parent account in the company hierarchy.")
    async def parent(self, info: Info) -> Optional["Customer"]:
        return await _customer_by_id(info, self.parent_id)

    @strawberry.field(description="The customer who referred this one.")
    async def referrer(self, info: Info) -> Optional["Customer"]:
        return await _customer_by_id(info, self.referred_by_id)

    @strawberry.field(description="Orders, newest first.")
    async def orders(self, info: Info, first: Optional[int] = None, after: Optional[str] = None) -> Connection[Order]:
        return await child_connection(info, "orders", self.row_id, first, after, Order.from_row)

    @strawberry.field(description="Complaints, newest first.")
    async def complaints(self, info: Info, first: Optional[int] = None,
                         after: Optional[str] = None) -> Connection[Complaint]:
        return await child_connection(info, "complaints", self.row_id, first, after, Complaint.from_row)

    @strawberry.field(description="Deliveries, by promised date, newest first.")
    async def deliveries(self, info: Info, first: Optional[int] = None,
                         after: Optional[str] = None) -> Connection[Delivery]:
        return await child_connection(info, "deliveries", self.row_id, first, after, Delivery.from_row)

    @strawberry.field(description="Calls, visits, emails and win-back attempts by reps, newest first.")
    async def interactions(self, info: Info, first: Optional[int] = None,
                           after: Optional[str] = None) -> Connection[Interaction]:
        return await child_connection(info, "interactions", self.row_id, first, after, Interaction.from_row)

    @strawberry.field(description="NPS and CSAT answers, newest first.")
    async def surveys(self, info: Info, first: Optional[int] = None,
                      after: Optional[str] = None) -> Connection[Survey]:
        return await child_connection(info, "surveys", self.row_id, first, after, Survey.from_row)

    @strawberry.field(description="Deals, by opening date, newest first.")
    async def opportunities(self, info: Info, first: Optional[int] = None,
                            after: Optional[str] = None) -> Connection[Opportunity]:
        return await child_connection(info, "opportunities", self.row_id, first, after, Opportunity.from_row)

    @strawberry.field(description="Invoices, by issue date, newest first.")
    async def invoices(self, info: Info, first: Optional[int] = None,
                       after: Optional[str] = None) -> Connection[Invoice]:
        return await child_connection(info, "invoices", self.row_id, first, after, Invoice.from_row)

    @strawberry.field(description="Survey answers in the window (default 12m) ending on the data's now: latest, "
                                  "averages, NPS, detractors.")
    async def satisfaction(self, info: Info, window: Annotated[str, strawberry.argument(description=WINDOW)] = "12m"
                           ) -> Satisfaction:
        period = checked_window(window)
        loaders = ctx(info).loaders
        found = summaries.satisfaction(await loaders.surveys_by_customer.load(self.row_id),
                                       bounds(period, await loaders.data_today()))
        return Satisfaction(window=window.strip(), **vars(found))

    @strawberry.field(description="Open, stalled and recently won deals on the data's now.")
    async def pipeline(self, info: Info) -> Pipeline:
        loaders = ctx(info).loaders
        found = summaries.pipeline(await loaders.opportunities_by_customer.load(self.row_id),
                                   await loaders.data_today())
        return Pipeline(**vars(found))

    @strawberry.field(description="Payment terms, credit and the invoices' state on the data's now.")
    async def payment(self, info: Info) -> Payment:
        loaders = ctx(info).loaders
        invoices, day = await loaders.invoices_by_customer.load(self.row_id), await loaders.data_today()
        found = summaries.payment(invoices, self.credit_limit, day)
        return Payment(terms_days=self.payment_terms_days, credit_grade=self.credit_grade,
                       credit_limit=self.credit_limit, invoices=invoices, day=day, **vars(found))

    @strawberry.field(description="Order line revenue per product category in the window ending on the data's now, "
                                  "the largest first.")
    async def spend_by_category(self, info: Info, window: Annotated[str, strawberry.argument(description=WINDOW)]
                                = "12m") -> list[CategorySpend]:
        period = bounds(checked_window(window), await ctx(info).loaders.data_today())
        found = await ctx(info).loaders.spend_by_category.load((self.row_id, period.start, period.end))
        return [CategorySpend.of(s, self.attributes) for s in found]

    @strawberry.field(description="The `first` products by order line revenue in the window ending on the data's "
                                  "now, the largest first (ties by sku).")
    async def spend_by_product(self, info: Info, window: Annotated[str, strawberry.argument(description=WINDOW)]
                               = "12m", first: int = 10) -> list[ProductSpend]:
        if not 1 <= first <= MAX_PRODUCTS:
            raise UserError("BAD_ARGUMENT", f"'first' must be between 1 and {MAX_PRODUCTS}, got {first}",
                            argument="first")
        period = bounds(checked_window(window), await ctx(info).loaders.data_today())
        found = await ctx(info).loaders.spend_by_product.load((self.row_id, period.start, period.end, first))
        return [ProductSpend.of(s, self.attributes) for s in found]

    async def _since(self, info: Info) -> tuple[date, date]:
        """(customer since, the data's now): the earlier of created and the first order up to now."""
        loaders = ctx(info).loaders
        return customer_since(self.created_at, await loaders.first_order_by_customer.load(self.row_id)), \
            await loaders.data_today()

    @strawberry.field(description="The earlier of its created date and its first order (domain.anniversary).")
    async def customer_since(self, info: Info) -> date:
        return (await self._since(info))[0]

    @strawberry.field(description="The first anniversary of customerSince on or after the data's now (29 February: "
                                  "28 February in common years).")
    async def next_anniversary(self, info: Info) -> date:
        return next_anniversary(*await self._since(info))

    @strawberry.field(description="Days from the data's now to nextAnniversary, 0 on the day: `days until "
                                  "anniversary` in rules.")
    async def days_until_anniversary(self, info: Info) -> int:
        since, day = await self._since(info)
        return (next_anniversary(since, day) - day).days

    @strawberry.field(description="Whole years a customer on the data's now: the largest N for which `customer for "
                                  "Ny` holds in rules.")
    async def relationship_years(self, info: Info) -> int:
        return relationship_years(*await self._since(info))

    @strawberry.field(description="Accounts whose parent is this customer.")
    async def subsidiaries(self, info: Info, first: Optional[int] = None,
                           after: Optional[str] = None) -> Connection["Customer"]:
        return await child_connection(info, "subsidiaries", self.row_id, first, after, Customer.from_row)

    @strawberry.field(description="Customers this customer brought in.")
    async def referrals(self, info: Info, first: Optional[int] = None,
                        after: Optional[str] = None) -> Connection["Customer"]:
        return await child_connection(info, "referrals", self.row_id, first, after, Customer.from_row)


async def _customer_by_id(info: Info, customer_id: Optional[int]) -> Optional[Customer]:
    if customer_id is None:
        return None
    row = await ctx(info).loaders.customer_by_id.load(customer_id)
    return Customer.from_row(row) if row else None
