"""Tier, status and tag changes: a paginated history and a live subscription that loses nothing on reconnect.

Every event has a cursor (the change's id in the append-only log, assigned in commit order). A subscriber that
passes the last cursor it received gets every later event exactly once, in order, also after a disconnect, a
server restart or being closed as too slow (SLOW_CONSUMER carries `lastCursor` for that). Live events are pushed
by the process's one ChangeFeed (domain/notify.py), not polled per subscriber.
"""
from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, AsyncGenerator, Optional

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from domain.change_filter import KINDS, ChangeFilter
from domain.events import ChangeEvent, changes_after, last_change_id
from domain.notify import SlowConsumer, running_feed
from schema.context import ctx
from schema.dates import checked_date
from schema.errors import UserError
from schema.permissions import Public
from schema.pagination import decode_cursor, encode_cursor, page_size

REPLAY_PAGE = 500


@strawberry.type(description="Why a change happened.")
class ChangeCause:
    kind: str = strawberry.field(description="NEW_DATA, TIME, RULES, CUTOFFS or MANUAL.")
    record_kind: Optional[str] = strawberry.field(description="NEW_DATA: order, complaint, delivery, interaction, "
                                                              "survey, opportunity, invoice, customer, product "
                                                              "(its sku) or import.")
    record_external_id: Optional[str] = strawberry.field(description="NEW_DATA: the record's id in your systems.")
    rule_set_version: Optional[int] = strawberry.field(description="RULES: the version published or rolled "
                                                                   "back to.")


@strawberry.type(description="A customer's tier or status moved, or a tag was added (newValue) or removed "
                             "(oldValue).")
class TierChangeEvent:
    cursor: str = strawberry.field(description="Pass as `after` to resume right after this event.")
    kind: str = strawberry.field(description="tier, status or tag")
    old_value: Optional[str]
    new_value: Optional[str]
    as_of: date = strawberry.field(description="The evaluation date that recorded the change.")
    changed_at: datetime
    customer_external_id: str
    customer_name: str
    customer_id: strawberry.ID = strawberry.field(description="The customer's global id.")
    effective_on: Optional[date] = strawberry.field(
        description="The day the customer's data first satisfied the deciding rule (see `exact`).")
    exact: Optional[bool] = strawberry.field(
        description="False where the day cannot be derived (e.g. a moved rank cut-off): then the evaluation date.")
    cause: Optional[ChangeCause]
    rule_line: Optional[int] = strawberry.field(description="The deciding rule's line in its rule set.")
    rule_text: Optional[str] = strawberry.field(description="The deciding rule's text.")
    rule_set_version: Optional[int]
    metrics: Optional[JSON] = strawberry.field(description="The metric values the rule read.")
    recorded_at: Optional[datetime]

    @classmethod
    def of(cls, e: ChangeEvent) -> "TierChangeEvent":
        cause = None if e.cause is None else ChangeCause(
            kind=e.cause, record_kind=e.cause_record_kind, record_external_id=e.cause_record_external_id,
            rule_set_version=e.cause_rule_set_version)
        return cls(cursor=_cursor(e.id), kind=e.kind, old_value=e.old_value,
                   new_value=e.new_value, as_of=e.as_of, changed_at=e.changed_at,
                   customer_external_id=e.customer_external_id, customer_name=e.customer_name,
                   customer_id=strawberry.ID(str(relay.GlobalID("Customer", e.customer_external_id))),
                   effective_on=e.effective_on, exact=e.exact, cause=cause, rule_line=e.rule_line,
                   rule_text=e.rule_text, rule_set_version=e.rule_set_version, metrics=e.metrics,
                   recorded_at=e.recorded_at or e.changed_at)


@strawberry.type
class TierChangePage:
    events: list[TierChangeEvent]
    end_cursor: Optional[str] = strawberry.field(description="The last event's cursor (or `after` when empty).")
    has_more: bool


def _cursor(change_id: int) -> str:
    return encode_cursor("tier_changes", [change_id])


def _after_id(after: Optional[str]) -> int:
    key = decode_cursor("tier_changes", after)
    return 0 if key is None else key[0]


def _values(name: str, values: Optional[list[str]]) -> Optional[tuple[str, ...]]:
    if values is not None and not values:
        raise UserError("BAD_ARGUMENT", f"'{name}' is empty: leave it out to take every value", argument=name)
    return tuple(values) if values else None


def _customer_key(customer: str) -> str:
    """A Customer global id, or else the customer's external id."""
    try:
        gid = relay.GlobalID.from_id(customer)
    except Exception:  # noqa: BLE001 - not a global id: an external id
        return customer
    return gid.node_id if gid.type_name == "Customer" else customer


async def _filter(info: Info, kinds: Optional[list[str]], new_values: Optional[list[str]],
                  old_values: Optional[list[str]], customer: Optional[str], effective_from: Optional[date],
                  effective_to: Optional[date]) -> ChangeFilter:
    """The arguments checked into one ChangeFilter; every mistake is a BAD_ARGUMENT / NOT_FOUND error."""
    if kinds:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise UserError("BAD_ARGUMENT", f"unknown kind(s) {unknown}: use {list(KINDS)}", argument="kinds")
    checked_date(effective_from, "effectiveFrom")
    checked_date(effective_to, "effectiveTo")
    if effective_from and effective_to and effective_from > effective_to:
        raise UserError("BAD_ARGUMENT", f"'effectiveFrom' ({effective_from}) is after 'effectiveTo' "
                                        f"({effective_to})", argument="effectiveFrom")
    external_id = None
    if customer is not None:
        external_id = _customer_key(customer)
        if await ctx(info).loaders.customer_by_external_id.load(external_id) is None:
            raise UserError("NOT_FOUND", f"no customer has the id or external id {customer!r}", argument="customer")
    return ChangeFilter(kinds=tuple(kinds) if kinds else None, new_values=_values("newValues", new_values),
                        old_values=_values("oldValues", old_values), customer_external_id=external_id,
                        effective_from=effective_from, effective_to=effective_to)


# The filter arguments, shared by the query and the subscription.
Kinds = Annotated[Optional[list[str]], strawberry.argument(description=f"Only these kinds: {', '.join(KINDS)}.")]
NewValues = Annotated[Optional[list[str]], strawberry.argument(
    description='Only changes to one of these values, e.g. ["lost"] (a tag: added).')]
OldValues = Annotated[Optional[list[str]], strawberry.argument(
    description="Only changes from one of these values (a tag: removed).")]
CustomerArg = Annotated[Optional[str], strawberry.argument(
    description="Only this customer's changes: its global id or its external id.")]
EffectiveFrom = Annotated[Optional[date], strawberry.argument(
    description="Only changes effective on or after this day.")]
EffectiveTo = Annotated[Optional[date], strawberry.argument(
    description="Only changes effective on or before this day.")]


@strawberry.type
class EventQueries:
    @strawberry.field(description="Tier, status and tag changes, oldest first (commit order), from `after` on.",
                      permission_classes=[Public])
    async def tier_changes(self, info: Info, first: Optional[int] = None, after: Optional[str] = None,
                           kinds: Kinds = None, new_values: NewValues = None, old_values: OldValues = None,
                           customer: CustomerArg = None, effective_from: EffectiveFrom = None,
                           effective_to: EffectiveTo = None) -> TierChangePage:
        limit = page_size(first)
        c = ctx(info)
        where = await _filter(info, kinds, new_values, old_values, customer, effective_from, effective_to)
        events = await c.loaders.run(changes_after, c.engine, _after_id(after), limit=limit + 1, where=where)
        shown = events[:limit]
        return TierChangePage(events=[TierChangeEvent.of(e) for e in shown],
                              end_cursor=_cursor(shown[-1].id) if shown else after,
                              has_more=len(events) > limit)


@strawberry.type
class EventSubscriptions:
    @strawberry.subscription(description="Live tier, status and tag changes, pushed as they commit. With `after`, "
                                         "first replays every change since that cursor; without it, starts with "
                                         "the next change. A subscriber too slow to keep up is closed with the "
                                         "error SLOW_CONSUMER and its `lastCursor`, to resume from.",
                             permission_classes=[Public])
    async def tier_changes(self, info: Info, after: Optional[str] = None, kinds: Kinds = None,
                           new_values: NewValues = None, old_values: OldValues = None,
                           customer: CustomerArg = None, effective_from: EffectiveFrom = None,
                           effective_to: EffectiveTo = None) -> AsyncGenerator[TierChangeEvent, None]:
        c = ctx(info)
        where = await _filter(info, kinds, new_values, old_values, customer, effective_from, effective_to)
        head = await c.loaders.run(last_change_id, c.engine)  # the replay below reads at least this far
        last = _after_id(after) if after is not None else head
        feed = running_feed(c.engine)
        if feed is None:  # the schema run without the server (no feed): poll the log
            async for event in _polled(info, last, where):
                yield event
            return

        def replay(since: int) -> list[ChangeEvent]:
            return changes_after(c.engine, since, limit=REPLAY_PAGE, where=where)

        # Replay the backlog, then subscribe, then replay the few rows committed in between: every row up to the
        # feed's position is in the log by then, every later one reaches the queue; ids seen are skipped.
        sub = None
        try:
            while True:
                events = await c.loaders.run(replay, last)
                for event in events:
                    yield TierChangeEvent.of(event)
                    last = event.id
                if len(events) < REPLAY_PAGE:
                    if sub is not None:
                        break
                    sub = feed.subscribe(where, replayed_through=max(last, head))
            while True:
                try:
                    event = await sub.next()
                except SlowConsumer:
                    raise UserError("SLOW_CONSUMER", "this subscription fell too far behind the live changes and "
                                                     "was closed; subscribe again with after: lastCursor to resume "
                                                     "from the log", lastCursor=_cursor(last)) from None
                if event.id > last:
                    yield TierChangeEvent.of(event)
                    last = event.id
        finally:
            if sub is not None:
                feed.unsubscribe(sub)


async def _polled(info: Info, last: int, where: ChangeFilter) -> AsyncGenerator[TierChangeEvent, None]:
    c = ctx(info)
    interval = getattr(c.settings, "event_poll_seconds", 1.0)
    while True:
        events = await c.loaders.run(changes_after, c.engine, last, limit=REPLAY_PAGE, where=where)
        for event in events:
            yield TierChangeEvent.of(event)
            last = event.id
        if len(events) < REPLAY_PAGE:
            await asyncio.sleep(interval)
