"""The limits of the rule language: what the checker refuses so that whatever it accepts, both back ends run.

Each limit is far above what a real policy needs and below where SQLite, PostgreSQL or Python give out:
SQLite's parser stack (about 100 entries: nesting), its 32,766 bound values and 2,000 columns, PostgreSQL's 1,664
columns and float overflow, Python's recursion limit, and the calendar (year 1). docs/rules.md, "Limits", lists
them with their error codes; tests/rules/test_limits.py runs texts at each limit on both databases.
"""
from __future__ import annotations

import math
import re

from lark import Token, Tree

from . import nodes
from .errors import RuleError
from .tree import walk

MAX_NESTING = 16  # levels of parentheses / operators inside each other (a chain a + b + c is one level)
MAX_OPERATORS = 100  # operators, functions and comparisons in one statement
MAX_LIST_VALUES = 1_000  # values in one `in (...)` list
MAX_TERMS = 25_000  # names, numbers, texts, windows and symbols in a whole file (each may become a bound value)
MAX_RULES = {"tier": 2_000, "status": 2_000, "tag": 500}  # a tag rule is a column of the query
MAX_METRICS = 300  # each metric is a column
MAX_METRIC_CHAIN = 20  # metric built on metric built on ... (each level is one step of the query)
MAX_RANKINGS = 100  # distinct `x in top / bottom ...` (each takes four columns)
MAX_AGGREGATES = 300  # distinct sum / count / avg / min / max / no / days since (each is a column)
MAX_WINDOW_OFFSETS = 3  # `before` in one window
MAX_WINDOW_DAYS = 100 * 366  # the whole window, offsets included, counting a month as 31 days and a year as 366
UNIT_DAYS = {"d": 1, "w": 7, "m": 31, "y": 366}  # the longest each unit can be
MAX_NUMBER = 1e15  # a number written in the rules (percents: 1e15%)
# A formula must stay far from the largest double (1.8e308: beyond it SQLite gives inf and PostgreSQL an error).
# The checker bounds each formula assuming every value from the data (an aggregate, a day count, an attribute, a
# built-in) is at most DATA_MAGNITUDE in size, and refuses a formula whose bound exceeds MAX_MAGNITUDE.
DATA_MAGNITUDE_LOG10 = 25.0
MAX_MAGNITUDE_LOG10 = 300.0

# a control character (tab, line feed, carriage return and form feed are layout) or half of a surrogate pair
BAD_CHARACTER = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

# ---------------- characters ----------------


def _printable(text: str) -> str:
    return BAD_CHARACTER.sub("\N{REPLACEMENT CHARACTER}", text)


def bad_characters(source: str) -> list[RuleError]:
    """One E112 per line holding a character that can't be stored or shown (NUL, other controls, lone surrogates)."""
    errors: list[RuleError] = []
    shown = None
    for line_no, line in enumerate(source.split("\n"), start=1):
        m = BAD_CHARACTER.search(line)
        if m is None:
            continue
        shown = shown if shown is not None else _printable(source)
        code = f"U+{ord(m.group()):04X}"
        errors.append(RuleError.at(shown, "E112", f"the character {code} is not allowed in rules — remove it",
                                   line_no, m.start() + 1))
    return errors


# ---------------- the shape of one statement (on the parse tree, before the recursive checker) ----------------

OPERATOR_NODES = frozenset({"unless", "or_", "and_", "not_", "no_record", "no_record_gap", "compare", "in_list",
                            "not_in_list", "rank", "arith", "neg", "percent_of", "call", "days_since"})
LEAF_NODES = frozenset({"number", "percent", "string", "name", "window", "span", "value_list", "value", "comp_op",
                        "direction"})
# `a + b + c`, `a and b and c`: the left operand continues the chain and the SQL stays flat (not so for - and /,
# which SQLAlchemy writes as ((a - b) - c))
FLAT_CHAINS = frozenset({"and_", "or_", "unless"})
FLAT_OPERATORS = frozenset({"+", "*"})


def _continues_chain(parent: Tree, child: Tree) -> bool:
    if child.data != parent.data:
        return False
    if parent.data in FLAT_CHAINS:
        return True
    ops = [str(c) for t in (parent, child) for c in t.children if isinstance(c, Token)]
    return parent.data == "arith" and len(set(ops)) == 1 and ops[0] in FLAT_OPERATORS


def _pos(tree: Tree | Token) -> tuple[int, int]:
    if isinstance(tree, Token):
        return tree.line or 1, tree.column or 1
    return (tree.meta.line, tree.meta.column) if not tree.meta.empty else (1, 1)


def statement_shape(expr: Tree, source: str) -> RuleError | None:
    """E111 for a formula or condition nested too deep or too long, E308 for a too long list; else None.

    Iterative, so it measures texts far deeper than Python's recursion limit before anything recurses on them."""
    stack: list[tuple[Tree, int]] = [(expr, 0)]
    operators = 0
    while stack:
        t, level = stack.pop()
        if t.data in OPERATOR_NODES:
            operators += 1
            if operators > MAX_OPERATORS:
                return RuleError.at(source, "E111", f"this has more than {MAX_OPERATORS} operators — split it into "
                                    "metrics", *_pos(expr))
        if level > MAX_NESTING:
            return RuleError.at(source, "E111", f"this is nested more than {MAX_NESTING} levels deep — split it "
                                "into metrics", *_pos(t))
        if t.data == "value_list":
            values = [c for c in t.children if isinstance(c, Tree)]
            if len(values) > MAX_LIST_VALUES:
                return RuleError.at(source, "E308", f"a list may hold at most {MAX_LIST_VALUES:,} values; this one "
                                    f"has {len(values):,}", *_pos(values[MAX_LIST_VALUES]))
        kids = [c for c in t.children if isinstance(c, Tree)]
        for i, child in enumerate(kids):
            if child.data in LEAF_NODES and not (child.data == "window" and t.data == "window"):
                cost = 0  # `90d before 90d before ...` nests: limited here, long before the checker recurses
            elif i == 0 and _continues_chain(t, child):
                cost = 0
            else:
                cost = 1
            stack.append((child, level + cost))
    return None


def file_terms(tree: Tree, source: str) -> RuleError | None:
    """E407 at the term that takes a file past MAX_TERMS."""
    count = 0
    for subtree in tree.iter_subtrees_topdown():  # iterative (Tree.scan_values recurses)
        for tok in subtree.children:
            if isinstance(tok, Token) and tok.type != "_NL":
                count += 1
                if count > MAX_TERMS:
                    return RuleError.at(source, "E407", f"the rules hold more than {MAX_TERMS:,} names, numbers "
                                        "and symbols — simplify them", *_pos(tok))
    return None


# ---------------- windows and numbers ----------------


def window_days(window: nodes.Window) -> int:
    """The span of a window and its offsets in days, months counted as 31 and years as 366 (an upper bound)."""
    total, w = 0, window
    while w is not None:
        total += w.amount * UNIT_DAYS[w.unit]
        w = w.offset
    return total


def window_offsets(window: nodes.Window) -> int:
    count, w = 0, window.offset
    while w is not None:
        count, w = count + 1, w.offset
    return count


def magnitude_log10(expr, metric_bounds: dict[str, float]) -> float:
    """An upper bound on log10 |value| of a numeric expression (data values count as DATA_MAGNITUDE)."""
    t = type(expr)
    if t is nodes.Number:
        return math.log10(abs(expr.value)) if abs(expr.value) > 1 else 0.0
    if t is nodes.MetricRef:
        return metric_bounds.get(expr.name, DATA_MAGNITUDE_LOG10)
    if t is nodes.Negate:
        return magnitude_log10(expr.operand, metric_bounds)
    if t is nodes.Arith:
        left = magnitude_log10(expr.left, metric_bounds)
        right = magnitude_log10(expr.right, metric_bounds)
        if expr.op in ("+", "-"):
            return max(left, right) + math.log10(2)
        if expr.op == "*":
            return left + right
        divisor = expr.right  # a literal divisor shrinks or grows by its own size; a data divisor may be tiny
        if type(divisor) is nodes.Number and divisor.value != 0:
            return left + max(0.0, -math.log10(abs(divisor.value)))
        return left + DATA_MAGNITUDE_LOG10
    return DATA_MAGNITUDE_LOG10


def worst_magnitude_log10(expr, metric_bounds: dict[str, float]) -> float:
    """The largest bound over every operation in `expr` (a divisor can be huge while the quotient is small)."""
    return max((magnitude_log10(x, metric_bounds) for x in walk(expr) if type(x) in (nodes.Arith, nodes.Negate)),
               default=0.0)


def too_large(expr, metric_bounds: dict[str, float], source: str, line: int, column: int) -> RuleError | None:
    """E309 when a formula in `expr` could grow past what a number holds."""
    worst = worst_magnitude_log10(expr, metric_bounds)
    if worst <= MAX_MAGNITUDE_LOG10:
        return None
    return RuleError.at(source, "E309", f"this formula can grow to about 1e{worst:.0f}, beyond what a number can "
                        "hold — use smaller numbers or fewer products", line, column)


def metric_magnitudes(metrics) -> dict[str, float]:
    """The bound of each metric, in dependency order (each may use those before it)."""
    bounds: dict[str, float] = {}
    for m in metrics:
        bounds[m.name] = magnitude_log10(m.expr, bounds)
    return bounds
