"""Did anyone try to win lost customers back? Interactions around each loss episode, and per rep, set-based.

An attempt is any interaction with the customer (table interactions, whatever its kind or rep) dated
- before the loss: from the day the customer turned at risk (the episode's at_risk_on; the loss date when it never
  was) up to and including the loss date, or
- after the loss: from the day after the loss date up to and including the reactivation (the customer's next
  order or a manual reactivation), or up to the data's today while the customer is still lost.
`by_owner` attempts are those made by the customer's owner rep (customers.owner_rep_id, as it is now).
An episode is reactivated within 90 days after an attempt when reactivated_on is known and some attempt `a` has
a <= reactivated_on <= a + 90 days; every attempt is on or before reactivated_on, so this is the last attempt
being at most 90 days before the reactivation.

Interactions are joined to episodes on customer_id only, with the episode's dates as the join's range, and counted
with one GROUP BY per episode; winBack per rep groups those per customer, then per owner rep.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.data_date import data_today
from domain.loss_history import LossRules, episodes
from domain.models import Customer, Interaction
from rules.to_sql import p_date, p_int
from rules.to_sql_dated import DayShift

customers_t = Customer.__table__
interactions_t = Interaction.__table__

REACTIVATION_DAYS = 90  # "reactivated within 90 days after an attempt"


@dataclass(frozen=True)
class EpisodeWinBack:
    """The win-back attempts of one loss episode (customer_id, lost_on)."""

    customer_id: int
    lost_on: date
    attempts_before: int  # by anyone, from turning at risk (or the loss date) to the loss date
    attempts_before_by_owner: int
    attempts_after: int  # by anyone, after the loss date up to reactivation (or the data's today)
    attempts_after_by_owner: int
    last_attempt_on: Optional[date]
    reactivated_within_90_days: bool  # reactivated at most 90 days after an attempt


@dataclass(frozen=True)
class RepWinBack:
    """winBack for one owner rep (rep_id None: customers without an owner)."""

    rep_id: Optional[int]
    lost_customers: int
    with_attempt: int
    without_attempt: int
    reactivated_within_90_days_of_attempt: int
    attempts: int


def attempts_per_episode(episodes_q: sa.FromClause, today: date) -> sa.Subquery:
    """Per episode of `episodes_q` (a subquery with customer_id, lost_on, at_risk_on, reactivated_on, one row per
    episode): owner_rep_id, reactivated_on, the attempt counts, last_attempt_on and reactivated_within_90_days
    (0/1). Episodes without attempts keep their row with zeros."""
    e, c, i = episodes_q, customers_t, interactions_t
    start = sa.func.coalesce(e.c.at_risk_on, e.c.lost_on)
    end = sa.func.coalesce(e.c.reactivated_on, p_date(today))
    attempt = sa.and_(i.c.customer_id == e.c.customer_id, i.c.occurred_at >= start, i.c.occurred_at <= end)
    before = i.c.occurred_at <= e.c.lost_on
    after = i.c.occurred_at > e.c.lost_on
    # NULL = NULL is not true: an interaction without a rep, or a customer without an owner, is never "by owner"
    by_owner = i.c.rep_id == c.c.owner_rep_id

    def count_where(cond: Any, label: str) -> Any:
        return sa.func.count(sa.case((cond, p_int(1)))).label(label)

    counted = (sa.select(e.c.customer_id, e.c.lost_on, e.c.reactivated_on, c.c.owner_rep_id,
                         count_where(before, "attempts_before"),
                         count_where(sa.and_(before, by_owner), "attempts_before_by_owner"),
                         count_where(after, "attempts_after"),
                         count_where(sa.and_(after, by_owner), "attempts_after_by_owner"),
                         sa.func.max(i.c.occurred_at).label("last_attempt_on"))
               .select_from(e.join(c, c.c.id == e.c.customer_id).outerjoin(i, attempt))
               .group_by(e.c.customer_id, e.c.lost_on, e.c.reactivated_on, c.c.owner_rep_id)
               .subquery("episode_attempts"))
    won = sa.and_(counted.c.reactivated_on.is_not(None), counted.c.last_attempt_on.is_not(None),
                  counted.c.last_attempt_on >= DayShift(counted.c.reactivated_on, -REACTIVATION_DAYS))
    return sa.select(counted, sa.case((won, p_int(1)), else_=p_int(0)).label("reactivated_within_90_days")
                     ).subquery("episode_win_back")


def win_back_for_episodes(conn: Connection, episodes_q: sa.FromClause,
                          today: Optional[date] = None) -> dict[tuple[int, date], EpisodeWinBack]:
    """The attempts of each episode in `episodes_q` (e.g. one page of domain.loss_history.episodes: columns
    customer_id, lost_on, at_risk_on, reactivated_on), keyed by (customer_id, lost_on). `today` (default: the
    data's today) ends the "after" window of episodes still lost."""
    today = today if today is not None else data_today(conn)
    per = attempts_per_episode(episodes_q, today)
    return {(r.customer_id, r.lost_on): EpisodeWinBack(
                customer_id=r.customer_id, lost_on=r.lost_on, attempts_before=r.attempts_before,
                attempts_before_by_owner=r.attempts_before_by_owner, attempts_after=r.attempts_after,
                attempts_after_by_owner=r.attempts_after_by_owner, last_attempt_on=r.last_attempt_on,
                reactivated_within_90_days=bool(r.reactivated_within_90_days))
            for r in conn.execute(sa.select(per))}


def win_back_by_rep(bind: Engine | Connection, rules: LossRules, start: date, end: date,
                    today: date) -> list[RepWinBack]:
    """Per owner rep, over the customers with a loss episode whose loss date is in [start, end]: how many were
    lost, with and without any attempt, reactivated within 90 days after one, and the attempts made. A customer
    lost more than once in the period counts once (with an attempt if any of its episodes had one). The most
    customers lost first; customers without an owner in one row (rep_id None)."""
    per_episode = attempts_per_episode(episodes(rules, start, end), today)
    p = per_episode.c
    per_customer = (sa.select(p.customer_id, sa.func.max(p.owner_rep_id).label("rep_id"),
                              sa.func.sum(p.attempts_before + p.attempts_after).label("attempts"),
                              sa.func.max(p.reactivated_within_90_days).label("won"))
                    .group_by(p.customer_id).subquery("customer_win_back"))
    k = per_customer.c
    with_attempt = sa.func.count(sa.case((k.attempts > p_int(0), p_int(1))))
    lost = sa.func.count()
    stmt = (sa.select(k.rep_id, lost.label("lost_customers"), with_attempt.label("with_attempt"),
                      sa.func.sum(k.won).label("won"), sa.func.sum(k.attempts).label("attempts"))
            .group_by(k.rep_id)
            .order_by(lost.desc(), sa.case((k.rep_id.is_(None), p_int(1)), else_=p_int(0)), k.rep_id))
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            rows = conn.execute(stmt).fetchall()
    else:
        rows = bind.execute(stmt).fetchall()
    return [RepWinBack(rep_id=r.rep_id, lost_customers=r.lost_customers, with_attempt=r.with_attempt,
                       without_attempt=r.lost_customers - r.with_attempt,
                       reactivated_within_90_days_of_attempt=int(r.won), attempts=int(r.attempts))
            for r in rows]
