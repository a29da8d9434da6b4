"""Parse tree -> checked nodes: resolve every name, check every type, remove the sugar.

Errors are collected, not raised, so an admin sees every name and type mistake in a file at once; an
expression with an error yields (None, ERR) so one mistake does not cascade into more messages.
The whole-file checks (metric names, cycles, `otherwise` placement, unreachable rules) are in file_checker.py.
"""
from __future__ import annotations

import difflib
import math

from lark import Token, Tree

from . import nodes
from .builtins import (AGGREGATES, ATTRIBUTE_PREFIXES, BOOL, BUILTINS, CUSTOMER_FIELDS, CUSTOMER_FLAGS, NUM, SOURCES,
                       STR)
from .errors import RuleError, shorten
from .limits import (MAX_AGGREGATES, MAX_NUMBER, MAX_RANKINGS, MAX_WINDOW_DAYS, MAX_WINDOW_OFFSETS, UNIT_DAYS,
                     window_days, window_offsets)

ANY, ERR = "ANY", "ERR"  # ANY: a custom attribute (text or number); ERR: already reported
TYPE_WORDS = {NUM: "a number", BOOL: "a condition (true/false)", STR: "text", ANY: "a custom attribute"}
OPS = {"PLUS": "+", "MINUS": "-", "STAR": "*", "SLASH": "/"}


def _kids(tree: Tree) -> list[Tree]:
    return [c for c in tree.children if isinstance(c, Tree)]


def _toks(tree: Tree) -> list[Token]:
    return [c for c in tree.children if isinstance(c, Token)]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def suggest(word: str, candidates) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


class ExprChecker:
    """Checks expressions; `metrics` are the names a MetricRef may point at."""

    def __init__(self, source: str, metrics: set[str]):
        self.source = source
        self.metrics = metrics
        self.errors: list[RuleError] = []
        self.deps: set[str] = set()  # metrics referenced since the last reset
        self.distinct: dict[str, set] = {"ranking": set(), "aggregate": set()}  # each becomes query columns

    # ---- helpers ----
    def error(self, code: str, message: str, where) -> tuple[None, str]:
        line, column = self.pos(where)
        self.errors.append(RuleError.at(self.source, code, message, line, column))
        return None, ERR

    @staticmethod
    def pos(where) -> tuple[int, int]:
        if isinstance(where, Token):
            return where.line or 1, where.column or 1
        if isinstance(where, Tree) and not where.meta.empty:
            return where.meta.line, where.meta.column
        return 1, 1

    def text(self, tree) -> str:
        if isinstance(tree, Token):
            return str(tree)
        if tree.meta.empty:
            return "?"
        return self.source[tree.meta.start_pos:tree.meta.end_pos]

    def number(self, tok: Token, scale: float = 1.0) -> nodes.Number | None:
        value = float(tok) * scale if len(tok) <= 30 else math.inf
        if not abs(value) <= MAX_NUMBER:
            self.error("E307", f"the number '{shorten(tok)}' is too large — numbers in rules may be at most "
                       f"{MAX_NUMBER:,.0f}", tok)
            return None
        return nodes.Number(value)

    def counted(self, kind: str, node, where, limit: int):
        """`node` (a ranking or an aggregate, each a column of the query), refused past the limit of its kind."""
        seen = self.distinct[kind]
        if node not in seen and len(seen) >= limit:
            if len(seen) == limit:  # said once, where the limit is crossed
                seen.add(None)
                return self.error("E406", f"the rules use more than {limit} different {kind}s — each is a column "
                                  "of the evaluation; share them through metrics", where)
            return None, ERR
        seen.add(node)
        return node, (BOOL if kind == "ranking" or type(node) is nodes.NoRecord else NUM)

    # ---- entry points ----
    def condition(self, tree: Tree, what: str) -> nodes.BoolExpr | None:
        node, typ = self.expr(tree, None)
        if typ not in (BOOL, ERR):
            return self.error("E302", f"{what} must be true or false; '{self.text(tree)}' is {TYPE_WORDS[typ]}"
                              + (f" — compare it, e.g. {self.text(tree)} > 0" if typ == NUM else ""), tree)[0]
        return node

    def numeric(self, tree: Tree, what: str):
        node, typ = self.expr(tree, None)
        if typ not in (NUM, ERR):
            return self.error("E303", f"{what} must be a number; '{self.text(tree)}' is {TYPE_WORDS[typ]}", tree)[0]
        return node

    # ---- expressions: returns (node, type); ctx is the record source inside a `where`, else None ----
    def expr(self, t: Tree, ctx: str | None):
        return getattr(self, "x_" + t.data.rstrip("_"))(t, ctx)

    def x_paren(self, t, ctx):
        return self.expr(_kids(t)[0], ctx)

    def x_number(self, t, ctx):
        node = self.number(_toks(t)[0])
        return (node, NUM) if node else (None, ERR)

    def x_percent(self, t, ctx):
        node = self.number(_toks(t)[0], 0.01)
        return (node, NUM) if node else (None, ERR)

    def x_string(self, t, ctx):
        return nodes.String(str(_toks(t)[0])[1:-1]), STR

    def x_percent_of(self, t, ctx):
        share = self.number(_toks(t)[0], 0.01)
        node, typ = self.expr(_kids(t)[0], ctx)
        if typ not in (NUM, ERR):
            return self.error("E303", f"'% of' needs a number after 'of'; '{self.text(_kids(t)[0])}' is "
                              f"{TYPE_WORDS[typ]}", _kids(t)[0])
        return (nodes.Arith("*", share, node), NUM) if share and node else (None, ERR)

    def x_neg(self, t, ctx):
        node, typ = self.expr(_kids(t)[0], ctx)
        if typ not in (NUM, ERR):
            return self.error("E303", f"'-' needs a number; '{self.text(_kids(t)[0])}' is {TYPE_WORDS[typ]}", t)
        return (nodes.Negate(node), NUM) if node else (None, ERR)

    def x_arith(self, t, ctx):
        (lt, rt), op = _kids(t), _toks(t)[0]
        (left, ltyp), (right, rtyp) = self.expr(lt, ctx), self.expr(rt, ctx)
        for side, typ in ((lt, ltyp), (rt, rtyp)):
            if typ not in (NUM, ERR):
                return self.error("E303", f"'{op}' needs numbers on both sides; '{self.text(side)}' is "
                                  f"{TYPE_WORDS[typ]}", side)
        return (nodes.Arith(OPS[op.type], left, right), NUM) if left and right else (None, ERR)

    def _bool_operands(self, t, ctx, word):
        out = []
        for side in _kids(t):
            node, typ = self.expr(side, ctx)
            if typ not in (BOOL, ERR):
                hint = f" — compare it, e.g. {self.text(side)} > 0" if typ == NUM else ""
                self.error("E302", f"'{word}' needs a condition on each side; '{self.text(side)}' is "
                           f"{TYPE_WORDS[typ]}{hint}", side)
                node = None
            out.append(node)
        return out

    def x_and(self, t, ctx):
        left, right = self._bool_operands(t, ctx, "and")
        return (nodes.And(left, right), BOOL) if left and right else (None, ERR)

    def x_or(self, t, ctx):
        left, right = self._bool_operands(t, ctx, "or")
        return (nodes.Or(left, right), BOOL) if left and right else (None, ERR)

    def x_unless(self, t, ctx):
        left, right = self._bool_operands(t, ctx, "unless")
        return (nodes.And(left, nodes.Not(right)), BOOL) if left and right else (None, ERR)

    def x_not(self, t, ctx):
        (operand,) = self._bool_operands(t, ctx, "not")
        return (nodes.Not(operand), BOOL) if operand else (None, ERR)

    def x_compare(self, t, ctx):
        lt, op_tree, rt = _kids(t)
        op = str(_toks(op_tree)[0])
        (left, ltyp), (right, rtyp) = self.expr(lt, ctx), self.expr(rt, ctx)
        if ERR in (ltyp, rtyp):
            return None, ERR
        if BOOL in (ltyp, rtyp):
            side = lt if ltyp == BOOL else rt
            return self.error("E301", f"'{self.text(side)}' is a condition (true/false) and can't be compared "
                              f"with '{op}'", op_tree)
        if {ltyp, rtyp} == {STR, NUM}:
            return self.error("E301", f"can't compare text with a number: '{self.text(lt)}' is "
                              f"{TYPE_WORDS[ltyp]}, '{self.text(rt)}' is {TYPE_WORDS[rtyp]}", op_tree)
        if STR in (ltyp, rtyp) and op not in ("=", "!="):
            return self.error("E301", f"text can only be compared with = or !=, not '{op}'", op_tree)
        return nodes.Compare(op, left, right), BOOL

    def x_in_list(self, t, ctx):
        operand_tree, values_tree = _kids(t)[0], _kids(t)[-1]
        operand, typ = self.expr(operand_tree, ctx)
        if typ == BOOL:
            return self.error("E301", f"'{self.text(operand_tree)}' is a condition (true/false); 'in (...)' "
                              "needs text or a number", operand_tree)
        values = []
        for v in _kids(values_tree):
            toks = _toks(v)
            if toks[0].type == "STRING":
                value, vtyp = nodes.String(str(toks[0])[1:-1]), STR
            else:
                scale = (-1.0 if toks[0].type == "MINUS" else 1.0) * (0.01 if toks[-1].type == "PERCENT" else 1.0)
                value, vtyp = self.number(next(x for x in toks if x.type == "NUMBER"), scale), NUM
            if typ in (NUM, STR) and vtyp != typ:
                self.error("E301", f"'{self.text(v)}' is {TYPE_WORDS[vtyp]} but '{self.text(operand_tree)}' "
                           f"is {TYPE_WORDS[typ]}", v)
                value = None
            values.append(value)
        if operand is None or None in values:
            return None, ERR
        return nodes.InList(operand, tuple(values)), BOOL

    def x_not_in_list(self, t, ctx):
        node, typ = self.x_in_list(t, ctx)
        return (nodes.Not(node), BOOL) if node else (None, ERR)

    def x_rank(self, t, ctx):
        operand_tree, direction = _kids(t)[0], str(_toks(_kids(t)[1])[0])
        amount_tok = next(x for x in _toks(t) if x.type == "NUMBER")
        percent = _toks(t)[-1].type == "PERCENT"
        if ctx is not None:
            return self.error("E206", f"'in {direction}' compares customers and can't be used inside 'where'", t)
        operand, typ = self.expr(operand_tree, ctx)
        if typ not in (NUM, ERR):
            self.error("E303", f"'in {direction}' needs a number; '{self.text(operand_tree)}' is "
                       f"{TYPE_WORDS[typ]}", operand_tree)
            operand = None
        amount = float(amount_tok) if len(amount_tok) < 30 else math.inf
        if percent and not 0 < amount <= 100:
            return self.error("E304", f"'{shorten(amount_tok)}%' is not a share of customers — use a percent above 0% "
                              "and at most 100%", amount_tok)
        if not percent and (not 1 <= amount <= 1e12 or amount != int(amount)):
            return self.error("E304", f"'in {direction} {shorten(amount_tok)}' needs a whole number of customers, 1 or "
                              f"more (or a percent such as {direction} 20%)", amount_tok)
        if not operand:
            return None, ERR
        return self.counted("ranking", nodes.Rank(operand, direction, amount, percent), t, MAX_RANKINGS)

    # ---- names ----
    def x_name(self, t, ctx):
        parts = [str(x) for x in _toks(t) if x.type == "NAME"]
        if ctx is not None:
            return self._record_name(t, parts, ctx)
        first = parts[0]
        if len(parts) == 1:
            if first in self.metrics:
                self.deps.add(first)
                return nodes.MetricRef(first), NUM
            if first in BUILTINS:
                info = BUILTINS[first]
                return (nodes.Builtin(first), NUM) if info.type == NUM else (nodes.BoolMetric(first), BOOL)
            if first in CUSTOMER_FLAGS:
                return nodes.Flag(first), BOOL
            if first in CUSTOMER_FIELDS:
                return nodes.CustomerField(first), CUSTOMER_FIELDS[first]
            if first in SOURCES:
                return self.error("E206", f"'{first}' is a record source — use it as count({first}, 90d) or "
                                  f"no {first} 90d", t)
            owner = next((s for s, info in SOURCES.items() if first in info.fields), None)
            if owner:
                return self.error("E205", f"'{first}' is a field of each {owner} — use it inside an aggregate, "
                                  f"e.g. sum({owner}.{first}, 12m)", t)
            known = [*self.metrics, *BUILTINS, *CUSTOMER_FIELDS, *CUSTOMER_FLAGS]
            return self.error("E201", f"unknown metric '{first}'{suggest(first, known)}", t)
        if len(parts) == 2 and first in ATTRIBUTE_PREFIXES:
            return nodes.CustomerField(parts[1], attribute=True), ANY
        if len(parts) == 2 and first == "customer":
            if parts[1] in CUSTOMER_FIELDS:
                return nodes.CustomerField(parts[1]), CUSTOMER_FIELDS[parts[1]]
            if parts[1] in CUSTOMER_FLAGS:
                return nodes.Flag(parts[1]), BOOL
            return self.error("E202", f"customer has no field '{parts[1]}'"
                              f"{suggest(parts[1], [*CUSTOMER_FIELDS, *CUSTOMER_FLAGS])}", t)
        if len(parts) == 2 and first in SOURCES:
            if self._check_field(t, first, parts[1]) is None:
                return None, ERR
            return self.error("E205", f"'{first}.{parts[1]}' is one {first}'s value — use it inside an aggregate, "
                              f"e.g. sum({first}.{parts[1]}, 12m)", t)
        if len(parts) == 2:
            return self.error("E203", f"unknown record source '{first}'"
                              f"{suggest(first, [*SOURCES, *ATTRIBUTE_PREFIXES])}", t)
        return self.error("E201", f"'{'.'.join(parts)}' is not a name the rules know", t)

    def _check_field(self, where, source: str, name: str, flags: bool = False):
        info = SOURCES[source]
        if name in info.fields:
            return info.fields[name]
        if flags and name in info.flags:
            return BOOL
        known = [*info.fields, *(info.flags if flags else ())]
        self.error("E202", f"{source} has no field '{name}'{suggest(name, known)}", where)
        return None

    def _record_name(self, t, parts, ctx):
        """A name inside `where`: the record's own fields and flags, plain or qualified (order.amount)."""
        if len(parts) == 2 and parts[0] == ctx:
            parts = parts[1:]
        if len(parts) != 1:
            return self.error("E205", f"inside {_a(ctx)} 'where' only the {ctx}'s own fields can be used, not "
                              f"'{'.'.join(parts)}'", t)
        name, info = parts[0], SOURCES[ctx]
        if name not in info.fields and name not in info.flags and (
                name in self.metrics or name in BUILTINS or name in CUSTOMER_FIELDS or name in CUSTOMER_FLAGS):
            fields = ", ".join([*info.fields, *info.flags])
            return self.error("E206", f"inside {_a(ctx)} 'where' only the {ctx}'s own fields can be used ({fields}),"
                              f" not '{name}'", t)
        typ = self._check_field(t, ctx, name, flags=True)
        if typ is None:
            return None, ERR
        return (nodes.RecordFlag(ctx, name), BOOL) if typ == BOOL else (nodes.RecordField(ctx, name), typ)

    # ---- record measures ----
    def _source(self, tok: Token) -> str | None:
        if str(tok) in SOURCES:
            return str(tok)
        self.error("E203", f"unknown record source '{tok}'{suggest(str(tok), SOURCES)}", tok)
        return None

    def x_call(self, t, ctx):
        func_tok, target = _toks(t)[0], _kids(t)[0]
        func = str(func_tok)
        if func not in AGGREGATES:
            return self.error("E204", f"unknown function '{func}'{suggest(func, AGGREGATES)}", func_tok)
        if ctx is not None:
            return self.error("E206", f"'{func}(...)' can't be used inside a 'where'", t)
        parts = [x for x in _toks(target) if x.type == "NAME"]
        source = self._source(parts[0])
        if source is None:
            return None, ERR
        field = None
        if func == "count" and len(parts) > 1:
            return self.error("E306", f"count counts records: write count({source}, ...) — or sum/avg/min/max "
                              f"for a field", target)
        if func != "count":
            if len(parts) != 2:
                return self.error("E306", f"{func} needs a field, e.g. {func}(order.amount, 12m)", target)
            typ = self._check_field(parts[1], source, str(parts[1]))
            if typ is None:
                return None, ERR
            if typ != NUM:
                return self.error("E303", f"{func} needs a number, but {source}.{parts[1]} is text", target)
            field = nodes.RecordField(source, str(parts[1]))
        where, window, ok = self._where_window(t, source, "WHERE")
        if not ok:
            return None, ERR
        return self.counted("aggregate", nodes.Aggregate(func, source, field, window, where), t, MAX_AGGREGATES)

    def _where_window(self, t, source, keyword):
        """The optional `where` condition and window of an aggregate or `no`; ok is False after an error."""
        subtrees = _kids(t)
        where, window, ok = None, None, True
        has_where = any(isinstance(c, Token) and c.type == keyword for c in t.children)
        if has_where:
            cond = subtrees[1] if t.data == "call" else subtrees[0]
            where, typ = self.expr(cond, source)
            if typ not in (BOOL, ERR):
                self.error("E302", f"'where' needs a condition; '{self.text(cond)}' is {TYPE_WORDS[typ]}", cond)
            ok = typ == BOOL
        if subtrees and subtrees[-1].data == "window":
            window = self.window(subtrees[-1])
            ok = ok and window is not None
        return where, window, ok

    def x_days_until(self, t, ctx):
        word = _toks(t)[-1]
        if str(word) != "anniversary":
            return self.error("E201", f"'days until' is followed by 'anniversary', not '{shorten(str(word))}'", word)
        if ctx is not None:
            return self.error("E206", "'days until anniversary' can't be used inside a 'where'", t)
        return nodes.DaysUntilAnniversary(), NUM

    def x_customer_for(self, t, ctx):
        """`customer for 5y`: the relationship is at least that long."""
        word = _toks(t)[0]
        if str(word) != "customer":
            return self.error("E100", f"'{shorten(str(word))} for ...' is not a condition: write 'customer for 5y' "
                              "for the relationship's age", word)
        if ctx is not None:
            return self.error("E206", "'customer for ...' can't be used inside a 'where'", t)
        window = self.window(_kids(t)[0])
        if window is None:
            return None, ERR
        if window.offset is not None:
            return self.error("E305", "'customer for' takes one length, e.g. customer for 5y, not a window "
                              "'before' another", _kids(t)[0])
        return nodes.CustomerFor(window), BOOL

    def x_days_since(self, t, ctx):
        if ctx is not None:
            return self.error("E206", "'days since last' can't be used inside a 'where'", t)
        source = self._source(_toks(t)[-1])
        return self.counted("aggregate", nodes.DaysSince(source), t, MAX_AGGREGATES) if source else (None, ERR)

    def x_no_record(self, t, ctx):
        if ctx is not None:
            return self.error("E206", "'no ...' can't be used inside a 'where'", t)
        source = self._source(_toks(t)[1])
        if source is None:
            return None, ERR
        where, window, ok = self._where_window(t, source, "WHERE")
        if not ok:
            return None, ERR
        return self.counted("aggregate", nodes.NoRecord(source, window, where), t, MAX_AGGREGATES)

    def x_no_record_gap(self, t, ctx):
        """`no order for 3x usual gap` = days since the last order > 3 x the customer's usual gap between orders."""
        if ctx is not None:
            return self.error("E206", "'no ...' can't be used inside a 'where'", t)
        toks = _toks(t)
        source = self._source(toks[1])
        if source is None:
            return None, ERR
        words = [str(w) for w in toks[4:7]]
        if words != ["x", "usual", "gap"]:
            return self.error("E100", f"write it as 'no {source} for 3x usual gap', not '{' '.join(words)}'", toks[4])
        if source != "order":
            return self.error("E306", "the usual gap is measured between orders: write 'no order for 3x usual gap'",
                              toks[1])
        factor = self.number(toks[3])
        since, typ = self.counted("aggregate", nodes.DaysSince("order"), t, MAX_AGGREGATES)
        if factor is None or since is None:
            return None, ERR
        return nodes.Compare(">", since, nodes.Arith("*", factor, nodes.Builtin("usual_gap_days"))), BOOL

    def window(self, t: Tree) -> nodes.Window | None:
        tok = _toks(_kids(t)[0])[0]
        offset = self.window(_kids(t)[1]) if len(_kids(t)) > 1 else None
        if tok.type == "NUMBER":
            self.error("E110", f"the window '{shorten(tok)}' needs a unit: 90d, 12w, 3m, 1y", tok)
            return None
        text = str(tok)
        amount = int(text[:-1]) if len(text) < 9 else MAX_WINDOW_DAYS + 1
        if amount < 1 or amount * UNIT_DAYS[text[-1]] > MAX_WINDOW_DAYS:
            self.error("E305", f"the window '{shorten(text)}' must be at least 1 and at most 100 years", tok)
            return None
        if len(_kids(t)) > 1 and offset is None:
            return None
        window = nodes.Window(amount, text[-1], offset)
        if window_offsets(window) > MAX_WINDOW_OFFSETS:
            self.error("E305", f"a window may have at most {MAX_WINDOW_OFFSETS} 'before' — shorten this one", tok)
            return None
        if window_days(window) > MAX_WINDOW_DAYS:
            self.error("E305", f"the window '{shorten(self.text(t), 40)}' reaches more than 100 years back", tok)
            return None
        return window


# ---------------- the whole file ----------------
