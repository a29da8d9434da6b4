"""Names, types, metric order, `otherwise` placement and unreachable-rule warnings."""
import pytest

from rules import builtins, nodes as n
from rules.compiler import compile_condition, compile_rules, validate_rules
from rules.errors import RuleErrors

BASE = "metric revenue_12m = sum(order.amount, 12m)\n"


def codes(text):
    return [(e.code, e.line, e.column) for e in validate_rules(text)]


def test_metrics_may_use_later_metrics_and_are_ordered():
    rs = compile_rules("metric c = a + b\nmetric b = a * 2\nmetric a = sum(order.amount, 1y)\nmetric d = 1")
    assert [m.name for m in rs.metrics] == ["a", "b", "c", "d"]
    assert rs.metric("c").pos == n.Pos(1, 1)


def test_self_reference_and_cycle_are_errors():
    with pytest.raises(RuleErrors) as info:
        compile_rules("metric a = a + 1")
    assert [e.message for e in info.value.errors] == ["metric 'a' is defined from itself: a -> a"]
    text = "metric x = 1\nmetric b = c\nmetric c = a\nmetric a = b"
    errs = validate_rules(text)
    assert [(e.code, e.line, e.column, e.message) for e in errs] == [
        ("E209", 2, 8, "metric 'b' is defined from itself: b -> c -> a -> b")]


def test_all_name_and_type_errors_are_reported_at_once():
    text = BASE + "\n".join([
        "metric m = revenue12m + 1",          # 2: unknown metric
        "tag a if region > 5",                # 3: text vs number
        "tag b if sum(order.amout, 12m) > 1",  # 4: unknown field
        "tag c if revenue_12m",               # 5: not a condition
        "metric m = 2",                       # 6: duplicate
        "tier t if blocked",                  # 7: tiers must end with otherwise
    ])
    assert codes(text) == [("E201", 2, 12), ("E301", 3, 17), ("E202", 4, 20), ("E302", 5, 10),
                           ("E207", 6, 8), ("E401", 7, 1)]


@pytest.mark.parametrize("text, code", [
    ("metric m = blocked", "E303"),
    ("metric m = region", "E303"),
    ("tag t if blocked > 1", "E301"),
    ("tag t if region in (1)", "E301"),
    ("tag t if clv in (\"x\")", "E301"),
    ("tag t if region < \"m\"", "E301"),
    ("tag t if region in top 10%", "E303"),
    ("tag t if clv in top 120%", "E304"),
    ("tag t if clv in top 0%", "E304"),
    ("tag t if clv in top 2.5", "E304"),
    ("tag t if clv + blocked > 1", "E303"),
    ("tag t if -region = 'a'", "E303"),
    ("tag t if blocked and clv", "E302"),
    ("tag t if not clv", "E302"),
    ("tag t if count(complaint where cost, 1y) > 1", "E302"),
    ("tag t if sum(complaint.category, 1y) > 1", "E303"),
    ("tag t if sum(order, 1y) > 1", "E306"),
    ("tag t if count(order.amount) > 1", "E306"),
    ("tag t if summ(order.amount, 1y) > 1", "E204"),
    ("tag t if count(ordr) > 1", "E203"),
    ("tag t if ordr.amount > 1", "E203"),
    ("tag t if order.amount > 1", "E205"),
    ("tag t if amount > 1", "E205"),
    ("tag t if order > 1", "E206"),
    ("tag t if count(order where clv > 1) > 1", "E206"),
    ("tag t if count(order where complaint.cost > 1) > 1", "E205"),
    ("tag t if count(order where count(order) > 1) > 1", "E206"),
    ("tag t if customer.regoin = 'a'", "E202"),
    ("tag t if count(order, 0d) > 1", "E305"),
    ("tag t if count(order, 200y) > 1", "E305"),
    ("tag t if count(order, 30) > 1", "E110"),
    ("metric clv = 1", "E208"),
    ("metric order = 1", "E208"),
    ("tag t otherwise", "E403"),
    ("status s if blocked", "E402"),
])
def test_single_errors(text, code):
    errs = [e for e in validate_rules(text) if not e.is_warning]
    assert [e.code for e in errs] == [code], [str(e) for e in errs]


def test_warnings_for_rules_that_can_never_match():
    text = ("tier a if blocked\ntier b if seasonal\ntier c if blocked\ntier d otherwise\ntier e if seasonal\n"
            "tier f otherwise\nstatus s otherwise")
    rs = compile_rules(text)
    assert [(w.code, w.line) for w in rs.warnings] == [("W102", 3), ("W101", 5), ("W101", 6)]
    assert "line 1 has the same condition" in rs.warnings[0].message
    assert "'otherwise' on line 4" in rs.warnings[1].message
    assert validate_rules(text) == list(rs.warnings)


def test_warnings_travel_with_errors():
    with pytest.raises(RuleErrors) as info:
        compile_rules("tier a otherwise\ntier b if blocked")
    assert info.value.codes == ["E401"]
    assert [w.code for w in info.value.warnings] == ["W101"]


def test_identical_tag_conditions_are_not_warnings():
    assert compile_rules("tag a if blocked\ntag b if blocked").warnings == ()


def test_builtin_registry_drives_resolution():
    assert builtins.BUILTINS["seasonal_auto"].type == builtins.BOOL
    assert all(info.description for info in builtins.BUILTINS.values())
    builtins.register("test_only_score", builtins.NUM, "a score registered by a test")
    try:
        assert compile_condition("test_only_score > 1", None) == n.Compare(
            ">", n.Builtin("test_only_score"), n.Number(1.0))
    finally:
        del builtins.BUILTINS["test_only_score"]
    with pytest.raises(ValueError):
        builtins.register("x", builtins.STR, "text is not a metric")


def test_condition_errors_and_unknown_metric_without_rule_set():
    with pytest.raises(RuleErrors) as info:
        compile_condition("revenue_12m > 5000", None)
    assert info.value.codes == ["E201"]
    with pytest.raises(RuleErrors) as info:
        compile_condition("revenue_12m", compile_rules(BASE))
    assert info.value.codes == ["E302"]


def test_non_string_input_is_a_type_error():
    with pytest.raises(TypeError):
        compile_rules(None)
