"""`ruleSetDiff`: what changed between two published versions of the rule set (admin)."""
from __future__ import annotations

import enum
from typing import Optional

import strawberry
from strawberry.types import Info

from domain import rulesets
from domain.rule_diff import diff_lines
from schema.context import ctx
from schema.errors import UserError
from schema.permissions import IsAdmin


@strawberry.enum
class DiffKind(enum.Enum):
    SAME = "same"
    ADDED = "added"
    REMOVED = "removed"


@strawberry.type(description="One line of a rule set diff.")
class RuleDiffLine:
    kind: DiffKind
    old_line: Optional[int] = strawberry.field(description="Its line in the older text; null for an added line.")
    new_line: Optional[int] = strawberry.field(description="Its line in the newer text; null for a removed line.")
    text: str


def _diff(engine, old_version: int, new_version: int) -> list[RuleDiffLine]:
    versions = {v.version: v for v in rulesets.history(engine)}
    for number in (old_version, new_version):
        if number not in versions:
            raise UserError("NOT_FOUND", f"there is no rule set version {number}",
                            known=sorted(versions))
    return [RuleDiffLine(kind=DiffKind(d.kind), old_line=d.old_line, new_line=d.new_line, text=d.text)
            for d in diff_lines(versions[old_version].source, versions[new_version].source)]


@strawberry.type
class RuleDiffQueries:
    @strawberry.field(description="Every line of two published versions in reading order, each SAME, ADDED (only "
                                  "in `toVersion`) or REMOVED (only in `fromVersion`) (admin).",
                      permission_classes=[IsAdmin])
    async def rule_set_diff(self, info: Info, from_version: int, to_version: int) -> list[RuleDiffLine]:
        c = ctx(info)
        return await c.loaders.run(_diff, c.engine, from_version, to_version)
