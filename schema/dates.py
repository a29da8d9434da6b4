"""Dates clients pass: checked in one place, and a missing date means the data's "now" (domain.data_date)."""
from __future__ import annotations

from datetime import date
from typing import Optional

from domain.data_date import FIRST_DAY, LAST_DAY
from schema.errors import UserError


def checked_date(value: Optional[date], name: str = "asOf") -> Optional[date]:
    """`value` unchanged when it is None or within FIRST_DAY..LAST_DAY; else a BAD_ARGUMENT error naming it."""
    if value is not None and not FIRST_DAY <= value <= LAST_DAY:
        raise UserError("BAD_ARGUMENT", f"'{name}' must be between {FIRST_DAY} and {LAST_DAY}, got {value}",
                        argument=name)
    return value
