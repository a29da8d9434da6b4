"""Whole-file checks: duplicate and reserved metric names, metric cycles and dependency order, `otherwise`
placement, and warnings for rules that can never fire. Expressions are checked by checker.ExprChecker."""
from __future__ import annotations

from lark import Tree

from . import nodes
from .builtins import reserved_reason
from .checker import ExprChecker, _kids, _toks
from .errors import RuleError

def _line_text(source: str, line: int) -> str:
    lines = source.split("\n")
    return lines[line - 1].strip() if 1 <= line <= len(lines) else ""


def check_file(tree: Tree, source: str) -> tuple[nodes.RuleSet | None, list[RuleError], list[RuleError]]:
    """Check a parsed file; returns (rule set or None when there are errors, errors, warnings)."""
    errors: list[RuleError] = []
    err = lambda code, msg, tok: errors.append(RuleError.at(source, code, msg, *ExprChecker.pos(tok)))  # noqa
    statements = [s for s in tree.children if isinstance(s, Tree)]
    defs: dict[str, Tree] = {}
    for s in statements:
        if s.data != "metric_def":
            continue
        name_tok = _toks(s)[1]
        name = str(name_tok)
        reason = reserved_reason(name)
        if reason:
            err("E208", f"{reason} — choose another name for this metric", name_tok)
        elif name in defs:
            err("E207", f"metric '{name}' is defined twice (first on line {_toks(defs[name])[1].line})", name_tok)
        else:
            defs[name] = s
    checker = ExprChecker(source, set(defs))
    exprs, deps = {}, {}
    for s in statements:
        if s.data == "metric_def":
            name = str(_toks(s)[1])
            checker.deps = set()
            expr = checker.numeric(_kids(s)[0], f"metric '{name}'")
            if defs.get(name) is s:
                exprs[name], deps[name] = expr, checker.deps
    checker.deps = set()  # rules may use any metric; only metric-to-metric edges matter
    rules = {"tier": [], "status": [], "tag": []}
    for s in statements:
        if s.data in ("when_rule", "otherwise_rule"):
            kind_tok = _toks(_kids(s)[0])[0]
            cond = checker.condition(_kids(s)[1], f"a {kind_tok} condition") if s.data == "when_rule" else None
            rule = nodes.Rule(str(kind_tok), str(_toks(s)[0]), cond, nodes.Pos(kind_tok.line, kind_tok.column),
                              _line_text(source, kind_tok.line))
            rules[str(kind_tok)].append((rule, s.data == "otherwise_rule", cond is not None))
    errors += checker.errors
    order = _order_metrics(defs, deps, source, errors)
    warnings = []
    for kind, items in rules.items():
        _check_list(kind, items, source, errors, warnings)
    if errors:
        return None, errors, warnings
    metrics = tuple(
        nodes.Metric(n, exprs[n], nodes.Pos(_toks(defs[n])[0].line, _toks(defs[n])[0].column),
                     _line_text(source, _toks(defs[n])[0].line))
        for n in order
    )
    ruleset = nodes.RuleSet(metrics, *(tuple(r for r, _, _ in rules[k]) for k in ("tier", "status", "tag")),
                            source=source, warnings=tuple(warnings))
    return ruleset, errors, warnings


def _order_metrics(defs: dict[str, Tree], deps: dict[str, set[str]], source: str, errors: list) -> list[str]:
    """Dependency order (file order where free); every cycle becomes one E209 error."""
    index = {n: i for i, n in enumerate(defs)}
    order, state, seen_cycles = [], {}, set()

    def visit(name: str, stack: list[str]) -> None:
        state[name] = "open"
        stack.append(name)
        for dep in sorted(deps.get(name, ()), key=index.get):
            if state.get(dep) == "open":
                members = stack[stack.index(dep):]
                if frozenset(members) not in seen_cycles:
                    seen_cycles.add(frozenset(members))
                    i = members.index(min(members, key=index.get))
                    path = members[i:] + members[:i] + [members[i]]
                    tok = _toks(defs[path[0]])[1]
                    errors.append(RuleError.at(source, "E209", f"metric '{path[0]}' is defined from itself: "
                                               + " -> ".join(path), tok.line, tok.column))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[name] = "done"
        order.append(name)

    for name in defs:
        if name not in state:
            visit(name, [])
    return order


def _check_list(kind: str, items: list, source: str, errors: list, warnings: list) -> None:
    """`otherwise` rules for one list, plus warnings for rules that can never fire."""
    if not items:
        return
    at = lambda code, msg, rule: RuleError.at(source, code, msg, rule.pos.line, rule.pos.column)  # noqa: E731
    if kind == "tag":
        errors.extend(at("E403", "tag rules can't use 'otherwise' — every matching tag rule adds its tag; "
                                 "write 'tag <name> if <condition>'", r) for r, other, _ in items if other)
        return
    last, last_other, _ = items[-1]
    if not last_other:
        code = "E401" if kind == "tier" else "E402"
        errors.append(at(code, f"{kind} rules must end with 'otherwise' so every customer gets a {kind}: add "
                               f"'{kind} <name> otherwise' after line {last.pos.line}", last))
    catch_all, seen = None, {}
    for rule, other, ok in items:
        if catch_all is not None:
            warnings.append(at("W101", f"this {kind} rule can never match: the 'otherwise' on line "
                                       f"{catch_all.pos.line} already catches every customer", rule))
        elif other:
            catch_all = rule
        elif ok and rule.condition in seen:
            warnings.append(at("W102", f"this {kind} rule can never match: line {seen[rule.condition].pos.line} "
                                       "has the same condition and comes first", rule))
        elif ok:
            seen[rule.condition] = rule
