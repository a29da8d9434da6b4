"""Window bounds: computed once, in Python, from `as_of`; the SQL back end only ever sees the resulting dates.

Both ends are inclusive.
- `Nd`: [as_of - (N-1) days, as_of]; `Nw` is 7N days.
- `Nm`: calendar months, [add_months(as_of, -N) + 1 day, as_of], with end-of-month clamping
  (as_of 2026-03-31, 1m -> 2026-03-01..2026-03-31; as_of 2026-02-28, 1m -> 2026-01-29..2026-02-28).
- `Ny` is 12N months.
- `A before B`: the window A ending the day before window B starts (`90d before 90d` ends on as_of - 90 days).
- no window: everything up to and including as_of (start None).
- a window reaching back before 0001-01-01 stops there (the checker keeps windows within 100 years, so this
  only happens for an as_of in the first century; computing bounds never fails).
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from rules.nodes import Window


@dataclass(frozen=True)
class Bounds:
    start: date | None  # None: unbounded (all history)
    end: date

    def contains(self, d: date | None) -> bool:
        if d is None or d > self.end:
            return False
        return self.start is None or d >= self.start


def add_months(d: date, months: int) -> date:
    """`d` moved by whole calendar months; the day is clamped to the target month's last day."""
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    if year < date.min.year:
        return date.min
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(d.day, last))


def window_start(amount: int, unit: str, end: date) -> date:
    """First day of the window of `amount unit` that ends (inclusive) on `end`."""
    if amount <= 0:
        raise ValueError(f"a window must be at least one unit long, got {amount}{unit}")
    if unit in ("d", "w"):
        days = amount - 1 if unit == "d" else 7 * amount - 1
        return end - timedelta(days=days) if (end - date.min).days >= days else date.min
    if unit in ("m", "y"):
        months = amount if unit == "m" else 12 * amount
        if end.year * 12 + end.month - 1 - months < 12 * date.min.year:
            return date.min
        return add_months(end, -months) + timedelta(days=1)
    raise ValueError(f"unknown window unit {unit!r}")


def bounds(window: Window | None, as_of: date) -> Bounds:
    """Inclusive bounds of `window` evaluated on `as_of`; no window means everything up to as_of."""
    if window is None:
        return Bounds(None, as_of)
    if window.offset is None:
        end = as_of
    else:
        after = bounds(window.offset, as_of).start
        end = after - timedelta(days=1) if after > date.min else date.min
    return Bounds(window_start(window.amount, window.unit, end), end)


def earliest_start(windows, as_of: date) -> date | None:
    """The earliest first day over several windows (None if any of them is unbounded): a cheap pre-filter."""
    starts = []
    for w in windows:
        b = bounds(w, as_of)
        if b.start is None:
            return None
        starts.append(b.start)
    return min(starts) if starts else None
