"""The documented limits (rules/limits.py, docs/rules.md "Limits"): a text just past one is refused with its code at
the right line and column; a text at the limit runs on both back ends on SQLite and PostgreSQL, and they agree.

Regression for issue 7, defect 8: each refused text below was accepted before and then failed in evaluation
(parser stack overflow, RecursionError, "year -2 is out of range", float overflow, too many columns, a NUL).
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.evaluation import run_batch
from domain.records import load_all_records
from rules import limits
from rules import to_sql
from rules.compiler import compile_condition, compile_rules
from rules.errors import RuleErrors
from rules.to_python import evaluate
from rules.to_sql import without_jit
from rules.windows import bounds
from tests.rules.test_agreement import load, same_number

AS_OF = date(2026, 3, 31)


def refused(text: str):
    """The one error (or the first) the checker gives for `text`."""
    with pytest.raises(RuleErrors) as info:
        compile_rules(text)
    assert "E999" not in info.value.codes
    return info.value.errors[0]


def nest(depth: int, wrap, core: str) -> str:
    for _ in range(depth):
        core = wrap(core)
    return core


# ---------------- just past each limit: refused, with a code, at the right place ----------------


def test_nested_minus_signs_are_refused_where_the_limit_is_crossed():
    e = refused("metric m = count(order)\n\ntag t if " + "-" * 30 + "count(order) < 0")
    assert (e.code, e.line, e.column) == ("E111", 3, 10 + limits.MAX_NESTING)
    assert "nested more than 16 levels" in e.message and e.snippet.endswith("^")


@pytest.mark.parametrize("depth", [200, 5_000])
def test_very_deep_texts_are_refused_without_recursion_errors(depth):
    e = refused("tag a if count(order) > 1\ntag t if " + nest(depth, lambda s: f"1 - ({s})", "count(order)") + " < 0")
    assert (e.code, e.line) == ("E111", 2)
    e = refused("tag t if count(order, " + "1d before " * depth + "1d) > 0")
    assert e.code in ("E111", "E305") and e.line == 1


def test_operators_per_statement():
    at_limit = "tag t if count(order) " + "+ 1 " * (limits.MAX_OPERATORS - 2) + "> 0"
    compile_rules(at_limit)
    e = refused("tag x if blocked\n" + at_limit.replace("> 0", "+ 1 > 0"))
    assert (e.code, e.line, e.column) == ("E111", 2, 10)


def test_a_long_metric_chain_is_refused_at_the_metric_past_the_limit():
    n = limits.MAX_METRIC_CHAIN + 1
    text = "metric m1 = count(order)\n" + "".join(f"metric m{k} = m{k - 1} + 1\n" for k in range(2, n + 1))
    e = refused(text + f"tag t if m{n} > 1")
    assert (e.code, e.line, e.column) == ("E210", n, 8)


@pytest.mark.parametrize("window, column", [
    ("100y before 100y before 1d", 40),  # the whole window reaches 200 years back (the fuzzer's "year -2")
    ("1d before 1d before 1d before 1d before 1d", 28),  # four `before`
])
def test_windows_past_the_limits(window, column):
    e = refused(f"tag t if sum(order.amount, {window}) > 0")
    assert (e.code, e.line, e.column) == ("E305", 1, column)


def test_numbers_too_large_and_formulas_that_could_overflow():
    e = refused("tag t if count(order) * 10000000000000000 > 0")
    assert (e.code, e.column) == ("E307", 25)
    assert "at most 1,000,000,000,000,000" in e.message
    big = " * 1000000000000000" * 20
    e = refused(f"tier a if blocked\ntier b otherwise\nmetric m = count(order){big}\ntag t if m > 0")
    assert (e.code, e.line, e.column) == ("E309", 3, 1)
    e = refused("tag t if count(order where amount" + big + " > 1) > 0")  # inside a `where` too
    assert (e.code, e.line) == ("E309", 1)
    e = refused("metric a = count(order)" + " * 1000000000000000" * 10 + "\nmetric b = a * a\ntag t if b > 0")
    assert (e.code, e.line) == ("E309", 2)  # through a metric
    e = refused("no order for 10000000000000000x usual gap")
    assert e.code in ("E307", "E108")


def test_a_list_past_the_limit_is_refused_at_its_first_extra_value():
    values = ", ".join(f'"r{i:04}"' for i in range(limits.MAX_LIST_VALUES + 1))
    e = refused(f"tag t if region in ({values})")
    assert (e.code, e.line) == ("E308", 1)
    assert e.column == len("tag t if region in (") + 1 + len('"r0000", ') * limits.MAX_LIST_VALUES


@pytest.mark.parametrize("kind, code, limit", [
    ("tier", "E404", limits.MAX_RULES["tier"]), ("status", "E404", limits.MAX_RULES["status"]),
    ("tag", "E404", limits.MAX_RULES["tag"]),
])
def test_rules_per_list(kind, code, limit):
    rules = "".join(f"{kind} r{i} if count(order) > {i}\n" for i in range(limit + 1))
    e = refused("metric m = count(order)\n" + rules + (f"{kind} z otherwise\n" if kind != "tag" else ""))
    assert (e.code, e.line, e.column) == (code, limit + 2, 1)


def test_metrics_rankings_and_aggregates():
    e = refused("".join(f"metric m{i} = count(order) + {i}\n" for i in range(limits.MAX_METRICS + 1)))
    assert (e.code, e.line) == ("E405", limits.MAX_METRICS + 1)
    ranks = "".join(f"tag t{i} if count(order) in top {i + 1}\n" for i in range(limits.MAX_RANKINGS + 1))
    e = refused(ranks)
    assert (e.code, e.line, e.column) == ("E406", limits.MAX_RANKINGS + 1, len("tag t100 if ") + 1)
    aggs = "".join(f"tag t{i} if count(order, {i + 1}d) > 0\n" for i in range(limits.MAX_AGGREGATES + 1))
    with pytest.raises(RuleErrors) as info:
        compile_rules(aggs)
    assert info.value.codes == ["E406"]  # said once, where the limit is crossed
    assert info.value.errors[0].line == limits.MAX_AGGREGATES + 1


@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\x1b", "\x7f", "\x85"])
@pytest.mark.parametrize("where", ["string", "comment", "name"])
def test_control_characters_and_lone_surrogates(bad, where):
    line = {"string": f'tag t if region = "ea{bad}st"', "comment": f"tag t if blocked  # a{bad}",
            "name": f"tag t{bad} if blocked"}[where]
    e = refused("tag ok if seasonal\n" + line)
    assert (e.code, e.line, e.column) == ("E112", 2, line.index(bad) + 1)
    assert f"U+{ord(bad):04X}" in e.message
    assert bad not in e.snippet and bad not in str(e)  # the message itself can be printed and stored
    with pytest.raises(RuleErrors) as info:
        compile_condition(f'region = "{bad}"')
    assert info.value.codes == ["E112"]


def test_the_whole_file_has_a_size_limit():
    rule = "tag t{} if count(order) > 1 and count(order) < 2\n"  # 12 terms
    n = limits.MAX_TERMS // 12 + 1
    e = refused("".join(rule.format(i % 400) for i in range(n)))
    assert e.code == "E407"


def test_conditions_have_the_same_limits():
    with pytest.raises(RuleErrors) as info:
        compile_condition("-" * 40 + "count(order) < 0")
    assert info.value.codes == ["E111"]
    ruleset = compile_rules("metric big = count(order)" + " * 1000000000000000" * 18)
    compile_condition("big > 1", ruleset)
    with pytest.raises(RuleErrors) as info:
        compile_condition("big * big > 1", ruleset)
    assert info.value.codes == ["E309"]


def test_window_bounds_never_fail_for_an_accepted_window():
    window = compile_rules("tag t if sum(order.amount, 50y before 49y before 364d) > 0").tags[0].condition.left.window
    for as_of in (date.min, date(50, 6, 30), date(101, 2, 28), date.max):
        b = bounds(window, as_of)
        assert date.min <= b.start <= b.end <= as_of


# ---------------- at the limits: both back ends run on both databases and agree ----------------


def small_base(as_of: date) -> dict:
    days = [0, 1, 30, 89, 90, 400, 3000]
    created = min(as_of, date(2000, 1, 1))
    customers = [dict(id=i, external_id=f"c{i}", name=f"C{i}", region=["east", "west", None, "r0999"][i % 4],
                      industry=None, size=None, seasonal=i == 2, blocked_from=None, created_at=created,
                      attributes={"score": [3, "2.5", "x", None][i % 4]}) for i in range(1, 6)]
    orders = [dict(id=k, external_id=f"o{k}", customer_id=1 + k % 4, ordered_at=as_of - timedelta(days=d),
                   amount=float(10 * k + 1), cost_of_goods=1.0, margin=float(k) - 3, line_count=1)
              for k, d in enumerate(days * 2, start=1) if d <= (as_of - date.min).days]
    complaints = [dict(id=1, external_id="k1", customer_id=1, opened_at=as_of, due_at=as_of, resolved_at=None,
                       category="billing", cost=5.0)]
    return dict(customers=customers, orders=orders, complaints=complaints, deliveries=[], interactions=[])


def assert_back_ends_agree(engine, text: str, as_of: date = AS_OF) -> None:
    """Checked, compiled and run in the database, then each customer in Python: the same results."""
    ruleset = compile_rules(text)
    data = small_base(as_of)
    load(engine, data)
    compiled = to_sql.compile_ruleset(ruleset, as_of)
    with engine.connect() as conn:
        rows = conn.execute(compiled.query).fetchall()
    cutoffs = compiled.cutoffs(rows)
    records = load_all_records(engine)
    assert len(rows) == len(data["customers"])
    for row in rows:
        sql = compiled.decode(row)
        py = evaluate(ruleset, records[sql["customer_id"]], as_of, cutoffs)
        assert (sql["tier"], sql["tier_line"], sql["status"], sql["status_line"]) == \
            (py.tier, py.tier_line, py.status, py.status_line)
        assert sql["tags"] == py.tags
        for name, value in py.metrics.items():
            assert same_number(sql["metrics"][name], value), name


NESTED_AT_LIMIT = {
    "minus signs": "tag t if " + "-" * 15 + "count(order) < 0",
    "right-nested subtraction": "tag t if " + nest(7, lambda s: f"1 - ({s})", "count(order)") + " < 0",
    "right-nested division": "tag t if " + nest(7, lambda s: f"1 / ({s})", "count(order)") + " < 0",
    "left-nested division": "tag t if " + nest(15, lambda s: f"{s} / 2", "count(order)") + " < 0",
    "left-nested subtraction": "tag t if " + nest(15, lambda s: f"{s} - 2", "count(order)") + " < 0",
    "a long sum": "tag t if " + nest(98, lambda s: f"{s} + 2", "count(order)") + " < 0",
    "a long product": "tag t if " + nest(98, lambda s: f"{s} * 1", "count(order)") + " > 0",
    "shares of shares": "tag t if " + nest(15, lambda s: f"50% of {s}", "count(order)") + " > 0",
    "parentheses": "tag t if " + nest(15, lambda s: f"({s})", "count(order)") + " > 0",
    "not": "tag t if " + nest(15, lambda s: f"not {s}", "count(order) > 1"),
    "and in parentheses": "tag t if " + nest(7, lambda s: f"count(order) > 1 and ({s})", "count(order) > 1"),
    "a long or": "tag t if " + nest(32, lambda s: f"{s} or count(order) > 1", "count(order) > 1"),
    "where": "tag t if count(order where " + nest(7, lambda s: f"amount > 1 and ({s})", "amount > 1") + ") > 0",
    "tier division": "tier a if " + nest(7, lambda s: f"1 / ({s})", "count(order)") + " < 0\ntier b otherwise",
    "ranked division": "tier a if " + nest(7, lambda s: f"1 / ({s})", "count(order) + 1") + " in top 50%\n"
                       "tier b otherwise",
    "metric division": "metric m = " + nest(8, lambda s: f"1 / ({s})", "count(order)") + "\ntag t if m < 0",
    "days since": "tag t if " + nest(7, lambda s: f"1 - ({s})", "days since last order") + " < 0",
}


@pytest.mark.parametrize("name", sorted(NESTED_AT_LIMIT))
def test_nesting_at_the_limit_runs(engine, name):
    assert_back_ends_agree(engine, NESTED_AT_LIMIT[name])


def test_other_limits_at_their_value_run(engine):
    values = ", ".join(f'"r{i:04}"' for i in range(limits.MAX_LIST_VALUES))
    numbers = ", ".join(str(i) for i in range(limits.MAX_LIST_VALUES))
    chain = "metric m1 = count(order, 12m)\n" + "".join(
        f"metric m{k} = m{k - 1} + m{k - 1} - m{k - 1}\n" for k in range(2, limits.MAX_METRIC_CHAIN + 1))
    big = " * 1000000000000000" * 11  # about 1e190 at most: within the bound, no overflow on either database
    assert_back_ends_agree(engine, "\n".join([
        f"tag listed if region in ({values})",
        f"tag scored if attributes.score in ({numbers})",
        chain + f"tag chained if m{limits.MAX_METRIC_CHAIN} > 1",
        "tag windowed if sum(order.amount, 25y before 25y before 25y before 24y) >= 0",
        f"metric huge = count(order){big}",
        "tag huge if huge / 1000000000000000 > 1",
    ]))


@pytest.mark.parametrize("as_of", [date(1, 1, 1), date(60, 2, 29), date(9999, 12, 31)])
def test_the_calendar_edges_with_the_longest_window(engine, as_of):
    assert_back_ends_agree(engine, "metric r = sum(order.amount, 100y)\n"
                                   "metric s = count(order, 3m before 3y before 50y before 46y)\n"
                                   "tag t if no order 99y before 1y", as_of)


def test_the_widest_rule_set_runs(engine):
    """Every column limit at once: 300 metrics, 300 aggregates, 100 rankings and 500 tag rules."""
    lines = [f"metric m{i} = sum(order.amount, {i + 1}d) - {i}" for i in range(limits.MAX_METRICS)]
    lines += [f"tag r{i} if m{i} in top {i + 1}%" for i in range(limits.MAX_RANKINGS)]
    lines += [f"tag t{i} if m{i % limits.MAX_METRICS} > {i}"
              for i in range(limits.MAX_RULES["tag"] - limits.MAX_RANKINGS)]
    assert_back_ends_agree(engine, "\n".join(lines))


def test_the_longest_rule_lists_run_through_run_batch(engine):
    n = limits.MAX_RULES["tier"]
    text = "metric r = count(order, 12m)\n" + "".join(f"tier t{i} if r > {n - i}\n" for i in range(n - 1))
    text += "tier z otherwise\n" + "".join(f"status s{i} if r < {i - 1}\n" for i in range(n - 1))
    text += "status z otherwise\n"
    assert_back_ends_agree(engine, text)
    run = run_batch(engine, compile_rules(text), AS_OF)
    assert run.customer_count == 5


def test_rule_queries_run_without_postgresql_jit(engine):
    """JIT-compiling thousands of rule conditions takes PostgreSQL seconds (bench/bench_rule_count.py)."""
    with engine.connect() as conn:
        without_jit(conn)
        if conn.dialect.name == "postgresql":
            assert conn.execute(sa.text("SHOW jit")).scalar() == "off"
