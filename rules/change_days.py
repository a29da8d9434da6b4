"""The days on which a customer's rule results can change with no new records: one definition shared by the
explainer's forecasts (rules/explain.py) and by effective dates and next_change_on (rules/effective.py).

Evaluated on day t with what is known on t, a condition can only read, besides constants and customer fields:
- which records are inside each window: a record dated v is inside window w exactly on the days
  [enters(w, v), leaves(w, v)) -- both ends of a window only move forward with t (rules/windows.py);
- record flags and derived record values (domain/record_flags.py), each of which changes only on one of its dates
  or the day after (invoice `days_late` changes every day while an invoice is unpaid and past due: daily, unless
  the aggregate's `where` requires `paid`: a paid invoice's lateness changes only on its payment date);
- `blocked`, which starts on blocked_from;
- `days since`, which changes every day;
- ranks and built-in scores, which this module does not see: they are held fixed (forecasts) or, where their
  past values matter, make a date inexact (rules/effective.py).
So between two consecutive change days every condition keeps its value, and evaluating on the change days alone
finds every change.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Iterable

from domain.record_flags import FLAGS, RECORD_DATE, RECORD_VALUES
from rules import nodes as n
from rules.tree import walk
from rules.windows import add_months, window_start

ONE_DAY = timedelta(days=1)
# what makes a condition's past or future value unknowable from the customer's own records
NOT_FROM_RECORDS = (n.Rank, n.Builtin, n.BoolMetric)


def expand(ruleset: n.RuleSet, exprs: Iterable[Any]) -> list[Any]:
    """Every node of the expressions, following metric references."""
    out, seen, stack = [], set(), [e for e in exprs if e is not None]
    while stack:
        for node in walk(stack.pop()):
            out.append(node)
            if type(node) is n.MetricRef and node.name not in seen:
                seen.add(node.name)
                stack.append(ruleset.metric(node.name).expr)
    return out


def reads_rank_or_score(ruleset: n.RuleSet, condition: Any) -> bool:
    """The condition reads a rank or a built-in score (through its metrics too)."""
    return any(isinstance(x, NOT_FROM_RECORDS) for x in expand(ruleset, [condition]))


@dataclass(frozen=True)
class Reads:
    """What conditions read that can move with the day."""

    windows: dict[str, frozenset]          # source -> windows over its records (None: all history)
    flag_dates: dict[str, frozenset[str]]  # source -> the record dates its flags read in `where`
    blocked: bool
    daily: bool                            # `days since`: the value changes every day


def _requires(where: Any, source: str, flag: str) -> bool:
    """`where` is true only for records with `flag` (the flag, or an `and` with it on one side)."""
    if type(where) is n.RecordFlag:
        return where.source == source and where.name == flag
    if type(where) is n.And:
        return _requires(where.left, source, flag) or _requires(where.right, source, flag)
    return False


def reads(ruleset: n.RuleSet, conditions: Iterable[Any]) -> Reads:
    windows: dict[str, set] = {}
    flag_dates: dict[str, set[str]] = {}
    blocked = daily = False
    for x in expand(ruleset, conditions):
        t = type(x)
        if t in (n.Aggregate, n.NoRecord, n.DaysSince):
            windows.setdefault(x.source, set()).add(None if t is n.DaysSince else x.window)
            daily = daily or t is n.DaysSince
            for y in [getattr(x, "field", None), *walk(x.where)]:
                if type(y) is n.RecordFlag:
                    flag_dates.setdefault(y.source, set()).update(FLAGS[(y.source, y.name)].dates)
                elif type(y) is n.RecordField and (derived := RECORD_VALUES.get((y.source, y.name))):
                    flag_dates.setdefault(y.source, set()).update(derived.dates)
                    settled = derived.settled_by is not None and _requires(x.where, y.source, derived.settled_by)
                    daily = daily or (derived.daily and not settled)
        elif t is n.Flag and x.name == "blocked":
            blocked = True
        elif t in (n.CustomerFor, n.DaysUntilAnniversary):  # the relationship's age moves with every day
            daily = True
    return Reads({s: frozenset(w) for s, w in windows.items()}, {s: frozenset(f) for s, f in flag_dates.items()},
                 blocked, daily)


# ---------- when a record is inside a window ----------


def _first_end_after_start(amount: int, unit: str, v: date) -> date | None:
    """The first day e such that the window `amount unit` ending on e starts after v (None: beyond the calendar)."""
    try:
        if unit in ("d", "w"):
            return v + timedelta(days=amount if unit == "d" else 7 * amount)
        months = amount if unit == "m" else 12 * amount
        e = add_months(v, months)  # exact unless the day was clamped to a month's end: then a few days later
        while window_start(amount, unit, e) <= v:
            e += ONE_DAY
        while e > date.min and window_start(amount, unit, e - ONE_DAY) > v:
            e -= ONE_DAY
        return e
    except (OverflowError, ValueError):
        return None


def enters(window: n.Window | None, v: date) -> date | None:
    """The first day on which `window` ends on or after v: a record dated v is inside from then on."""
    if window is None or window.offset is None:
        return v
    return leaves(window.offset, v)


def leaves(window: n.Window | None, v: date) -> date | None:
    """The first day on which `window` starts after v: a record dated v is outside from then on (None: never)."""
    if window is None:
        return None
    end = _first_end_after_start(window.amount, window.unit, v)
    return None if end is None else enters(window, end)


# ---------- the days ----------


def _reach(window: n.Window | None) -> int | None:
    """At least how many days after v a window has left a record dated v (None: never: all history)."""
    if window is None:
        return None
    per_unit = {"d": 1, "w": 7, "m": 31, "y": 366}[window.unit]
    rest = 0 if window.offset is None else _reach(window.offset)
    return None if rest is None else window.amount * per_unit + rest + 1


def _days(r: Reads, records: Any, lo: date = date.min) -> set[date]:
    """Every day on which a record enters or leaves a window, a flag read changes or `blocked` starts (those
    before lo may be left out)."""
    days: set[date] = set()
    blocked_from = getattr(records.customer, "blocked_from", None)
    if r.blocked and blocked_from is not None:
        days.add(blocked_from)
    for source, windows in r.windows.items():
        date_field = RECORD_DATE[source]
        flag_fields = r.flag_dates.get(source, ())
        recs = records.of(source)
        record_days = {getattr(rec, date_field) for rec in recs}
        for w in windows:
            reach = _reach(w)
            for v in record_days:
                if reach is None or (lo - v).days <= reach:  # else the record has left w before lo
                    days.add(enters(w, v))
                    days.add(leaves(w, v))
        for d in {getattr(rec, f, None) for rec in recs for f in flag_fields}:
            if d is not None:
                days.add(d)
                if d < date.max:
                    days.add(d + ONE_DAY)
    days.discard(None)
    return days


def change_days(r: Reads, records: Any, lo: date, hi: date | None) -> list[date]:
    """The days in [lo, hi] (hi None: no end) on which conditions reading `r` can change value from the day
    before, in order. With `days since` that is every day, and then hi must be given."""
    if r.daily:
        if hi is None:
            raise ValueError("`days since` changes every day: give the last day to look at")
        return [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]
    return sorted(d for d in _days(r, records, lo) if lo <= d and (hi is None or d <= hi))


def last_change_day(r: Reads, records: Any) -> date | None:
    """The last day on which anything but `days since` can change a condition (None: nothing ever does)."""
    return max(_days(r, records), default=None)
