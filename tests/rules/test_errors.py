"""What admins see: exact messages, positions and carets, plus the error_cases/*.rules catalogue."""
from pathlib import Path

import pytest

from rules.compiler import compile_condition, compile_rules, validate_rules
from rules.errors import CODES, RuleError, RuleErrors

CASES = Path(__file__).parent / "error_cases"


def only_error(text):
    with pytest.raises(RuleErrors) as info:
        compile_rules(text)
    assert len(info.value.errors) == 1, str(info.value)
    return info.value.errors[0]


def caret_column(error):
    line, caret = error.snippet.split("\n")
    return caret.index("^") + 1, line


def test_unknown_metric_message_format():
    text = "metric revenue_12m = sum(order.amount, 12m)\n\ntag hot if    revenu_12m > 10000"
    e = only_error(text)
    assert (e.code, e.line, e.column) == ("E201", 3, 15)
    assert e.message == "unknown metric 'revenu_12m' — did you mean 'revenue_12m'?"
    assert str(e) == ("line 3, column 15: unknown metric 'revenu_12m' — did you mean 'revenue_12m'? [E201]\n"
                      "tag hot if    revenu_12m > 10000\n"
                      "              ^")
    assert caret_column(e) == (15, "tag hot if    revenu_12m > 10000")


@pytest.mark.parametrize("text, code, line, column, message", [
    ("metric a = sum(order.amount, 90)", "E110", 1, 30, "the window '90' needs a unit: 90d, 12w, 3m, 1y"),
    ("tier a if count(order) => 1\ntier b otherwise", "E105", 1, 24, "'=>' is not an operator — did you mean '>='?"),
    ("metric x = sum(order.amout, 12m)", "E202", 1, 22, "order has no field 'amout' — did you mean 'amount'?"),
    ("metric a = b\nmetric b = a", "E209", 1, 8, "metric 'a' is defined from itself: a -> b -> a"),
    ("tag t if (blocked or seasonal", "E103", 1, 10, "this '(' is never closed — add ')'"),
    ("tag t if blocked)", "E104", 1, 17, "this ')' has no matching '('"),
    ('tag t if region = "east', "E102", 1, 19, 'this text is never closed — add a closing " on the same line'),
    ("tag t if region = 'east", "E102", 1, 19, "this text is never closed — add a closing ' on the same line"),
    ("tag t if region > 5", "E301", 1, 17, "can't compare text with a number: 'region' is text, '5' is a number"),
    ("tag t if clv in top 120%", "E304", 1, 21,
     "'120%' is not a share of customers — use a percent above 0% and at most 100%"),
    ("tag t if sum(order.amount, 90 days) > 1", "E110", 1, 28, "the window '90 days' needs a short unit: write 90d"),
    ("tag t if blocked && seasonal", "E105", 1, 18, "'&&' is not an operator — did you mean 'and'?"),
    ("tag t if blocked == 1", "E105", 1, 18, "'==' is not an operator — did you mean '='?"),
    ("tag t if clv ; ", "E101", 1, 14, "each rule ends at the end of its line — remove ';'"),
    ("teir a if blocked", "E108", 1, 1, "a line must start with metric, tier, status or tag — did you mean 'tier'?"),
    ("tag t if count(order) > 1 2", "E100", 1, 27, "unexpected '2' here — expected an operator or the end of the line"),
    ("tag t if blocked and", "E109", 1, 21, "the line ends too early: expected a value (a name, a number or '(')"),
    ("tag t if summ(order.amount, 1y) > 1", "E204", 1, 10, "unknown function 'summ' — did you mean 'sum'?"),
    ("tag t if count(ordr) > 1", "E203", 1, 16, "unknown record source 'ordr' — did you mean 'order'?"),
])
def test_messages(text, code, line, column, message):
    e = only_error(text)
    assert (e.code, e.line, e.column, e.message) == (code, line, column, message)
    assert caret_column(e) == (column, text.split("\n")[line - 1])


def test_missing_if_and_tier_otherwise():
    e = only_error("tier key profit_12m in top 20%\ntier b otherwise")
    assert (e.code, e.line, e.column) == ("E106", 1, 10)
    assert e.message.startswith("missing 'if'")
    e = only_error("metric p = 1\ntier a if p > 0\ntier b if p > 1")
    assert (e.code, e.line, e.column) == ("E401", 3, 1)
    assert "tier rules must end with 'otherwise'" in e.message
    e = only_error("metric x sum(order.amount, 12m)")
    assert (e.code, e.column) == ("E107", 10)


def test_only_the_first_syntax_error_is_reported():
    e = only_error("tag a if blocked =>\ntag b if (")
    assert (e.code, e.line) == ("E105", 1)


def test_messages_never_show_lark_terminal_names():
    texts = ["tag t if", "tag t if (", "tier", "metric", "metric a =", "tag t if a in", "tag t if 1 2",
             "tag t if count(order 12m)", "tag t if no", "tag t if a.", "tag t if x in top", "tag t if 5 of x",
             "metric a = 1 metric b = 2", "tag t if a in (1,)", ")", "tag t if days since order"]
    for text in texts:
        for e in validate_rules(text):
            for word in ("NAME", "RPAR", "LPAR", "_NL", "$END", "NUMBER", "WINDOW", "Token", "COMMA"):
                assert word not in e.message, (text, e.message)


def test_rule_errors_str_lists_every_error():
    with pytest.raises(RuleErrors) as info:
        compile_rules("tag a if x > 1\ntag b if y > 1")
    text = str(info.value)
    assert text.startswith("2 errors in the rules\nline 1, column 10: unknown metric 'x'")
    assert "line 2, column 10: unknown metric 'y'" in text


def test_warnings_are_rule_error_shaped():
    (w,) = validate_rules("tier a otherwise\ntier b otherwise")
    assert isinstance(w, RuleError) and w.is_warning and w.code == "W101"
    assert str(w).startswith("line 2, column 1: this tier rule can never match")


def test_every_code_is_documented():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    for code in CODES:
        assert f"| {code} |" in docs, code


def test_condition_errors_point_into_the_condition():
    with pytest.raises(RuleErrors) as info:
        compile_condition("no order 30d and revenu_12m > 5000", None)
    (e,) = info.value.errors
    assert (e.code, e.line, e.column) == ("E201", 1, 18)


def _expected(path: Path) -> list[tuple[str, int, int]]:
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        raw = raw.split("#", 1)[0].strip()
        if raw:
            code, where = raw.split()
            line, column = where.split(":")
            out.append((code, int(line), int(column)))
    return out


@pytest.mark.parametrize("case", sorted(CASES.glob("*.rules")), ids=lambda p: p.stem)
def test_error_case(case: Path):
    found = [(e.code, e.line, e.column) for e in validate_rules(case.read_text(encoding="utf-8"))]
    assert found == _expected(case.with_suffix(".expected"))
