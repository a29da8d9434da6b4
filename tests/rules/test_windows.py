"""Window bounds: both ends inclusive, calendar months with end-of-month clamping, offsets; to the day."""
from datetime import date

import pytest

from rules.nodes import Window
from rules.windows import Bounds, add_months, bounds, earliest_start

D = date


@pytest.mark.parametrize("as_of, window, start, end", [
    # days: 90d = [as_of - 89, as_of]
    (D(2026, 11, 23), Window(90, "d"), D(2026, 8, 26), D(2026, 11, 23)),
    (D(2026, 3, 1), Window(1, "d"), D(2026, 3, 1), D(2026, 3, 1)),
    (D(2024, 3, 1), Window(2, "d"), D(2024, 2, 29), D(2024, 3, 1)),
    # weeks: 12w = 84 days
    (D(2026, 11, 23), Window(12, "w"), D(2026, 9, 1), D(2026, 11, 23)),
    (D(2026, 11, 23), Window(1, "w"), D(2026, 11, 17), D(2026, 11, 23)),
    # months: [add_months(as_of, -n) + 1 day, as_of]
    (D(2026, 3, 31), Window(1, "m"), D(2026, 3, 1), D(2026, 3, 31)),
    (D(2026, 2, 28), Window(1, "m"), D(2026, 1, 29), D(2026, 2, 28)),
    (D(2024, 2, 29), Window(1, "m"), D(2024, 1, 30), D(2024, 2, 29)),
    (D(2026, 3, 30), Window(1, "m"), D(2026, 3, 1), D(2026, 3, 30)),  # 02-28 clamped, + 1 day
    (D(2026, 11, 23), Window(12, "m"), D(2025, 11, 24), D(2026, 11, 23)),
    (D(2026, 5, 31), Window(3, "m"), D(2026, 3, 1), D(2026, 5, 31)),
    (D(2025, 2, 28), Window(12, "m"), D(2024, 2, 29), D(2025, 2, 28)),
    (D(2024, 2, 29), Window(12, "m"), D(2023, 3, 1), D(2024, 2, 29)),
    # years = 12 months
    (D(2024, 2, 29), Window(1, "y"), D(2023, 3, 1), D(2024, 2, 29)),
    (D(2026, 11, 23), Window(2, "y"), D(2024, 11, 24), D(2026, 11, 23)),
    # offsets: `90d before 90d` ends on as_of - 90 days
    (D(2026, 11, 23), Window(90, "d", Window(90, "d")), D(2026, 5, 28), D(2026, 8, 25)),
    (D(2026, 3, 31), Window(1, "m", Window(1, "m")), D(2026, 1, 29), D(2026, 2, 28)),  # 1m ending 02-28
    (D(2026, 11, 23), Window(7, "d", Window(7, "d", Window(7, "d"))), D(2026, 11, 3), D(2026, 11, 9)),
])
def test_bounds_to_the_day(as_of, window, start, end):
    assert bounds(window, as_of) == Bounds(start, end)


def test_consecutive_windows_touch_without_overlap():
    as_of = D(2026, 11, 23)
    recent = bounds(Window(90, "d"), as_of)
    before = bounds(Window(90, "d", Window(90, "d")), as_of)
    assert (recent.start - before.end).days == 1
    assert (recent.end - recent.start).days + 1 == 90
    assert (before.end - before.start).days + 1 == 90


def test_no_window_is_everything_up_to_as_of():
    b = bounds(None, D(2026, 11, 23))
    assert b == Bounds(None, D(2026, 11, 23))
    assert b.contains(D(1900, 1, 1)) and b.contains(D(2026, 11, 23))
    assert not b.contains(D(2026, 11, 24))


def test_contains_edges():
    b = bounds(Window(90, "d"), D(2026, 11, 23))
    assert b.contains(D(2026, 8, 26)) and b.contains(D(2026, 11, 23))
    assert not b.contains(D(2026, 8, 25)) and not b.contains(D(2026, 11, 24))
    assert not b.contains(None)


@pytest.mark.parametrize("d, months, expected", [
    (D(2026, 3, 31), -1, D(2026, 2, 28)),
    (D(2024, 3, 31), -1, D(2024, 2, 29)),
    (D(2026, 1, 31), 1, D(2026, 2, 28)),
    (D(2026, 1, 15), -13, D(2024, 12, 15)),
    (D(2026, 12, 31), 2, D(2027, 2, 28)),
])
def test_add_months_clamps(d, months, expected):
    assert add_months(d, months) == expected


def test_bad_windows_and_earliest_start():
    with pytest.raises(ValueError):
        bounds(Window(0, "d"), D(2026, 1, 1))
    with pytest.raises(ValueError):
        bounds(Window(1, "q"), D(2026, 1, 1))  # type: ignore[arg-type]
    as_of = D(2026, 11, 23)
    assert earliest_start([Window(90, "d"), Window(12, "m")], as_of) == D(2025, 11, 24)
    assert earliest_start([Window(90, "d"), None], as_of) is None
