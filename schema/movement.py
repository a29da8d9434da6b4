"""What was in force on a day and who moved between two days: movement (a Sankey's flows), statusCounts,
evaluationDates; the day checks the other as-of reports share (valueSummary(asOf))."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Annotated, Optional

import strawberry
from strawberry.types import Info

from domain import movement as mv
from schema.context import ctx
from schema.dates import checked_date
from schema.errors import UserError
from schema.pagination import Connection, build_connection, decode_cursor, page_size
from schema.permissions import Public

if TYPE_CHECKING:
    from schema.customers import Customer

FLOW_CURSOR = "movement"  # a page of one flow's customers: (revenue, customer id), registered in KEY_TYPES


@strawberry.enum(description="Which label a movement follows.")
class MoveKind(enum.Enum):
    TIER = "tier"
    STATUS = "status"


@strawberry.type(description="A customer of a flow (or of a previewed move) with the revenue it is ranked by.")
class MovedCustomer:
    revenue: float = strawberry.field(description="movement: order amounts of the 12 months up to `from`; "
                                                  "previewRules: revenue12m of the stored value scores (0 "
                                                  "without scores).")
    row_id: strawberry.Private[int]

    @strawberry.field
    async def customer(self, info: Info) -> Annotated["Customer", strawberry.lazy("schema.customers")]:
        from schema.customers import Customer

        return Customer.from_row(await ctx(info).loaders.customer_by_id.load(self.row_id))


@strawberry.type(name="MoverConnection", description="A page of moved customers, the biggest revenue first.")
class MoverConnection(Connection[MovedCustomer]):
    pass


def mover_connection(rows: list[tuple[MovedCustomer, list]], *, kind: str, first: int, total: int,
                     after: Optional[str]) -> MoverConnection:
    c = build_connection(rows, kind=kind, first=first, total=total, after=after)
    return MoverConnection(edges=c.edges, page_info=c.page_info, total_count=c.total_count, as_of=c.as_of)


@dataclass(frozen=True)
class _MovementArgs:
    """What a flow's customer list needs to ask the database again."""

    start: date
    end: date
    kind: str


@strawberry.type(description="The customers whose label was `old` on `from` and is `new` on `to` (old = new: "
                             "they stayed).")
class Flow:
    old: Optional[str] = strawberry.field(description="In force on `from`; null: none then (a customer created "
                                                      "after `from`: new, or not evaluated).")
    new: Optional[str] = strawberry.field(description="In force on `to`; null: none then.")
    customers: int
    revenue: float = strawberry.field(description="The flow's customers' order amounts of the 12 months up to "
                                                  "`from` (the revenue12m window of the value scores: from the "
                                                  "day after `from` minus 12 calendar months to `from`, both "
                                                  "inclusive): the business that moved.")
    args: strawberry.Private[_MovementArgs]

    @strawberry.field(description="The flow's customers, the biggest revenue first (keyset-paginated, `first` at "
                                  "most 100).")
    async def customer_list(self, info: Info, first: Optional[int] = 20,
                            after: Optional[str] = None) -> MoverConnection:
        limit = page_size(first)
        key = decode_cursor(FLOW_CURSOR, after)
        c = ctx(info)
        a = self.args
        rows = await c.loaders.run(mv.flow_customers, c.engine, a.start, a.end, a.kind, self.old, self.new,
                                   limit=limit + 1, after=tuple(key) if key else None)
        pairs = [(MovedCustomer(revenue=r.revenue, row_id=r.customer_id), [r.revenue, r.customer_id]) for r in rows]
        return mover_connection(pairs, kind=FLOW_CURSOR, first=limit, total=self.customers, after=after)


@strawberry.type(description="Every customer's label on `from` against its label on `to`, as flows.")
class Movement:
    from_: date = strawberry.field(name="from")
    to: date
    kind: MoveKind
    customers: int = strawberry.field(description="Customers created on or before `to`: the sum of the flows.")
    flows: list[Flow] = strawberry.field(description="One per (old, new) pair, unchanged pairs included, the "
                                                     "biggest first.")

    @strawberry.field(description="The one flow from `old` to `new` (null: none then), e.g. to page its customers "
                                  "without asking every flow's; null when no customer made that move.")
    def flow(self, old: Optional[str] = None, new: Optional[str] = None) -> Optional[Flow]:
        return next((f for f in self.flows if f.old == old and f.new == new), None)


@strawberry.type(description="How many customers carry a label (null: none).")
class LabelCount:
    label: Optional[str]
    customers: int


def not_after_today(day: date, today: date, name: str) -> None:
    if day > today:
        raise UserError("BAD_ARGUMENT", f"'{name}' ({day}) is after the data's today ({today}, the latest "
                                        f"evaluation's date): nothing is known about it yet", argument=name)


async def evaluated_day(info: Info, as_of: date, name: str = "asOf") -> date:
    """`as_of` when an evaluation was in force on it and it is not after the data's today; else BAD_ARGUMENT."""
    checked_date(as_of, name)
    c = ctx(info)
    not_after_today(as_of, await c.loaders.data_today(), name)
    first = await c.loaders.run(mv.first_evaluation_as_of, c.engine)
    if first is None:
        raise UserError("BAD_ARGUMENT", f"'{name}' ({as_of}): nothing has been evaluated yet, so no tier or status "
                                        f"was in force on any day", argument=name)
    if as_of < first:
        raise UserError("BAD_ARGUMENT", f"'{name}' ({as_of}) is before the first evaluation ({first}): no tier or "
                                        f"status was in force then (evaluationDates lists the evaluated days)",
                        argument=name)
    return as_of


@strawberry.type
class MovementQueries:
    @strawberry.field(description="Who moved from one tier (or status) to another between `from` and `to`: the "
                                  "label in force on each day, per customer, as flows (old, new) with their "
                                  "customers and revenue. Dates after the data's today are refused.",
                      permission_classes=[Public])
    async def movement(self, info: Info, from_: Annotated[date, strawberry.argument(name="from")], to: date,
                       kind: MoveKind = MoveKind.TIER) -> Movement:
        start, end = checked_date(from_, "from"), checked_date(to, "to")
        today = await ctx(info).loaders.data_today()
        not_after_today(end, today, "to")
        if start > end:
            raise UserError("BAD_ARGUMENT", f"'from' ({start}) is after 'to' ({end})", argument="from")
        c = ctx(info)
        args = _MovementArgs(start, end, kind.value)
        flows = await c.loaders.run(mv.movement, c.engine, start, end, kind.value)
        return Movement(from_=start, to=end, kind=kind, customers=sum(f.customers for f in flows),
                        flows=[Flow(old=f.old, new=f.new, customers=f.customers, revenue=f.revenue, args=args)
                               for f in flows])

    @strawberry.field(description="Customers per status in force on `asOf` (default: the latest evaluation's "
                                  "stored statuses), the largest count first. `asOf` must lie between the first "
                                  "evaluation and the data's today.", permission_classes=[Public])
    async def status_counts(self, info: Info, as_of: Optional[date] = None) -> list[LabelCount]:
        c = ctx(info)
        day = await evaluated_day(info, as_of) if as_of is not None else None
        return [LabelCount(label=r.label, customers=r.customers)
                for r in await c.loaders.run(mv.status_counts, c.engine, day)]

    @strawberry.field(description="The days the base was evaluated (batch runs), newest first: the days a past "
                                  "view (valueSummary, statusCounts, movement) can be asked for.",
                      permission_classes=[Public])
    async def evaluation_dates(self, info: Info) -> list[date]:
        c = ctx(info)
        return await c.loaders.run(mv.evaluation_dates, c.engine)
