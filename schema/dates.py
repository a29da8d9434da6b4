"""Dates clients pass: checked in one place, and a missing date means the data's "now" (domain.data_date)."""
from __future__ import annotations

from datetime import date
from typing import Optional

from schema.errors import UserError

# Windows and offsets are computed from a date (12m before, 5y before, ...): dates near the calendar's ends would
# overflow there, so a date outside these bounds is refused up front.
EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)


def checked_date(value: Optional[date], name: str = "asOf") -> Optional[date]:
    """`value` unchanged when it is None or within EARLIEST..LATEST; else a BAD_ARGUMENT error naming it."""
    if value is not None and not EARLIEST <= value <= LATEST:
        raise UserError("BAD_ARGUMENT", f"'{name}' must be between {EARLIEST} and {LATEST}, got {value}",
                        argument=name)
    return value
