"""Who is being lost, and why: one row per lost customer, computed set-based inside the database.

For each customer whose stored status is `lost` (or another status asked for): when the loss was recorded, the
tier the customer had before it, the revenue and margin it brought in the 365 days up to its last order, the
complaints still open or overdue, the late deliveries of that year, and whether anyone tried to win it back
after the last order. Every sub-query groups by customer id and joins on customer id only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterable, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.models import (Complaint, Customer, CustomerEvaluation, Delivery, Interaction, Order, TierChange)
from domain.record_flags import record_flag
from rules.to_sql import DaysBetween

customers_t = Customer.__table__
evals_t = CustomerEvaluation.__table__
orders_t = Order.__table__
complaints_t = Complaint.__table__
deliveries_t = Delivery.__table__
interactions_t = Interaction.__table__
changes_t = TierChange.__table__
YEAR_DAYS = 365


@dataclass(frozen=True)
class LossEpisode:
    customer_id: int
    external_id: str
    name: str
    region: Optional[str]
    status: str
    as_of: date  # the evaluation the status comes from
    lost_on: Optional[date]  # as_of of the run that moved the customer to this status; None: so since its first run
    tier_before: Optional[str]  # the tier it had when it was lost (its current tier if it never moved)
    last_order_at: Optional[date]
    revenue_lost: float  # revenue in the 365 days up to the last order: the yearly business that went away
    margin_lost: Optional[float]  # the same for margin; None when no margin of that year is known
    orders_last_year: int
    open_complaints: int
    overdue_complaints: int
    late_deliveries: int  # in the 365 days up to the last order
    deliveries: int
    win_back_attempts: int  # win-back interactions after the last order
    last_win_back_at: Optional[date]
    win_back_by_owner: bool  # at least one of them by the customer's own rep


def _p(value, type_) -> sa.BindParameter:
    return sa.bindparam(None, value, type_=type_)


def loss_query(as_of: date, status: str = "lost") -> sa.Select:
    """The report's SELECT for customers whose stored status is `status`, as of the stored evaluation `as_of`."""
    at = _p(as_of, sa.Date)
    last_order = (sa.select(orders_t.c.customer_id, sa.func.max(orders_t.c.ordered_at).label("last_order_at"))
                  .where(orders_t.c.ordered_at <= at).group_by(orders_t.c.customer_id).subquery("last_order"))
    lost = (sa.select(evals_t.c.customer_id, evals_t.c.status, evals_t.c.tier, evals_t.c.as_of,
                      last_order.c.last_order_at)
            .select_from(evals_t.outerjoin(last_order, last_order.c.customer_id == evals_t.c.customer_id))
            .where(evals_t.c.status == _p(status, sa.String)).subquery("lost"))

    in_last_year = DaysBetween(lost.c.last_order_at, orders_t.c.ordered_at) < _p(YEAR_DAYS, sa.Integer)
    year = (sa.select(orders_t.c.customer_id,
                      sa.func.sum(orders_t.c.amount).label("revenue_lost"),
                      sa.func.sum(orders_t.c.margin).label("margin_lost"),
                      sa.func.count().label("orders_last_year"))
            .select_from(orders_t.join(lost, lost.c.customer_id == orders_t.c.customer_id))
            .where(orders_t.c.ordered_at <= lost.c.last_order_at, in_last_year)
            .group_by(orders_t.c.customer_id).subquery("last_year"))

    # record flags as of the evaluation date (domain.record_flags): still pending = open and overdue
    is_open = record_flag("complaint", "open").sql(complaints_t, at)
    is_pending = sa.and_(is_open, record_flag("complaint", "overdue").sql(complaints_t, at))
    complaints = (sa.select(complaints_t.c.customer_id,
                            sa.func.count(sa.case((is_open, 1))).label("open_complaints"),
                            sa.func.count(sa.case((is_pending, 1))).label("overdue_complaints"))
                  .where(complaints_t.c.opened_at <= at)
                  .group_by(complaints_t.c.customer_id).subquery("complaints_now"))

    late = record_flag("delivery", "late").sql(deliveries_t, at)
    delivery_year = sa.and_(deliveries_t.c.promised_at <= at,
                            DaysBetween(lost.c.last_order_at, deliveries_t.c.promised_at) < _p(YEAR_DAYS, sa.Integer))
    deliveries = (sa.select(deliveries_t.c.customer_id,
                            sa.func.count(sa.case((late, 1))).label("late_deliveries"),
                            sa.func.count().label("deliveries"))
                  .select_from(deliveries_t.join(lost, lost.c.customer_id == deliveries_t.c.customer_id))
                  .where(delivery_year).group_by(deliveries_t.c.customer_id).subquery("deliveries_year"))

    owner = (sa.select(customers_t.c.id, customers_t.c.owner_rep_id).subquery("owner"))
    after_last = sa.or_(lost.c.last_order_at.is_(None), interactions_t.c.occurred_at > lost.c.last_order_at)
    win_back = (sa.select(interactions_t.c.customer_id,
                          sa.func.count().label("win_back_attempts"),
                          sa.func.max(interactions_t.c.occurred_at).label("last_win_back_at"),
                          sa.func.max(sa.case((interactions_t.c.rep_id == owner.c.owner_rep_id, 1), else_=0))
                          .label("by_owner"))
                .select_from(interactions_t.join(lost, lost.c.customer_id == interactions_t.c.customer_id)
                             .join(owner, owner.c.id == interactions_t.c.customer_id))
                .where(record_flag("interaction", "win_back").sql(interactions_t, at),
                       interactions_t.c.occurred_at <= at,
                       after_last)
                .group_by(interactions_t.c.customer_id).subquery("win_back"))

    # the newest move into this status, and the tier the customer had at that moment
    moved = (sa.select(changes_t.c.customer_id, sa.func.max(changes_t.c.id).label("change_id"))
             .where(changes_t.c.kind == "status", changes_t.c.new_value == _p(status, sa.String),
                    changes_t.c.as_of <= at)
             .group_by(changes_t.c.customer_id).subquery("moved"))
    move_row = changes_t.alias("move_row")
    loss_run = sa.func.coalesce(move_row.c.run_id, 0)
    tier_then = changes_t.alias("tier_then")
    tier_at_loss = (sa.select(tier_then.c.new_value)  # the last tier move before the run that lost the customer
                    .where(tier_then.c.customer_id == lost.c.customer_id, tier_then.c.kind == "tier",
                           tier_then.c.run_id < loss_run)
                    .order_by(tier_then.c.id.desc()).limit(1).scalar_subquery())
    tier_after = changes_t.alias("tier_after")
    tier_left = (sa.select(tier_after.c.old_value)  # else: the tier it left in that run or a later one
                 .where(tier_after.c.customer_id == lost.c.customer_id, tier_after.c.kind == "tier",
                        tier_after.c.run_id >= loss_run)
                 .order_by(tier_after.c.id.asc()).limit(1).scalar_subquery())

    joined = (lost.join(customers_t, customers_t.c.id == lost.c.customer_id)
              .outerjoin(year, year.c.customer_id == lost.c.customer_id)
              .outerjoin(complaints, complaints.c.customer_id == lost.c.customer_id)
              .outerjoin(deliveries, deliveries.c.customer_id == lost.c.customer_id)
              .outerjoin(win_back, win_back.c.customer_id == lost.c.customer_id)
              .outerjoin(moved, moved.c.customer_id == lost.c.customer_id)
              .outerjoin(move_row, move_row.c.id == moved.c.change_id))
    zero = sa.literal(0)
    return (sa.select(
        lost.c.customer_id, customers_t.c.external_id, customers_t.c.name, customers_t.c.region, lost.c.status,
        lost.c.as_of, move_row.c.as_of.label("lost_on"),
        sa.func.coalesce(tier_at_loss, tier_left, lost.c.tier).label("tier_before"),
        lost.c.last_order_at,
        sa.func.coalesce(year.c.revenue_lost, zero).label("revenue_lost"), year.c.margin_lost,
        sa.func.coalesce(year.c.orders_last_year, zero).label("orders_last_year"),
        sa.func.coalesce(complaints.c.open_complaints, zero).label("open_complaints"),
        sa.func.coalesce(complaints.c.overdue_complaints, zero).label("overdue_complaints"),
        sa.func.coalesce(deliveries.c.late_deliveries, zero).label("late_deliveries"),
        sa.func.coalesce(deliveries.c.deliveries, zero).label("deliveries"),
        sa.func.coalesce(win_back.c.win_back_attempts, zero).label("win_back_attempts"),
        win_back.c.last_win_back_at,
        sa.func.coalesce(win_back.c.by_owner, zero).label("win_back_by_owner"),
    ).select_from(joined))


def _episode(row) -> LossEpisode:
    m = dict(row._mapping)
    m["win_back_by_owner"] = bool(m["win_back_by_owner"])
    m["revenue_lost"] = float(m["revenue_lost"])
    return LossEpisode(**m)


def stored_as_of(engine: Engine) -> Optional[date]:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(evals_t.c.as_of))).scalar()


def _filtered(as_of: date, status: str, customer_ids: Optional[Iterable[int]], tier_before: Optional[str],
              region: Optional[str], win_back: Optional[bool]) -> tuple[sa.Subquery, list]:
    report = loss_query(as_of, status).subquery("loss")
    where = []
    if customer_ids is not None:
        where.append(report.c.customer_id.in_(list(customer_ids)))
    if tier_before is not None:
        where.append(report.c.tier_before == tier_before)
    if region is not None:
        where.append(report.c.region == region)
    if win_back is not None:
        where.append((report.c.win_back_attempts > 0) if win_back else (report.c.win_back_attempts == 0))
    return report, where


def loss_episodes(engine: Engine, *, status: str = "lost", customer_ids: Optional[Iterable[int]] = None,
                  tier_before: Optional[str] = None, region: Optional[str] = None,
                  win_back: Optional[bool] = None, limit: Optional[int] = None,
                  after: Optional[tuple[float, int]] = None) -> list[LossEpisode]:
    """Lost customers, the biggest losses first (revenue lost, then customer id), from a keyset `after`."""
    as_of = stored_as_of(engine)
    if as_of is None:
        return []
    report, where = _filtered(as_of, status, customer_ids, tier_before, region, win_back)
    q = sa.select(report).where(*where)
    if after is not None:
        revenue, cid = after
        q = q.where(sa.or_(report.c.revenue_lost < revenue,
                           sa.and_(report.c.revenue_lost == revenue, report.c.customer_id < cid)))
    q = q.order_by(report.c.revenue_lost.desc(), report.c.customer_id.desc())
    if limit is not None:
        q = q.limit(limit)
    with engine.connect() as conn:
        return [_episode(r) for r in conn.execute(q)]


def loss_count(engine: Engine, *, status: str = "lost", tier_before: Optional[str] = None,
               region: Optional[str] = None, win_back: Optional[bool] = None) -> int:
    as_of = stored_as_of(engine)
    if as_of is None:
        return 0
    report, where = _filtered(as_of, status, None, tier_before, region, win_back)
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(report).where(*where)).scalar_one()


@dataclass(frozen=True)
class LossByTier:
    tier_before: Optional[str]
    customers: int
    revenue_lost: float
    margin_lost: Optional[float]
    with_open_complaints: int
    with_late_deliveries: int
    win_back_attempted: int


def loss_summary(engine: Engine, *, status: str = "lost") -> list[LossByTier]:
    """Per tier the customers had before: how many were lost, the revenue that went with them, and why."""
    as_of = stored_as_of(engine)
    if as_of is None:
        return []
    r = loss_query(as_of, status).subquery("loss")
    q = (sa.select(r.c.tier_before, sa.func.count(), sa.func.coalesce(sa.func.sum(r.c.revenue_lost), 0),
                   sa.func.sum(r.c.margin_lost),
                   sa.func.count(sa.case((r.c.open_complaints > 0, 1))),
                   sa.func.count(sa.case((r.c.late_deliveries > 0, 1))),
                   sa.func.count(sa.case((r.c.win_back_attempts > 0, 1))))
         .group_by(r.c.tier_before).order_by(sa.func.sum(r.c.revenue_lost).desc()))
    with engine.connect() as conn:
        return [LossByTier(t, n, float(rev), None if mar is None else float(mar), oc, ld, wb)
                for t, n, rev, mar, oc, ld, wb in conn.execute(q)]
