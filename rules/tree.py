"""Walking and naming the checked rule tree (rules.nodes): what both back ends, the explainer and the checks share.

The walk is generic: a node's children are read from its dataclass fields (a field holding a node, or a tuple of
nodes), so a new node kind is walked, and so counted in column collection, metric dependencies, rank cut-offs
and forecasts, without being listed here. Windows and positions are not expressions and are not visited.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator

from rules import nodes as n

# record fields the language reads as text; every other record field is a number
STRING_FIELDS: dict[str, frozenset[str]] = {
    "order": frozenset({"external_id"}),
    "complaint": frozenset({"category", "external_id"}),
    "delivery": frozenset({"delay_reason", "external_id"}),
    "interaction": frozenset({"kind", "note", "external_id"}),
    "survey": frozenset({"kind", "channel", "comment", "external_id"}),
    "opportunity": frozenset({"stage", "outcome", "external_id"}),
    "invoice": frozenset({"external_id"}),
    "order_line": frozenset({"product", "category"}),
}
# customer columns the language reads as numbers; every other customer column is text
CUSTOMER_NUMBER_FIELDS = frozenset({"payment_terms_days", "credit_limit"})
_NOT_EXPRESSIONS = (n.Window, n.Pos)


class UnsupportedRule(ValueError):
    """A node the back ends cannot evaluate in this position (the checker should have refused it)."""


def is_node(value: Any) -> bool:
    """An expression node of the rule tree (not a window or a position)."""
    return dataclasses.is_dataclass(value) and not isinstance(value, type) and not isinstance(value, _NOT_EXPRESSIONS)


def children(node: Any) -> Iterator[Any]:
    """The expression nodes directly inside `node`, in field order."""
    if not is_node(node):
        return
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if is_node(value):
            yield value
        elif isinstance(value, tuple):
            yield from (v for v in value if is_node(v))


def walk(node: Any) -> Iterator[Any]:
    """Pre-order walk of one expression (not into referenced metrics)."""
    if node is None:
        return
    yield node
    for c in children(node):
        yield from walk(c)


# ---------- node text and keys ----------


def _num_text(v: float) -> str:
    return f"{v:g}" if float(v) != int(v) or abs(v) >= 1e15 else str(int(v))


def window_text(w: n.Window | None) -> str:
    if w is None:
        return ""
    own = f"{w.amount}{w.unit}"
    return own if w.offset is None else f"{own} before {window_text(w.offset)}"


def node_text(node: Any) -> str:
    """Canonical text of an expression (stable: used in cut-off keys and explanations)."""
    t = type(node)
    if t is n.Number:
        return _num_text(node.value)
    if t is n.String:
        return '"' + node.value + '"'
    if t is n.RecordField:
        return f"{node.source}.{node.name}"
    if t is n.RecordFlag:
        return node.name
    if t is n.Aggregate:
        inner = node.source if node.field is None else f"{node.source}.{node.field.name}"
        if node.where is not None:
            inner += f" where {node_text(node.where)}"
        if node.window is not None:
            inner += f", {window_text(node.window)}"
        return f"{node.func}({inner})"
    if t is n.DaysSince:
        s = f"days since last {node.source}"
        return s if node.where is None else f"{s} where {node_text(node.where)}"
    if t is n.DaysUntilAnniversary:
        return "days until anniversary"
    if t is n.CustomerFor:
        return f"customer for {window_text(node.window)}"
    if t is n.MetricRef or t is n.Builtin or t is n.BoolMetric:
        return node.name
    if t is n.CustomerField:
        return f"attributes.{node.name}" if node.attribute else node.name
    if t is n.Arith:
        return f"({node_text(node.left)} {node.op} {node_text(node.right)})"
    if t is n.Negate:
        return f"-{node_text(node.operand)}"
    if t is n.Compare:
        return f"{node_text(node.left)} {node.op} {node_text(node.right)}"
    if t is n.InList:
        return f"{node_text(node.operand)} in ({', '.join(node_text(v) for v in node.values)})"
    if t is n.Rank:
        return f"{node_text(node.operand)} in {node.direction} {_num_text(node.amount)}{'%' if node.percent else ''}"
    if t is n.NoRecord:
        s = f"no {node.source}"
        if node.where is not None:
            s += f" where {node_text(node.where)}"
        return s if node.window is None else f"{s} {window_text(node.window)}"
    if t is n.Flag:
        return node.name
    if t is n.And:
        return f"({node_text(node.left)} and {node_text(node.right)})"
    if t is n.Or:
        return f"({node_text(node.left)} or {node_text(node.right)})"
    if t is n.Not:
        return f"not {node_text(node.operand)}"
    raise UnsupportedRule(f"unknown node {t.__name__}")


def rank_key(node: n.Rank) -> str:
    """Stable key of a rank node in evaluation_runs.cutoffs, e.g. "top:profit_12m:20%"."""
    return f"{node.direction}:{node_text(node.operand)}:{_num_text(node.amount)}{'%' if node.percent else ''}"


def rank_nodes(exprs: Iterable[Any]) -> list[n.Rank]:
    """Distinct rank nodes (by key), in first-seen order."""
    seen: dict[str, n.Rank] = {}
    for e in exprs:
        for node in walk(e):
            if type(node) is n.Rank:
                seen.setdefault(rank_key(node), node)
    return list(seen.values())


def record_sources_read(ruleset: n.RuleSet) -> frozenset[str]:
    """The record sources a rule set reads anywhere: a customer's other records need not be loaded to evaluate it
    (customer since, behind `customer for` and anniversaries, reads the orders)."""
    exprs = [m.expr for m in ruleset.metrics]
    exprs += [r.condition for r in (*ruleset.tiers, *ruleset.statuses, *ruleset.tags) if r.condition is not None]
    out: set[str] = set()
    for e in exprs:
        for node in walk(e):
            if type(node) in (n.Aggregate, n.NoRecord, n.DaysSince):
                out.add(node.source)
            elif type(node) in (n.CustomerFor, n.DaysUntilAnniversary):
                out.add("order")
    return frozenset(out)


def metric_deps(ruleset: n.RuleSet, exprs: Iterable[Any]) -> list[str]:
    """Names of the metrics `exprs` need, transitively, in the rule set's (dependency) order."""
    need: set[str] = set()
    stack = [e for e in exprs]
    while stack:
        for node in walk(stack.pop()):
            if type(node) is n.MetricRef and node.name not in need:
                need.add(node.name)
                stack.append(ruleset.metric(node.name).expr)
    return [m.name for m in ruleset.metrics if m.name in need]


# ---------- comparison types ----------


def is_numeric(node: Any) -> bool | None:
    """True for number-typed nodes, False for strings, None for a custom attribute (either)."""
    t = type(node)
    if t is n.String:
        return False
    if t is n.CustomerField:
        return None if node.attribute else node.name in CUSTOMER_NUMBER_FIELDS
    if t is n.RecordField:
        return node.name not in STRING_FIELDS.get(node.source, ())
    return True


def compare_mode(left: Any, right: Any) -> str:
    """"num" when either side is a number, else "str" (attributes take the other side's type)."""
    a, b = is_numeric(left), is_numeric(right)
    return "num" if a or b else "str"
