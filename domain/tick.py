"""The tick: time passes, and only the customers whose result changes by itself are re-evaluated.

Every stored evaluation keeps next_change_on, the earliest day its result changes with no new data (a full batch
stores as_of + 1 for the customers it changed: a bound never late, which the first tick makes exact). A tick
re-evaluates only the customers whose day has come, through domain.live.reevaluate with cause TIME, so its cost
grows with the customers who change, not with the base.

Catching up after downtime: the customers due are evaluated on the day they are due, one day at a time (the
earliest next_change_on first), so a change is dated by the data, never by when the tick ran. Each chunk of
customers is one writer transaction that commits whole; a tick stopped half-way leaves the remaining customers due,
and the next tick picks them up.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain import live
from domain.data_date import latest_evaluation_as_of
from domain.faults import crash_point
from domain.evaluation_state import Cause, writer_transaction
from domain.models import CustomerEvaluation, TierChange

evals_t = CustomerEvaluation.__table__
changes_t = TierChange.__table__
CHUNK = 2000  # customers per writer transaction: short turns, so writes through the API are not held up


# The server's own tick advances live data only: a base whose latest evaluation is older than this is an archive
# (an old export such as CDNOW), which would otherwise be aged to today at every start. `tiergraph tick --until`
# still advances any base on purpose.
ARCHIVE_AFTER_DAYS = 31


def is_live(engine: Engine, today: Optional[date] = None) -> bool:
    """Whether the server's automatic tick should run: the base was evaluated within ARCHIVE_AFTER_DAYS of today."""
    from domain.data_date import latest_evaluation_as_of

    latest = latest_evaluation_as_of(engine)
    return latest is not None and ((today or date.today()) - latest).days <= ARCHIVE_AFTER_DAYS


@dataclass(frozen=True)
class TickReport:
    as_of: date  # the tick's date: every customer due on or before it was evaluated
    days: int  # distinct days on which customers were evaluated (more than one when catching up)
    customers: int  # customer evaluations made (a customer due on two days of a catch-up counts twice)
    changes: int  # tier, status and tag changes appended to the change log
    seconds: float

    def summary(self) -> str:
        return (f"tick as of {self.as_of}: {self.customers} customer evaluation(s) over {self.days} day(s), "
                f"{self.changes} change(s), {self.seconds:.2f} s")


def tick_date(engine: Engine, until: Optional[date] = None) -> date:
    """`until` or today's date, never before the stored evaluations' as_of (time does not run backwards)."""
    day = until or date.today()
    stored = latest_evaluation_as_of(engine)
    return max(day, stored) if stored is not None else day


def tick(engine: Engine, until: Optional[date] = None, *, stop: Optional[threading.Event] = None) -> TickReport:
    """Re-evaluate, day by day, the customers whose next_change_on is on or before the tick's date.
    Raises evaluation_state.WriterBusy when another writer holds the state too long (chunks already done stay).
    `stop` (a server shutting down) ends the tick between chunks; the customers not reached stay due."""
    started = time.monotonic()
    target = tick_date(engine, until)
    days = customers = changes = 0
    done: Optional[date] = None  # the last day evaluated: a customer still due on it is not retried in this tick
    while not (stop and stop.is_set()):
        with engine.connect() as conn:
            day = _next_due_day(conn, target, after=done)
            ids = [] if day is None else _due(conn, day, after=done)
        if day is None:
            break
        for start in range(0, len(ids), CHUNK):
            if stop and stop.is_set():
                break
            with writer_transaction(engine) as conn:
                last_id = conn.execute(sa.select(sa.func.max(changes_t.c.id))).scalar() or 0
                customers += len(live.reevaluate(conn, ids[start:start + CHUNK], day, Cause("TIME")))
                changes += conn.execute(sa.select(sa.func.count()).where(changes_t.c.id > last_id)).scalar()
                crash_point("tick:before_commit")
        days += 1
        done = day
    return TickReport(as_of=target, days=days, customers=customers, changes=changes,
                      seconds=time.monotonic() - started)


def _window(day: date, after: Optional[date]) -> list:
    cond = [evals_t.c.next_change_on.is_not(None), evals_t.c.next_change_on <= day]
    if after is not None:
        cond.append(evals_t.c.next_change_on > after)
    return cond


def _next_due_day(conn: Connection, target: date, after: Optional[date]) -> Optional[date]:
    return conn.execute(sa.select(sa.func.min(evals_t.c.next_change_on)).where(*_window(target, after))).scalar()


def _due(conn: Connection, day: date, after: Optional[date]) -> list[int]:
    return [r[0] for r in conn.execute(sa.select(evals_t.c.customer_id).where(*_window(day, after))
                                       .order_by(evals_t.c.customer_id))]
