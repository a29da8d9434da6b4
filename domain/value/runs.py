"""Which value run answers a question, and why a customer has no lifetime figures.

value_runs keeps every run (customer_scores holds only the latest run's scores). Scores asked as of a date use
the lifetime model of the latest run made on or before that date that fitted one: a model fitted on later orders
would let the answer look ahead. When no such model exists, the reason is said, never left as silent nulls.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from domain.models import ValueRun

__all__ = ["latest_value_run", "model_run_on", "model_status", "FITTED", "NOT_FITTED", "NO_RUN"]

FITTED, NOT_FITTED, NO_RUN = "fitted", "not_fitted", "no_run"
_runs = ValueRun.__table__


def _first(bind: Engine | Connection, stmt: sa.Select) -> Optional[Row]:
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return conn.execute(stmt).first()
    return bind.execute(stmt).first()


def latest_value_run(bind: Engine | Connection) -> Optional[Row]:
    """The newest finished value run (whose scores customer_scores holds), or None."""
    return _first(bind, sa.select(_runs).where(_runs.c.finished_at.is_not(None)).order_by(_runs.c.id.desc()).limit(1))


def model_run_on(bind: Engine | Connection, as_of: date) -> Optional[Row]:
    """The run whose lifetime model applies on as_of: the latest run made as of as_of or earlier that fitted the
    model; else the latest run as of as_of or earlier (its fit JSON says why it has no model); else None."""
    done = sa.and_(_runs.c.finished_at.is_not(None), _runs.c.as_of <= sa.bindparam(None, as_of, type_=sa.Date))
    newest = (_runs.c.as_of.desc(), _runs.c.id.desc())
    fitted = _first(bind, sa.select(_runs).where(done, _fitted(bind)).order_by(*newest).limit(1))
    return fitted or _first(bind, sa.select(_runs).where(done).order_by(*newest).limit(1))


def _fitted(bind: Engine | Connection) -> sa.ColumnElement[bool]:
    """fit->>'status' = 'fitted' on either database."""
    dialect = bind.dialect.name if isinstance(bind, Engine) else bind.engine.dialect.name
    if dialect == "postgresql":
        return _runs.c.fit.op("->>")("status") == "fitted"
    return sa.func.json_extract(_runs.c.fit, "$.status") == "fitted"


def model_status(run: Any, as_of: date, has_orders: bool) -> tuple[str, Optional[str]]:
    """(status, reason the customer's P(alive) / CLV are unknown or None) for scores as of `as_of` computed with
    `run` (a value_runs row or None)."""
    if run is None:
        return NO_RUN, (f"no value run as of {as_of} or earlier: the lifetime model is fitted by `tiergraph "
                        "evaluate`")
    fit = run.fit or {}
    if fit.get("status") != "fitted":
        return NOT_FITTED, f"the value run as of {run.as_of} fitted no lifetime model: {fit.get('reason')}"
    if not has_orders:
        return FITTED, f"no order as of {as_of} or earlier: the lifetime model predicts from a customer's orders"
    if fit.get("spend") is None:
        return FITTED, "the spend model was not fitted (see valueModel notes): expected spend and CLV are unknown"
    return FITTED, None
