"""CSV output in the import format of README.md, "Import formats".

Columns are formatted whole (dates via numpy, money with two decimals) and written with the csv module and
"\n" line endings, so the bytes depend only on the data and never on the platform.
"""
from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np


def dates(start: date, days: np.ndarray) -> list[str]:
    """Day offsets from `start` -> ISO dates; NaN (no date) becomes ''."""
    days = np.asarray(days, dtype=float)
    missing = np.isnan(days)
    text = np.datetime_as_string(np.datetime64(start, "D") + np.where(missing, 0, days).astype(np.int64), unit="D")
    return ["" if m else t for m, t in zip(missing.tolist(), text.tolist())]


def money(values: np.ndarray) -> list[str]:
    """Two decimals; NaN (unknown) becomes ''."""
    return ["" if v != v else f"{v:.2f}" for v in np.asarray(values, dtype=float).tolist()]


def flags(values: np.ndarray) -> list[str]:
    return ["true" if v else "false" for v in np.asarray(values, dtype=bool).tolist()]


def pick(labels: Sequence[str], index: np.ndarray, none: int = -1) -> list[str]:
    """Index -> label, with `none` -> ''."""
    return ["" if i == none else labels[i] for i in np.asarray(index).tolist()]


def write_csv(path: Path, columns: dict[str, Iterable[str]]) -> int:
    """Write one file; returns the number of data rows."""
    header = list(columns)
    rows = list(zip(*columns.values()))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return len(rows)
