"""Property: whatever the checker accepts near its limits, both back ends run on SQLite and PostgreSQL and agree.

Texts are generated at and around each limit (rules.limits): nesting of every kind of construct just under and
just over MAX_NESTING, long `in` lists, long metric chains, windows with offsets near 100 years, numbers and
products near the overflow bound, long rule lists, and now and then a control character. The checker either
refuses the text with positioned errors (never E999) or the text runs through rules.to_sql and rules.to_python
on a small base and every customer gets the same result. TIERGRAPH_HYPOTHESIS_EXAMPLES raises the number of
examples (default 20 per database here: the texts are large).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rules import limits
from rules.compiler import compile_rules
from rules.errors import RuleErrors
from tests.rules.test_limits import assert_back_ends_agree

EXAMPLES = max(4, int(os.environ.get("TIERGRAPH_HYPOTHESIS_EXAMPLES", "60")) // 3)
NEAR = st.sampled_from([0, -1, 0, -3, 1])  # how far from a limit: mostly at or just under it, sometimes past it

# one level of nesting around a number formula (each adds one or two levels, as counted by the checker)
NUMBER_WRAPPERS = [
    lambda s: f"-{s}", lambda s: f"({s})", lambda s: f"1 - ({s})", lambda s: f"2 / ({s})", lambda s: f"{s} / 2",
    lambda s: f"{s} - 1", lambda s: f"50% of {s}", lambda s: f"({s}) * 3", lambda s: f"{s} + 1",
]
CONDITION_WRAPPERS = [
    lambda s: f"not {s}", lambda s: f"({s})", lambda s: f"count(order) > 1 and ({s})", lambda s: f"blocked or ({s})",
    lambda s: f"{s} unless seasonal",
]
NUMBER_CORES = ["count(order)", "sum(order.amount, 12m)", "days since last order", "avg(order.margin)", "3"]


@st.composite
def nested_statement(draw, i: int) -> str:
    depth = limits.MAX_NESTING + draw(NEAR)
    formula = draw(st.sampled_from(NUMBER_CORES))
    levels = draw(st.integers(0, depth))
    for _ in range(levels):
        formula = draw(st.sampled_from(NUMBER_WRAPPERS))(formula)
    condition = f"{formula} {draw(st.sampled_from(['<', '>=', '!=']))} 1"
    for _ in range(depth - levels):
        condition = draw(st.sampled_from(CONDITION_WRAPPERS))(condition)
    if draw(st.booleans()):
        inner = "amount > 1"
        for _ in range(draw(st.integers(0, limits.MAX_NESTING))):
            inner = draw(st.sampled_from([lambda s: f"not ({s})", lambda s: f"margin < 5 and ({s})"]))(inner)
        condition = f"count(order where {inner}, 90d) >= 1 or ({condition})"
    return f"tag n{i} if {condition}"


@st.composite
def list_statement(draw, i: int) -> str:
    size = limits.MAX_LIST_VALUES + draw(NEAR)
    if draw(st.booleans()):
        values = ", ".join(f'"r{k:04}"' for k in range(size))
        return f"tag l{i} if region {draw(st.sampled_from(['in', 'not in']))} ({values})"
    values = ", ".join(str(k) for k in range(size))
    return f"tag l{i} if attributes.score in ({values})"


@st.composite
def chain_statements(draw, i: int) -> str:
    n = limits.MAX_METRIC_CHAIN + draw(NEAR)
    ops = draw(st.lists(st.sampled_from(["+", "-", "/", "+", "-", "*"]), min_size=n, max_size=n))
    lines = [f"metric c{i}_1 = count(order, 12m) + 1"]
    lines += [f"metric c{i}_{k} = c{i}_{k - 1} {ops[k - 1]} c{i}_{k - 1}" for k in range(2, n + 1)]
    return "\n".join(lines + [f"tag c{i} if c{i}_{n} >= 1"])


@st.composite
def window_statement(draw, i: int) -> str:
    parts = []
    for _ in range(draw(st.integers(1, limits.MAX_WINDOW_OFFSETS + 2))):
        unit = draw(st.sampled_from("dwmy"))
        most = {"d": 36600, "w": 5228, "m": 1180, "y": 100}[unit]
        parts.append(f"{draw(st.integers(1, most))}{unit}")
    window = " before ".join(parts)
    return draw(st.sampled_from([f"tag w{i} if sum(order.amount, {window}) >= 0",
                                 f"tag w{i} if no order {window}",
                                 f"tag w{i} if count(complaint where open, {window}) > 0"]))


@st.composite
def number_statement(draw, i: int) -> str:
    exponent = draw(st.sampled_from([15, 13, 14, 15, 16]))
    factors = draw(st.integers(1, 20))
    product = " * ".join([f"1{'0' * exponent}"] * factors)
    divisor = draw(st.sampled_from(["3", "count(order)"]))
    return f"metric big{i} = count(order) * {product}\ntag b{i} if big{i} / {divisor} > 1"


@st.composite
def many_rules(draw, i: int) -> str:
    kind = draw(st.sampled_from(["tag", "tier", "status"]))
    size = limits.MAX_RULES[kind] + draw(NEAR) if draw(st.integers(0, 3)) == 3 else draw(st.integers(1, 60))
    lines = [f"{kind} {kind[:2]}{i}_{k} if count(order, 12m) > {k % 7}" for k in range(size)]
    if kind != "tag":
        lines.append(f"{kind} {kind}_rest{i} otherwise")
    return "\n".join(lines)


@st.composite
def rule_texts(draw) -> str:
    makers = [nested_statement, list_statement, chain_statements, window_statement, number_statement]
    statements = [draw(st.sampled_from(makers))(i) for i in range(draw(st.integers(1, 3)))]
    text = "\n".join(draw(s) for s in statements)
    if draw(st.integers(0, 2)) == 0:
        text += "\n" + draw(many_rules(9))
    if draw(st.integers(0, 9)) == 9:  # a character no database or screen should get
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["\x00", "\ud83d", "\x1b", "\x9b"])) + text[at:]
    return text


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(text=rule_texts())
def test_accepted_texts_near_the_limits_run_on_both_back_ends(engine, text):
    try:
        compile_rules(text)
    except RuleErrors as exc:
        event("refused: " + ", ".join(sorted(set(exc.codes))))
        assert exc.errors and "E999" not in exc.codes
        lines = text.split("\n")
        for e in exc.errors:
            assert 1 <= e.line <= len(lines) and e.column >= 1 and e.snippet, e
            assert e.code.startswith("E")
        return
    event("accepted")
    assert_back_ends_agree(engine, text)
