"""Root query fields: one customer by id or external id, and the paginated, filterable customer list."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Optional

import sqlalchemy as sa
import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.models import Customer as CustomerTable
from domain.models import CustomerEvaluation
from rules.to_sql import compile_filter
from schema.context import ctx
from schema.customers import Customer
from schema.errors import UserError
from schema.pagination import Connection, build_connection, decode_cursor, page_size
from schema.rules import RuleDiagnostic, compile_where, validate
from schema.events import EventQueries
from schema.loss import LossQueries
from schema.rulesets import RuleSetQueries
from schema.value import ValueQueries
from schema.webhooks import WebhookQueries


@dataclass(frozen=True)
class CustomerFilter:
    """Plain filters of `customers`; combined with AND."""

    region: Optional[str] = None
    industry: Optional[str] = None
    size: Optional[str] = None
    tier: Optional[str] = None
    status: Optional[str] = None
    tag: Optional[str] = None


def _customer_filters(flt: CustomerFilter) -> tuple[list[sa.ColumnElement], bool]:
    """WHERE clauses for the filter, and whether they need the evaluation results joined."""
    table = CustomerTable.__table__
    ev = CustomerEvaluation.__table__
    clauses: list[sa.ColumnElement] = []
    needs_eval = False
    for name in ("region", "industry", "size"):
        value = getattr(flt, name)
        if value is not None:
            clauses.append(table.c[name] == value)
    for name in ("tier", "status"):
        value = getattr(flt, name)
        if value is not None:
            clauses.append(ev.c[name] == value)
            needs_eval = True
    if flt.tag is not None:
        # tags are a small JSON list; a LIKE on its text form works on both databases
        clauses.append(sa.cast(ev.c.tags, sa.String).like(f'%"{_like_escape(flt.tag)}"%', escape="\\"))
        needs_eval = True
    return clauses, needs_eval


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_customers(engine, first: int, after_id: Optional[int], clauses: list, needs_eval: bool):
    table = CustomerTable.__table__
    source = table
    if needs_eval:
        ev = CustomerEvaluation.__table__
        source = table.join(ev, ev.c.customer_id == table.c.id)
    page = sa.select(table).select_from(source).where(*clauses)
    if after_id is not None:
        page = page.where(table.c.id > after_id)
    page = page.order_by(table.c.id).limit(first + 1)
    total = sa.select(sa.func.count()).select_from(source).where(*clauses)
    with engine.connect() as conn:
        return list(conn.execute(page)), conn.execute(total).scalar_one()


@strawberry.type
class Query(RuleSetQueries, EventQueries, WebhookQueries, ValueQueries, LossQueries):
    node: relay.Node = relay.node()

    @strawberry.field(description="Check rule text without changing anything: every error and warning "
                                  "(severity ERROR / WARNING) with line, column and a caret. Empty when all is well.")
    def validate_rules(self, source: str) -> list[RuleDiagnostic]:
        return validate(source)

    @strawberry.field(description="A customer by its global id (as returned in `id`).")
    async def customer(self, info: Info, id: strawberry.ID) -> Optional[Customer]:
        try:
            gid = relay.GlobalID.from_id(id)
        except Exception:  # noqa: BLE001 - any undecodable id is the client's mistake
            raise UserError("BAD_ID", f"{id!r} is not a customer id issued by this API") from None
        if gid.type_name != "Customer":
            raise UserError("BAD_ID", f"{id!r} is the id of a {gid.type_name}, not of a Customer")
        nodes = await Customer.resolve_nodes(info=info, node_ids=[gid.node_id])
        return nodes[0]

    @strawberry.field(description="A customer by the id it has in your own systems.")
    async def customer_by_external_id(self, info: Info, external_id: str) -> Optional[Customer]:
        nodes = await Customer.resolve_nodes(info=info, node_ids=[external_id])
        return nodes[0]

    @strawberry.field(description="Customers in a stable order, keyset-paginated (`first` at most 100).")
    async def customers(self, info: Info, first: Optional[int] = None, after: Optional[str] = None,
                        tier: Optional[str] = None, status: Optional[str] = None, tag: Optional[str] = None,
                        region: Optional[str] = None, industry: Optional[str] = None, size: Optional[str] = None,
                        where: Annotated[Optional[str], strawberry.argument(
                            description="A condition in the rule language, e.g. "
                                        "\"no order 30d and revenue_12m > 5000\".")] = None,
                        as_of: Annotated[Optional[date], strawberry.argument(
                            description="Evaluation date for `where` (default: today).")] = None,
                        ) -> Connection[Customer]:
        limit = page_size(first)
        key = decode_cursor("customers", after)
        after_id = None
        if key is not None:
            if len(key) != 1 or not isinstance(key[0], int):
                raise UserError("BAD_CURSOR", "'after' is not a customers cursor")
            after_id = key[0]
        clauses, needs_eval = _customer_filters(CustomerFilter(region, industry, size, tier, status, tag))
        c = ctx(info)
        if where is not None:
            condition = compile_where(info, where)
            matching = compile_filter(condition, c.rules, as_of or date.today()).subquery()
            clauses.append(CustomerTable.__table__.c.id.in_(sa.select(matching.c.customer_id)))
        rows, total = await c.loaders.run(list_customers, c.engine, limit, after_id, clauses, needs_eval)
        for row in rows:  # prime the loader so nested lookups of these customers cost nothing
            c.loaders.customer_by_id.prime(row._mapping["id"], row)
        pairs = [(Customer.from_row(r), [r._mapping["id"]]) for r in rows]
        return build_connection(pairs, kind="customers", first=limit, total=total, after=after)
