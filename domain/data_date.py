"""The data's "now": the date a question means when the caller leaves the date out.

On a live base it is today; on an old export (CDNOW ends in 1998) "today" would find no orders in any window and
answer zeros. So a missing date means the as_of of the stored (latest) evaluation, and only a base that was
never evaluated falls back to the calendar. Every API field and command that defaults a date uses this one
definition and reports the date it used.
"""
from __future__ import annotations

from datetime import date
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.models import CustomerEvaluation

_evaluations = CustomerEvaluation.__table__

# The calendar Tiergraph accepts, in imports and in API arguments alike: windows and offsets (12m before, 5y
# before, ...) are computed from a date, and dates near the calendar's ends would overflow there.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)


def latest_evaluation_as_of(bind: Engine | Connection) -> Optional[date]:
    """as_of of the stored evaluation results (the latest batch run), or None when nothing was evaluated."""
    stmt = sa.select(sa.func.max(_evaluations.c.as_of))
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return conn.execute(stmt).scalar()
    return bind.execute(stmt).scalar()


def data_today(bind: Engine | Connection, given: Optional[date] = None) -> date:
    """`given` when the caller chose a date, else the latest evaluation's as_of, else today's date."""
    if given is not None:
        return given
    return latest_evaluation_as_of(bind) or date.today()
