"""Rule-driven fields: tier, status and tags with the deciding rule, ad-hoc filters, rule validation."""
from __future__ import annotations

from datetime import date
from typing import Optional

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from rules.compiler import compile_condition, validate_rules
from rules.errors import RuleError, RuleErrors
from schema.context import ctx
from schema.errors import UserError


@strawberry.type(description="One problem in rule text, with where it is and a caret under it.")
class RuleDiagnostic:
    code: str
    severity: str
    message: str
    line: int
    column: int
    snippet: str

    @classmethod
    def of(cls, e: RuleError) -> "RuleDiagnostic":
        return cls(code=e.code, severity="WARNING" if e.is_warning else "ERROR", message=e.message,
                   line=e.line, column=e.column, snippet=e.snippet)


def validate(source: str) -> list[RuleDiagnostic]:
    """Every error and warning, in line order; the text is valid when none has severity ERROR."""
    return [RuleDiagnostic.of(p) for p in validate_rules(source)]


def rule_error(exc: RuleErrors, what: str) -> UserError:
    """A client error whose extensions list every diagnostic, so a front end can underline each one."""
    first = exc.errors[0]
    return UserError("RULE_ERROR", f"{what}: {first.message} (line {first.line}, column {first.column})",
                     diagnostics=[{"code": e.code, "message": e.message, "line": e.line, "column": e.column,
                                   "snippet": e.snippet} for e in exc.errors])


def compile_where(info: Info, where: str):
    ruleset = ctx(info).rules
    try:
        return compile_condition(where, ruleset)
    except RuleErrors as exc:
        raise rule_error(exc, "invalid 'where' condition") from None


@strawberry.type(description="A tier, status or tag and the rule that gave it.")
class Assignment:
    name: str
    line: Optional[int] = strawberry.field(description="Line of the deciding rule in the rule set.")
    rule: Optional[str] = strawberry.field(description="The deciding rule as written.")
    customer_id: strawberry.Private[int]
    kind: strawberry.Private[str]
    since: Optional[date] = strawberry.field(
        default=None, description="Tier and status: the effective date of the change that set this value (the "
                                  "same however many evaluations ran since); null for tags.")

    @strawberry.field(description="Why: the rule and the values it read, e.g. 'lost (line 14: no order 90d "
                                  "unless seasonal) — last order 2026-07-30, 116 days ago; seasonal = false'.")
    async def explanation(self, info: Info) -> Optional[str]:
        explained = await ctx(info).loaders.explanations.load(self.customer_id)
        if explained is None:
            return None
        if self.kind == "tag":
            found = [t for t in explained.tags if t and t.label == self.name]
            return found[0].text() if found else None
        part = getattr(explained, self.kind)
        return part.text() if part else None


@strawberry.type(description="The stored result of the last batch evaluation for one customer.")
class Evaluation:
    as_of: date
    metrics: JSON = strawberry.field(description="Each metric's value; null where unknown.")
    run_id: int
    customer_id: strawberry.Private[int]

    @strawberry.field(description="Version of the published rule set the evaluation used.")
    async def rule_version(self, info: Info) -> Optional[int]:
        return await ctx(info).loaders.rule_version_by_run.load(self.run_id)

    @strawberry.field(description="Every line of the explanation, including coming changes "
                                  "('at_risk now; lost on 2026-12-03 unless an order arrives').")
    async def explanation(self, info: Info) -> list[str]:
        explained = await ctx(info).loaders.explanations.load(self.customer_id)
        return explained.lines() if explained else []

    @strawberry.field(description="When the outcome changes by itself if nothing new happens.")
    async def upcoming(self, info: Info) -> list[str]:
        explained = await ctx(info).loaders.explanations.load(self.customer_id)
        return [f"{f.kind}: {f.text()}" for f in explained.forecasts] if explained else []


def rule_text(info: Info, line: Optional[int]) -> Optional[str]:
    if line is None:
        return None
    lines = ctx(info).rules.source.split("\n")
    return lines[line - 1].split("#", 1)[0].strip() if 0 < line <= len(lines) else None
