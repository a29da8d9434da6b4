"""Who is being lost, and why: lost customers with what they were worth and what went wrong."""
from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Optional

import strawberry
from strawberry.types import Info

from domain import loss
from schema.context import ctx
from schema.permissions import Public
from schema.pagination import Connection, build_connection, decode_cursor, page_size

if TYPE_CHECKING:
    from schema.customers import Customer


@strawberry.type(description="A lost customer: when, what it was worth, and the signs of why.")
class LossEpisode:
    status: str
    as_of: date = strawberry.field(description="Date of the evaluation the status comes from.")
    lost_on: Optional[date] = strawberry.field(description="Evaluation date at which it moved to this status; "
                                                           "null when it had it from its first evaluation.")
    tier_before: Optional[str] = strawberry.field(description="The tier it had when it was lost.")
    last_order_at: Optional[date]
    revenue_lost: float = strawberry.field(description="Revenue in the 365 days up to the last order.")
    margin_lost: Optional[float] = strawberry.field(description="Margin of that year; null when unknown.")
    orders_last_year: int
    open_complaints: int
    overdue_complaints: int
    late_deliveries: int = strawberry.field(description="Late deliveries in the 365 days up to the last order.")
    deliveries: int
    win_back_attempts: int = strawberry.field(description="Win-back interactions after the last order.")
    last_win_back_at: Optional[date]
    win_back_by_owner: bool = strawberry.field(description="The account owner made at least one of them.")
    row_id: strawberry.Private[int]

    @strawberry.field
    async def customer(self, info: Info) -> Optional[Annotated["Customer", strawberry.lazy("schema.customers")]]:
        from schema.customers import Customer

        row = await ctx(info).loaders.customer_by_id.load(self.row_id)
        return Customer.from_row(row) if row else None

    @classmethod
    def of(cls, e: loss.LossEpisode) -> "LossEpisode":
        return cls(status=e.status, as_of=e.as_of, lost_on=e.lost_on, tier_before=e.tier_before,
                   last_order_at=e.last_order_at, revenue_lost=e.revenue_lost, margin_lost=e.margin_lost,
                   orders_last_year=e.orders_last_year, open_complaints=e.open_complaints,
                   overdue_complaints=e.overdue_complaints, late_deliveries=e.late_deliveries,
                   deliveries=e.deliveries, win_back_attempts=e.win_back_attempts,
                   last_win_back_at=e.last_win_back_at, win_back_by_owner=e.win_back_by_owner, row_id=e.customer_id)


@strawberry.type
class LossByTier:
    tier_before: Optional[str]
    customers: int
    revenue_lost: float
    margin_lost: Optional[float]
    with_open_complaints: int
    with_late_deliveries: int
    win_back_attempted: int


@strawberry.type
class LossQueries:
    @strawberry.field(description="Lost customers, the biggest revenue loss first (keyset-paginated).",
                      permission_classes=[Public])
    async def lost_customers(self, info: Info, first: Optional[int] = None, after: Optional[str] = None,
                             tier_before: Optional[str] = None, region: Optional[str] = None,
                             win_back: Annotated[Optional[bool], strawberry.argument(
                                 description="true: only those someone tried to win back; false: only the others"
                             )] = None,
                             status: str = "lost") -> Connection[LossEpisode]:
        limit = page_size(first)
        key = decode_cursor("lost_customers", after)
        c = ctx(info)
        filters = dict(status=status, tier_before=tier_before, region=region, win_back=win_back)
        rows = await c.loaders.run(loss.loss_episodes, c.engine, limit=limit + 1,
                                   after=tuple(key) if key else None, **filters)
        total = await c.loaders.run(loss.loss_count, c.engine, **filters)
        pairs = [(LossEpisode.of(e), [e.revenue_lost, e.customer_id]) for e in rows]
        return build_connection(pairs, kind="lost_customers", first=limit, total=total, after=after)

    @strawberry.field(description="Per tier the customers had: how many were lost, the revenue and margin that went "
                                  "with them, and how many had open complaints, late deliveries, a win-back try.",
                      permission_classes=[Public])
    async def loss_summary(self, info: Info, status: str = "lost") -> list[LossByTier]:
        c = ctx(info)
        rows = await c.loaders.run(loss.loss_summary, c.engine, status=status)
        return [LossByTier(tier_before=r.tier_before, customers=r.customers, revenue_lost=r.revenue_lost,
                           margin_lost=r.margin_lost, with_open_complaints=r.with_open_complaints,
                           with_late_deliveries=r.with_late_deliveries, win_back_attempted=r.win_back_attempted)
                for r in rows]
