"""The tier (or status) a customer had on a day: the one given by the evaluation in force that day.

The evaluation in force on day D is the batch run (evaluation_runs) with the latest as_of on or before D (of two
runs with the same as_of, the later one). Before the first run's as_of no evaluation is in force and nobody has a
tier.

What is stored: customer_evaluations holds the latest run's results only, and tier_changes logs every move between
consecutive runs (old -> new, in run order, append-only). So the tier a customer got from run R is its current tier
unless it moved in a later run, and then it is the old value of its first move after R. A customer created after
R's as_of was not evaluated by R and has no tier from it (NULL).

`labels_in_force(day, kind)` is that definition as ONE set-based query, grouped and joined on customer id, for
kind "tier" or "status" (tier_changes logs both, customer_evaluations holds both); `tiers_in_force(day)` is its
tier case. ARPU per month reads it at each month's end, the value pyramid and the status counts of a past day, the
movement between two days, and anything else that needs "the tier then" reuse it.
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.models import Customer, CustomerEvaluation, EvaluationRun, TierChange

__all__ = ["KINDS", "labels_in_force", "labels_on", "tiers_in_force", "tiers_on"]

KINDS = ("tier", "status")

_customers = Customer.__table__
_evaluations = CustomerEvaluation.__table__
_runs = EvaluationRun.__table__
_changes = TierChange.__table__


def _run_in_force(day: date, column: sa.Column) -> sa.ScalarSelect:
    """`column` of the run in force on `day` (NULL when none), as an uncorrelated scalar subquery."""
    return (sa.select(column).where(_runs.c.as_of <= sa.literal(day, sa.Date))
            .order_by(_runs.c.as_of.desc(), _runs.c.id.desc()).limit(1).scalar_subquery())


def labels_in_force(day: date, kind: str) -> sa.Select:
    """customer_id, `kind` (the tier or status in force; NULL: none then) and evaluation_as_of (the as_of of the
    run in force; NULL when no evaluation was in force) for every customer created on or before `day`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    run_id = _run_in_force(day, _runs.c.id)
    run_as_of = _run_in_force(day, _runs.c.as_of)
    first_move = (sa.select(_changes.c.customer_id, sa.func.min(_changes.c.id).label("change_id"))
                  .where(_changes.c.kind == kind, _changes.c.run_id > run_id)
                  .group_by(_changes.c.customer_id).subquery("first_move"))
    moved = _changes.alias("moved")
    label = sa.case(
        (run_as_of.is_(None), sa.null()),
        (_customers.c.created_at > run_as_of, sa.null()),  # not yet a customer when that run was made
        (first_move.c.change_id.is_(None), _evaluations.c[kind]),  # no move since: the current value
        else_=moved.c.old_value,  # the value it left at its first move after the run in force
    )
    joined = (_customers
              .outerjoin(_evaluations, _evaluations.c.customer_id == _customers.c.id)
              .outerjoin(first_move, first_move.c.customer_id == _customers.c.id)
              .outerjoin(moved, sa.and_(moved.c.customer_id == _customers.c.id,
                                        moved.c.id == first_move.c.change_id)))
    return (sa.select(_customers.c.id.label("customer_id"), label.label(kind),
                      run_as_of.label("evaluation_as_of"))
            .select_from(joined).where(_customers.c.created_at <= sa.literal(day, sa.Date)))


def tiers_in_force(day: date) -> sa.Select:
    """customer_id, tier (NULL: no tier then) and evaluation_as_of for every customer created on or before `day`:
    labels_in_force for tiers."""
    return labels_in_force(day, "tier")


def labels_on(bind: Engine | Connection, day: date, kind: str) -> dict[int, str | None]:
    """{customer id: tier or status in force on `day`} (for callers that want the rows, and for tests)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return labels_on(conn, day, kind)
    return {r.customer_id: r[1] for r in bind.execute(labels_in_force(day, kind))}


def tiers_on(bind: Engine | Connection, day: date) -> dict[int, str | None]:
    """{customer id: tier in force on `day`}."""
    return labels_on(bind, day, "tier")
