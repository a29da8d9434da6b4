"""Admin workflow for rule sets: see the active version and its history, preview who moves, publish, roll back."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

import strawberry
from strawberry.types import Info

from domain import rulesets
from domain.evaluation import run_batch
from rules.compiler import compile_rules
from rules.errors import RuleErrors
from schema.context import ctx
from schema.customers import Customer
from schema.errors import UserError
from schema.rules import rule_error


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


@strawberry.type
class PublishResult:
    version: RuleSetVersion
    evaluated_customers: int
    as_of: date


def _compile(source: str):
    try:
        return compile_rules(source)
    except RuleErrors as exc:
        raise rule_error(exc, "the rules have errors") from None


def _evaluate(info: Info, version: rulesets.Version, as_of: date) -> int:
    c = ctx(info)
    run = run_batch(c.engine, compile_rules(version.source), as_of, rule_set_id=version.id)
    return run.customer_count


@strawberry.type
class RuleSetQueries:
    @strawberry.field(description="The rule set in force.")
    def rule_set(self, info: Info) -> RuleSetVersion:
        return RuleSetVersion.of(ctx(info).rule_version)

    @strawberry.field(description="Every published version, newest first.")
    def rule_set_history(self, info: Info) -> list[RuleSetVersion]:
        return [RuleSetVersion.of(v) for v in rulesets.history(ctx(info).engine)]

    @strawberry.field(description="Who would move to another tier or status if this text were published.")
    def preview_rules(self, info: Info, source: str, as_of: Optional[date] = None) -> RulePreview:
        ruleset = _compile(source)
        p = rulesets.preview(ctx(info).engine, ruleset, as_of or date.today())
        return RulePreview(
            as_of=p.as_of, customers=p.customers, changed_tiers=p.changed,
            moves=[MoveCount(kind=m.kind, old=m.old, new=m.new, customers=m.customers) for m in p.moves],
            movers=[Mover(old_tier=m["old_tier"], new_tier=m["new_tier"], old_status=m["old_status"],
                          new_status=m["new_status"], row_id=m["customer_id"]) for m in p.movers],
        )


@strawberry.type
class RuleSetMutations:
    @strawberry.mutation(description="Check, store as the next version, make active and re-evaluate the base "
                                     "(admin). Invalid text changes nothing and returns every error.")
    def publish_rules(self, info: Info, source: str, as_of: Optional[date] = None) -> PublishResult:
        who = ctx(info).require_admin()
        _compile(source)
        version = rulesets.publish(ctx(info).engine, source, by=who)
        day = as_of or date.today()
        return PublishResult(version=RuleSetVersion.of(version), evaluated_customers=_evaluate(info, version, day),
                             as_of=day)

    @strawberry.mutation(description="Make an earlier version the active one again and re-evaluate (admin).")
    def rollback_rules(self, info: Info, version: int, as_of: Optional[date] = None) -> PublishResult:
        ctx(info).require_admin()
        try:
            restored = rulesets.rollback(ctx(info).engine, version)
        except rulesets.RuleSetNotFound as exc:
            raise UserError("NOT_FOUND", str(exc)) from None
        day = as_of or date.today()
        return PublishResult(version=RuleSetVersion.of(restored), evaluated_customers=_evaluate(info, restored, day),
                             as_of=day)
