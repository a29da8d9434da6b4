"""Public entry points: rule text -> checked nodes.RuleSet, or RuleErrors. Nothing else escapes.

Any text at all gives a RuleSet or RuleErrors; an unexpected failure inside the front end is reported as E999
(and is a bug: the fuzz tests assert it never happens) rather than leaking another exception to callers.
"""
from __future__ import annotations

import logging
from pathlib import Path

from . import nodes
from .checker import ExprChecker
from .file_checker import check_file
from .errors import RuleError, RuleErrors
from .limits import metric_magnitudes, statement_shape, too_large
from .parser import parse

log = logging.getLogger(__name__)


def _guarded(source: str, work):
    try:
        return work()
    except RuleErrors:
        raise
    except RecursionError:
        raise RuleErrors([RuleError.at(source, "E111", "this rule is too deeply nested to check — split it into "
                                       "smaller metrics", 1, 1)]) from None
    except Exception:  # pragma: no cover - a bug; keep the promise "RuleSet or RuleErrors"
        log.exception("rule front end failed")
        raise RuleErrors([RuleError("E999", "internal error while checking the rules", 1, 1)]) from None


def compile_rules(source: str) -> nodes.RuleSet:
    """Parse and check a whole rule file; raises RuleErrors listing every error (warnings ride along)."""
    if not isinstance(source, str):
        raise TypeError("compile_rules expects the rule text as a str")

    def work():
        ruleset, errors, warnings = check_file(parse(source), source)
        if errors:
            raise RuleErrors(errors, warnings)
        return ruleset

    return _guarded(source, work)


def validate_rules(source: str) -> list[RuleError]:
    """Every error and warning for the text, in line order; never raises for bad input."""
    try:
        ruleset = compile_rules(source)
    except RuleErrors as exc:
        return sorted(exc.errors + exc.warnings, key=lambda e: (e.line, e.column))
    return list(ruleset.warnings)


def compile_condition(source: str, metrics_from: nodes.RuleSet | None = None) -> nodes.BoolExpr:
    """An ad-hoc filter such as `no order 30d and revenue_12m > 5000`; may use the rule set's metrics."""
    if not isinstance(source, str):
        raise TypeError("compile_condition expects the condition text as a str")
    names = {m.name for m in metrics_from.metrics} if metrics_from is not None else set()

    def work():
        tree = parse(source, start="condition").children[0]
        too_complex = statement_shape(tree, source)
        if too_complex:
            raise RuleErrors([too_complex])
        checker = ExprChecker(source, names)
        node = checker.condition(tree, "a filter")
        if checker.errors:
            raise RuleErrors(checker.errors)
        bounds = metric_magnitudes(metrics_from.metrics) if metrics_from is not None else {}
        overflow = too_large(node, bounds, source, *ExprChecker.pos(tree))
        if overflow:
            raise RuleErrors([overflow])
        return node

    return _guarded(source, work)


def load_rules_file(path: str | Path) -> nodes.RuleSet:
    """Read (UTF-8, with or without a byte-order mark) and compile a .rules file."""
    return compile_rules(Path(path).read_text(encoding="utf-8-sig"))
