"""Dates and windows clients pass: checked in one place, and a missing date means the data's "now"
(domain.data_date)."""
from __future__ import annotations

import re
from datetime import date
from typing import Optional

from domain.data_date import FIRST_DAY, LAST_DAY
from rules.limits import MAX_WINDOW_DAYS, UNIT_DAYS
from rules.nodes import Window
from schema.errors import UserError


def checked_date(value: Optional[date], name: str = "asOf") -> Optional[date]:
    """`value` unchanged when it is None or within FIRST_DAY..LAST_DAY; else a BAD_ARGUMENT error naming it."""
    if value is not None and not FIRST_DAY <= value <= LAST_DAY:
        raise UserError("BAD_ARGUMENT", f"'{name}' must be between {FIRST_DAY} and {LAST_DAY}, got {value}",
                        argument=name)
    return value


_WINDOW = re.compile(r"([0-9]{1,6})([dwmy])")


def checked_window(text: str, name: str = "window") -> Window:
    """A window as the rule language writes one (90d, 12w, 6m, 2y: 1 unit up to 100 years) ending on the day asked
    about; anything else is a BAD_ARGUMENT error naming the argument."""
    found = _WINDOW.fullmatch(text.strip())
    if found is None or int(found[1]) < 1 or int(found[1]) * UNIT_DAYS[found[2]] > MAX_WINDOW_DAYS:
        raise UserError("BAD_ARGUMENT", f"'{name}' must be a window such as 90d, 12w, 12m or 2y (1 unit up to 100 "
                        f"years), got {text!r}", argument=name)
    return Window(int(found[1]), found[2])
