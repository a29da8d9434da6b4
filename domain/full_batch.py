"""The full batch: every customer's value scores and rule results in ONE writer transaction, and when it is due.

The tick moves only the customers whose day has come, with the rank cut-offs and quintile boundaries of the last
full batch; the full batch refreshes those for the whole base (and records as changes only what really changed),
so it runs for rule changes (publish, rollback), on demand (`tiergraph evaluate`) and every
TIERGRAPH_FULL_BATCH_DAYS from the server's daily task.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Callable, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.evaluation import Progress, run_batch
from domain.evaluation_state import writer_transaction
from domain.faults import crash_point
from domain.models import EvaluationRun
from domain.value.batch import run_value_batch
from rules import nodes as n

runs_t = EvaluationRun.__table__


def evaluate_base(engine: Engine, ruleset: n.RuleSet, rule_set_id: Optional[int], as_of: date, *, model: str,
                  monetary: str, value_progress: Optional[Callable[[str, int, int], None]] = None,
                  rules_progress: Optional[Progress] = None) -> tuple[Any, Any]:
    """Scores and rule results together: a kill between them leaves both as they were (raises WriterBusy when
    another writer holds the evaluation state too long)."""
    with writer_transaction(engine) as conn:
        value_run = run_value_batch(conn, as_of, model=model, monetary=monetary, progress=value_progress)
        crash_point("evaluate:after_scores")
        run = run_batch(conn, ruleset, as_of, rule_set_id=rule_set_id, progress=rules_progress)
        crash_point("evaluate:before_commit")
    return value_run, run


def last_full_batch(engine: Engine) -> Optional[date]:
    """as_of of the newest finished full batch, or None."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(runs_t.c.as_of)).where(runs_t.c.finished_at.is_not(None))).scalar()


def full_batch_due(engine: Engine, every_days: int, today: Optional[date] = None) -> bool:
    """Whether the last full batch is `every_days` or more days old (never, when every_days is 0)."""
    if every_days <= 0:
        return False
    last = last_full_batch(engine)
    return last is not None and ((today or date.today()) - last).days >= every_days
