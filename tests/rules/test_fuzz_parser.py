"""Any text at all gives a RuleSet or RuleErrors (never another exception, never an internal E999)."""
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from rules import nodes
from rules.compiler import compile_condition, compile_rules, validate_rules
from rules.errors import RuleErrors

DEFAULT = (Path(__file__).resolve().parents[2] / "rules" / "default.rules").read_text(encoding="utf-8")
PIECES = ["metric", "tier", "status", "tag", "if", "otherwise", "unless", "or", "and", "not", "in", "top", "bottom",
          "of", "where", "days since last", "no", "before", "order", "complaint", "90d", "12m", "(", ")", "%",
          "sum(", "count(", ",", "=", "=>", ">=", '"', "'", "#", "\n", "\r\n", " ", "\t", "-", "*", "/", ".",
          "attr.x", "120%", "0d", "99999999999999999999999999999999", "é", "\x00"]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(fn, text, *args):
    try:
        result = fn(text, *args)
    except RuleErrors as exc:
        assert exc.errors, "RuleErrors without errors"
        assert "E999" not in exc.codes, str(exc)
        for e in exc.errors:
            assert e.line >= 1 and e.column >= 1 and e.message
        return exc
    return result


@st.composite
def mutated_default(draw):
    text = DEFAULT
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        piece = draw(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)))
        if action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)):]
        elif action == "insert":
            text = text[:at] + piece + text[at:]
        else:
            text = text[:at] + piece + text[at + len(piece):]
    return text


@SETTINGS
@given(st.text(max_size=200))
def test_random_text(text):
    result = outcome(compile_rules, text)
    assert isinstance(result, (nodes.RuleSet, RuleErrors))
    assert isinstance(validate_rules(text), list)


@SETTINGS
@given(st.lists(st.sampled_from(PIECES), max_size=40).map(" ".join))
def test_random_token_soup(text):
    assert isinstance(outcome(compile_rules, text), (nodes.RuleSet, RuleErrors))
    assert isinstance(outcome(compile_condition, text, None), (RuleErrors, *nodes.BoolExpr.__args__))


@SETTINGS
@given(mutated_default())
def test_mutations_of_default_rules(text):
    result = outcome(compile_rules, text)
    if isinstance(result, nodes.RuleSet):
        assert result.source == text
        names = [m.name for m in result.metrics]
        assert len(names) == len(set(names))
