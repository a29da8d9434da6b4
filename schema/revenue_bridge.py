"""The revenue bridge over GraphQL: a month's revenue against a base month, split by what each customer did."""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Annotated, Optional

import sqlalchemy as sa
import strawberry
from strawberry.types import Info

from domain import revenue_bridge as bridge
from domain.data_date import FIRST_DAY, LAST_DAY
from schema.context import ctx
from schema.errors import UserError
from schema.pagination import Connection, build_connection, decode_cursor, page_size
from schema.permissions import Public

if TYPE_CHECKING:
    from schema.customers import Customer

MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
CURSOR_KEY = (float, int)  # effect, customer id


@strawberry.enum(description="The month the bridge starts from.")
class BridgeComparison(enum.Enum):
    PREVIOUS_MONTH = bridge.PREVIOUS_MONTH
    SAME_MONTH_LAST_YEAR = bridge.SAME_MONTH_LAST_YEAR


@strawberry.enum(description="What a customer did between the base month and the month (docs/api.md, "
                             "\"Revenue bridge\").")
class BridgeCategory(enum.Enum):
    NEW = strawberry.enum_value(bridge.NEW, description="No order in the base month and none ever before the month.")
    RETURNING = strawberry.enum_value(bridge.RETURNING, description="No order in the base month, some order before "
                                                                    "the month.")
    EXPANSION = strawberry.enum_value(bridge.EXPANSION, description="Orders in both months, more revenue in the "
                                                                    "month; effect: the increase.")
    CONTRACTION = strawberry.enum_value(bridge.CONTRACTION, description="Orders in both months, less revenue in the "
                                                                        "month; effect: the decrease.")
    STOPPED_LOST = strawberry.enum_value(bridge.STOPPED_LOST, description="Orders in the base month, none in the "
                                                                          "month, lost at the month's end.")
    STOPPED_QUIET = strawberry.enum_value(bridge.STOPPED_QUIET, description="Orders in the base month, none in the "
                                                                            "month, not lost at the month's end.")


@dataclass(frozen=True)
class _BridgeArgs:
    """What a category's customer list needs to ask the database again."""

    month: date
    compare_to: str
    lost_at_month_end: Optional[sa.Select]


@strawberry.type(description="One customer's part in a category of the bridge.")
class RevenueBridgeCustomer:
    revenue: float = strawberry.field(description="Its revenue in the month.")
    base_revenue: float = strawberry.field(description="Its revenue in the base month.")
    effect: float = strawberry.field(description="What it adds to its category's revenue: the month's revenue (NEW, "
                                                 "RETURNING), the difference (EXPANSION, CONTRACTION) or the base "
                                                 "month's revenue (STOPPED_*).")
    row_id: strawberry.Private[int]

    @strawberry.field
    async def customer(self, info: Info) -> Optional[Annotated["Customer", strawberry.lazy("schema.customers")]]:
        from schema.customers import Customer

        row = await ctx(info).loaders.customer_by_id.load(self.row_id)
        return Customer.from_row(row) if row else None


@strawberry.type(description="One step of the bridge: its customers and their summed effect.")
class RevenueBridgeCategory:
    category: BridgeCategory
    customers: int
    revenue: float = strawberry.field(description="The sum of its customers' effects (positive with ordinary data).")
    margin: Optional[float] = strawberry.field(description="The same from order margins; null when any order "
                                                           "involved has an unknown margin.")
    args: strawberry.Private[_BridgeArgs]

    @strawberry.field(description="Its customers, the biggest effect first (keyset-paginated, `first` at most 100).")
    async def customer_list(self, info: Info, first: Optional[int] = None,
                            after: Optional[str] = None) -> Connection[RevenueBridgeCustomer]:
        limit = page_size(first)
        kind = f"revenue_bridge:{self.category.value}"
        key = decode_cursor(kind, after, CURSOR_KEY)
        c = ctx(info)
        a = self.args
        rows = await c.loaders.run(bridge.bridge_customers, c.engine, a.month, a.compare_to, a.lost_at_month_end,
                                   self.category.value, limit=limit + 1, after=tuple(key) if key else None)
        pairs = [(RevenueBridgeCustomer(revenue=r.revenue, base_revenue=r.base_revenue, effect=r.effect,
                                        row_id=r.customer_id), [r.effect, r.customer_id]) for r in rows]
        return build_connection(pairs, kind=kind, first=limit, total=self.customers, after=after)


@strawberry.type(description="The month's revenue against the base month's, split by customer: total - baseTotal "
                             "= NEW + RETURNING + EXPANSION - CONTRACTION - STOPPED_LOST - STOPPED_QUIET.")
class RevenueBridge:
    month: str = strawberry.field(description="YYYY-MM.")
    base_month: str = strawberry.field(description="YYYY-MM.")
    total: float = strawberry.field(description="Revenue of the month: the sum of its order amounts.")
    base_total: float = strawberry.field(description="Revenue of the base month.")
    unchanged: int = strawberry.field(description="Customers with orders in both months and the same revenue: "
                                                  "their effect is zero and they are in no category.")
    all_categories: strawberry.Private[list[RevenueBridgeCategory]]

    @strawberry.field(description="All six, in the bridge's order, or only those asked for (paging one category's "
                                  "customers takes `only`: a cursor belongs to its own category's list).")
    def categories(self, only: Optional[list[BridgeCategory]] = None) -> list[RevenueBridgeCategory]:
        return [k for k in self.all_categories if only is None or k.category in only]


def parse_month(value: str, name: str = "month") -> date:
    """The first day of a "YYYY-MM" month within Tiergraph's calendar; anything else is BAD_ARGUMENT."""
    found = MONTH.fullmatch(value)
    month = None
    if found and 1 <= int(found.group(2)) <= 12:
        month = date(int(found.group(1)), int(found.group(2)), 1)
    if month is None or not FIRST_DAY <= month <= LAST_DAY:
        raise UserError("BAD_ARGUMENT", f"'{name}' must be a month YYYY-MM between {FIRST_DAY:%Y-%m} and "
                                        f"{LAST_DAY:%Y-%m}, got {value!r}", argument=name)
    return month


async def _lost_at(day: date, info: Info) -> sa.Select:
    """The customers whose status is lost on `day` (in a loss episode open then: blocked, rule or manual), as a
    SELECT of `customer_id`."""
    from domain.loss_history import lost_customers_on
    from schema.loss import loss_rules

    return lost_customers_on(await loss_rules(info), day)


@strawberry.type
class RevenueBridgeQueries:
    @strawberry.field(description="How revenue moved from a base month to `month`, customer by customer: new, "
                                  "returning, expansion, contraction, stopped (lost or quiet).",
                      permission_classes=[Public])
    async def revenue_bridge(self, info: Info,
                             month: Annotated[str, strawberry.argument(description="YYYY-MM, e.g. \"1998-03\".")],
                             compare_to: BridgeComparison = BridgeComparison.PREVIOUS_MONTH) -> RevenueBridge:
        start = parse_month(month)
        args = _BridgeArgs(start, compare_to.value, await _lost_at(bridge.month_end(start), info))
        c = ctx(info)
        b = await c.loaders.run(bridge.revenue_bridge, c.engine, args.month, args.compare_to, args.lost_at_month_end)
        return RevenueBridge(
            month=f"{b.month:%Y-%m}", base_month=f"{b.base_month:%Y-%m}", total=b.total, base_total=b.base_total,
            unchanged=b.unchanged,
            all_categories=[RevenueBridgeCategory(category=BridgeCategory(k.category), customers=k.customers,
                                              revenue=k.revenue, margin=k.margin, args=args) for k in b.categories])
