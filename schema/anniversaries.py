"""upcomingAnniversaries: customers whose relationship anniversary comes within the next days (domain.anniversaries),
for account managers to call on the day."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Optional

import strawberry
from strawberry.types import Info

from domain.anniversaries import upcoming_anniversaries
from domain.anniversary import next_anniversary
from schema.context import ctx
from schema.errors import UserError
from schema.pagination import KEY_TYPES, Connection, build_connection, decode_cursor, page_size
from schema.permissions import Public

MAX_DAYS = 366
KEY_TYPES["anniversaries"] = (int, int)  # days until, customer id


@strawberry.type(description="A customer's next relationship anniversary.")
class Anniversary:
    anniversary: date = strawberry.field(description="The date (29 February customers: 28 February in common years).")
    years: int = strawberry.field(description="Which anniversary it is: its year minus customer since's year.")
    days_until: int = strawberry.field(description="Days from the data's now, 0 on the day.")
    customer_since: date
    row: strawberry.Private[object]

    @strawberry.field
    def customer(self) -> Annotated["Customer", strawberry.lazy("schema.customers")]:
        from schema.customers import Customer

        return Customer.from_row(self.row)


@strawberry.type
class AnniversaryQueries:
    @strawberry.field(description="Customers whose next anniversary is within `days` (1-366) days of the data's now, "
                                  "today included, the nearest first (then by customer); erased customers left out.",
                      permission_classes=[Public])
    async def upcoming_anniversaries(self, info: Info, days: int, first: Optional[int] = None,
                                     after: Optional[str] = None) -> Connection[Anniversary]:
        if not 1 <= days <= MAX_DAYS:
            raise UserError("BAD_ARGUMENT", f"'days' must be between 1 and {MAX_DAYS}, got {days}", argument="days")
        limit = page_size(first)
        key = decode_cursor("anniversaries", after)
        c = ctx(info)
        today = await c.loaders.data_today()
        found = await c.loaders.run(upcoming_anniversaries, c.engine, today, days, limit,
                                    tuple(key) if key else None)
        pairs = []
        for r in found.rows:
            c.loaders.customer_by_id.prime(r.id, r)
            on = next_anniversary(r.since, today)
            pairs.append((Anniversary(anniversary=on, years=on.year - r.since.year, days_until=r.days_until,
                                      customer_since=r.since, row=r), [r.days_until, r.id]))
        return build_connection(pairs, kind="anniversaries", first=limit, total=found.total, after=after, as_of=today)
