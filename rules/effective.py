"""When a customer's tier, status or tag began, and when it next changes by itself: from its data and the rules
alone, never from when evaluations ran.

Evaluated on each day t with the records known on t (domain.record_flags.known_on), a customer's tier, status
or tag is a function of t. It changes only on change days (rules/change_days.py: a record entering or leaving a window,
a record flag changing, `blocked` starting), so:
- effective_since walks the change days back from as_of and stops at the first one before which the value was
  different: that day is when the current value began (for `no order 90d`: last order + 90 days; for `blocked`:
  blocked_from; for a new order: its date), or the day the customer was created if it never differed. Any as_of
  inside the same run of days gives the same date: evaluating daily, monthly or once dates a change alike.
- next_change_on walks the change days forward from as_of, with no new records and the rank cut-offs and value
  scores of as_of held fixed (as the explainer's forecasts do).
With `days since` every day is a change day: one evaluation per day walked.

Ranks and built-in scores (`in top 20%`, clv, p_alive, ...) of past days are not known (cut-offs move with the
whole base; scores are stored for one date). A value is therefore exact only when, on every day of its run and on
the day before it, it was decided by rules that read neither: a first-match list is followed only up to its first
rule reading a rank or a score, a tag only through its rules reading neither (the day before may also be one on
which none of the remaining rules could have given the current value). Otherwise the date is the evaluation date
with exact=False. Evaluating on day t with all records equals evaluating with those known on t
(no window reaches past its day, and hidden outcome dates give the same flags), so the records are indexed once.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from domain.record_flags import RECORD_DATE
from rules import nodes as n
from rules.builtins import builtin_values
from rules.change_days import ONE_DAY, Reads, change_days, last_change_day, reads, reads_rank_or_score
from rules.to_python import CustomerRecords, CustomerResult, PyEvaluator
from rules.windows import bounds

# with `days since` (a value that changes every day) next_change_on looks this far past the last change day, and
# answers that day if nothing changed by then: a date to look again, not a change
DAYS_SINCE_HORIZON = 400
KINDS = ("tier", "status", "tag")


@dataclass(frozen=True)
class Unsure:
    """The value on a day depends on a rank or a score of that day: one of `possible`."""

    possible: frozenset


@dataclass(frozen=True)
class Effective:
    on: date     # the day the customer's data first satisfied the deciding rule
    exact: bool  # False where it cannot be derived (a rank cut-off, a built-in score): then `on` is the as_of


class NotEvaluated(ValueError):
    """The customer did not exist yet on that day (created_at after it): it has no tier, status or tags."""


class UnknownKind(ValueError):
    pass


# ---------- evaluating one customer on many days ----------


class _DayEvaluator(PyEvaluator):
    """PyEvaluator whose window lookups bisect records sorted by date (the same bounds and `where` filter)."""

    def __init__(self, days: "_Days", as_of: date, builtins: dict[str, Any]):
        super().__init__(days.ruleset, days.records, as_of, days.cutoffs, builtins)
        self._dates = days.dates

    def records_in(self, source: str, window: n.Window | None, where: Any) -> list[Any]:
        b = bounds(window, self.as_of)
        dates = self._dates[source]
        lo = 0 if b.start is None else bisect_left(dates, b.start)
        recs = self.records.of(source)[lo:bisect_right(dates, b.end)]
        return recs if where is None else [r for r in recs if self.in_record(r, where) is True]


class _Days:
    """One customer's records as known on as_of, evaluated on any day up to it (or after it with nothing new)."""

    def __init__(self, ruleset: n.RuleSet, records: CustomerRecords, as_of: date,
                 cutoffs: dict[str, float | None] | None):
        known = records.known_on(as_of)
        self.records = CustomerRecords(known.customer, scores=known.scores)
        self.dates: dict[str, list[date]] = {}
        for source, date_field in RECORD_DATE.items():
            ordered = sorted(known.of(source), key=lambda r, f=date_field: getattr(r, f))
            self.records.of(source).extend(ordered)
            self.dates[source] = [getattr(r, date_field) for r in ordered]
        self.ruleset, self.as_of, self.cutoffs = ruleset, as_of, cutoffs or {}
        self.customer = known.customer
        self.created = known.customer.created_at
        self.scores = builtin_values(known.scores, as_of)  # held fixed, like the cut-offs
        self._on: dict[date, _DayEvaluator] = {}

    def on(self, day: date) -> _DayEvaluator:
        ev = self._on.get(day)
        if ev is None:
            ev = self._on[day] = _DayEvaluator(self, day, self.scores)
        return ev


# ---------- one value as a function of the day ----------


@dataclass(frozen=True)
class _Value:
    """The value of a tier, a status or one tag on a day, read only through rules that read no rank or score."""

    reads: Reads                         # what it reads (for the change days)
    judge: Callable[[PyEvaluator], Any]  # the value on that evaluator's day, or Unsure


def _first_match_value(ruleset: n.RuleSet, rules: tuple[n.Rule, ...]) -> _Value:
    clean = []
    for r in rules:
        if r.condition is not None and reads_rank_or_score(ruleset, r.condition):
            break
        clean.append(r)
    rest = rules[len(clean):]
    # no clean rule matched: any label of the rest, or none when it has no `otherwise`
    otherwise = any(r.condition is None for r in rest)
    unsure = Unsure(frozenset(r.label for r in rest) | (frozenset() if otherwise else {None}))

    def judge(ev: PyEvaluator) -> Any:
        rule = ev.first_match(clean)
        if rule is None:
            return unsure if rest else None
        return rule.label

    return _Value(reads(ruleset, [r.condition for r in clean]), judge)


def _tag_value(ruleset: n.RuleSet, label: str) -> _Value:
    own = [r for r in ruleset.tags if r.label == label and r.condition is not None]
    clean = [r for r in own if not reads_rank_or_score(ruleset, r.condition)]
    unsure = Unsure(frozenset({True, False})) if len(clean) < len(own) else False

    def judge(ev: PyEvaluator) -> Any:
        return True if any(ev.boolean(r.condition) is True for r in clean) else unsure

    return _Value(reads(ruleset, [r.condition for r in clean]), judge)


def _list_part(rules: tuple[n.Rule, ...]) -> Callable[[PyEvaluator], Any]:
    """A list's label and the line deciding it, ranks and scores held as they are (for next_change_on)."""
    def value(ev: PyEvaluator) -> Any:
        rule = ev.first_match(rules)
        return rule and (rule.label, rule.pos.line)

    return value


def _tag_part(ruleset: n.RuleSet, label: str) -> Callable[[PyEvaluator], Any]:
    own = [r for r in ruleset.tags if r.label == label and r.condition is not None]
    return lambda ev: any(ev.boolean(r.condition) is True for r in own)


class _Plan:
    """What a rule set's values read, worked out once per rule set (walking the rules costs more than a day)."""

    def __init__(self, ruleset: n.RuleSet):
        self.ruleset = ruleset
        labels = list(dict.fromkeys(r.label for r in ruleset.tags))
        self.values: dict[str, _Value] = {"tier": _first_match_value(ruleset, ruleset.tiers),
                                          "status": _first_match_value(ruleset, ruleset.statuses)}
        self.values.update({f"tag:{label}": _tag_value(ruleset, label) for label in labels})
        # next_change_on: the parts of the result, each compared on its own (a tag set is one part per label)
        self.parts = [_list_part(ruleset.tiers), _list_part(ruleset.statuses),
                      *(_tag_part(ruleset, label) for label in labels)]
        self.all_reads = reads(ruleset, [r.condition for r in (*ruleset.tiers, *ruleset.statuses, *ruleset.tags)])

    def value(self, kind: str, label: str | None) -> _Value:
        if kind not in KINDS:
            raise UnknownKind(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
        if kind == "tag" and label is None:
            raise UnknownKind("a tag's effective date needs the tag's label")
        key = kind if kind != "tag" else f"tag:{label}"
        return self.values.get(key) or _tag_value(self.ruleset, label)  # a label no rule gives: never had


_PLANS: dict[int, _Plan] = {}


def _plan(ruleset: n.RuleSet) -> _Plan:
    plan = _PLANS.get(id(ruleset))
    if plan is None or plan.ruleset is not ruleset:
        if len(_PLANS) >= 16:
            _PLANS.clear()
        plan = _PLANS[id(ruleset)] = _Plan(ruleset)
    return plan


def _since(days: _Days, value: _Value) -> Effective:
    as_of = days.as_of
    now = value.judge(days.on(as_of))
    if isinstance(now, Unsure):
        return Effective(as_of, False)
    if days.created >= as_of:
        return Effective(as_of, True)
    # the value on the days before a change day c is the value on c - 1
    for c in reversed(change_days(value.reads, days.records, days.created + ONE_DAY, as_of)):
        before = value.judge(days.on(c - ONE_DAY))
        if isinstance(before, Unsure) and now in before.possible:
            return Effective(as_of, False)
        if before != now:  # also when no rank or score could have given the current value
            return Effective(c, True)
    return Effective(days.created, True)


def _check_evaluated(records: CustomerRecords, as_of: date) -> None:
    if records.customer.created_at > as_of:
        raise NotEvaluated(f"customer {records.customer.id} was created on {records.customer.created_at}, "
                           f"after {as_of}: it has no result then")


# ---------- the API ----------


def effective_since(ruleset: n.RuleSet, records: CustomerRecords, as_of: date, cutoffs: dict | None, kind: str,
                    label: str | None = None) -> Effective:
    """When the customer's current value of `kind` ("tier" | "status" | "tag"; for a tag, whether it has `label`)
    began, from its data alone: the earliest day d <= as_of such that evaluating with the data known on each day t
    in [d, as_of] gives the same value (at the earliest the day the customer was created). exact=False (and
    on=as_of) when the rules deciding it read ranks or built-in scores whose past values are unknown."""
    _check_evaluated(records, as_of)
    return _since(_Days(ruleset, records, as_of, cutoffs), _plan(ruleset).value(kind, label))


class EffectiveDates(Mapping[str, Effective]):
    """effective_for's answer, each date computed when first read (every day evaluated once for all of them), so
    a caller reading only the values that changed pays only for those. Its keys are "tier", "status" and
    "tag:<label>" for each tag of the result; "tag:<label>" of a tag the customer does not have may be read too:
    since when it has been without it (the effective date of a removal)."""

    def __init__(self, ruleset: n.RuleSet, days: _Days, tags: Iterable[str]):
        self._ruleset, self._days = ruleset, days
        self._keys = ("tier", "status", *(f"tag:{t}" for t in dict.fromkeys(tags)))
        self._known: dict[str, Effective] = {}

    def __getitem__(self, key: str) -> Effective:
        if key not in self._known:
            kind, _, label = key.partition(":")
            if not (kind in ("tier", "status") and not label or kind == "tag" and label):
                raise KeyError(key)
            self._known[key] = _since(self._days, _plan(self._ruleset).value(kind, label or None))
        return self._known[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"EffectiveDates({dict(self)!r})"


def effective_for(ruleset: n.RuleSet, records: CustomerRecords, result: CustomerResult,
                  cutoffs: dict | None) -> EffectiveDates:
    """effective_since for "tier", "status" and every tag of `result` (keys "tier", "status", "tag:<label>"; a
    mapping computed as it is read, see EffectiveDates)."""
    _check_evaluated(records, result.as_of)
    return EffectiveDates(ruleset, _Days(ruleset, records, result.as_of, cutoffs), result.tags)


def next_change_on(ruleset: n.RuleSet, records: CustomerRecords, as_of: date, cutoffs: dict | None) -> date | None:
    """The earliest day after as_of on which the result (tier, status -- or the rule line deciding them -- or the
    tags) changes with no new data, the rank cut-offs and value scores of as_of held fixed; None when nothing
    changes by itself. With `days since` in the rules, at most DAYS_SINCE_HORIZON days past the last change day
    are looked at, and that day is answered if nothing changed by then (a day to look again)."""
    if records.customer.created_at > as_of:
        return records.customer.created_at  # the day it is first evaluated
    plan = _plan(ruleset)
    days = _Days(ruleset, records, as_of, cutoffs)
    hi = None
    if plan.all_reads.daily:
        last = last_change_day(plan.all_reads, days.records)
        hi = max(last or as_of, as_of) + timedelta(days=DAYS_SINCE_HORIZON)
    nows = [part(days.on(as_of)) for part in plan.parts]
    for d in change_days(plan.all_reads, days.records, as_of + ONE_DAY, hi):
        ev = days.on(d)
        if any(part(ev) != now for part, now in zip(plan.parts, nows)):
            return d
    return hi
