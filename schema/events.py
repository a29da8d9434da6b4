"""Tier and status changes: a paginated history and a live subscription that loses nothing on reconnect.

Every event has a cursor (the change's id in the append-only log). A subscriber that passes the last cursor it
received gets every later event exactly once, in order, also after a disconnect or a server restart.
"""
from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import AsyncGenerator, Optional

import strawberry
from strawberry.types import Info

from domain.events import ChangeEvent, changes_after, last_change_id
from schema.context import ctx
from schema.errors import UserError
from schema.permissions import Public
from schema.pagination import decode_cursor, encode_cursor, page_size

KINDS = ("tier", "status")


@strawberry.type(description="A customer moved to another tier or status in a batch evaluation.")
class TierChangeEvent:
    cursor: str = strawberry.field(description="Pass as `after` to resume right after this event.")
    kind: str = strawberry.field(description="tier or status")
    old_value: Optional[str]
    new_value: Optional[str]
    as_of: date
    changed_at: datetime
    customer_external_id: str
    customer_name: str
    customer_id: strawberry.ID = strawberry.field(description="The customer's global id.")

    @classmethod
    def of(cls, e: ChangeEvent) -> "TierChangeEvent":
        from strawberry.relay import GlobalID

        return cls(cursor=encode_cursor("tier_changes", [e.id]), kind=e.kind, old_value=e.old_value,
                   new_value=e.new_value, as_of=e.as_of, changed_at=e.changed_at,
                   customer_external_id=e.customer_external_id, customer_name=e.customer_name,
                   customer_id=strawberry.ID(str(GlobalID("Customer", e.customer_external_id))))


@strawberry.type
class TierChangePage:
    events: list[TierChangeEvent]
    end_cursor: Optional[str] = strawberry.field(description="The last event's cursor (or `after` when empty).")
    has_more: bool


def _after_id(after: Optional[str]) -> int:
    key = decode_cursor("tier_changes", after)
    return 0 if key is None else key[0]


def _kinds(kinds: Optional[list[str]]) -> Optional[list[str]]:
    if kinds:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise UserError("BAD_ARGUMENT", f"unknown kind(s) {unknown}: use {list(KINDS)}")
    return kinds


@strawberry.type
class EventQueries:
    @strawberry.field(description="Tier and status changes, oldest first, from `after` on.",
                      permission_classes=[Public])
    async def tier_changes(self, info: Info, first: Optional[int] = None, after: Optional[str] = None,
                           kinds: Optional[list[str]] = None) -> TierChangePage:
        limit = page_size(first)
        c = ctx(info)
        events = await c.loaders.run(changes_after, c.engine, _after_id(after), limit=limit + 1, kinds=_kinds(kinds))
        shown = events[:limit]
        return TierChangePage(events=[TierChangeEvent.of(e) for e in shown],
                              end_cursor=encode_cursor("tier_changes", [shown[-1].id]) if shown else after,
                              has_more=len(events) > limit)


@strawberry.type
class EventSubscriptions:
    @strawberry.subscription(description="Live tier and status changes. With `after`, first replays every change "
                                         "since that cursor; without it, starts with the next change.",
                            permission_classes=[Public])
    async def tier_changes(self, info: Info, after: Optional[str] = None,
                           kinds: Optional[list[str]] = None) -> AsyncGenerator[TierChangeEvent, None]:
        c = ctx(info)
        wanted = _kinds(kinds)
        last = _after_id(after) if after is not None else await c.loaders.run(last_change_id, c.engine)
        interval = getattr(c.settings, "event_poll_seconds", 1.0)
        while True:
            events = await c.loaders.run(changes_after, c.engine, last, limit=500, kinds=wanted)
            for event in events:
                yield TierChangeEvent.of(event)
            if events:
                last = events[-1].id
            if len(events) < 500:
                await asyncio.sleep(interval)
