"""The per-customer back end: evaluates a checked rule set for ONE customer from its records, in Python.

It mirrors rules.to_sql node for node, with the same three-valued semantics (docs/rules.md, "Semantics"):
unknown is None; empty sum / count are 0; empty avg / min / max and division by zero are unknown; any arithmetic
or comparison with unknown is unknown; and / or / not are Kleene; a rule fires only when its condition is True.
Ranks need the whole customer base, so this path compares against cut-offs stored by a batch run
(`x in top p%` <=> x >= cut-off).

Record flags come from domain.record_flags and tree helpers (node text, rank keys) from rules.tree, shared with
rules.to_sql.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterable

from domain.record_flags import RECORD_DATE, UnknownRecordFlag, known_on, record_flag, record_value_py
from domain.anniversary import customer_since, days_until_anniversary
from domain.record_sources import LIST_OF
from rules import nodes as n
from rules.builtins import builtin_values
from rules.tree import CUSTOMER_NUMBER_FIELDS, UnsupportedRule, compare_mode, node_text, rank_key
from rules.windows import bounds

CUSTOMER_STRING_FIELDS = frozenset({"region", "industry", "size", "name", "external_id", "credit_grade"})
NUMERIC_TEXT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def attribute_text(value: Any) -> str | None:
    """A custom attribute as a string: only JSON strings are strings."""
    return value if isinstance(value, str) else None


def attribute_number(value: Any) -> float | None:
    """A custom attribute as a number: a JSON number, or a string that is a plain decimal ("12", "-3.5")."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and NUMERIC_TEXT.fullmatch(value):
        return float(value)
    return None


# ---------- Kleene logic ----------


def k_and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def k_or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def k_not(a: bool | None) -> bool | None:
    return None if a is None else not a


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def cutoff_tolerance(cutoff: float) -> float:
    """Money is double precision: sums taken in another order may differ in the last bits."""
    return 1e-9 * max(1.0, abs(cutoff))


# ---------- records and results ----------


@dataclass
class CustomerRecords:
    """One customer and its records; any objects with the table's attribute names will do."""

    customer: Any
    orders: list[Any] = field(default_factory=list)
    complaints: list[Any] = field(default_factory=list)
    deliveries: list[Any] = field(default_factory=list)
    interactions: list[Any] = field(default_factory=list)
    surveys: list[Any] = field(default_factory=list)
    opportunities: list[Any] = field(default_factory=list)
    invoices: list[Any] = field(default_factory=list)
    order_lines: list[Any] = field(default_factory=list)
    scores: Any = None  # the customer_scores row (value scores), the source of built-in metrics

    def of(self, source: str) -> list[Any]:
        return getattr(self, LIST_OF[source])

    def known_on(self, day: date) -> "CustomerRecords":
        """Only what was known on `day` (domain.record_flags.known_on): later records and outcomes are left out."""
        out = CustomerRecords(self.customer, scores=self.scores)
        for source in LIST_OF:
            out.of(source).extend(r for r in (known_on(source, rec, day) for rec in self.of(source)) if r is not None)
        return out


@dataclass
class CustomerResult:
    customer_id: int
    as_of: date
    metrics: dict[str, float | None]
    tier: str | None
    tier_line: int | None
    status: str | None
    status_line: int | None
    tags: list[str]
    tier_rule: n.Rule | None = None
    status_rule: n.Rule | None = None
    tag_rules: list[n.Rule] = field(default_factory=list)


class MissingCutoff(KeyError):
    """The rule set ranks customers but no cut-off for that rank was given."""


class PyEvaluator:
    """Evaluates nodes for one customer on one as_of: one method per node kind."""

    def __init__(self, ruleset: n.RuleSet, records: CustomerRecords, as_of: date,
                 cutoffs: dict[str, float | None] | None = None,
                 builtins: dict[str, Any] | None = None):
        self.ruleset = ruleset
        self.records = records
        self.customer = records.customer
        self.as_of = as_of
        self.cutoffs = cutoffs or {}
        self.builtins = builtins if builtins is not None else builtin_values(records.scores, as_of)
        self._metrics: dict[str, float | None] = {}
        self._record: Any = None
        self._sorted: dict[str, list[Any]] = {}

    # -- entry points --
    def metric(self, name: str) -> float | None:
        if name not in self._metrics:
            self._metrics[name] = self.num(self.ruleset.metric(name).expr)
        return self._metrics[name]

    def records_in(self, source: str, window: n.Window | None, where: Any) -> list[Any]:
        b = bounds(window, self.as_of)
        date_field = RECORD_DATE[source]
        out = []
        for rec in self.records.of(source):
            if not b.contains(getattr(rec, date_field)):
                continue
            if where is not None and self.in_record(rec, where) is not True:
                continue
            out.append(rec)
        return out

    def in_record(self, rec: Any, cond: Any) -> bool | None:
        saved, self._record = self._record, rec
        try:
            return self.boolean(cond)
        finally:
            self._record = saved

    def first_match(self, rules: Iterable[n.Rule]) -> n.Rule | None:
        for r in rules:
            if r.condition is None or self.boolean(r.condition) is True:
                return r
        return None

    # -- dispatch --
    def num(self, node: Any) -> float | None:
        return getattr(self, "num_" + type(node).__name__)(node)

    def boolean(self, node: Any) -> bool | None:
        return getattr(self, "bool_" + type(node).__name__)(node)

    def value(self, node: Any, mode: str) -> Any:
        """A comparison operand, as a number (mode "num") or a string (mode "str")."""
        t = type(node)
        if mode == "str":
            if t is n.String:
                return node.value
            if t is n.CustomerField:
                raw = self._customer_field_raw(node)
                return attribute_text(raw) if node.attribute else raw
            if t is n.RecordField:
                return self._record_field(node)
            raise UnsupportedRule(f"{node_text(node)} is not a string")
        if t is n.CustomerField:
            raw = self._customer_field_raw(node)
            if node.attribute:
                return attribute_number(raw)
            if node.name not in CUSTOMER_NUMBER_FIELDS:
                raise UnsupportedRule(f"customer field {node.name} is not a number")
            return None if raw is None else float(raw)
        return self.num(node)

    # -- numbers --
    def num_Number(self, node: n.Number) -> float:
        return float(node.value)

    def num_MetricRef(self, node: n.MetricRef) -> float | None:
        return self.metric(node.name)

    def num_Builtin(self, node: n.Builtin) -> float | None:
        v = self.builtins.get(node.name)
        return None if v is None else float(v)

    def num_CustomerField(self, node: n.CustomerField) -> float | None:
        return self.value(node, "num")

    def num_RecordField(self, node: n.RecordField) -> Any:
        return self._record_field(node)

    def num_Aggregate(self, node: n.Aggregate) -> float | int | None:
        recs = self.records_in(node.source, node.window, node.where)
        if node.func == "count":
            return len(recs)
        vals = [v for v in (self.in_value(r, node.field) for r in recs) if v is not None]
        if node.func == "sum":
            # no records: 0; records whose values are all unknown: unknown (docs/rules.md, "Semantics")
            return 0.0 if not recs else float(sum(vals)) if vals else None
        if not vals:
            return None
        if node.func == "avg":
            return float(sum(vals)) / len(vals)
        if node.func == "min":
            return float(min(vals))
        if node.func == "max":
            return float(max(vals))
        raise UnsupportedRule(f"unknown aggregate {node.func}")

    def in_value(self, rec: Any, fld: n.RecordField) -> Any:
        saved, self._record = self._record, rec
        try:
            return self._record_field(fld)
        finally:
            self._record = saved

    def last_date(self, source: str, where: Any) -> date | None:
        recs = self.records_in(source, None, where)
        if not recs:
            return None
        return max(getattr(r, RECORD_DATE[source]) for r in recs)

    def num_DaysSince(self, node: n.DaysSince) -> float | None:
        last = self.last_date(node.source, node.where)
        return None if last is None else (self.as_of - last).days

    def customer_since(self) -> date:
        first = min((o.ordered_at for o in self.records_in("order", None, None)), default=None)
        return customer_since(self.customer.created_at, first)

    def num_DaysUntilAnniversary(self, node: n.DaysUntilAnniversary) -> float:
        return float(days_until_anniversary(self.customer_since(), self.as_of))

    def bool_CustomerFor(self, node: n.CustomerFor) -> bool:
        return self.customer_since() < bounds(node.window, self.as_of).start

    def num_Arith(self, node: n.Arith) -> float | None:
        a = self.num(node.left)
        b = self.num(node.right)
        if a is None or b is None:
            return None
        if node.op == "+":
            return a + b
        if node.op == "-":
            return a - b
        if node.op == "*":
            return a * b
        if b == 0:
            return None
        return float(a) / float(b)

    def num_Negate(self, node: n.Negate) -> float | None:
        a = self.num(node.operand)
        return None if a is None else -a

    # -- booleans --
    def bool_Compare(self, node: n.Compare) -> bool | None:
        mode = compare_mode(node.left, node.right)
        a = self.value(node.left, mode)
        b = self.value(node.right, mode)
        if a is None or b is None:
            return None
        return _CMP[node.op](a, b)

    def bool_InList(self, node: n.InList) -> bool | None:
        result: bool | None = False
        for v in node.values:
            result = k_or(result, self.bool_Compare(n.Compare("=", node.operand, v)))
        return result

    def bool_Rank(self, node: n.Rank) -> bool | None:
        x = self.num(node.operand)
        if x is None:
            return None
        key = rank_key(node)
        if key not in self.cutoffs:
            raise MissingCutoff(key)
        cutoff = self.cutoffs[key]
        if cutoff is None:
            return False
        tol = cutoff_tolerance(cutoff)
        return x >= cutoff - tol if node.direction == "top" else x <= cutoff + tol

    def bool_NoRecord(self, node: n.NoRecord) -> bool:
        return not self.records_in(node.source, node.window, node.where)

    def bool_Flag(self, node: n.Flag) -> bool:
        if node.name == "seasonal":
            return bool(self.customer.seasonal)
        if node.name == "blocked":
            bf = self.customer.blocked_from
            return bf is not None and bf <= self.as_of
        if node.name == "consent":
            return bool(self.customer.consent)
        raise UnsupportedRule(f"unknown flag {node.name}")

    def bool_BoolMetric(self, node: n.BoolMetric) -> bool | None:
        v = self.builtins.get(node.name)
        return None if v is None else bool(v)

    def bool_RecordFlag(self, node: n.RecordFlag) -> bool:
        if self._record is None:
            raise UnsupportedRule(f"record flag {node.name} outside an aggregate")
        try:
            return record_flag(node.source, node.name).python(self._record, self.as_of)
        except UnknownRecordFlag as exc:
            raise UnsupportedRule(str(exc)) from None

    def bool_And(self, node: n.And) -> bool | None:
        a = self.boolean(node.left)
        if a is False:
            return False
        return k_and(a, self.boolean(node.right))

    def bool_Or(self, node: n.Or) -> bool | None:
        a = self.boolean(node.left)
        if a is True:
            return True
        return k_or(a, self.boolean(node.right))

    def bool_Not(self, node: n.Not) -> bool | None:
        return k_not(self.boolean(node.operand))

    # -- helpers --
    def _customer_field_raw(self, node: n.CustomerField) -> Any:
        if node.attribute:
            attrs = self.customer.attributes or {}
            return attrs.get(node.name)
        if node.name not in CUSTOMER_STRING_FIELDS | CUSTOMER_NUMBER_FIELDS:
            raise UnsupportedRule(f"unknown customer field {node.name}")
        return getattr(self.customer, node.name)

    def _record_field(self, node: n.RecordField) -> Any:
        if self._record is None:
            raise UnsupportedRule(f"record field {node.source}.{node.name} outside an aggregate")
        return record_value_py(self._record, node.source, node.name, self.as_of)


def is_evaluated(customer: Any, as_of: date) -> bool:
    """Only customers that exist on as_of (created_at <= as_of) are evaluated."""
    return customer.created_at <= as_of


def evaluate(ruleset: n.RuleSet, records: CustomerRecords, as_of: date,
             cutoffs: dict[str, float | None] | None = None, *,
             builtins: dict[str, Any] | None = None) -> CustomerResult:
    """Tier, status, tags and metric values of one customer on `as_of` (cut-offs from a batch run)."""
    ev = PyEvaluator(ruleset, records, as_of, cutoffs, builtins)
    metrics = {m.name: ev.metric(m.name) for m in ruleset.metrics}
    tier = ev.first_match(ruleset.tiers)
    status = ev.first_match(ruleset.statuses)
    tags = [r for r in ruleset.tags if r.condition is not None and ev.boolean(r.condition) is True]
    return CustomerResult(
        customer_id=records.customer.id,
        as_of=as_of,
        metrics=metrics,
        tier=tier.label if tier else None,
        tier_line=tier.pos.line if tier else None,
        status=status.label if status else None,
        status_line=status.pos.line if status else None,
        tags=_dedupe([r.label for r in tags]),
        tier_rule=tier,
        status_rule=status,
        tag_rules=tags,
    )


def _dedupe(labels: list[str]) -> list[str]:
    seen: list[str] = []
    for label in labels:
        if label not in seen:
            seen.append(label)
    return seen


def evaluate_condition(condition: Any, ruleset: n.RuleSet, records: CustomerRecords, as_of: date,
                       cutoffs: dict[str, float | None] | None = None) -> bool | None:
    """An ad-hoc condition for one customer (True / False / unknown)."""
    return PyEvaluator(ruleset, records, as_of, cutoffs).boolean(condition)
