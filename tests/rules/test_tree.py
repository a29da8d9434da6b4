"""The rule tree is walked from the node dataclasses' fields, and the language's words come from the grammar."""
from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

from rules import nodes as n
from rules.builtins import keywords, reserved_reason
from rules.tree import children, walk

NOT_EXPRESSIONS = {n.Pos, n.Window, n.Metric, n.Rule, n.RuleSet}
NODE_NAMES = {name for name, cls in vars(n).items() if inspect.isclass(cls) and dataclasses.is_dataclass(cls)}
NODE_NAMES |= {"NumExpr", "StrExpr", "BoolExpr"}


def expression_classes() -> list[type]:
    return [cls for cls in vars(n).values()
            if inspect.isclass(cls) and dataclasses.is_dataclass(cls) and cls not in NOT_EXPRESSIONS]


def _holds_node(annotation: str) -> bool:
    words = set(re.findall(r"[A-Za-z_]+", annotation)) - {"Window", "Pos"}
    return bool(words & NODE_NAMES)


def test_every_field_that_holds_a_node_is_walked():
    """Build each node kind with a distinct marker node in every field typed as a node (or a tuple of nodes):
    walk must reach every marker. A new node kind, or a new field on one, is covered without a change here."""
    classes = expression_classes()
    assert len(classes) >= 19
    checked = 0
    for cls in classes:
        values, markers = {}, []
        for f in dataclasses.fields(cls):
            annotation = f.type if isinstance(f.type, str) else repr(f.type)
            marker = n.MetricRef(f"marker_{cls.__name__}_{f.name}")
            if _holds_node(annotation) and "tuple" in annotation:
                values[f.name] = (marker, n.MetricRef(marker.name + "_2"))
                markers += list(values[f.name])
            elif _holds_node(annotation):
                values[f.name] = marker
                markers.append(marker)
            elif "Window" in annotation:
                values[f.name] = n.Window(1, "d")
            elif annotation in ("bool",):
                values[f.name] = False
            elif annotation in ("float", "int"):
                values[f.name] = 1
            else:
                values[f.name] = "x"
        node = cls(**values)
        seen = list(walk(node))
        for marker in markers:
            assert marker in seen, f"{cls.__name__}: a node in a field is not walked"
            checked += 1
        assert list(children(node)) == markers, cls.__name__  # in field order, nothing else (no windows)
    assert checked >= 15


def test_keywords_are_the_grammars_words():
    grammar = (Path(n.__file__).parent / "grammar.lark").read_text(encoding="utf-8")
    words = set(re.findall(r'^[A-Z]+: "([a-z]+)"$', grammar, flags=re.M))
    assert words and keywords() == words
    assert all(reserved_reason(w) for w in words)
    assert reserved_reason("revenue_12m") is None
