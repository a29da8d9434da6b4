"""The shipped rule files and the grammar's precedence produce exactly the intended checked tree."""
from pathlib import Path

import pytest

from rules import nodes as n
from rules.change_days import reads
from rules.compiler import compile_condition, compile_rules, load_rules_file
from rules.parser import parse

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


def w(amount, unit, offset=None):
    return n.Window(amount, unit, offset)


def agg(func, source, field=None, window=None, where=None):
    return n.Aggregate(func, source, n.RecordField(source, field) if field else None, window, where)


@pytest.fixture(scope="module")
def default():
    return load_rules_file(RULES_DIR / "default.rules")


def test_default_metrics_in_dependency_order(default):
    assert [m.name for m in default.metrics] == ["revenue_12m", "margin_12m", "service_cost", "profit_12m",
                                                  "growth_90d", "nps_12m", "paid_late_12m", "pipeline"]
    assert default.metric("revenue_12m").expr == agg("sum", "order", "amount", w(12, "m"))
    assert default.metric("service_cost").expr == n.Arith(
        "+", agg("sum", "interaction", "cost", w(12, "m")), agg("sum", "complaint", "cost", w(12, "m")))
    assert default.metric("profit_12m").expr == n.Arith("-", n.MetricRef("margin_12m"), n.MetricRef("service_cost"))
    assert default.metric("profit_12m").pos == n.Pos(5, 1)


def test_growth_uses_an_offset_window(default):
    assert default.metric("growth_90d").expr == n.Arith(
        "-",
        n.Arith("/", agg("sum", "order", "amount", w(90, "d")),
                agg("sum", "order", "amount", w(90, "d", w(90, "d")))),
        n.Number(1.0),
    )


def test_default_tiers(default):
    assert [(r.label, r.pos.line) for r in default.tiers] == [
        ("key", 9), ("important", 10), ("general", 11), ("maintain", 12)]
    profit = n.MetricRef("profit_12m")
    assert default.tiers[0].condition == n.Rank(profit, "top", 20.0, True)
    assert default.tiers[1].condition == n.Rank(profit, "top", 50.0, True)
    assert default.tiers[2].condition == n.Compare(">=", agg("count", "order", window=w(12, "m")), n.Number(2.0))
    assert default.tiers[3].condition is None
    assert default.tiers[0].text == "tier key        if profit_12m in top 20%"


def test_default_statuses_desugar_unless(default):
    s = default.statuses
    assert [r.label for r in s] == ["prospect", "lost", "lost", "lost", "at_risk", "active"]
    assert s[0].condition == n.Compare("=", agg("count", "order"), n.Number(0.0))
    assert s[1].condition == n.Flag("blocked")
    assert s[2].condition == n.And(n.NoRecord("order", w(90, "d")), n.Not(n.Flag("seasonal")))
    assert s[3].condition == n.NoRecord("order", w(400, "d"))
    assert s[4].condition == n.Or(
        n.NoRecord("order", w(45, "d")),
        n.Compare(">=", agg("count", "complaint", window=w(30, "d"), where=n.RecordFlag("complaint", "open")),
                  n.Number(2.0)))
    assert s[5].condition is None


def test_default_tags_desugar_percents(default):
    hot, negative, over, *_ = default.tags
    assert hot.condition == n.And(n.Compare(">", n.MetricRef("growth_90d"), n.Number(0.3)),
                                  n.Compare(">", n.MetricRef("revenue_12m"), n.Number(10000.0)))
    assert negative.condition == n.Compare("<", n.MetricRef("profit_12m"), n.Number(0.0))
    assert over.condition == n.Compare(">", n.MetricRef("service_cost"),
                                       n.Arith("*", n.Number(0.5), n.MetricRef("margin_12m")))
    assert default.warnings == ()
    assert default.source.startswith("# named metrics")


def test_default_tags_read_satisfaction_payments_and_the_pipeline(default):
    assert [r.label for r in default.tags][3:] == ["unhappy_key", "slow_payer", "big_pipeline"]
    unhappy, slow, pipeline = default.tags[3:]
    # the same key customers as the key tier, with a detractor answer lately
    assert unhappy.condition == n.And(
        default.tiers[0].condition,
        n.Compare(">=", agg("count", "survey", window=w(90, "d"), where=n.RecordFlag("survey", "detractor")),
                  n.Number(1.0)))
    assert slow.condition == n.Or(
        n.Compare(">=", agg("count", "invoice", where=n.RecordFlag("invoice", "overdue")), n.Number(2.0)),
        n.Compare(">", n.MetricRef("paid_late_12m"), n.Number(0.5)))
    assert default.metric("paid_late_12m").expr == n.Arith(
        "/", agg("count", "invoice", window=w(12, "m"), where=n.RecordFlag("invoice", "paid_late")),
        agg("count", "invoice", window=w(12, "m"), where=n.RecordFlag("invoice", "paid")))
    assert pipeline.condition == n.Compare(">", n.MetricRef("pipeline"), n.Number(20000.0))
    assert default.metric("pipeline").expr == agg("sum", "opportunity", "weighted_amount",
                                                  where=n.RecordFlag("opportunity", "open"))
    assert default.metric("nps_12m").expr == agg("avg", "survey", "score", w(12, "m"),
                                                 n.Compare("=", n.RecordField("survey", "kind"), n.String("nps")))
    # none of them reads a value that changes every day (invoice days_late, days until anniversary), so a customer
    # whose data stops changing still reaches a result that never changes by itself (rules/effective.py)
    assert not reads(default, [r.condition for r in (*default.tiers, *default.statuses, *default.tags)]).daily


def test_abcd_policy():
    rs = load_rules_file(RULES_DIR / "abcd.rules")
    assert [r.label for r in rs.tiers] == ["A", "B", "C", "D"]
    assert [r.condition.amount for r in rs.tiers[:3]] == [20.0, 50.0, 80.0]
    assert all(r.condition.direction == "top" and r.condition.percent for r in rs.tiers[:3])
    assert rs.tiers[3].condition is None
    default = load_rules_file(RULES_DIR / "default.rules")
    assert [(r.label, r.condition) for r in rs.statuses] == [(r.label, r.condition) for r in default.statuses]
    assert rs.warnings == ()


def cond(text, rs=None):
    return compile_condition(text, rs)


A, B, C = n.Flag("blocked"), n.Flag("seasonal"), n.BoolMetric("seasonal_auto")


@pytest.mark.parametrize("text, expected", [
    ("blocked or seasonal and seasonal_auto", n.Or(A, n.And(B, C))),
    ("blocked and seasonal or seasonal_auto", n.Or(n.And(A, B), C)),
    ("blocked or seasonal unless seasonal_auto", n.And(n.Or(A, B), n.Not(C))),
    ("(blocked or seasonal) and seasonal_auto", n.And(n.Or(A, B), C)),
    ("not blocked and seasonal", n.And(n.Not(A), B)),
    ("not (blocked and seasonal)", n.Not(n.And(A, B))),
    ("blocked unless seasonal unless seasonal_auto", n.And(n.And(A, n.Not(B)), n.Not(C))),
])
def test_boolean_precedence(text, expected):
    assert cond(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("1 + 2 * 3 > 0", n.Arith("+", n.Number(1.0), n.Arith("*", n.Number(2.0), n.Number(3.0)))),
    ("(1 + 2) * 3 > 0", n.Arith("*", n.Arith("+", n.Number(1.0), n.Number(2.0)), n.Number(3.0))),
    ("8 - 4 - 2 > 0", n.Arith("-", n.Arith("-", n.Number(8.0), n.Number(4.0)), n.Number(2.0))),
    ("-2 * 3 > 0", n.Arith("*", n.Negate(n.Number(2.0)), n.Number(3.0))),
    ("1.5 / 2% > 0", n.Arith("/", n.Number(1.5), n.Number(0.02))),
    ("10% of clv + 1 > 0", n.Arith("+", n.Arith("*", n.Number(0.1), n.Builtin("clv")), n.Number(1.0))),
])
def test_arithmetic_precedence(text, expected):
    assert cond(text) == n.Compare(">", expected, n.Number(0.0))


def test_customer_fields_attributes_and_lists():
    assert cond('region = "east"') == n.Compare("=", n.CustomerField("region"), n.String("east"))
    assert cond("industry in ('retail', \"hvac\")") == n.InList(n.CustomerField("industry"),
                                                                 (n.String("retail"), n.String("hvac")))
    assert cond('industry not in ("retail")') == n.Not(n.InList(n.CustomerField("industry"), (n.String("retail"),)))
    assert cond('attributes.segment = "b2b"') == cond('attr.segment = "b2b"') == n.Compare(
        "=", n.CustomerField("segment", attribute=True), n.String("b2b"))
    assert cond("attr.employees >= 50") == n.Compare(">=", n.CustomerField("employees", True), n.Number(50.0))


def test_record_measures():
    late = agg("count", "delivery", window=w(90, "d"), where=n.RecordFlag("delivery", "late"))
    assert cond("count(delivery where late, 90d) / count(delivery, 90d) > 20%") == n.Compare(
        ">", n.Arith("/", late, agg("count", "delivery", window=w(90, "d"))), n.Number(0.2))
    assert cond('count(complaint where category = "billing", 90d) > 0').left.where == n.Compare(
        "=", n.RecordField("complaint", "category"), n.String("billing"))
    assert cond("count(interaction where kind = 'win_back', 90d) > 0").left.where == n.Compare(
        "=", n.RecordField("interaction", "kind"), n.String("win_back"))
    assert cond("avg(order.amount, 12m) > min(order.margin, 1y)") == n.Compare(
        ">", agg("avg", "order", "amount", w(12, "m")), agg("min", "order", "margin", w(1, "y")))
    assert cond("max(order.amount where order.amount > 5, 3w) > 0").left == agg(
        "max", "order", "amount", w(3, "w"), n.Compare(">", n.RecordField("order", "amount"), n.Number(5.0)))
    assert cond("days since last complaint > 30").left == n.DaysSince("complaint")


def test_no_record_forms():
    assert cond("no order") == n.NoRecord("order", None)
    assert cond("no complaint 30d") == n.NoRecord("complaint", w(30, "d"))
    assert cond("no order where amount > 100 90d") == n.NoRecord(
        "order", w(90, "d"), n.Compare(">", n.RecordField("order", "amount"), n.Number(100.0)))
    # `or` after a `no ... where x` belongs to the whole condition, not to the where
    assert cond("no complaint where open or blocked") == n.Or(
        n.NoRecord("complaint", None, n.RecordFlag("complaint", "open")), A)


def test_ranks_and_builtins():
    assert cond("clv in bottom 10%") == n.Rank(n.Builtin("clv"), "bottom", 10.0, True)
    assert cond("clv in top 100") == n.Rank(n.Builtin("clv"), "top", 100.0, False)
    assert cond("p_alive < 0.5 and seasonal_auto") == n.And(
        n.Compare("<", n.Builtin("p_alive"), n.Number(0.5)), n.BoolMetric("seasonal_auto"))


def test_condition_uses_rule_set_metrics():
    rs = load_rules_file(RULES_DIR / "default.rules")
    assert cond("no order 30d and revenue_12m > 5000", rs) == n.And(
        n.NoRecord("order", w(30, "d")), n.Compare(">", n.MetricRef("revenue_12m"), n.Number(5000.0)))


def test_comments_blank_lines_and_crlf():
    rs = compile_rules("\n# c\n\nmetric a = 1   # note\r\n\r\ntag t if a > 0 # x\n")
    assert rs.metrics[0].expr == n.Number(1.0) and rs.metrics[0].pos == n.Pos(4, 1)
    assert rs.tags[0].pos == n.Pos(6, 1)
    assert compile_rules("") == n.RuleSet((), (), (), (), source="")


def test_keywords_are_contextual_for_labels():
    rs = compile_rules("tier top if blocked\ntier last otherwise")
    assert [r.label for r in rs.tiers] == ["top", "last"]


def test_parse_tree_keeps_positions():
    tree = parse("metric a = 1\n\ntag t if blocked")
    line_numbers = [s.meta.line for s in tree.children]
    assert line_numbers == [1, 3]
