"""Choosing a loss rule on evidence: the customers a loss condition would have declared lost over a past period,
and how many of them ordered again soon after (the false losses), before the condition is published.

The episodes are the loss history's (domain.loss_history.condition_episodes): per gap between a customer's orders,
the first day the condition held with the data known on that day, so no declaration uses data dated after it.
Whether the customer came back is then read from the orders after the loss date, which is the point: a condition
that declares many customers who order again within the horizon declares them too early.

Every figure comes from one set-based statement (counts, sums and the median over window functions), the same on
SQLite and PostgreSQL; nothing loops over episodes in Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.data_date import data_today
from domain.loss_history import condition_episodes
from rules import nodes as n
from rules.to_sql import DaysBetween, p_date, p_int

MAX_HORIZON_DAYS = 3650


@dataclass(frozen=True)
class Backtest:
    """What a loss condition would have declared with loss dates in [start, end] (end: the one used, clamped)."""

    start: date
    end: date
    horizon_days: int
    declared: int                  # episodes started in the period
    ordered_again: int             # of which the customer ordered within horizon_days after the loss date
    horizon_incomplete: int        # of which lost_on + horizon_days is after the data's today
    median_days_from_last_order: Optional[float]  # over the episodes with a last order; None when there is none

    @property
    def false_loss_rate(self) -> Optional[float]:
        """ordered_again / declared; None when nothing was declared."""
        return self.ordered_again / self.declared if self.declared else None


def backtest_episodes(condition: Any, ruleset: n.RuleSet, start: date, end: date) -> sa.Select:
    """The episodes the condition would have started with loss dates in [start, end]: (customer_id, lost_on,
    last_order_at, next_order_at)."""
    found = condition_episodes(condition, ruleset, start, end).subquery("condition_episodes")
    return sa.select(found).where(found.c.lost_on >= p_date(start))


def backtest_statement(condition: Any, ruleset: n.RuleSet, start: date, end: date, horizon_days: int,
                       today: date) -> sa.Select:
    """One row: declared, ordered_again, horizon_incomplete, median_days_from_last_order."""
    e = backtest_episodes(condition, ruleset, start, end).subquery("backtest_episodes")
    horizon = p_int(horizon_days)
    days_from_last = DaysBetween(e.c.lost_on, e.c.last_order_at)
    has_last = sa.case((e.c.last_order_at.is_(None), p_int(0)), else_=p_int(1))
    # the median by position: the middle row of the episodes with a last order (two middle rows when even),
    # numbered apart from those without one
    apart = dict(partition_by=has_last)
    ranked = sa.select(
        e.c.lost_on, e.c.next_order_at, has_last.label("has_last"), days_from_last.label("days_from_last"),
        sa.func.row_number().over(**apart, order_by=days_from_last).label("nth"),
        sa.func.count().over(**apart).label("of"),
    ).subquery("ranked_episodes")
    r = ranked.c
    ordered_again = sa.and_(r.next_order_at.is_not(None), DaysBetween(r.next_order_at, r.lost_on) <= horizon)
    # lost_on + horizon > today, written as a difference so the horizon stays a bound parameter
    incomplete = DaysBetween(p_date(today), r.lost_on) < horizon
    # integer division on both databases: (of + 1) / 2 and (of + 2) / 2 are the middle positions
    middle = sa.and_(r.has_last == p_int(1), r.nth.in_([(r.of + p_int(1)) // p_int(2), (r.of + p_int(2)) // p_int(2)]))
    return sa.select(
        sa.func.count().label("declared"),
        sa.func.coalesce(sa.func.sum(sa.case((ordered_again, p_int(1)), else_=p_int(0))), p_int(0))
        .label("ordered_again"),
        sa.func.coalesce(sa.func.sum(sa.case((incomplete, p_int(1)), else_=p_int(0))), p_int(0))
        .label("horizon_incomplete"),
        sa.cast(sa.func.avg(sa.case((middle, r.days_from_last))), sa.Float).label("median_days_from_last_order"),
    ).select_from(ranked)


def backtest(engine: Engine, condition: Any, ruleset: n.RuleSet, start: date, end: date, horizon_days: int,
             today: Optional[date] = None) -> Backtest:
    """The backtest of one compiled condition (metrics from `ruleset`). `end` is clamped to the data's today:
    no loss is derived for days the data has not reached. Raises rules.to_sql_dated.DailyCondition for a
    condition reading `days since`."""
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise ValueError(f"horizon_days must be 1..{MAX_HORIZON_DAYS}")
    today = data_today(engine, today)
    end = min(end, today)
    if end < start:  # the period starts after the data ends: nothing could have been declared
        return Backtest(start, end, horizon_days, 0, 0, 0, None)
    stmt = backtest_statement(condition, ruleset, start, end, horizon_days, today)
    with engine.connect() as conn:
        row = conn.execute(stmt).one()
    median = row.median_days_from_last_order
    return Backtest(start, end, horizon_days, int(row.declared), int(row.ordered_again), int(row.horizon_incomplete),
                    None if median is None else float(median))
