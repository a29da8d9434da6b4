"""Why a customer has its tier, status and tags, and when that changes by itself.

For one customer (its records, as_of and the stored rank cut-offs) this names the rule that decided each
outcome (line number and text) and the values that rule read, e.g.

    lost (line 17: no order 90d unless seasonal) — last order 2026-07-30, 116 days ago; seasonal = false

and, for rules over time windows, the first day within a horizon (400 days) on which re-evaluating with no new
records gives another outcome, e.g. `at_risk now; lost on 2026-12-03 unless an order arrives`.
Cheap: the outcome can only change on the change days of rules/change_days.py (a window edge crossing a record
date, a record flag changing, `blocked` starting), so only those are evaluated (day by day only with `days since`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterable

from rules import nodes as n
from rules.builtins import builtin_values
from rules.change_days import change_days, expand, reads
from rules.to_python import CustomerRecords, CustomerResult, PyEvaluator, evaluate
from rules.tree import node_text, rank_key

HORIZON_DAYS = 400
ARTICLE = {"order": "an order", "complaint": "a complaint", "delivery": "a delivery", "interaction": "an interaction"}


@dataclass
class RuleExplanation:
    kind: str
    label: str
    line: int
    condition: str  # the rule's condition as written ("otherwise" for the fallback)
    facts: list[str] = field(default_factory=list)
    # earlier rules whose main condition held but whose `unless` exception spared the customer
    exceptions: list[str] = field(default_factory=list)

    def text(self) -> str:
        head = f"{self.label} (line {self.line}: {self.condition})"
        text = f"{head} — {'; '.join(self.facts)}" if self.facts else head
        return "; ".join([text, *self.exceptions])


@dataclass
class Forecast:
    kind: str  # tier / status
    current: str | None
    new: str | None
    on: date
    unless: str | None  # "an order arrives", or None

    def text(self) -> str:
        tail = f" unless {self.unless}" if self.unless else " if nothing changes"
        return f"{self.current} now; {self.new} on {self.on.isoformat()}{tail}"


@dataclass
class Explanation:
    customer_id: int
    as_of: date
    result: CustomerResult
    tier: RuleExplanation | None
    status: RuleExplanation | None
    tags: list[RuleExplanation]
    forecasts: list[Forecast]

    def lines(self) -> list[str]:
        out = []
        if self.tier:
            out.append("tier " + self.tier.text())
        if self.status:
            out.append("status " + self.status.text())
        out += ["tag " + t.text() for t in self.tags]
        out += [f"{f.kind}: {f.text()}" for f in self.forecasts]
        return out

    def text(self) -> str:
        return "\n".join(self.lines())


def condition_text(rule: n.Rule) -> str:
    """The condition as the admin wrote it (from the rule's source line), comments stripped."""
    if rule.condition is None:
        return "otherwise"
    line = rule.text.split("#", 1)[0].strip()
    m = re.search(r"\bif\b", line)
    return line[m.end():].strip() if m else node_text(rule.condition)


def fmt(v: Any) -> str:
    if v is None:
        return "unknown"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.6g}"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


def facts(ev: PyEvaluator, condition: Any) -> list[str]:
    """The values a condition reads, in reading order, each once."""
    out: list[str] = []

    def add(s: str) -> None:
        if s not in out:
            out.append(s)

    def visit(node: Any) -> None:
        t = type(node)
        if t is n.MetricRef:
            add(f"{node.name} = {fmt(ev.metric(node.name))}")
        elif t is n.Aggregate:
            add(f"{node_text(node)} = {fmt(ev.num(node))}")
        elif t in (n.NoRecord, n.DaysSince):
            last = ev.last_date(node.source, node.where)
            what = node.source if node.where is None else f"{node.source} where {node_text(node.where)}"
            if last is None:
                add(f"no {what} ever")
            else:
                add(f"last {what} {last.isoformat()}, {(ev.as_of - last).days} days ago")
        elif t is n.Flag or t is n.BoolMetric:
            add(f"{node.name} = {fmt(ev.boolean(node))}")
        elif t is n.Builtin:
            add(f"{node.name} = {fmt(ev.num(node))}")
        elif t is n.CustomerField:
            raw = ev._customer_field_raw(node)
            add(f"{node_text(node)} = {fmt(raw)}")
        elif t is n.Rank:
            visit(node.operand)
            cutoff = ev.cutoffs.get(rank_key(node))
            where = "least value in" if node.direction == "top" else "greatest value in"
            amount = f"{fmt(float(node.amount))}{'%' if node.percent else ''}"
            add(f"{where} {node.direction} {amount} = {fmt(cutoff)}")
        elif t in (n.CustomerFor, n.DaysUntilAnniversary):
            add(f"customer since {ev.customer_since().isoformat()}")
            if t is n.DaysUntilAnniversary:
                add(f"days until anniversary = {fmt(ev.num(node))}")
        elif t in (n.Compare, n.And, n.Or, n.Arith):
            visit(node.left)
            visit(node.right)
        elif t in (n.Not, n.Negate, n.InList):
            visit(node.operand)

    if condition is not None:
        visit(condition)
    return out


def _explain_rule(ev: PyEvaluator, rule: n.Rule | None, earlier: Iterable[n.Rule] = ()) -> RuleExplanation | None:
    if rule is None:
        return None
    return RuleExplanation(rule.kind, rule.label, rule.pos.line, condition_text(rule), facts(ev, rule.condition),
                           spared_by(ev, earlier, rule))


def spared_by(ev: PyEvaluator, rules: Iterable[n.Rule], decided: n.Rule) -> list[str]:
    """For first-match lists: earlier rules of another label whose condition held but for its `unless`, e.g.
    "not lost (line 16: no order 90d unless seasonal): seasonal = true" -- why a customer 120 days without an
    order is at risk, not lost."""
    out = []
    for rule in rules:
        if rule is decided:
            break
        c = rule.condition
        if rule.label == decided.label or type(c) is not n.And or type(c.right) is not n.Not:
            continue
        main, exception = c.left, c.right.operand
        if ev.boolean(main) is True and ev.boolean(exception) is True:
            told = "; ".join(facts(ev, exception)) or f"{node_text(exception)} is true"
            out.append(f"not {rule.label} (line {rule.pos.line}: {condition_text(rule)}): {told}")
    return out


def candidate_days(ruleset: n.RuleSet, rules: Iterable[n.Rule], records: CustomerRecords, as_of: date,
                   horizon: int = HORIZON_DAYS) -> list[date]:
    """Days in (as_of, as_of + horizon] on which the first matching rule can change without new records
    (rules/change_days.py)."""
    r = reads(ruleset, [rule.condition for rule in rules])
    return change_days(r, records, as_of + timedelta(days=1), as_of + timedelta(days=horizon))


def forecast(ruleset: n.RuleSet, rules: tuple[n.Rule, ...], kind: str, records: CustomerRecords, as_of: date,
             cutoffs: dict[str, float | None], horizon: int = HORIZON_DAYS) -> Forecast | None:
    """The first day the outcome of `rules` changes by itself (no new records, same rank cut-offs)."""
    if not rules:
        return None
    records = records.known_on(as_of)  # a forecast assumes nothing after as_of: no later record, no outcome
    fixed = builtin_values(records.scores, as_of)  # value scores, like rank cut-offs, are held as of today
    now = PyEvaluator(ruleset, records, as_of, cutoffs, fixed).first_match(rules)
    for d in candidate_days(ruleset, rules, records, as_of, horizon):
        then = PyEvaluator(ruleset, records, d, cutoffs, fixed).first_match(rules)
        if (then.label if then else None) != (now.label if now else None):
            sources = [x.source for x in expand(ruleset, [then.condition if then else None])
                       if type(x) in (n.NoRecord, n.DaysSince)]
            unless = f"{ARTICLE.get(sources[0], 'a record')} arrives" if sources else None
            return Forecast(kind, now.label if now else None, then.label if then else None, d, unless)
    return None


def explain(ruleset: n.RuleSet, records: CustomerRecords, as_of: date,
            cutoffs: dict[str, float | None] | None = None, *, horizon: int = HORIZON_DAYS) -> Explanation:
    """Which rule gave the tier, the status and each tag, what they read, and coming changes.

    Only what was known on as_of is read: a record dated later, or a resolution or delivery after as_of, would
    make the forecast look ahead."""
    records = records.known_on(as_of)
    cutoffs = cutoffs or {}
    result = evaluate(ruleset, records, as_of, cutoffs)
    ev = PyEvaluator(ruleset, records, as_of, cutoffs)
    forecasts = [f for f in (
        forecast(ruleset, ruleset.tiers, "tier", records, as_of, cutoffs, horizon),
        forecast(ruleset, ruleset.statuses, "status", records, as_of, cutoffs, horizon),
    ) if f is not None]
    return Explanation(
        customer_id=records.customer.id,
        as_of=as_of,
        result=result,
        tier=_explain_rule(ev, result.tier_rule, ruleset.tiers),
        status=_explain_rule(ev, result.status_rule, ruleset.statuses),
        tags=[_explain_rule(ev, r) for r in result.tag_rules],
        forecasts=forecasts,
    )
