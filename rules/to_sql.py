"""The batch back end: a checked rule set + as_of -> ONE set-based SQLAlchemy Core query (SQLite and PostgreSQL).

Shape of the query (each step a CTE):
  agg_<source>  one aggregate subquery per record source, GROUP BY customer_id, conditional aggregation with
                one column per distinct (func, field, window, where) the rules use
  base          customers (created_at <= as_of) LEFT JOIN each agg_<source> ON customer_id only, so the query
                runs unchanged on a database distributed by customer (Citus)
  metrics_<k>   metric values, one CTE per dependency level
  ranked        window functions for `in top / bottom` (COUNT(*) OVER (... ORDER BY x DESC) counts peers)
  decided       rank flags, tag flags and the index of the first tier / status rule that fires
  final select  id, metrics, tier + line, status + line, one boolean per tag rule, rank values and flags

Every value from the rules and every date (window bounds are computed in Python by rules.windows) reaches
SQL as a bound parameter. Semantics mirror rules.to_python exactly (docs/rules.md, "Semantics").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from domain.models import Complaint, Customer, CustomerScore, Delivery, Interaction, Order
from domain.record_flags import RECORD_DATE, UnknownRecordFlag, record_flag, record_value_sql
from domain.record_sources import TABLES
from rules import nodes as n
from domain.anniversary import customer_since_sql, days_until_anniversary_sql
from rules.to_python import CUSTOMER_NUMBER_FIELDS, CUSTOMER_STRING_FIELDS
from rules.windows import bounds
from rules.tree import UnsupportedRule, compare_mode, metric_deps, node_text, rank_key, rank_nodes, walk
from rules.windows import bounds

# the tables as declared once, by the models (domain.models); migrations are checked against the same declaration
customers = Customer.__table__
customer_scores = CustomerScore.__table__
orders, complaints = Order.__table__, Complaint.__table__
deliveries, interactions = Delivery.__table__, Interaction.__table__


# `/` as written, with the precedence of division (SQLAlchemy's own `/` on integers would add a cast)
DIVIDE = operators.custom_op("/", precedence=operators._PRECEDENCE[operators.truediv])

# ---------- bound values ----------


def p_num(v: float) -> ColumnElement:
    return sa.literal(float(v), sa.Float)


def p_int(v: int) -> ColumnElement:
    return sa.literal(int(v), sa.Integer)


def p_str(v: str) -> ColumnElement:
    return sa.cast(sa.literal(v, sa.String), sa.String)


def p_date(v: date) -> ColumnElement:
    return sa.literal(v, sa.Date)


# ---------- dialect-specific pieces (compiled per dialect; values still bound) ----------


class _Custom(ColumnElement):
    inherit_cache = True
    _traverse_internals = [("col", InternalTraversal.dp_clauseelement), ("name", InternalTraversal.dp_string)]

    def __init__(self, col: ColumnElement, name: str = ""):
        self.col = col
        self.name = name

    @property
    def args(self) -> tuple:
        return self.col, self.name


class AttrText(_Custom):
    """customers.attributes[name] when it is a JSON string, else NULL."""

    inherit_cache = True
    type = sa.String()


class AttrNumber(_Custom):
    """customers.attributes[name] when it is a JSON number or a plain decimal string, else NULL."""

    inherit_cache = True
    type = sa.Float()


class DaysBetween(ColumnElement):
    """Whole days from a date column to as_of (the only date difference the SQL computes: `days since`)."""

    inherit_cache = True
    type = sa.Integer()
    _traverse_internals = [("as_of", InternalTraversal.dp_clauseelement), ("col", InternalTraversal.dp_clauseelement)]

    def __init__(self, as_of: ColumnElement, col: ColumnElement):
        self.as_of = as_of
        self.col = col

    @property
    def args(self) -> tuple:
        return self.as_of, self.col


class CollateC(_Custom):
    """String ordering by code point, as in Python (PostgreSQL needs COLLATE "C"; SQLite's default is binary)."""

    inherit_cache = True
    type = sa.String()


def _const(value: str | int) -> ColumnElement:
    """One of our own constants written into the SQL (JSON type names, patterns): not a value from the rules, and
    binding it would spend a dozen of the statement's parameters on every use of an attribute."""
    if isinstance(value, int):
        return sa.literal_column(str(value), sa.Integer)
    assert "'" not in value
    return sa.literal_column(f"'{value}'", sa.String)


def _sqlite_path(name: str) -> ColumnElement:
    return sa.literal('$."' + name.replace('"', '\\"') + '"', sa.String)


@compiles(AttrText)
def _attr_text_sqlite(el, compiler, **kw):
    col, name = el.args
    path = _sqlite_path(name)
    expr = sa.case((sa.func.json_type(col, path) == _const("text"), sa.func.json_extract(col, path)))
    return compiler.process(expr, **kw)


@compiles(AttrText, "postgresql")
def _attr_text_pg(el, compiler, **kw):
    col, name = el.args
    key = sa.cast(sa.literal(name), sa.Text)
    expr = sa.case((sa.func.json_typeof(col.op("->")(key)) == _const("string"), col.op("->>")(key)))
    return compiler.process(expr, **kw)


@compiles(AttrNumber)
def _attr_number_sqlite(el, compiler, **kw):
    col, name = el.args
    path = _sqlite_path(name)
    jtype = sa.func.json_type(col, path)
    raw = sa.func.json_extract(col, path)
    first = sa.func.substr(raw, _const(1), _const(1))
    body = sa.case((first.in_([_const("+"), _const("-")]), sa.func.substr(raw, _const(2))), else_=raw)
    numeric_text = sa.and_(
        body != _const(""),
        body.op("NOT GLOB")(_const("*[^0-9.]*")),
        body.op("NOT GLOB")(_const("*.*.*")),
        body.op("NOT GLOB")(_const(".*")),
        body.op("NOT GLOB")(_const("*.")),
    )
    expr = sa.case(
        (jtype.in_([_const("integer"), _const("real")]), sa.cast(raw, sa.Float)),
        (sa.and_(jtype == _const("text"), numeric_text), sa.cast(raw, sa.Float)),
    )
    return compiler.process(expr, **kw)


@compiles(AttrNumber, "postgresql")
def _attr_number_pg(el, compiler, **kw):
    col, name = el.args
    key = sa.cast(sa.literal(name), sa.Text)
    jtype = sa.func.json_typeof(col.op("->")(key))
    text = col.op("->>")(key)
    expr = sa.case(
        (jtype == _const("number"), sa.cast(text, sa.Float)),
        (sa.and_(jtype == _const("string"), text.op("~")(_const(r"^[+-]?[0-9]+(\.[0-9]+)?$"))),
         sa.cast(text, sa.Float)),
    )
    return compiler.process(expr, **kw)


@compiles(DaysBetween)
def _days_sqlite(el, compiler, **kw):
    as_of, col = el.args
    expr = sa.cast(sa.func.julianday(as_of) - sa.func.julianday(col), sa.Integer)
    return compiler.process(expr, **kw)


@compiles(DaysBetween, "postgresql")
def _days_pg(el, compiler, **kw):
    as_of, col = el.args
    return f"({compiler.process(sa.cast(as_of, sa.Date), **kw)} - {compiler.process(col, **kw)})"


@compiles(CollateC)
def _collate_default(el, compiler, **kw):
    return compiler.process(el.args[0], **kw)


@compiles(CollateC, "postgresql")
def _collate_pg(el, compiler, **kw):
    return f'({compiler.process(el.args[0], **kw)} COLLATE "C")'


# ---------- aggregate columns ----------


# the first order date (on or before as_of): customer since, behind `customer for` and anniversaries, reads it
FIRST_ORDER_KEY = ("order", "first", None, None, None)


def agg_key(node: Any) -> tuple:
    """Dedupe key of an aggregate column: NoRecord shares count(...) columns; DaysSince is max(date)."""
    t = type(node)
    if t is n.Aggregate:
        return (node.source, node.func, node.field.name if node.field else None, node.window, node.where)
    if t is n.NoRecord:
        if node.window is None or node.window.offset is None:
            # no record in a window ending on as_of <=> the last such record (on or before as_of) is before it
            return (node.source, "last", None, None, node.where)
        return (node.source, "count", None, node.window, node.where)
    if t is n.DaysSince:
        return (node.source, "last", None, None, node.where)
    if t in (n.CustomerFor, n.DaysUntilAnniversary):
        return FIRST_ORDER_KEY
    raise TypeError(t)


@dataclass
class CompiledRules:
    """The compiled query plus the names of its columns."""

    query: sa.Select
    as_of: date
    metric_columns: dict[str, str]  # metric name -> column label
    tier_rules: list[n.Rule]
    status_rules: list[n.Rule]
    tag_columns: list[tuple[n.Rule, str]]
    ranks: list[tuple[str, n.Rank, str, str]]  # (key, node, value column, in column)

    def decode(self, row: Any) -> dict[str, Any]:
        m = row._mapping
        return {
            "customer_id": m["customer_id"],
            "metrics": {name: _num(m[col]) for name, col in self.metric_columns.items()},
            "tier": m["tier"],
            "tier_line": m["tier_line"],
            "status": m["status"],
            "status_line": m["status_line"],
            "tags": _dedupe([rule.label for rule, col in self.tag_columns if m[col]]),
        }

    def cutoffs(self, rows: Iterable[Any]) -> dict[str, float | None]:
        """Per rank node: the least value that is in (top) / the greatest (bottom); None if nobody is in."""
        out: dict[str, float | None] = {key: None for key, *_ in self.ranks}
        for row in rows:
            m = row._mapping
            for key, node, vcol, icol in self.ranks:
                if m[icol]:
                    v = float(m[vcol])
                    cur = out[key]
                    if cur is None or (v < cur if node.direction == "top" else v > cur):
                        out[key] = v
        return out


def _num(v: Any) -> Any:
    return v if v is None or isinstance(v, (int, float)) else float(v)


def _dedupe(labels: list[str]) -> list[str]:
    seen: list[str] = []
    for label in labels:
        if label not in seen:
            seen.append(label)
    return seen


class SqlCompiler:
    """Visitor: one method per node kind, compiling expressions against the columns of the current layer."""

    def __init__(self, ruleset: n.RuleSet, as_of: date):
        self.ruleset = ruleset
        self.as_of = as_of
        self.agg_cols: dict[tuple, str] = {}  # agg key -> column name in base
        self.agg_nodes: dict[tuple, Any] = {}
        self.cols: Any = None  # the .c collection of the layer being compiled against
        self.metric_cols: dict[str, str] = {}
        self.rank_cols: dict[str, str] = {}  # rank key -> in-column name
        self.record_table: sa.Table | None = None
        self.record_source: str | None = None
        self.customer_fields: set[str] = set()
        self.rank_value_cols: dict[str, str] = {}  # rank key -> value column name
        self.builtins_used: set[str] = set()

    # ---------- building the layers ----------

    def build(self, exprs: list[Any], metric_names: list[str]) -> tuple[Any, list[tuple[str, n.Rank]]]:
        """CTE chain up to `ranked` for the given expressions; returns (layer, ranks)."""
        all_exprs = list(exprs) + [self.ruleset.metric(m).expr for m in metric_names]
        for e in all_exprs:
            for node in walk(e):
                if type(node) is n.CustomerField:
                    self.customer_fields.add("attributes" if node.attribute else node.name)
                elif type(node) is n.Flag:
                    self.customer_fields.add(node.name)
                elif type(node) in (n.Builtin, n.BoolMetric):
                    self.builtins_used.add(node.name)
                elif type(node) in (n.Aggregate, n.NoRecord, n.DaysSince, n.CustomerFor, n.DaysUntilAnniversary):
                    key = agg_key(node)
                    if key not in self.agg_cols:
                        self.agg_cols[key] = f"a{len(self.agg_cols)}"
                        self.agg_nodes[key] = node
        base = self._base()
        layer = base
        # metrics by dependency level
        level: dict[str, int] = {}
        for name in metric_names:
            deps = [d for d in metric_deps(self.ruleset, [self.ruleset.metric(name).expr]) if d != name]
            level[name] = 1 + max((level[d] for d in deps), default=0)
        for lvl in sorted(set(level.values())):
            self.cols = layer.c
            new_cols = []
            for name in metric_names:
                if level[name] == lvl:
                    col = f"metric_{len(self.metric_cols)}"
                    new_cols.append(self.num(self.ruleset.metric(name).expr).label(col))
                    self.metric_cols[name] = col
            # MATERIALIZED: inlined, each use of a metric would copy its formula (m2 = m1 + m1, m3 = m2 + m2 ...:
            # exponential in the chain's length)
            layer = sa.select(*layer.c, *new_cols).select_from(layer).cte(f"metrics_{lvl}").prefix_with("MATERIALIZED")
        # ranks
        ranks = self._ranks(exprs)
        if ranks:
            self.cols = layer.c
            values = []
            shared: dict[tuple, int] = {}  # (operand, direction) -> index of its window columns
            for i, (key, r) in enumerate(ranks):
                if (r.operand, r.direction) not in shared:
                    shared[(r.operand, r.direction)] = i
                    values.append(self.num(r.operand).label(f"rank_value_{i}"))
            # each value once, as a column, then its window functions (not the formula three times over)
            layer = sa.select(*layer.c, *values).select_from(layer).cte("rank_values")
            extra = []
            for (_operand, direction), i in shared.items():
                x = layer.c[f"rank_value_{i}"]
                order = x.desc() if direction == "top" else x.asc()
                extra.append(sa.func.count().over(partition_by=x.is_(None), order_by=order).label(f"rank_count_{i}"))
                extra.append(sa.func.count(x).over().label(f"rank_known_{i}"))
            layer = sa.select(*layer.c, *extra).select_from(layer).cte("ranked")
            self.cols = layer.c
            flags = []
            for i, (key, r) in enumerate(ranks):
                c = layer.c
                j = shared[(r.operand, r.direction)]
                cnt, known = c[f"rank_count_{j}"], c[f"rank_known_{j}"]
                if r.percent:
                    inside = cnt * p_int(100) <= known * p_num(r.amount)
                else:
                    inside = cnt <= p_num(r.amount)
                flags.append(sa.case((c[f"rank_value_{j}"].is_not(None), inside)).label(f"rank_in_{i}"))
                self.rank_value_cols[key] = f"rank_value_{j}"
                self.rank_cols[key] = f"rank_in_{i}"
            layer = sa.select(*layer.c, *flags).select_from(layer).cte("ranked_flags")
        self.cols = layer.c
        return layer, ranks

    def _ranks(self, exprs: list[Any]) -> list[tuple[str, n.Rank]]:
        """The rank nodes to compute over the whole base (each a window function over every customer)."""
        return [(rank_key(r), r) for r in rank_nodes(exprs)]

    def _base(self) -> Any:
        c = customers
        by_source: dict[str, list[tuple]] = {}
        for key in self.agg_cols:
            by_source.setdefault(key[0], []).append(key)
        joined: Any = c
        cols: list[Any] = [c.c.id.label("customer_id")]
        for source, keys in by_source.items():
            sub = self._agg_subquery(source, keys)
            joined = joined.outerjoin(sub, sub.c.customer_id == c.c.id)
            for key in keys:
                col = sub.c[self.agg_cols[key]]
                if key[1] in ("sum", "count"):  # a customer without such records has no row in the subquery
                    zero = p_int(0) if key[1] == "count" else p_num(0)
                    col = sa.case((sub.c.customer_id.is_(None), zero), else_=col)
                cols.append(col.label(self.agg_cols[key]))
        if self.builtins_used:
            # value scores of the same evaluation date only; otherwise the built-ins are unknown
            s = customer_scores
            joined = joined.outerjoin(s, sa.and_(s.c.customer_id == c.c.id, s.c.as_of == p_date(self.as_of)))
            cols += [s.c[name].label(f"builtin_{name}") for name in sorted(self.builtins_used)]
        blocked = sa.and_(c.c.blocked_from.is_not(None), c.c.blocked_from <= p_date(self.as_of))
        used = self.customer_fields
        cols += [c.c[name] for name in sorted(used & (CUSTOMER_STRING_FIELDS | CUSTOMER_NUMBER_FIELDS | {"attributes"}))]
        if FIRST_ORDER_KEY in self.agg_cols:
            cols.append(c.c.created_at)
        if "seasonal" in used:
            cols.append(c.c.seasonal.label("flag_seasonal"))
        if "consent" in used:
            cols.append(c.c.consent.label("flag_consent"))
        if "blocked" in used:
            cols.append(sa.case((blocked, sa.true()), else_=sa.false()).label("flag_blocked"))
        return sa.select(*cols).select_from(joined).where(c.c.created_at <= p_date(self.as_of)).cte("base")

    def _agg_subquery(self, source: str, keys: list[tuple]) -> Any:
        t = TABLES[source]
        dcol = t.c[RECORD_DATE[source]]
        cols = [t.c.customer_id]
        starts = []
        self.record_table, self.record_source = t, source
        try:
            for key in keys:
                _, func, fld, window, where = key
                b = bounds(window, self.as_of)
                starts.append(b.start)
                conds = []
                if b.start is not None:
                    conds.append(dcol >= p_date(b.start))
                if b.end != self.as_of:
                    conds.append(dcol <= p_date(b.end))
                if where is not None:
                    conds.append(self.boolean(where))
                cond = sa.and_(*conds) if conds else None
                if func == "count":
                    expr = sa.func.count() if cond is None else sa.func.count(sa.case((cond, p_int(1))))
                elif func == "last":
                    expr = sa.func.max(dcol if cond is None else sa.case((cond, dcol)))
                elif func == "first":
                    expr = sa.func.min(dcol)
                else:
                    value = record_value_sql(t, source, fld, self.record_day())
                    arg = value if cond is None else sa.case((cond, value))
                    expr = getattr(sa.func, func)(arg)
                    if func == "sum":  # no records: 0; records whose values are all unknown: unknown
                        matched = sa.func.count() if cond is None else sa.func.count(sa.case((cond, p_int(1))))
                        expr = sa.case((matched == p_int(0), p_num(0)), else_=expr)
                cols.append(expr.label(self.agg_cols[key]))
        finally:
            self.record_table = self.record_source = None
        q = sa.select(*cols).where(dcol <= p_date(self.as_of))
        if starts and all(s is not None for s in starts):
            q = q.where(dcol >= p_date(min(starts)))
        return q.group_by(t.c.customer_id).subquery(f"agg_{source}")

    # ---------- dispatch ----------

    def num(self, node: Any) -> ColumnElement:
        return getattr(self, "num_" + type(node).__name__)(node)

    def boolean(self, node: Any) -> ColumnElement:
        return getattr(self, "bool_" + type(node).__name__)(node)

    def value(self, node: Any, mode: str) -> ColumnElement:
        t = type(node)
        if mode == "str":
            if t is n.String:
                return p_str(node.value)
            if t is n.CustomerField:
                return self._customer_field(node, "str")
            if t is n.RecordField:
                return self._record_field(node)
            raise UnsupportedRule(f"{node_text(node)} is not a string")
        if t is n.CustomerField:
            return self._customer_field(node, "num")
        return self.num(node)

    # ---------- numbers ----------

    def num_Number(self, node: n.Number) -> ColumnElement:
        return p_num(node.value)

    def num_MetricRef(self, node: n.MetricRef) -> ColumnElement:
        return self.cols[self.metric_cols[node.name]]

    def num_Builtin(self, node: n.Builtin) -> ColumnElement:
        return self.cols[f"builtin_{node.name}"]

    def num_CustomerField(self, node: n.CustomerField) -> ColumnElement:
        return self._customer_field(node, "num")

    def num_RecordField(self, node: n.RecordField) -> ColumnElement:
        return self._record_field(node)

    def num_Aggregate(self, node: n.Aggregate) -> ColumnElement:
        self._outside_record(node)
        return self.cols[self.agg_cols[agg_key(node)]]

    def num_DaysSince(self, node: n.DaysSince) -> ColumnElement:
        self._outside_record(node)
        return DaysBetween(p_date(self.as_of), self.cols[self.agg_cols[agg_key(node)]])

    def customer_since(self, node: Any) -> ColumnElement:
        self._outside_record(node)
        first = self.cols[self.agg_cols[FIRST_ORDER_KEY]]
        return customer_since_sql(self.cols["created_at"], first)

    def num_DaysUntilAnniversary(self, node: n.DaysUntilAnniversary) -> ColumnElement:
        return sa.cast(days_until_anniversary_sql(self.customer_since(node), self.as_of), sa.Float)

    def bool_CustomerFor(self, node: n.CustomerFor) -> ColumnElement:
        return self.customer_since(node) < p_date(bounds(node.window, self.as_of).start)

    def num_Arith(self, node: n.Arith) -> ColumnElement:
        a, b = self.num(node.left), self.num(node.right)
        if node.op == "+":
            return a + b
        if node.op == "-":
            return a - b
        if node.op == "*":
            return a * b
        # a float divisor makes the division a float one (casting the dividend instead nests every `a / b / c`)
        return a.operate(DIVIDE, sa.func.nullif(sa.cast(b, sa.Float), p_num(0)))

    def num_Negate(self, node: n.Negate) -> ColumnElement:
        return p_num(0) - self.num(node.operand)

    # ---------- booleans ----------

    def bool_Compare(self, node: n.Compare) -> ColumnElement:
        mode = compare_mode(node.left, node.right)
        a, b = self.value(node.left, mode), self.value(node.right, mode)
        if mode == "str" and node.op in ("<", "<=", ">", ">="):
            a, b = CollateC(a), CollateC(b)
        return {
            "=": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b,
            "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
        }[node.op]()

    def bool_InList(self, node: n.InList) -> ColumnElement:
        # `x IN (...)` per comparison mode: an OR chain of 1,000 equalities is beyond SQLite's expression depth
        by_mode: dict[str, list[Any]] = {}
        for v in node.values:
            by_mode.setdefault(compare_mode(node.operand, v), []).append(v)
        return sa.or_(*(self.value(node.operand, mode).in_([self.value(v, mode) for v in values])
                        for mode, values in by_mode.items()))

    def bool_Rank(self, node: n.Rank) -> ColumnElement:
        key = rank_key(node)
        if self.record_table is not None or key not in self.rank_cols:
            raise UnsupportedRule(f"rank {node_text(node)} is not allowed here")
        return self.cols[self.rank_cols[key]]

    def bool_NoRecord(self, node: n.NoRecord) -> ColumnElement:
        self._outside_record(node)
        key = agg_key(node)
        col = self.cols[self.agg_cols[key]]
        if key[1] == "count":
            return col == p_int(0)
        if node.window is None:
            return col.is_(None)
        return sa.or_(col.is_(None), col < p_date(bounds(node.window, self.as_of).start))

    def bool_Flag(self, node: n.Flag) -> ColumnElement:
        if node.name not in ("seasonal", "blocked", "consent"):
            raise UnsupportedRule(f"unknown flag {node.name}")
        return self.cols[f"flag_{node.name}"]

    def bool_BoolMetric(self, node: n.BoolMetric) -> ColumnElement:
        return self.cols[f"builtin_{node.name}"]

    def bool_RecordFlag(self, node: n.RecordFlag) -> ColumnElement:
        t = self.record_table
        if t is None or node.source != self.record_source:
            raise UnsupportedRule(f"record flag {node.name} outside an aggregate")
        try:
            return record_flag(node.source, node.name).sql(t, p_date(self.as_of))
        except UnknownRecordFlag as exc:
            raise UnsupportedRule(str(exc)) from None

    def bool_And(self, node: n.And) -> ColumnElement:
        return sa.and_(self.boolean(node.left), self.boolean(node.right))

    def bool_Or(self, node: n.Or) -> ColumnElement:
        return sa.or_(self.boolean(node.left), self.boolean(node.right))

    def bool_Not(self, node: n.Not) -> ColumnElement:
        return sa.not_(self.boolean(node.operand))

    # ---------- helpers ----------

    def _customer_field(self, node: n.CustomerField, mode: str) -> ColumnElement:
        if self.record_table is not None:
            raise UnsupportedRule(f"customer field {node.name} inside a record condition")
        if node.attribute:
            cls = AttrText if mode == "str" else AttrNumber
            return cls(self.cols["attributes"], node.name)
        if mode == "num" and node.name in CUSTOMER_NUMBER_FIELDS:
            return sa.cast(self.cols[node.name], sa.Float)
        if node.name not in CUSTOMER_STRING_FIELDS or mode != "str":
            raise UnsupportedRule(f"customer field {node.name} is not usable here")
        return self.cols[node.name]

    def _record_field(self, node: n.RecordField) -> ColumnElement:
        if self.record_table is None or node.source != self.record_source:
            raise UnsupportedRule(f"record field {node.source}.{node.name} outside its aggregate")
        return record_value_sql(self.record_table, node.source, node.name, self.record_day())

    def record_day(self) -> ColumnElement:
        """The day D that record flags and derived record values are read on."""
        return p_date(self.as_of)

    def _outside_record(self, node: Any) -> None:
        if self.record_table is not None:
            raise UnsupportedRule(f"{node_text(node)} inside a record condition")


def _position(i: int) -> ColumnElement:
    """A rule's index or line: our own integer, written into the SQL (a bound value each would spend thousands of
    the statement's parameters on a long rule list)."""
    return sa.literal_column(str(int(i)), sa.Integer)


def _first_index(comp: SqlCompiler, rules: tuple[n.Rule, ...]) -> ColumnElement:
    """The index of the first rule of the list whose condition is true (each condition compiled once)."""
    whens = []
    for i, r in enumerate(rules):
        if r.condition is None:
            return sa.case(*whens, else_=_position(i)) if whens else _position(i)
        whens.append((comp.boolean(r.condition), _position(i)))
    return sa.case(*whens) if whens else sa.null()


def _pick(index: ColumnElement, values: list[Any], typ: Any) -> ColumnElement:
    """The label (bound) or line of the rule at `index`; `index` is a column of the materialized `decided` step."""
    if not values:
        return sa.cast(sa.null(), typ)
    value = p_str if typ is sa.String else _position
    return sa.case(*((index == _position(i), value(v)) for i, v in enumerate(values)))


def compile_ruleset(ruleset: n.RuleSet, as_of: date) -> CompiledRules:
    """The whole rule set as one query: a row per evaluated customer (created_at <= as_of)."""
    comp = SqlCompiler(ruleset, as_of)
    conditions = [r.condition for r in (*ruleset.tiers, *ruleset.statuses, *ruleset.tags)]
    layer, ranks = comp.build([c for c in conditions if c is not None], [m.name for m in ruleset.metrics])
    c = layer.c
    tag_cols = []
    decided_cols: list[Any] = [c.customer_id]
    decided_cols += [c[col] for col in comp.metric_cols.values()]
    decided_cols.append(_first_index(comp, ruleset.tiers).label("tier_index"))
    decided_cols.append(_first_index(comp, ruleset.statuses).label("status_index"))
    for i, rule in enumerate(ruleset.tags):
        if rule.condition is None:
            continue
        col = f"tag_{i}"
        decided_cols.append(sa.case((comp.boolean(rule.condition), sa.true()), else_=sa.false()).label(col))
        tag_cols.append((rule, col))
    rank_info = []
    for i, (key, node) in enumerate(ranks):
        vcol = comp.rank_value_cols[key]
        if vcol not in {getattr(x, "name", None) for x in decided_cols}:
            decided_cols.append(c[vcol])
        decided_cols.append(c[f"rank_in_{i}"])
        rank_info.append((key, node, vcol, f"rank_in_{i}"))
    # MATERIALIZED: otherwise SQLite and PostgreSQL inline `decided` into the picks below, copying the chain of
    # every rule condition into each of them (cost and memory quadratic in the number of rules)
    decided = sa.select(*decided_cols).select_from(layer).cte("decided").prefix_with("MATERIALIZED")
    d = decided.c
    tiers, statuses = list(ruleset.tiers), list(ruleset.statuses)
    final = sa.select(
        d.customer_id,
        *(d[col] for col in comp.metric_cols.values()),
        _pick(d.tier_index, [r.label for r in tiers], sa.String).label("tier"),
        _pick(d.tier_index, [r.pos.line for r in tiers], sa.Integer).label("tier_line"),
        _pick(d.status_index, [r.label for r in statuses], sa.String).label("status"),
        _pick(d.status_index, [r.pos.line for r in statuses], sa.Integer).label("status_line"),
        *(d[col] for _, col in tag_cols),
        *(d[col] for col in dict.fromkeys(col for _, _, vcol, icol in rank_info for col in (vcol, icol))),
    ).select_from(decided).order_by(d.customer_id)
    return CompiledRules(final, as_of, dict(comp.metric_cols), tiers, statuses, tag_cols, rank_info)


def without_jit(conn: Any) -> None:
    """PostgreSQL: no JIT for the rule queries in this transaction. JIT-compiling the conditions of thousands of
    rules takes seconds (bench/bench_rule_count.py) and gains nothing on these queries, even on 100,000 customers."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL jit = off"))


def compile_cutoffs(ruleset: n.RuleSet, as_of: date) -> tuple[sa.Select, list[tuple[str, n.Rank]]]:
    """A one-row query with the cut-off of every rank node of the rule set (for the per-customer path)."""
    comp = SqlCompiler(ruleset, as_of)
    conditions = [r.condition for r in (*ruleset.tiers, *ruleset.statuses, *ruleset.tags) if r.condition is not None]
    needed = metric_deps(ruleset, [r.operand for r in rank_nodes(conditions)])
    layer, ranks = comp.build(list(rank_nodes(conditions)), needed)
    cols = []
    for i, (key, node) in enumerate(ranks):
        v = layer.c[comp.rank_value_cols[key]]
        picked = sa.case((layer.c[f"rank_in_{i}"], v))
        cols.append((sa.func.min(picked) if node.direction == "top" else sa.func.max(picked)).label(f"cut_{i}"))
    if not cols:
        cols = [sa.literal(1).label("none")]
    return sa.select(*cols).select_from(layer), ranks


def compile_filter(condition: Any, ruleset: n.RuleSet, as_of: date) -> sa.Select:
    """An ad-hoc condition (GraphQL `customers(where: ...)`) -> SELECT customer_id of the customers it is true for."""
    comp = SqlCompiler(ruleset, as_of)
    layer, _ = comp.build([condition], metric_deps(ruleset, [condition]))
    return sa.select(layer.c.customer_id).select_from(layer).where(comp.boolean(condition)).order_by(
        layer.c.customer_id)
