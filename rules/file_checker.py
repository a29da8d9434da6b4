"""Whole-file checks: duplicate and reserved metric names, metric cycles and dependency order, `otherwise`
placement, and warnings for rules that can never fire. Expressions are checked by checker.ExprChecker."""
from __future__ import annotations

from lark import Tree

from . import nodes
from .builtins import reserved_reason
from .checker import ExprChecker, _kids, _toks
from .errors import RuleError
from .limits import MAX_METRIC_CHAIN, MAX_METRICS, MAX_RULES, file_terms, metric_magnitudes, statement_shape, too_large


def check_file(tree: Tree, source: str) -> tuple[nodes.RuleSet | None, list[RuleError], list[RuleError]]:
    """Check a parsed file; returns (rule set or None when there are errors, errors, warnings)."""
    errors: list[RuleError] = []
    err = lambda code, msg, tok: errors.append(RuleError.at(source, code, msg, *ExprChecker.pos(tok)))  # noqa
    too_long = file_terms(tree, source)
    if too_long:
        return None, [too_long], []
    lines = [line.strip() for line in source.split("\n")]
    line_text = lambda n: lines[n - 1] if 1 <= n <= len(lines) else ""  # noqa: E731
    statements = []
    for s in tree.children:  # a statement too deep or too long is reported and not checked further
        shape = statement_shape(_kids(s)[-1], source) if isinstance(s, Tree) and s.data != "otherwise_rule" else None
        if shape is not None:
            errors.append(shape)
        elif isinstance(s, Tree):
            statements.append(s)
    _count_statements(statements, err)
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
                              line_text(kind_tok.line))
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
                     line_text(_toks(defs[n])[0].line))
        for n in order
    )
    _check_chains(metrics, deps, defs, err)
    _check_magnitudes(metrics, [r for items in rules.values() for r, _, _ in items], source, errors)
    if errors:
        return None, errors, warnings
    ruleset = nodes.RuleSet(metrics, *(tuple(r for r, _, _ in rules[k]) for k in ("tier", "status", "tag")),
                            source=source, warnings=tuple(warnings))
    return ruleset, errors, warnings


def _count_statements(statements: list[Tree], err) -> None:
    """E404 at the first rule past its list's limit, E405 at the first metric past MAX_METRICS."""
    seen = {"metric": 0, "tier": 0, "status": 0, "tag": 0}
    for s in statements:
        kind_tok = _toks(s)[0] if s.data == "metric_def" else _toks(_kids(s)[0])[0]
        kind = str(kind_tok)
        seen[kind] += 1
        if kind == "metric" and seen[kind] == MAX_METRICS + 1:
            err("E405", f"a file may define at most {MAX_METRICS} metrics — each is a column of the evaluation",
                kind_tok)
        elif kind != "metric" and seen[kind] == MAX_RULES[kind] + 1:
            err("E404", f"a file may hold at most {MAX_RULES[kind]:,} {kind} rules", kind_tok)


def _check_chains(metrics: tuple[nodes.Metric, ...], deps: dict[str, set[str]], defs: dict[str, Tree], err) -> None:
    """E210 where metrics built on metrics get deeper than MAX_METRIC_CHAIN (each level is a step of the query)."""
    level: dict[str, int] = {}
    for m in metrics:  # dependency order
        level[m.name] = 1 + max((level[d] for d in deps.get(m.name, ()) if d in level), default=0)
        if level[m.name] == MAX_METRIC_CHAIN + 1:
            err("E210", f"metric '{m.name}' is built on a chain of more than {MAX_METRIC_CHAIN} metrics — "
                "compute it from fewer steps", _toks(defs[m.name])[1])


def _check_magnitudes(metrics, rules, source: str, errors: list) -> None:
    """E309 for a formula that could grow past what a number holds (see limits.magnitude_log10)."""
    bounds = metric_magnitudes(metrics)
    for expr, pos in [(m.expr, m.pos) for m in metrics] + [(r.condition, r.pos) for r in rules]:
        error = too_large(expr, bounds, source, pos.line, pos.column)
        if error:
            errors.append(error)


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
