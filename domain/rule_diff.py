"""The line diff between two rule texts (difflib), for an admin comparing versions before a rollback."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal, Optional

__all__ = ["DiffLine", "diff_lines"]

Kind = Literal["same", "added", "removed"]


@dataclass(frozen=True)
class DiffLine:
    kind: Kind
    old_line: Optional[int]  # 1-based line in the old text; None for an added line
    new_line: Optional[int]  # 1-based line in the new text; None for a removed line
    text: str


def diff_lines(old: str, new: str) -> list[DiffLine]:
    """Every line of both texts in reading order: unchanged lines once, a changed line as removed then added."""
    a, b = old.splitlines(), new.splitlines()
    out: list[DiffLine] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out += [DiffLine("same", i1 + k + 1, j1 + k + 1, a[i1 + k]) for k in range(i2 - i1)]
            continue
        out += [DiffLine("removed", i + 1, None, a[i]) for i in range(i1, i2)]
        out += [DiffLine("added", None, j + 1, b[j]) for j in range(j1, j2)]
    return out
