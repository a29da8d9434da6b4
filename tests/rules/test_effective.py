"""Effective dates (when a tier, status or tag began) and next_change_on (when the result changes by itself),
against their definitions evaluated day by day, and the examples of issue 8."""
from __future__ import annotations

import os
import zlib
from dataclasses import replace
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain.settings import DEFAULT_RULES
from rules import nodes as n
from rules.builtins import SCORE_COLUMNS
from rules.change_days import enters, leaves, reads
from rules.compiler import compile_rules, load_rules_file
from rules.effective import (DAYS_SINCE_HORIZON, Effective, NotEvaluated, UnknownKind, effective_for,
                             effective_since, next_change_on)
from rules.to_python import CustomerRecords, evaluate
from rules.tree import node_text, rank_key, rank_nodes, walk
from rules.windows import bounds
from tests.rules.test_agreement import AS_OFS, WINDOWS, customer_data, record_condition, rule_sets

ONE = timedelta(days=1)
EXAMPLES = int(os.environ.get("TIERGRAPH_HYPOTHESIS_EXAMPLES", "60"))
CUTOFF_VALUES = [None, -1.0, 0.0, 1.0, 2.5, 10.0, 100.0, 1e9]
CLV_VALUES = [None, 0.0, 5.0, 50.0]


def customer(**kw):
    base = dict(id=1, seasonal=False, blocked_from=None, created_at=date(2020, 1, 1), region=None,
                industry=None, size=None, name="C1", external_id="c1", attributes={}, credit_grade=None,
                credit_limit=None, payment_terms_days=None, consent=False)
    base.update(kw)
    return SimpleNamespace(**base)


def order(day, amount=100.0, margin=30.0):
    return SimpleNamespace(ordered_at=day, amount=amount, margin=margin, cost_of_goods=amount - margin)


# ---------- the definition, day by day ----------


def pick(values: list, *key) -> object:
    """One of `values`, the same for the same key in every run (str hashes are salted per process)."""
    return values[zlib.crc32("|".join(map(str, key)).encode()) % len(values)]


def day_cutoffs(keys, seed: int, day: date) -> dict:
    """Some rank cut-offs for a past day: whatever they were then, an exact date must not depend on them."""
    return {k: pick(CUTOFF_VALUES, seed, k, day) for k in keys}


def day_scores(seed: int, day: date) -> dict:
    return {"clv": pick(CLV_VALUES, seed, "clv", day)}


def value_of(result, kind: str, label: str | None):
    if kind == "tag":
        return label in result.tags
    return getattr(result, kind)


def brute_since(ruleset, records, as_of, kind, label, cutoffs_on, scores_on, memo=None) -> date:
    """The definition: the earliest d such that each day t in [d, as_of], evaluated with the data known on t,
    gives the value of as_of (at the earliest the day the customer was created). `memo` keeps the day's results
    across calls with the same cut-offs and scores."""
    memo = {} if memo is None else memo

    def value(t):
        if t not in memo:
            memo[t] = evaluate(ruleset, records.known_on(t), t, cutoffs_on(t), builtins=scores_on(t))
        return value_of(memo[t], kind, label)

    now, d = value(as_of), as_of
    while d > records.customer.created_at and value(d - ONE) == now:
        d -= ONE
    return d


def outcome(result):
    return (result.tier, result.tier_line, result.status, result.status_line, frozenset(result.tags))


def brute_next(ruleset, records, as_of, cutoffs, scores, limit: date) -> date | None:
    known = records.known_on(as_of)
    now = outcome(evaluate(ruleset, known, as_of, cutoffs, builtins=scores))
    d = as_of + ONE
    while d <= limit:
        if outcome(evaluate(ruleset, known, d, cutoffs, builtins=scores)) != now:
            return d
        d += ONE
    return None


# ---------- random histories and rules ----------


@st.composite
def with_score_rules(draw, ruleset: n.RuleSet) -> n.RuleSet:
    """Sometimes a rule reading a built-in score (clv) somewhere in the tier or tag lists."""
    if draw(st.booleans()):
        return ruleset
    cond = n.Compare(">", n.Builtin("clv"), n.Number(draw(st.sampled_from([1.0, 10.0]))))
    tier = n.Rule("tier", draw(st.sampled_from(["key", "maintain"])), cond, n.Pos(500, 1), "tier x if clv > 1")
    at = draw(st.integers(0, max(0, len(ruleset.tiers) - 1)))
    tiers = (*ruleset.tiers[:at], tier, *ruleset.tiers[at:]) if ruleset.tiers else ()
    tag = n.Rule("tag", "hot", cond, n.Pos(501, 1), "tag hot if clv > 1")
    tags = (*ruleset.tags, tag) if draw(st.booleans()) else ruleset.tags
    return replace(ruleset, tiers=tiers, tags=tags)


@st.composite
def time_rules(draw) -> n.RuleSet:
    """Rules over time windows, the way a policy is written (`no order 90d`, `count(complaint where open, 30d)
    >= 2`, `blocked`), combined with and / or / not: their values change in the middle of a history."""
    def atom():
        source = draw(st.sampled_from(["order", "order", "complaint", "delivery", "interaction"]))
        window = draw(st.sampled_from(WINDOWS + [None]))
        where = draw(st.one_of(st.none(), st.none(), record_condition(source, 0)))
        kind = draw(st.sampled_from(["no", "count", "sum", "blocked"]))
        if kind == "no":
            return n.NoRecord(source, window, where)
        if kind == "blocked":
            return n.Flag("blocked")
        if kind == "count":
            return n.Compare(">=", n.Aggregate("count", source, None, window, where),
                             n.Number(draw(st.sampled_from([1.0, 2.0, 3.0]))))
        return n.Compare(">", n.Aggregate("sum", "order", n.RecordField("order", "amount"), window),
                         n.Number(draw(st.sampled_from([0.0, 10.0, 100.0]))))

    def condition(depth=1):
        kind = draw(st.sampled_from(["atom", "atom", "and", "or", "not"] if depth else ["atom"]))
        if kind == "atom":
            return atom()
        if kind == "not":
            return n.Not(condition(depth - 1))
        return (n.And if kind == "and" else n.Or)(condition(depth - 1), condition(depth - 1))

    line = 0

    def rules(kind, labels, otherwise):
        nonlocal line
        out = []
        for _ in range(draw(st.integers(1, 4))):
            line += 1
            cond, label = condition(), draw(st.sampled_from(labels))
            out.append(n.Rule(kind, label, cond, n.Pos(line, 1), f"{kind} {label} if {node_text(cond)}"))
        if otherwise:
            line += 1
            out.append(n.Rule(kind, labels[-1], None, n.Pos(line, 1), f"{kind} {labels[-1]} otherwise"))
        return tuple(out)

    return n.RuleSet((), rules("tier", ["key", "general", "maintain"], True),
                     rules("status", ["lost", "at_risk", "active"], True), rules("tag", ["hot", "cold"], False))


@st.composite
def spread_out(draw, as_of: date) -> CustomerRecords:
    """Records anywhere in the customer's life (and a few after as_of, not yet known then)."""
    created = as_of - timedelta(days=draw(st.integers(0, 600)))
    when = st.integers(min(-30, (created - as_of).days - 60), 5).map(lambda k: as_of + timedelta(days=k))
    maybe = st.one_of(st.none(), when)
    c = customer(created_at=created, seasonal=draw(st.booleans()),
                 blocked_from=draw(st.one_of(st.none(), st.none(), when)))
    orders = [order(draw(when), draw(st.sampled_from([5.0, 50.0, 500.0]))) for _ in range(draw(st.integers(0, 10)))]
    complaints = [SimpleNamespace(opened_at=draw(when), due_at=draw(maybe), resolved_at=draw(maybe), cost=1.0,
                                  category=draw(st.sampled_from(["billing", "quality"])))
                  for _ in range(draw(st.integers(0, 3)))]
    deliveries = [SimpleNamespace(promised_at=draw(when), delivered_at=draw(maybe), cost=1.0)
                  for _ in range(draw(st.integers(0, 3)))]
    interactions = [SimpleNamespace(occurred_at=draw(when), kind=draw(st.sampled_from(["call", "win_back"])),
                                    cost=1.0) for _ in range(draw(st.integers(0, 2)))]
    return CustomerRecords(c, orders=orders, complaints=complaints, deliveries=deliveries,
                           interactions=interactions, scores=_scores(as_of, draw(st.sampled_from(CLV_VALUES))))


def _scores(as_of: date, clv) -> SimpleNamespace:
    scores = SimpleNamespace(**{k: None for k in SCORE_COLUMNS}, as_of=as_of)
    scores.clv = clv
    return scores


@st.composite
def histories(draw, as_of: date):
    """One customer's records: edge-heavy (tests/rules/test_agreement.py) or spread over its life."""
    if draw(st.booleans()):
        return draw(spread_out(as_of))
    rows = draw(customer_data(as_of))
    created = as_of - timedelta(days=draw(st.sampled_from([0, 1, 30, 89, 90, 91, 200, 365, 500])))
    c = dict(rows["customers"][0], created_at=created)
    if draw(st.booleans()):
        c["blocked_from"] = as_of - timedelta(days=draw(st.integers(-2, 400)))
    mine = {name: [SimpleNamespace(**r) for r in rows[name] if r["customer_id"] == 1]
            for name in ("orders", "complaints", "deliveries", "interactions")}
    return CustomerRecords(SimpleNamespace(**c), scores=_scores(as_of, draw(st.sampled_from(CLV_VALUES))), **mine)


def any_rules():
    return st.one_of(rule_sets(), time_rules()).flatmap(with_score_rules)


def reads_rank_or_score(ruleset) -> bool:
    exprs = [m.expr for m in ruleset.metrics] + [r.condition for r in (*ruleset.tiers, *ruleset.statuses,
                                                                       *ruleset.tags)]
    return any(type(x) in (n.Rank, n.Builtin, n.BoolMetric) for e in exprs for x in walk(e))


def reads_days_since(ruleset) -> bool:
    """The rules (through the metrics they use) read `days since`."""
    return reads(ruleset, [r.condition for r in (*ruleset.tiers, *ruleset.statuses, *ruleset.tags)]).daily


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])
@given(data=st.data())
def test_effective_since_is_the_start_of_the_run_day_by_day(data):
    last = data.draw(st.sampled_from(AS_OFS), label="as_of")
    ruleset = data.draw(any_rules(), label="rules")
    records = data.draw(histories(last), label="records")
    keys = _rank_keys(ruleset)
    cutoffs = {k: data.draw(st.sampled_from(CUTOFF_VALUES)) for k in keys}
    seed = data.draw(st.integers(0, 10**6), label="seed")
    scores = {"clv": records.scores.clv}
    created = records.customer.created_at
    # evaluated on as_of and on a few earlier days of the same history
    earlier = data.draw(st.lists(st.integers(0, (last - created).days), max_size=3), label="days before")
    held_memo: dict = {}
    for as_of in dict.fromkeys([last, *(last - timedelta(days=k) for k in earlier)]):
        moved_memo: dict = {}  # the cut-offs and scores of earlier days: as_of's own on as_of
        result = evaluate(ruleset, records.known_on(as_of), as_of, cutoffs)
        got = effective_for(ruleset, records, result, cutoffs)
        assert set(got) == {"tier", "status", *(f"tag:{t}" for t in result.tags)}
        asked = [("tier", None), ("status", None), *(("tag", t) for t in result.tags), ("tag", "hot")]
        for kind, label in asked:
            eff = got[kind if label is None else f"tag:{label}"]
            assert eff == effective_since(ruleset, records, as_of, cutoffs, kind, label)
            event(f"{kind}: " + ("not exact" if not eff.exact else "exact, with ranks or scores in the rules"
                                 if reads_rank_or_score(ruleset) else "exact"))
            event(f"{kind}: since " + ("as_of" if eff.on == as_of else "created" if eff.on == created
                                       else "a day in between"))
            if not eff.exact:
                assert eff.on == as_of and reads_rank_or_score(ruleset), (kind, label)
                continue
            # exact: the day by day definition gives it, with as_of's cut-offs and scores held for the past ...
            held = brute_since(ruleset, records, as_of, kind, label, lambda t: cutoffs, lambda t: scores, held_memo)
            assert eff.on == held, (as_of, kind, label)
            # ... and with any others on past days: an exact date does not depend on them
            moved = brute_since(ruleset, records, as_of, kind, label,
                                lambda t: cutoffs if t == as_of else day_cutoffs(keys, seed, t),
                                lambda t: scores if t == as_of else day_scores(seed, t), moved_memo)
            assert eff.on == moved, (as_of, kind, label)


def _rank_keys(ruleset) -> list[str]:
    exprs = [m.expr for m in ruleset.metrics] + [r.condition for r in (*ruleset.tiers, *ruleset.statuses,
                                                                       *ruleset.tags)]
    return [rank_key(r) for r in rank_nodes(exprs)]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])
@given(data=st.data())
def test_next_change_on_is_the_first_change_day_by_day(data):
    as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
    ruleset = data.draw(any_rules(), label="rules")
    records = data.draw(histories(as_of), label="records")
    cutoffs = {k: data.draw(st.sampled_from(CUTOFF_VALUES)) for k in _rank_keys(ruleset)}
    scores = {"clv": records.scores.clv}
    got = next_change_on(ruleset, records, as_of, cutoffs)
    # every window of the generated rules is at most a year and a half long, offsets included
    limit = as_of + timedelta(days=560)
    want = brute_next(ruleset, records, as_of, cutoffs, scores, limit)
    if not reads_days_since(ruleset):
        assert got == want
    elif got != want:
        # `days since` changes every day: a day to look again, DAYS_SINCE_HORIZON days past the last change day,
        # with no change before it
        assert got is not None and got > as_of + timedelta(days=DAYS_SINCE_HORIZON - 1)
        assert want is None or want > got


@given(window=st.sampled_from(WINDOWS + [n.Window(1, "m", n.Window(12, "m")), n.Window(2, "w", n.Window(3, "d")),
                                          n.Window(1, "y", n.Window(1, "m", n.Window(7, "d")))]),
       v=st.dates(date(2020, 1, 1), date(2030, 12, 31)))
def test_a_record_is_inside_a_window_from_enters_to_leaves(window, v):
    """The window bounds of rules/windows.py, day by day around the computed days."""
    first, gone = enters(window, v), leaves(window, v)
    assert first <= gone
    for t in [first - ONE, first, gone - ONE, gone]:
        b = bounds(window, t)
        assert b.contains(v) == (first <= t < gone), (node_text(n.NoRecord("order", window)), v, t)


# ---------- the examples ----------


@pytest.fixture(scope="module")
def rules():
    return load_rules_file(DEFAULT_RULES)


CUTOFFS = {"top:profit_12m:20%": 1e9, "top:profit_12m:50%": 1e9}


def test_lost_since_the_last_order_left_the_90_day_window(rules):
    recs = CustomerRecords(customer(), orders=[order(date(2026, 1, 5)), order(date(2026, 7, 30))])
    for as_of in (date(2026, 10, 28), date(2026, 11, 23), date(2027, 2, 1)):
        eff = effective_since(rules, recs, as_of, CUTOFFS, "status")
        assert evaluate(rules, recs, as_of, CUTOFFS).status == "lost"
        assert eff == Effective(date(2026, 7, 30) + timedelta(days=90), True) == Effective(date(2026, 10, 28), True)
    # the day before, the customer was at risk
    assert evaluate(rules, recs, date(2026, 10, 27), CUTOFFS).status == "at_risk"


def test_an_order_makes_the_customer_active_from_its_own_date_even_recorded_late(rules):
    late = order(date(2026, 11, 20))
    recs = CustomerRecords(customer(), orders=[order(date(2026, 7, 30)), late])
    # evaluated on the day, or 5 days later when the order was recorded: active since the order's date
    for as_of in (date(2026, 11, 20), date(2026, 11, 25)):
        assert effective_since(rules, recs, as_of, CUTOFFS, "status") == Effective(date(2026, 11, 20), True)
    # an order dated after as_of is not known then: still lost since last order + 90 days
    assert effective_since(rules, recs, date(2026, 11, 19), CUTOFFS, "status") == Effective(date(2026, 10, 28), True)


def test_blocked_since_blocked_from(rules):
    recs = CustomerRecords(customer(blocked_from=date(2026, 11, 2)), orders=[order(date(2026, 11, 1))])
    result = evaluate(rules, recs, date(2026, 11, 23), CUTOFFS)
    assert result.status == "lost"
    assert effective_for(rules, recs, result, CUTOFFS)["status"] == Effective(date(2026, 11, 2), True)


def test_a_value_that_never_changed_holds_since_the_customer_was_created(rules):
    recs = CustomerRecords(customer(created_at=date(2025, 3, 1)))
    assert effective_since(rules, recs, date(2026, 11, 23), CUTOFFS, "status") == Effective(date(2025, 3, 1), True)
    with pytest.raises(NotEvaluated):
        effective_since(rules, recs, date(2025, 2, 28), CUTOFFS, "status")
    # before it exists, its result changes on the day it is created
    assert next_change_on(rules, recs, date(2025, 2, 1), CUTOFFS) == date(2025, 3, 1)
    with pytest.raises(UnknownKind):
        effective_since(rules, recs, date(2026, 11, 23), CUTOFFS, "segment")


def test_daily_monthly_and_once_give_the_same_effective_dates(rules):
    """A history with gaps, evaluated every day, on the first of every month and once at the end: every change
    each schedule records carries the same effective date, the day the data first satisfied the rule."""
    days = [date(2025, 1, 10), date(2025, 2, 1), date(2025, 6, 20), date(2025, 7, 1), date(2025, 7, 9),
            date(2026, 1, 2), date(2026, 3, 15), date(2026, 9, 1)]
    recs = CustomerRecords(customer(created_at=date(2025, 1, 10)), orders=[order(d) for d in days],
                           complaints=[SimpleNamespace(opened_at=date(2026, 3, 20), resolved_at=date(2026, 4, 2),
                                                       due_at=None, cost=5.0, category=None),
                                       SimpleNamespace(opened_at=date(2026, 3, 25), resolved_at=None, due_at=None,
                                                       cost=5.0, category=None)])
    start, end = date(2025, 1, 10), date(2027, 3, 1)

    def changes(schedule):
        out, last = {}, None
        for as_of in schedule:
            status = evaluate(rules, recs, as_of, CUTOFFS).status
            if status != last:
                since = effective_since(rules, recs, as_of, CUTOFFS, "status")
                assert since.exact and since.on <= as_of
                out[since.on] = status
                last = status
        return out

    daily = changes([start + timedelta(days=i) for i in range((end - start).days + 1)])
    monthly = changes([date(y, m, 1) for y in (2025, 2026, 2027) for m in range(1, 13)
                       if start <= date(y, m, 1) <= end])
    once = changes([end])
    assert len(daily) > len(monthly) > len(once) == 1
    assert monthly.items() <= daily.items() and once.items() <= daily.items()
    # the losses are dated last order + 90 days, whatever the schedule
    losses = {on for on, status in daily.items() if status == "lost"}
    # (the orders of 2025-02-01, 2025-07-09, 2026-03-15 and 2026-09-01 are each followed by a gap of over 90 days)
    assert losses == {date(2025, 5, 2), date(2025, 10, 7), date(2026, 6, 13), date(2026, 11, 30)}
    assert {on for on, s in monthly.items() if s == "lost"} == losses


def test_a_rank_makes_the_date_inexact_unless_no_rank_could_give_the_value(rules):
    recs = CustomerRecords(customer(), orders=[order(date(2026, 11, 1), 20000.0, 8000.0)])
    as_of = date(2026, 11, 23)
    cutoffs = {"top:profit_12m:20%": 5000.0, "top:profit_12m:50%": 100.0}
    result = evaluate(rules, recs, as_of, cutoffs)
    assert result.tier == "key"
    # the tier reads ranks whose past cut-offs are unknown: the evaluation date, not exact
    assert effective_for(rules, recs, result, cutoffs)["tier"] == Effective(as_of, False)
    # a tier decided before any rank, whose day before no rank could have given: exact
    ranked = compile_rules("tier buyer if count(order) >= 1\ntier key if sum(order.amount, 12m) in top 20%\n"
                           "tier other otherwise\nstatus any otherwise\n")
    cut = {"top:sum(order.amount, 12m):20%": 10.0}
    assert effective_since(ranked, recs, as_of, cut, "tier") == Effective(date(2026, 11, 1), True)
    # ... but if a rank could have given it on the day before, it is not exact
    ranked_same = compile_rules("tier buyer if count(order) >= 1\ntier buyer if sum(order.amount, 12m) in top 20%\n"
                                "tier other otherwise\nstatus any otherwise\n")
    assert effective_since(ranked_same, recs, as_of, cut, "tier") == Effective(as_of, False)
    # a built-in score is a rank's like: its past values are unknown
    scored = compile_rules("tier rich if clv > 10\ntier other otherwise\n")
    recs.scores = SimpleNamespace(**{k: None for k in SCORE_COLUMNS}, as_of=as_of)
    recs.scores.clv = 50.0
    assert effective_since(scored, recs, as_of, {}, "tier") == Effective(as_of, False)


def test_next_change_on_the_default_rules(rules):
    recs = CustomerRecords(customer(seasonal=True), orders=[order(date(2026, 1, 5)), order(date(2026, 9, 20))])
    as_of = date(2026, 11, 23)
    # the first order leaves the 12-month window on 2027-01-05: tier general -> maintain
    assert next_change_on(rules, recs, as_of, CUTOFFS) == date(2027, 1, 5)
    # seasonal, so not lost after 90 days: at risk until the last order leaves the 400-day window
    assert next_change_on(rules, recs, date(2027, 1, 5), CUTOFFS) == date(2027, 10, 25)
    assert next_change_on(rules, recs, date(2027, 10, 25), CUTOFFS) is None
    # not seasonal: lost when the last order leaves the 90-day window, 2026-09-20 + 90 days
    recs.customer.seasonal = False
    assert next_change_on(rules, recs, as_of, CUTOFFS) == date(2026, 12, 19)
    # a blocked customer: lost from blocked_from on
    blocked = CustomerRecords(customer(blocked_from=date(2026, 12, 1)), orders=[order(date(2026, 11, 20))])
    assert next_change_on(rules, blocked, as_of, CUTOFFS) == date(2026, 12, 1)


def test_next_change_on_reads_nothing_after_as_of(rules):
    recs = CustomerRecords(customer(), orders=[order(date(2026, 9, 20)), order(date(2026, 12, 5))])
    assert next_change_on(rules, recs, date(2026, 11, 23), CUTOFFS) == date(2026, 12, 19)


def test_record_flags_date_the_change_the_day_they_turn():
    """Overdue and late turn the day after the due / promised date, open ends on the resolution date, on time
    starts when the delivery is known (its promised date): the same as the day-by-day definition."""
    ruleset = compile_rules("\n".join([
        "status overdue if count(complaint where overdue) >= 1",
        "status late if count(delivery where late) >= 1",
        "status open if count(complaint where open) >= 1",
        "status on_time if count(delivery where on_time) >= 1",
        "status calm otherwise",
    ]))
    as_of = date(2026, 11, 23)

    def complaint(opened, due=None, resolved=None):
        return SimpleNamespace(opened_at=opened, due_at=due, resolved_at=resolved, cost=0.0, category=None)

    def delivery(promised, delivered=None):
        return SimpleNamespace(promised_at=promised, delivered_at=delivered, cost=None)

    cases = [
        # due on 11-10, resolved late on 11-15: overdue from 11-11 on, and it stays in the record
        (dict(complaints=[complaint(date(2026, 11, 1), due=date(2026, 11, 10), resolved=date(2026, 11, 15))]),
         "overdue", date(2026, 11, 11)),
        # promised 11-10, delivered 11-14: late from 11-11
        (dict(deliveries=[delivery(date(2026, 11, 10), date(2026, 11, 14))]), "late", date(2026, 11, 11)),
        # resolved on 11-20: no longer open from that day
        (dict(complaints=[complaint(date(2026, 11, 1), resolved=date(2026, 11, 20))]), "calm", date(2026, 11, 20)),
        # delivered early (11-08) for 11-10: on time from the promised date, when the delivery is a record
        (dict(deliveries=[delivery(date(2026, 11, 10), date(2026, 11, 8))]), "on_time", date(2026, 11, 10)),
    ]
    for recs, status, since in cases:
        records = CustomerRecords(customer(), **recs)
        assert evaluate(ruleset, records, as_of).status == status
        assert effective_since(ruleset, records, as_of, {}, "status") == Effective(since, True), status
        assert brute_since(ruleset, records, as_of, "status", None, lambda t: {}, lambda t: {}) == since


def test_effective_for_computes_what_is_read_and_dates_removed_tags_too():
    ruleset = compile_rules("tag regular if count(order, 90d) >= 2\ntag big if sum(order.amount, 30d) > 500\n")
    records = CustomerRecords(customer(), orders=[order(date(2026, 8, 1)), order(date(2026, 9, 1), 600.0),
                                                   order(date(2026, 11, 1))])
    as_of = date(2026, 11, 23)
    got = effective_for(ruleset, records, evaluate(ruleset, records, as_of), {})
    assert list(got) == ["tier", "status", "tag:regular"]
    # the 2026-09-01 order left the 30-day window on 2026-10-01: `big` removed then
    assert got["tag:big"] == Effective(date(2026, 10, 1), True)
    # regular from 2026-09-01, until the 2026-08-01 order left the 90-day window on 2026-10-30; again on 11-01
    assert got.get("tag:regular") == Effective(date(2026, 11, 1), True)
    assert got.get("segment") is None
    assert dict(got) == {"tier": Effective(date(2020, 1, 1), True), "status": Effective(date(2020, 1, 1), True),
                         "tag:regular": Effective(date(2026, 11, 1), True)}
