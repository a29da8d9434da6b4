"""Admin workflow for rule sets: see the active version and its history, preview who moves, publish, roll back."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

import strawberry
from strawberry.types import Info

from domain import jobs, rulesets
from domain.data_date import data_today
from rules.compiler import compile_rules
from rules.errors import RuleErrors
from schema.context import ctx
from schema.customers import Customer
from schema.dates import checked_date
from schema.errors import UserError
from schema.jobs import Job
from schema.movement import MovedCustomer, MoveKind, MoverConnection, mover_connection
from schema.pagination import decode_cursor, page_size
from schema.permissions import IsAdmin, RuleText
from schema.rules import rule_error

MOVERS_CURSOR = "rule_preview_movers"  # a previewed move's customers: (revenue_12m, customer id), in KEY_TYPES


@strawberry.type
class RuleSetVersion:
    version: int
    name: str
    source: str
    checksum: str
    published_at: datetime
    published_by: Optional[str]
    is_active: bool

    @classmethod
    def of(cls, v: rulesets.Version) -> "RuleSetVersion":
        return cls(version=v.version, name=v.name, source=v.source, checksum=v.checksum,
                   published_at=v.published_at, published_by=v.published_by, is_active=v.is_active)


@strawberry.type(description="How many customers go from `old` to `new` (null old: not evaluated before).")
class MoveCount:
    kind: str
    old: Optional[str]
    new: Optional[str]
    customers: int
    revenue: float = strawberry.field(description="The movers' revenue12m from the stored value scores (a "
                                                  "customer without scores adds 0).")


@strawberry.type
class Mover:
    old_tier: Optional[str]
    new_tier: Optional[str]
    old_status: Optional[str]
    new_status: Optional[str]
    row_id: strawberry.Private[int]

    @strawberry.field
    async def customer(self, info: Info) -> Optional[Customer]:
        row = await ctx(info).loaders.customer_by_id.load(self.row_id)
        return Customer.from_row(row) if row else None


@strawberry.type(description="What publishing this text would change, computed without storing anything.")
class RulePreview:
    as_of: date
    customers: int
    changed_tiers: int
    moves: list[MoveCount]
    movers: list[Mover] = strawberry.field(description="Up to 50 customers whose tier or status changes.")
    ruleset: strawberry.Private[Any]  # the candidate, compiled once for the request

    @strawberry.field(description="The customers of one move (kind, old -> new, as in `moves`; null old: not "
                                  "evaluated before or none), the biggest revenue12m first (keyset-paginated, "
                                  "`first` at most 100).")
    async def mover_list(self, info: Info, kind: MoveKind, old: Optional[str] = None, new: Optional[str] = None,
                         first: Optional[int] = 20, after: Optional[str] = None) -> MoverConnection:
        limit = page_size(first)
        key = decode_cursor(MOVERS_CURSOR, after)
        c = ctx(info)
        rows = await c.loaders.run(rulesets.preview_movers, c.engine, self.ruleset, self.as_of, kind.value, old, new,
                                   limit=limit + 1, after=tuple(key) if key else None)
        total = next((m.customers for m in self.moves if (m.kind, m.old, m.new) == (kind.value, old, new)), 0)
        pairs = [(MovedCustomer(revenue=r.revenue, row_id=r.customer_id), [r.revenue, r.customer_id]) for r in rows]
        return mover_connection(pairs, kind=MOVERS_CURSOR, first=limit, total=total, after=after)


@strawberry.type(description="The version being applied and the job that evaluates the base with it; the "
                             "version becomes active when the job succeeds (follow it with `job(id)`).")
class PublishResult:
    version: RuleSetVersion
    job: Job


def _compile(source: str):
    try:
        return compile_rules(source)
    except RuleErrors as exc:
        raise rule_error(exc, "the rules have errors") from None


def _preview(engine, source: str, as_of: Optional[date]) -> RulePreview:
    ruleset = _compile(source)
    p = rulesets.preview(engine, ruleset, data_today(engine, as_of))
    return RulePreview(
        as_of=p.as_of, customers=p.customers, changed_tiers=p.changed,
        moves=[MoveCount(kind=m.kind, old=m.old, new=m.new, customers=m.customers, revenue=m.revenue)
               for m in p.moves],
        movers=[Mover(old_tier=m["old_tier"], new_tier=m["new_tier"], old_status=m["old_status"],
                      new_status=m["new_status"], row_id=m["customer_id"]) for m in p.movers],
        ruleset=ruleset,
    )


def _started(version: rulesets.Version, job: jobs.Job) -> PublishResult:
    return PublishResult(version=RuleSetVersion.of(version), job=Job.of(job))


@strawberry.type
class RuleSetQueries:
    @strawberry.field(description="The rule set in force (admin).", permission_classes=[IsAdmin])
    async def rule_set(self, info: Info) -> RuleSetVersion:
        return RuleSetVersion.of(ctx(info).rule_version)

    @strawberry.field(description="Every published version, newest first (admin).", permission_classes=[IsAdmin])
    async def rule_set_history(self, info: Info) -> list[RuleSetVersion]:
        c = ctx(info)
        return [RuleSetVersion.of(v) for v in await c.loaders.run(rulesets.history, c.engine)]

    @strawberry.field(description="Who would move to another tier or status if this text were published (admin). "
                                  "Without `asOf`: as of the latest evaluation; `asOf` in the answer says which.",
                      permission_classes=[IsAdmin])
    async def preview_rules(self, info: Info, text: RuleText, as_of: Optional[date] = None) -> RulePreview:
        c = ctx(info)
        return await c.loaders.run(_preview, c.engine, text, checked_date(as_of))


@strawberry.type
class RuleSetMutations:
    @strawberry.mutation(description="Check and store the text as the next version, and start the job that "
                                     "re-evaluates the base with it and makes it active (admin). Invalid text changes "
                                     "nothing and returns every error; a failed evaluation leaves the previous "
                                     "version active. One evaluation job at a time: CONFLICT while one runs.",
                         permission_classes=[IsAdmin])
    async def publish_rules(self, info: Info, text: RuleText, as_of: Optional[date] = None) -> PublishResult:
        c = ctx(info)
        try:
            version, job = await c.loaders.run(jobs.start_publish, c.engine, text, by="admin",
                                               as_of=checked_date(as_of))
        except RuleErrors as exc:
            raise rule_error(exc, "the rules have errors") from None
        except jobs.JobConflict as exc:
            raise UserError("CONFLICT", str(exc)) from None
        return _started(version, job)

    @strawberry.mutation(description="Start the job that re-evaluates the base with an earlier version and makes "
                                     "it active again (admin).", permission_classes=[IsAdmin])
    async def rollback_rules(self, info: Info, version: int, as_of: Optional[date] = None) -> PublishResult:
        c = ctx(info)
        try:
            earlier, job = await c.loaders.run(jobs.start_rollback, c.engine, version, by="admin",
                                               as_of=checked_date(as_of))
        except rulesets.RuleSetNotFound as exc:
            raise UserError("NOT_FOUND", str(exc)) from None
        except jobs.JobConflict as exc:
            raise UserError("CONFLICT", str(exc)) from None
        return _started(earlier, job)
