"""Errors and warnings for the admins who write rules: plain words, a stable code, and where it happened.

Codes are stable (documented in docs/rules.md) so tools and tests can match on them while the wording improves.
E1xx syntax, E2xx names, E3xx types and values, E4xx rule lists, E9xx internal; W1xx warnings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

# code -> short title, the table docs/rules.md shows
CODES: dict[str, str] = {
    "E100": "syntax error",
    "E101": "unexpected character",
    "E102": "unterminated string",
    "E103": "unclosed parenthesis",
    "E104": "unmatched closing parenthesis",
    "E105": "not an operator",
    "E106": "missing 'if'",
    "E107": "missing '=' in a metric",
    "E108": "unknown statement",
    "E109": "incomplete line",
    "E110": "window without a unit",
    "E111": "rule too complex",
    "E112": "character not allowed",
    "E201": "unknown metric or name",
    "E202": "unknown record field",
    "E203": "unknown record source",
    "E204": "unknown function",
    "E205": "record field outside its aggregate",
    "E206": "name not allowed here",
    "E207": "metric defined twice",
    "E208": "reserved metric name",
    "E209": "metric defined from itself (cycle)",
    "E210": "metric chain too long",
    "E301": "type mismatch",
    "E302": "condition is not true/false",
    "E303": "value is not a number",
    "E304": "bad rank amount",
    "E305": "bad window",
    "E306": "bad aggregate",
    "E307": "bad number",
    "E308": "list too long",
    "E309": "formula can grow too large",
    "E401": "tier rules must end with 'otherwise'",
    "E402": "status rules must end with 'otherwise'",
    "E403": "'otherwise' in a tag rule",
    "E404": "too many rules",
    "E405": "too many metrics",
    "E406": "too many rankings or aggregates",
    "E407": "rules too long",
    "E999": "internal error",
    "W101": "rule after 'otherwise' can never match",
    "W102": "rule shadowed by an earlier identical condition",
}


def shorten(text: str, limit: int = 24) -> str:
    """Quote-able text cut to a readable length (a 5000-digit number should not fill the screen)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def snippet_for(source: str, line: int, column: int) -> str:
    """The source line plus a caret under `column` (1-based); tabs are kept so the caret lines up."""
    lines = source.split("\n")
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1].rstrip("\r")
    col = max(1, min(column, len(text) + 1))
    pad = "".join("\t" if ch == "\t" else " " for ch in text[: col - 1])
    return f"{text}\n{pad}^"


@dataclass(frozen=True)
class RuleError:
    """One error or warning (code starting with W) at a 1-based line and column."""

    code: str
    message: str
    line: int
    column: int
    snippet: str = ""

    @property
    def is_warning(self) -> bool:
        return self.code.startswith("W")

    def __str__(self) -> str:
        head = f"line {self.line}, column {self.column}: {self.message} [{self.code}]"
        return f"{head}\n{self.snippet}" if self.snippet else head

    @classmethod
    def at(cls, source: str, code: str, message: str, line: int, column: int) -> "RuleError":
        return cls(code, message, line, column, snippet_for(source, line, column))


class RuleErrors(Exception):
    """Raised when rule text has errors; carries every error found (and any warnings, separately)."""

    def __init__(self, errors: Iterable[RuleError], warnings: Iterable[RuleError] = ()):
        self.errors: list[RuleError] = sorted(errors, key=lambda e: (e.line, e.column))
        self.warnings: list[RuleError] = sorted(warnings, key=lambda e: (e.line, e.column))
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.errors)
        head = f"{n} error{'s' if n != 1 else ''} in the rules"
        return "\n".join([head, *(str(e) for e in self.errors)])

    @property
    def codes(self) -> list[str]:
        return [e.code for e in self.errors]
