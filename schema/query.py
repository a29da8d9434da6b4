"""Root query fields: one customer by id or external id, and the paginated, filterable customer list."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Optional

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.customers import CustomerFilter, list_customers
from schema.context import ctx
from schema.customers import Customer
from schema.dates import checked_date
from schema.errors import UserError
from schema.jobs import JobQueries
from schema.pagination import Connection, build_connection, decode_cursor, page_size
from schema.permissions import Public, RuleText
from schema.rules import RuleDiagnostic, compile_where, validate
from schema.events import EventQueries
from schema.loss import LossQueries
from schema.movement import MovementQueries
from schema.rule_diff import RuleDiffQueries
from schema.revenue_bridge import RevenueBridgeQueries
from schema.loss_reasons import LossReasonQueries
from schema.anniversaries import AnniversaryQueries
from schema.backtest import BacktestQueries
from schema.rulesets import RuleSetQueries
from schema.value import ValueQueries
from schema.webhooks import WebhookQueries
from schema.privacy import PrivacyQueries


@strawberry.type
class Query(RuleSetQueries, JobQueries, EventQueries, WebhookQueries, ValueQueries, LossQueries,
            RevenueBridgeQueries, LossReasonQueries, BacktestQueries, MovementQueries,
            RuleDiffQueries, PrivacyQueries, AnniversaryQueries):
    @strawberry.field(description="Fetches an object given its global id.", permission_classes=[Public])
    async def node(self, info: Info, id: relay.GlobalID) -> relay.Node:
        # Customer is the one Node type: any other id is BAD_ID, an unknown customer NOT_FOUND (never a null here)
        if id.type_name != "Customer":
            raise UserError("BAD_ID", f"{str(id)!r} is the id of a {id.type_name}, not of a Customer")
        nodes = await Customer.resolve_nodes(info=info, node_ids=[id.node_id])
        if nodes[0] is None:
            raise UserError("NOT_FOUND", f"no customer has the id {str(id)!r}")
        return nodes[0]

    @strawberry.field(description="Check rule text without changing anything: every error and warning "
                                  "(severity ERROR / WARNING) with line, column and a caret. Empty when all is well.",
                      permission_classes=[Public])
    async def validate_rules(self, info: Info, text: RuleText) -> list[RuleDiagnostic]:
        return await ctx(info).loaders.run(validate, text)

    @strawberry.field(description="A customer by its global id (as returned in `id`).", permission_classes=[Public])
    async def customer(self, info: Info, id: strawberry.ID) -> Optional[Customer]:
        nodes = await Customer.resolve_nodes(info=info, node_ids=[customer_key(id)])
        return nodes[0]

    @strawberry.field(description="A customer by the id it has in your own systems.", permission_classes=[Public])
    async def customer_by_external_id(self, info: Info, external_id: str) -> Optional[Customer]:
        nodes = await Customer.resolve_nodes(info=info, node_ids=[external_id])
        return nodes[0]

    @strawberry.field(description="Customers in a stable order, keyset-paginated (`first` at most 100).",
                      permission_classes=[Public])
    async def customers(self, info: Info, first: Optional[int] = None, after: Optional[str] = None,
                        tier: Optional[str] = None, status: Optional[str] = None, tag: Optional[str] = None,
                        region: Optional[str] = None, industry: Optional[str] = None, size: Optional[str] = None,
                        where: Annotated[Optional[str], strawberry.argument(
                            description="A condition in the rule language, e.g. "
                                        "\"no order 30d and revenue_12m > 5000\".")] = None,
                        as_of: Annotated[Optional[date], strawberry.argument(
                            description="Evaluation date for `where` (default: the latest evaluation's, "
                                        "given back in `asOf`).")] = None,
                        ) -> Connection[Customer]:
        limit = page_size(first)
        key = decode_cursor("customers", after)
        c = ctx(info)
        condition = compile_where(info, where) if where is not None else None
        found = await c.loaders.run(list_customers, c.engine, limit, key[0] if key else None,
                                    CustomerFilter(region, industry, size, tier, status, tag), condition, c.rules,
                                    checked_date(as_of))
        for row in found.rows:  # prime the loader so nested lookups of these customers cost nothing
            c.loaders.customer_by_id.prime(row._mapping["id"], row)
        pairs = [(Customer.from_row(r), [r._mapping["id"]]) for r in found.rows]
        return build_connection(pairs, kind="customers", first=limit, total=found.total, after=after,
                                as_of=found.as_of)


def customer_key(id: str) -> str:
    """The external id inside a Customer global id; any other id is the client's mistake (BAD_ID)."""
    try:
        gid = relay.GlobalID.from_id(id)
    except Exception:  # noqa: BLE001 - any undecodable id is the client's mistake
        raise UserError("BAD_ID", f"{id!r} is not a customer id issued by this API") from None
    if gid.type_name != "Customer":
        raise UserError("BAD_ID", f"{id!r} is the id of a {gid.type_name}, not of a Customer")
    return gid.node_id
