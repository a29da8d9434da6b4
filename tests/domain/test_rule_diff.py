"""The rule set diff: every line once, in reading order, with its line numbers on each side."""
from __future__ import annotations

from domain.rule_diff import DiffLine, diff_lines

OLD = "metric a = sum(order.amount, 12m)\ntier key if a > 100\ntier other otherwise\n"
NEW = "metric a = sum(order.amount, 12m)\ntier key if a > 200\ntier mid if a > 50\ntier other otherwise\n"


def test_a_changed_line_is_removed_then_added_and_the_rest_kept():
    assert diff_lines(OLD, NEW) == [
        DiffLine("same", 1, 1, "metric a = sum(order.amount, 12m)"),
        DiffLine("removed", 2, None, "tier key if a > 100"),
        DiffLine("added", None, 2, "tier key if a > 200"),
        DiffLine("added", None, 3, "tier mid if a > 50"),
        DiffLine("same", 3, 4, "tier other otherwise"),
    ]


def test_identical_texts_have_only_same_lines_and_empty_texts_none():
    assert {d.kind for d in diff_lines(OLD, OLD)} == {"same"}
    assert diff_lines("", "") == []
    assert [d.kind for d in diff_lines("", "x\ny")] == ["added", "added"]
