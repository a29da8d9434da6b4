"""Text -> Lark parse tree, turning every Lark failure into one plain-worded RuleError.

Lark's own messages name terminals (RPAR, _NL ...) that mean nothing to an admin, so failures are mapped:
a pre-scan of the text finds the usual slips (`=>`, an unclosed '(' or string, `90 days`) and reports them
where they are; anything else is described from the parser's expected-token set in plain words.
"""
from __future__ import annotations

import difflib
import re
from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import RuleError, RuleErrors, shorten
from .limits import MAX_NESTING, bad_characters

STATEMENT_WORDS = ("metric", "tier", "status", "tag")

# what each terminal is called in messages
TERMINAL_WORDS: dict[str, str] = {
    "NAME": "a name", "NUMBER": "a number", "STRING": 'a text in quotes such as "east"',
    "WINDOW": "a window such as 90d", "EQ": "'='", "NE": "'!='", "LT": "'<'", "LE": "'<='", "GT": "'>'",
    "GE": "'>='", "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "PERCENT": "'%'",
    "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "DOT": "'.'", "_NL": "the end of the line",
    "$END": "the end of the text",
}
OPERAND_STARTERS = {"NAME", "NUMBER", "STRING", "LPAR", "MINUS", "NOT", "NO", "DAYS"}
OPERATORS = {"EQ", "NE", "LT", "LE", "GT", "GE", "PLUS", "MINUS", "STAR", "SLASH", "AND", "OR", "UNLESS", "IN"}

# two-character slips and what was probably meant
BAD_OPERATORS = {"=>": ">=", "=<": "<=", "==": "=", "<>": "!=", "&&": "and", "||": "or"}
WORD_UNIT = re.compile(r"\b(\d+)(\s*)(days?|weeks?|months?|years?)\b")


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The LALR parser, built once on first use (not at import)."""
    return Lark.open(
        "grammar.lark", rel_to=__file__, parser="lalr", propagate_positions=True,
        start=["start", "condition"], maybe_placeholders=False,
    )


def parse(source: str, start: str = "start") -> Tree:
    """Parse rule text (start="start") or one condition (start="condition"); raises RuleErrors (one error)."""
    unreadable = bad_characters(source)
    if unreadable:  # checked first: such a character could not even be shown in another error's snippet
        raise RuleErrors(unreadable)
    text = source if source.endswith("\n") else source + "\n"
    try:
        return lark_parser().parse(text, start=start)
    except UnexpectedInput as exc:
        found = [i for i in prescan(source) if i.line > 0]
        mapped = map_lark_error(source, exc)
        best = min(found, key=lambda e: (e.line, e.column), default=None)
        if best is None or (best.line, best.column) > (mapped.line, mapped.column):
            best = mapped
        raise RuleErrors([best]) from None


# ---------------- pre-scan ----------------


def _code_only(line: str) -> tuple[str, int | None]:
    """The line with strings blanked and the comment cut; also the column of an unterminated quote."""
    out, i = [], 0
    while i < len(line):
        ch = line[i]
        if ch == "#":
            break
        if ch in "\"'":
            end = line.find(ch, i + 1)
            if end < 0:
                return "".join(out), i + 1
            out.append(ch + " " * (end - i - 1) + ch)
            i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out), None


def prescan(source: str) -> list[RuleError]:
    """Common slips, found line by line outside strings and comments."""
    issues: list[RuleError] = []
    for n, raw in enumerate(source.split("\n"), start=1):
        code, open_quote = _code_only(raw)
        at = lambda c, msg, col: issues.append(RuleError.at(source, c, msg, n, col))  # noqa: E731
        if open_quote is not None:
            q = raw[open_quote - 1]
            at("E102", f"this text is never closed — add a closing {q} on the same line", open_quote)
        for bad, good in BAD_OPERATORS.items():
            for m in re.finditer(re.escape(bad), code):
                at("E105", f"'{bad}' is not an operator — did you mean '{good}'?", m.start() + 1)
        for m in re.finditer(r"!(?!=)", code):
            at("E105", "'!' is not an operator — did you mean 'not' or '!='?", m.start() + 1)
        for m in WORD_UNIT.finditer(code):
            short = f"{m.group(1)}{m.group(3)[0]}"
            at("E110", f"the window '{m.group(0)}' needs a short unit: write {short}", m.start() + 1)
        stack: list[int] = []
        for i, ch in enumerate(code):
            if ch == "(":
                stack.append(i + 1)
                if len(stack) > MAX_NESTING:
                    at("E111", f"more than {MAX_NESTING} nested parentheses — split this into metrics", i + 1)
                    break
            elif ch == ")":
                if stack:
                    stack.pop()
                else:
                    at("E104", "this ')' has no matching '('", i + 1)
        if stack:
            at("E103", "this '(' is never closed — add ')'", stack[-1])
    return issues


# ---------------- Lark error -> RuleError ----------------


def _describe(token: Token) -> str:
    if token.type in ("_NL", "$END"):
        return TERMINAL_WORDS[token.type]
    return f"'{shorten(token)}'"


def _expected_words(expected: set[str]) -> str:
    """Plain words for what the parser would have accepted (never terminal names)."""
    expected, words = set(expected), []
    if expected & {"NAME", "NUMBER"}:
        words.append("a value (a name, a number or '(')")
        expected -= OPERAND_STARTERS
    if len(expected & OPERATORS) > 2:
        words.append("an operator")
        expected -= OPERATORS
    for name in sorted(expected, key=lambda n: (n in ("_NL", "$END"), n)):
        words.append(TERMINAL_WORDS.get(name, f"'{name.lower()}'"))
    words = list(dict.fromkeys(words))
    if len(words) > 1:
        return ", ".join(words[:-1]) + " or " + words[-1]
    return words[0] if words else "something else"


def map_lark_error(source: str, exc: UnexpectedInput) -> RuleError:
    line, column = getattr(exc, "line", 1), getattr(exc, "column", 1)
    if not isinstance(line, int) or line < 1:  # EOF errors carry no position: point after the text
        lines = source.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    at = lambda code, msg: RuleError.at(source, code, msg, line, column)  # noqa: E731
    if isinstance(exc, UnexpectedCharacters):
        char = exc.char
        if char in "\"'":
            return at("E102", f"this text is never closed — add a closing {char} on the same line")
        if char == ";":
            return at("E101", "each rule ends at the end of its line — remove ';'")
        return at("E101", f"unexpected character '{char}' — it is not part of the rule language")
    if not isinstance(exc, (UnexpectedToken, UnexpectedEOF)):
        return at("E100", "the text could not be read here")
    token = exc.token if isinstance(exc, UnexpectedToken) else Token("$END", "")
    expected = set(exc.expected or ())
    if isinstance(exc, UnexpectedToken) and exc.interactive_parser is not None:
        expected = set(exc.accepts) or expected  # exact, unlike the LALR state's lookahead set
    if "_NL" in expected:
        expected.discard("$END")
    ends = token.type in ("_NL", "$END")
    if expected and expected <= {"IF", "OTHERWISE"}:
        return at("E106", "missing 'if' after the rule's name: write '<kind> <name> if <condition>' "
                          "or '<kind> <name> otherwise'")
    if expected == {"EQ"}:
        return at("E107", "missing '=' after the metric's name: write 'metric <name> = <formula>'")
    if expected == {"NAME"} and ends:
        return at("E109", "the line ends too early: a name is missing")
    if expected & {"METRIC", "TIER"} and not ends:
        msg = "a line must start with metric, tier, status or tag"
        close = difflib.get_close_matches(str(token)[:40], STATEMENT_WORDS, n=1)
        return at("E108", msg + (f" — did you mean '{close[0]}'?" if close else ""))
    if ends and "RPAR" in expected:
        return at("E103", "a '(' is never closed — add ')'")
    if ends:
        return at("E109", f"the line ends too early: expected {_expected_words(expected)}")
    if token.type == "EQ" and "IF" in expected:
        return at("E106", "missing 'if': write '<kind> <name> if <condition>'")
    return at("E100", f"unexpected {_describe(token)} here — expected {_expected_words(expected)}")
