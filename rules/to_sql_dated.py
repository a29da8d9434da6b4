"""The batch back end on many days at once: rules evaluated for (customer, day) pairs in ONE set-based query.

rules.to_sql evaluates a rule set for the whole base on one date, with window bounds computed in Python. The loss
history (domain.loss_history) needs the rules on every day a customer's result could change, for any past period,
so here the evaluation date is a column: `candidates` is any selectable with `customer_id` and `day`, window
bounds are SQL date arithmetic on `day` (DayShift, MonthShift: the same calendar as rules.windows), and every
aggregate groups by (customer_id, day) and joins on customer_id only. Evaluated on day t a condition reads only
records dated on or before t, and record flags as of t (domain.record_flags), exactly as rules.to_python does with
the records known on t.

What cannot be derived for a past day is held or left unknown, and the docs say so: built-in value scores
(clv, p_alive, seasonal_auto ...) are the stored ones (held fixed, as forecasts hold them); ranks (`in top 20%`)
are unknown (NULL: a rule reading one does not fire), because past cut-offs moved with the whole base.

change_day_rows mirrors rules.change_days in SQL: every day on which a condition can change value, as rows, a
superset where a calendar month's clamping makes the exact day depend on the month (never a day missing).
"""
from __future__ import annotations

from datetime import date
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from domain.record_flags import RECORD_DATE, UnknownRecordFlag, record_flag, record_value_sql
from rules import nodes as n
from rules.change_days import Reads
from rules.to_sql import (TABLES, DaysBetween, SqlCompiler, _first_index, agg_key, customer_scores, customers,
                          p_int, p_num)
from rules.to_python import CUSTOMER_NUMBER_FIELDS, CUSTOMER_STRING_FIELDS
from rules.tree import UnsupportedRule, metric_deps


class DailyCondition(UnsupportedRule):
    """`days since` changes every day: its history would need one evaluation per customer per day."""


# ---------- date arithmetic in SQL (both dialects; amounts are ours, bound or written as integers) ----------


class DayShift(ColumnElement):
    """A date column moved by a whole number of days."""

    inherit_cache = True
    type = sa.Date()
    _traverse_internals = [("col", InternalTraversal.dp_clauseelement), ("days", InternalTraversal.dp_plain_obj)]

    def __init__(self, col: ColumnElement, days: int):
        self.col, self.days = col, int(days)


class MonthShift(ColumnElement):
    """A date column moved by whole calendar months, the day clamped to the target month's last day
    (rules.windows.add_months)."""

    inherit_cache = True
    type = sa.Date()
    _traverse_internals = [("col", InternalTraversal.dp_clauseelement), ("months", InternalTraversal.dp_plain_obj)]

    def __init__(self, col: ColumnElement, months: int):
        self.col, self.months = col, int(months)


def _modifier(amount: int, unit: str) -> ColumnElement:
    return sa.literal_column(f"'{int(amount):+d} {unit}'", sa.String)


@compiles(DayShift)
def _day_shift_sqlite(el, compiler, **kw):
    return compiler.process(sa.func.date(el.col, _modifier(el.days, "days")), **kw)


@compiles(DayShift, "postgresql")
def _day_shift_pg(el, compiler, **kw):
    return f"(CAST({compiler.process(el.col, **kw)} AS DATE) + {int(el.days)})"


@compiles(MonthShift)
def _month_shift_sqlite(el, compiler, **kw):
    # SQLite's '+N months' rolls an overflowing day into the next month (Jan 31 + 1 month = Mar 3): go from the
    # first of the month instead, then add the day, clamped to that month's last day
    first = sa.func.date(el.col, sa.literal_column("'start of month'"), _modifier(el.months, "months"))
    day = sa.cast(sa.func.strftime(sa.literal_column("'%d'"), el.col), sa.Integer) - sa.literal_column("1")
    same_day = sa.func.date(first, sa.literal_column("'+'") + sa.cast(day, sa.String) + sa.literal_column("' days'"))
    last = sa.func.date(first, sa.literal_column("'+1 months'"), sa.literal_column("'-1 days'"))
    return compiler.process(sa.func.min(same_day, last), **kw)


@compiles(MonthShift, "postgresql")
def _month_shift_pg(el, compiler, **kw):
    # PostgreSQL's date + interval clamps to the month's end like add_months
    return (f"CAST(CAST({compiler.process(el.col, **kw)} AS DATE) + "
            f"make_interval(months => {int(el.months)}) AS DATE)")


def window_start_sql(amount: int, unit: str, end: ColumnElement) -> ColumnElement:
    """rules.windows.window_start with `end` a column."""
    if unit in ("d", "w"):
        return DayShift(end, -(amount - 1 if unit == "d" else 7 * amount - 1))
    return DayShift(MonthShift(end, -(amount if unit == "m" else 12 * amount)), 1)


def bounds_sql(window: n.Window | None, day: ColumnElement) -> tuple[ColumnElement | None, ColumnElement]:
    """rules.windows.bounds with the evaluation date a column: (start or None for all history, end)."""
    if window is None:
        return None, day
    end = day if window.offset is None else DayShift(bounds_sql(window.offset, day)[0], -1)
    return window_start_sql(window.amount, window.unit, end), end


# ---------- the compiler ----------


class DatedSqlCompiler(SqlCompiler):
    """SqlCompiler whose evaluation date is the `day` column of `candidates` (one row per customer and day)."""

    def __init__(self, ruleset: n.RuleSet, candidates: Any):
        super().__init__(ruleset, date.max)  # as_of is never read: every use of it is overridden below
        self.candidates = candidates

    @property
    def day(self) -> ColumnElement:
        """The evaluation date: the candidates' column while aggregating records, else the current layer's."""
        if self.record_table is not None or self.cols is None:
            return self.candidates.c.day
        return self.cols["day"]

    def _ranks(self, exprs: list[Any]) -> list:
        return []  # a past day's rank is unknown (bool_Rank)

    def bool_Rank(self, node: n.Rank) -> ColumnElement:
        return sa.cast(sa.null(), sa.Boolean)

    def _base(self) -> Any:
        c, cand = customers, self.candidates
        day = cand.c.day
        # every other column of the candidates (a gap's orders, ...) rides along to the last layer
        cols: list[Any] = [cand.c.customer_id, day, *(col for col in cand.c if col.name not in ("customer_id", "day"))]
        for key in self.agg_cols:
            cols.append(self._aggregate(key).label(self.agg_cols[key]))
        joined: Any = cand.join(c, c.c.id == cand.c.customer_id)
        if self.builtins_used:  # the stored scores, held fixed (a past day's scores are not kept)
            s = customer_scores
            joined = joined.outerjoin(s, s.c.customer_id == cand.c.customer_id)
            cols += [s.c[name].label(f"builtin_{name}") for name in sorted(self.builtins_used)]
        used = self.customer_fields
        cols += [c.c[name] for name in sorted(used & (CUSTOMER_STRING_FIELDS | CUSTOMER_NUMBER_FIELDS | {"attributes"}))]
        if "seasonal" in used:
            cols.append(c.c.seasonal.label("flag_seasonal"))
        if "consent" in used:
            cols.append(c.c.consent.label("flag_consent"))
        if "blocked" in used:
            blocked = sa.and_(c.c.blocked_from.is_not(None), c.c.blocked_from <= day)
            cols.append(sa.case((blocked, sa.true()), else_=sa.false()).label("flag_blocked"))
        # MATERIALIZED: each aggregate is a correlated subquery; inlined, every rule reading it would run it again
        return (sa.select(*cols).select_from(joined).where(c.c.created_at <= day)
                .cte("dated_base").prefix_with("MATERIALIZED"))

    def _aggregate(self, key: tuple) -> ColumnElement:
        """One aggregate of one (customer, day): a subquery correlated on customer id, reading the customer's
        records by the (customer_id, date) index. A grouped subquery joined back on (customer_id, day) would be
        a join of two derived tables, which SQLite runs as a nested scan (quadratic in the candidates)."""
        source, func, fld, window, where = key
        if func == "first":  # customer since: the relationship's age moves every day
            raise DailyCondition("the relationship's age changes every day, so its history is not kept")
        t, cand = TABLES[source], self.candidates
        dcol = t.c[RECORD_DATE[source]]
        day = cand.c.day
        start, end = bounds_sql(window, day)
        on = [t.c.customer_id == cand.c.customer_id, dcol <= end if end is not day else dcol <= day]
        if start is not None:
            on.append(dcol >= start)
        self.record_table, self.record_source = t, source
        try:
            cond = self.boolean(where) if where is not None else None
        finally:
            self.record_table = self.record_source = None
        if func == "count":
            expr = sa.func.count() if cond is None else sa.func.count(sa.case((cond, p_int(1))))
        elif func == "last":
            expr = sa.func.max(dcol if cond is None else sa.case((cond, dcol)))
        else:
            field = record_value_sql(t, source, fld, self.day)
            value = field if cond is None else sa.case((cond, field))
            expr = getattr(sa.func, func)(value)
            if func == "sum":  # no records: 0; records whose values are all unknown: unknown
                matched = sa.func.count() if cond is None else sa.func.count(sa.case((cond, p_int(1))))
                expr = sa.case((matched == p_int(0), p_num(0)), else_=expr)
        return sa.select(expr).where(*on).correlate(cand).scalar_subquery()

    def num_DaysSince(self, node: n.DaysSince) -> ColumnElement:
        self._outside_record(node)
        return DaysBetween(self.day, self.cols[self.agg_cols[agg_key(node)]])

    def bool_NoRecord(self, node: n.NoRecord) -> ColumnElement:
        self._outside_record(node)
        key = agg_key(node)
        col = self.cols[self.agg_cols[key]]
        if key[1] == "count":
            return col == p_int(0)
        if node.window is None:
            return col.is_(None)
        return sa.or_(col.is_(None), col < bounds_sql(node.window, self.day)[0])

    def record_day(self) -> ColumnElement:
        return self.day

    def num_DaysUntilAnniversary(self, node: n.DaysUntilAnniversary) -> ColumnElement:
        raise DailyCondition("'days until anniversary' changes every day, so its history is not kept")

    def bool_CustomerFor(self, node: n.CustomerFor) -> ColumnElement:
        raise DailyCondition("'customer for' is not kept in the history of statuses")

    def bool_RecordFlag(self, node: n.RecordFlag) -> ColumnElement:
        t = self.record_table
        if t is None or node.source != self.record_source:
            raise UnsupportedRule(f"record flag {node.name} outside an aggregate")
        try:
            return record_flag(node.source, node.name).sql(t, self.day)
        except UnknownRecordFlag as exc:
            raise UnsupportedRule(str(exc)) from None


def status_on_days(ruleset: n.RuleSet, candidates: Any) -> sa.Select:
    """The candidates' columns (customer_id, day, ...) and status_index: the index in ruleset.statuses of the first
    status rule true on that day (NULL: none), for every candidate row whose customer existed on its day."""
    comp = DatedSqlCompiler(ruleset, candidates)
    conditions = [r.condition for r in ruleset.statuses if r.condition is not None]
    layer, _ = comp.build(conditions, metric_deps(ruleset, conditions))
    return sa.select(*_carried(layer, candidates),
                     _first_index(comp, ruleset.statuses).label("status_index")).select_from(layer)


def condition_on_days(condition: Any, ruleset: n.RuleSet, candidates: Any) -> sa.Select:
    """The candidates' columns (customer_id, day, ...) and holds: whether the condition is true on that day (false
    when unknown)."""
    comp = DatedSqlCompiler(ruleset, candidates)
    layer, _ = comp.build([condition], metric_deps(ruleset, [condition]))
    holds = sa.case((comp.boolean(condition), sa.true()), else_=sa.false())
    return sa.select(*_carried(layer, candidates), holds.label("holds")).select_from(layer)


def _carried(layer: Any, candidates: Any) -> list[Any]:
    """The candidates' own columns, as they come out of the last layer."""
    return [layer.c[col.name] for col in candidates.c]


# ---------- the change days, as rows ----------

Shift = Callable[[ColumnElement], ColumnElement]


def _leaves_end(amount: int, unit: str) -> list[Shift]:
    """rules.change_days._first_end_after_start: the first end day of a window `amount unit` starting after v.
    For months a superset: the month's clamping puts it 0 to 3 days after add_months(v, N)."""
    if unit in ("d", "w"):
        days = amount if unit == "d" else 7 * amount
        return [lambda v, k=days: DayShift(v, k)]
    months = amount if unit == "m" else 12 * amount
    return [lambda v, k=k: DayShift(MonthShift(v, months), k) if k else MonthShift(v, months) for k in range(4)]


def _compose(firsts: list[Shift], thens: list[Shift]) -> list[Shift]:
    return [lambda v, f=f, g=g: g(f(v)) for f in firsts for g in thens]


def enters_sql(window: n.Window | None) -> list[Shift]:
    """rules.change_days.enters as SQL shifts (several where months make the exact day a superset)."""
    if window is None or window.offset is None:
        return [lambda v: v]
    return leaves_sql(window.offset)


def leaves_sql(window: n.Window | None) -> list[Shift]:
    """rules.change_days.leaves as SQL shifts; [] for all history (a record never leaves it)."""
    if window is None:
        return []
    return _compose(_leaves_end(window.amount, window.unit), enters_sql(window))


def change_day_rows(r: Reads) -> list[sa.Select]:
    """SELECTs of (customer_id, day): every day on which a condition reading `r` can change value (with
    rules.change_days' meaning; a superset for calendar months). Raises DailyCondition for `days since`."""
    if r.daily:
        raise DailyCondition("`days since` (like `days until anniversary`, `customer for` and an unpaid invoice's "
                             "`days_late`) changes every day, so its history is not kept: write the condition with a "
                             "window instead, e.g. `no order 90d` for `days since last order > 89`")
    out: list[sa.Select] = []
    for source, windows in r.windows.items():
        t = TABLES[source]
        v = t.c[RECORD_DATE[source]]
        shifts: list[Shift] = []
        for w in windows:
            shifts += enters_sql(w) + leaves_sql(w)
        seen: set[str] = set()
        for shift in shifts:
            expr = shift(v)
            key = str(expr.compile(compile_kwargs={"literal_binds": True}))
            if key not in seen:
                seen.add(key)
                out.append(sa.select(t.c.customer_id, expr.label("day")))
        for field in sorted(r.flag_dates.get(source, ())):
            d = t.c[field]
            out.append(sa.select(t.c.customer_id, d.label("day")).where(d.is_not(None)))
            out.append(sa.select(t.c.customer_id, DayShift(d, 1).label("day")).where(d.is_not(None)))
    if r.blocked:
        b = customers.c.blocked_from
        out.append(sa.select(customers.c.id.label("customer_id"), b.label("day")).where(b.is_not(None)))
    return out
