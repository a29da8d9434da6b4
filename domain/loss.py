"""Lost customers of any period: when, how, at what level, at what cost and the signs of why, set-based.

Built on the loss history (domain.loss_history.episodes): each episode of the period gets, in one query,
- its cost: revenue and margin of the 12 months (the rule language's `12m`) up to the last order before the loss;
- its level: the tier in force on the loss date (tier_at_loss) and whether it was a first-time buyer;
- the signs of why, as of the loss date: complaints and deliveries of the 12 months up to it, with the record
  flags of domain.record_flags read on that day (overdue, still open, late).
Every aggregate joins the episodes on customer id only and groups by (customer, loss date): a customer lost twice
in a period is two episodes. The records behind the counts (external ids, categories, delay reasons) and the
tier changes before the loss are fetched for a page of episodes at once (episode_details).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.loss_history import LossRules, episodes
from domain.models import (Complaint, Customer, CustomerEvaluation, Delivery, EvaluationRun, Order, SalesRep,
                           TierChange)
from domain.record_flags import record_flag
from rules.to_sql import p_date
from rules.to_sql_dated import window_start_sql

customers_t = Customer.__table__
orders_t = Order.__table__
complaints_t = Complaint.__table__
deliveries_t = Delivery.__table__
changes_t = TierChange.__table__
runs_t = EvaluationRun.__table__
evaluations_t = CustomerEvaluation.__table__
reps_t = SalesRep.__table__
YEAR = (12, "m")  # the cost and evidence window: the rule language's `12m`
HOWS = ("BLOCKED", "MANUAL", "RULE")


@dataclass(frozen=True)
class LossFilter:
    how: Optional[str] = None
    tier_at_loss: Optional[str] = None
    region: Optional[str] = None
    owner: Optional[str] = None  # the owner rep's external id


@dataclass(frozen=True)
class LossEpisode:
    customer_id: int
    external_id: str
    name: str
    region: Optional[str]
    lost_on: date
    how: str                     # BLOCKED / MANUAL / RULE
    rule_line: Optional[int]     # RULE: the status rule that made the customer lost
    reason: Optional[str]        # MANUAL: the reason given
    reactivated_on: Optional[date]
    end_kind: Optional[str]      # ORDER / REACTIVATED; None while still lost
    reactivation_note: Optional[str]
    last_order_at: Optional[date]
    at_risk_on: Optional[date]
    tier_at_loss: Optional[str]
    orders_before_loss: int
    revenue_lost: float          # the 12 months up to the last order before the loss
    margin_lost: Optional[float]  # None when the margin of any of those orders is unknown
    orders_last_year: int
    complaints: int              # the 12 months up to the loss date, flags read on it
    overdue_complaints: int
    open_complaints: int
    deliveries: int
    late_deliveries: int
    rule_text: Optional[str] = None

    @property
    def key(self) -> tuple[int, date]:
        return self.customer_id, self.lost_on


def _year_before(end: Any) -> Any:
    return window_start_sql(YEAR[0], YEAR[1], end)


def tier_at_loss(customer_id: Any, lost_on: Any) -> Any:
    """The tier in force on the loss date, from the change log: the newest change effective on or before it among
    those recorded by then (the rule set active then decided it); when nothing was recorded by then (history
    imported and evaluated later), the newest change effective by then. A customer's first tier is not a change
    (the log holds moves), so with no change by then it is the tier it left at its first move after the loss, or,
    never moved since, its current tier -- when an evaluation on or before the loss date saw the customer (as
    domain.tiers_in_force defines the tier in force)."""
    t = changes_t

    def newest(*extra: Any) -> Any:
        return (sa.select(t.c.new_value)
                .where(t.c.customer_id == customer_id, t.c.kind == "tier", t.c.effective_on <= lost_on, *extra)
                .order_by(t.c.effective_on.desc(), t.c.id.desc()).limit(1).scalar_subquery())

    left_after = (sa.select(t.c.old_value)
                  .where(t.c.customer_id == customer_id, t.c.kind == "tier", t.c.effective_on > lost_on)
                  .order_by(t.c.effective_on, t.c.id).limit(1).scalar_subquery())
    moved_after = sa.exists().where(t.c.customer_id == customer_id, t.c.kind == "tier", t.c.effective_on > lost_on)
    c, r, e = customers_t, runs_t, evaluations_t
    seen_by_then = sa.exists().where(c.c.id == customer_id, r.c.as_of <= lost_on, r.c.as_of >= c.c.created_at)
    current = sa.select(e.c.tier).where(e.c.customer_id == customer_id).scalar_subquery()
    # two lookups, not one ordered by "recorded by then" first: SQLite cannot order by an outer column there
    return sa.func.coalesce(newest(t.c.as_of <= lost_on), newest(),
                            sa.case((moved_after, left_after), (seen_by_then, current)))


def loss_query(rules: LossRules, start: date, end: date, customer_ids: Optional[list[int]] = None) -> sa.Select:
    """One row per episode with a loss date in [start, end], with its cost, level and signs of why."""
    e = episodes(rules, start, end, customer_ids)
    key = [e.c.customer_id, e.c.lost_on]
    o = orders_t
    in_year = sa.and_(o.c.ordered_at <= e.c.last_order_at, o.c.ordered_at >= _year_before(e.c.last_order_at))
    orders = (sa.select(*key,
                        sa.func.count(o.c.id).label("orders_before_loss"),
                        sa.func.count(sa.case((in_year, o.c.id))).label("orders_last_year"),
                        sa.func.sum(sa.case((in_year, o.c.amount))).label("revenue_lost"),
                        # a margin unknown for one order leaves the year's margin unknown, not smaller
                        sa.case((sa.func.count(sa.case((sa.and_(in_year, o.c.margin.is_(None)), 1))) > 0, None),
                                else_=sa.func.sum(sa.case((in_year, o.c.margin)))).label("margin_lost"))
              .select_from(e.join(o, sa.and_(o.c.customer_id == e.c.customer_id, o.c.ordered_at <= e.c.lost_on)))
              .group_by(*key).subquery("episode_orders"))

    k = complaints_t
    overdue = record_flag("complaint", "overdue").sql(k, e.c.lost_on)
    still_open = record_flag("complaint", "open").sql(k, e.c.lost_on)
    complaints = (sa.select(*key, sa.func.count(k.c.id).label("complaints"),
                            sa.func.count(sa.case((overdue, k.c.id))).label("overdue_complaints"),
                            sa.func.count(sa.case((still_open, k.c.id))).label("open_complaints"))
                  .select_from(e.join(k, sa.and_(k.c.customer_id == e.c.customer_id, k.c.opened_at <= e.c.lost_on,
                                                 k.c.opened_at >= _year_before(e.c.lost_on))))
                  .group_by(*key).subquery("episode_complaints"))

    d = deliveries_t
    late = record_flag("delivery", "late").sql(d, e.c.lost_on)
    deliveries = (sa.select(*key, sa.func.count(d.c.id).label("deliveries"),
                            sa.func.count(sa.case((late, d.c.id))).label("late_deliveries"))
                  .select_from(e.join(d, sa.and_(d.c.customer_id == e.c.customer_id, d.c.promised_at <= e.c.lost_on,
                                                 d.c.promised_at >= _year_before(e.c.lost_on))))
                  .group_by(*key).subquery("episode_deliveries"))

    def on(sub):
        return sa.and_(sub.c.customer_id == e.c.customer_id, sub.c.lost_on == e.c.lost_on)

    c = customers_t
    zero = sa.literal(0)
    joined = (e.join(c, c.c.id == e.c.customer_id)
              .outerjoin(orders, on(orders)).outerjoin(complaints, on(complaints)).outerjoin(deliveries, on(deliveries)))
    return sa.select(
        e.c.customer_id, c.c.external_id, c.c.name, c.c.region, c.c.owner_rep_id,
        e.c.lost_on, e.c.how, e.c.rule_line, e.c.reason, e.c.reactivated_on, e.c.end_kind, e.c.reactivation_note,
        e.c.last_order_at, e.c.at_risk_on,
        tier_at_loss(e.c.customer_id, e.c.lost_on).label("tier_at_loss"),
        sa.func.coalesce(orders.c.orders_before_loss, zero).label("orders_before_loss"),
        sa.func.coalesce(orders.c.revenue_lost, zero).label("revenue_lost"), orders.c.margin_lost,
        sa.func.coalesce(orders.c.orders_last_year, zero).label("orders_last_year"),
        sa.func.coalesce(complaints.c.complaints, zero).label("complaints"),
        sa.func.coalesce(complaints.c.overdue_complaints, zero).label("overdue_complaints"),
        sa.func.coalesce(complaints.c.open_complaints, zero).label("open_complaints"),
        sa.func.coalesce(deliveries.c.deliveries, zero).label("deliveries"),
        sa.func.coalesce(deliveries.c.late_deliveries, zero).label("late_deliveries"),
    ).select_from(joined)


def _filtered(rules: LossRules, start: date, end: date, f: LossFilter,
              customer_ids: Optional[list[int]] = None) -> tuple[sa.Subquery, list]:
    report = loss_query(rules, start, end, customer_ids).subquery("loss")
    where = []
    if f.how is not None:
        where.append(report.c.how == f.how)
    if f.tier_at_loss is not None:
        where.append(report.c.tier_at_loss == f.tier_at_loss)
    if f.region is not None:
        where.append(report.c.region == f.region)
    if f.owner is not None:
        owner_id = sa.select(reps_t.c.id).where(reps_t.c.external_id == f.owner).scalar_subquery()
        where.append(report.c.owner_rep_id == owner_id)
    return report, where


def _episode(rules: LossRules, row: Any) -> LossEpisode:
    m = dict(row._mapping)
    m.pop("owner_rep_id", None)
    m.pop("kept_count", None)
    m["revenue_lost"] = float(m["revenue_lost"])
    m["margin_lost"] = None if m["margin_lost"] is None else float(m["margin_lost"])
    m["rule_text"] = rules.text(m["rule_line"])
    return LossEpisode(**m)


PageKey = tuple[float, int, date]  # (revenue lost, customer id, loss date): biggest loss first


def _biggest_first(rows: sa.Subquery, limit: Optional[int], after: Optional[PageKey]) -> sa.Select:
    """The rows biggest revenue lost first (then customer id, loss date), from a keyset `after`."""
    r = rows.c
    q = sa.select(rows)
    if after is not None:
        revenue, cid, lost_on = after
        q = q.where(sa.or_(r.revenue_lost < revenue,
                           sa.and_(r.revenue_lost == revenue, r.customer_id < cid),
                           sa.and_(r.revenue_lost == revenue, r.customer_id == cid, r.lost_on < lost_on)))
    q = q.order_by(r.revenue_lost.desc(), r.customer_id.desc(), r.lost_on.desc())
    return q if limit is None else q.limit(limit)


def lost_customers(engine: Engine, rules: LossRules, start: date, end: date, f: LossFilter = LossFilter(), *,
                   limit: Optional[int] = None, after: Optional[PageKey] = None,
                   customer_ids: Optional[list[int]] = None) -> list[LossEpisode]:
    """The episodes lost in [start, end], the biggest revenue lost first (then customer id, loss date), from a
    keyset `after`."""
    report, where = _filtered(rules, start, end, f, customer_ids)
    with engine.connect() as conn:
        rows = conn.execute(_biggest_first(sa.select(report).where(*where).subquery("kept"), limit, after))
        return [_episode(rules, row) for row in rows]


def lost_page(engine: Engine, rules: LossRules, start: date, end: date, f: LossFilter = LossFilter(), *,
              limit: int, after: Optional[PageKey] = None) -> tuple[list[LossEpisode], int]:
    """A page of lost_customers and the number of episodes the filter keeps, from ONE derivation of the loss
    history: the count is a window over the kept rows, taken before the cursor applies. (Only a page past the
    end, which has no row to carry it, counts again.)"""
    report, where = _filtered(rules, start, end, f)
    kept = sa.select(report, sa.func.count().over().label("kept_count")).where(*where).subquery("kept")
    with engine.connect() as conn:
        rows = conn.execute(_biggest_first(kept, limit, after)).all()
    if not rows:
        return [], lost_count(engine, rules, start, end, f)
    total = int(rows[0].kept_count)
    return [_episode(rules, row) for row in rows], total


def lost_count(engine: Engine, rules: LossRules, start: date, end: date, f: LossFilter = LossFilter()) -> int:
    report, where = _filtered(rules, start, end, f)
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(report).where(*where)).scalar_one()


@dataclass(frozen=True)
class LossByTier:
    tier_at_loss: Optional[str]
    customers: int           # distinct customers lost (a customer lost twice counts once)
    episodes: int
    revenue_lost: float
    margin_lost: Optional[float]
    blocked: int
    manual: int
    rule: int
    with_overdue_complaints: int
    with_late_deliveries: int
    reactivated: int


def loss_summary(engine: Engine, rules: LossRules, start: date, end: date) -> list[LossByTier]:
    """Per tier at loss: the episodes of the period, the revenue and margin that went with them, how they were
    lost and the signs of why; the biggest revenue lost first."""
    r = loss_query(rules, start, end).subquery("loss")
    q = (sa.select(r.c.tier_at_loss, sa.func.count(sa.distinct(r.c.customer_id)), sa.func.count(),
                   sa.func.coalesce(sa.func.sum(r.c.revenue_lost), 0), sa.func.sum(r.c.margin_lost),
                   *(sa.func.count(sa.case((r.c.how == how, 1))) for how in HOWS),
                   sa.func.count(sa.case((r.c.overdue_complaints > 0, 1))),
                   sa.func.count(sa.case((r.c.late_deliveries > 0, 1))),
                   sa.func.count(r.c.reactivated_on))
         .group_by(r.c.tier_at_loss)
         .order_by(sa.func.coalesce(sa.func.sum(r.c.revenue_lost), 0).desc(), r.c.tier_at_loss))
    with engine.connect() as conn:
        return [LossByTier(t, cust, eps, float(rev), None if mar is None else float(mar), b, m, ru, oc, ld, re)
                for t, cust, eps, rev, mar, b, m, ru, oc, ld, re in conn.execute(q)]


# ---------- the records behind a page of episodes ----------


@dataclass
class EpisodeDetails:
    complaints: list[dict] = field(default_factory=list)   # external_id, opened_at, category, overdue, open
    deliveries: list[dict] = field(default_factory=list)   # external_id, promised_at, delivered_at, late, reason
    tier_changes: list[dict] = field(default_factory=list)  # effective_on, old_value, new_value, cause


def _page(keys: Iterable[tuple[int, date]]) -> sa.Subquery:
    rows = [sa.select(sa.literal(cid, sa.Integer).label("customer_id"), sa.literal(day, sa.Date).label("lost_on"))
            for cid, day in keys]
    return sa.union_all(*rows).subquery("page") if len(rows) > 1 else rows[0].subquery("page")


def episode_details(engine: Engine, keys: list[tuple[int, date]]) -> dict[tuple[int, date], EpisodeDetails]:
    """For each (customer id, loss date): the complaints and deliveries of the 12 months up to the loss with
    their flags on that day, and the tier changes effective in the 12 months before it; three queries per page."""
    out = {key: EpisodeDetails() for key in keys}
    if not keys:
        return out
    p = _page(keys)
    k, d, t = complaints_t, deliveries_t, changes_t
    complaints = (sa.select(p.c.customer_id, p.c.lost_on, k.c.external_id, k.c.opened_at, k.c.category,
                            record_flag("complaint", "overdue").sql(k, p.c.lost_on).label("overdue"),
                            record_flag("complaint", "open").sql(k, p.c.lost_on).label("open"))
                  .select_from(p.join(k, sa.and_(k.c.customer_id == p.c.customer_id, k.c.opened_at <= p.c.lost_on,
                                                 k.c.opened_at >= _year_before(p.c.lost_on))))
                  .order_by(p.c.customer_id, p.c.lost_on, k.c.opened_at, k.c.id))
    known_delivery = sa.case((d.c.delivered_at <= p.c.lost_on, d.c.delivered_at))  # later: not known then
    deliveries = (sa.select(p.c.customer_id, p.c.lost_on, d.c.external_id, d.c.promised_at,
                            known_delivery.label("delivered_at"), d.c.delay_reason, record_flag("delivery", "late").sql(d, p.c.lost_on).label("late"))
                  .select_from(p.join(d, sa.and_(d.c.customer_id == p.c.customer_id, d.c.promised_at <= p.c.lost_on,
                                                 d.c.promised_at >= _year_before(p.c.lost_on))))
                  .order_by(p.c.customer_id, p.c.lost_on, d.c.promised_at, d.c.id))
    changes = (sa.select(p.c.customer_id, p.c.lost_on, t.c.effective_on, t.c.old_value, t.c.new_value, t.c.cause)
               .select_from(p.join(t, sa.and_(t.c.customer_id == p.c.customer_id, t.c.kind == "tier",
                                              t.c.effective_on <= p.c.lost_on,
                                              t.c.effective_on >= _year_before(p.c.lost_on))))
               .order_by(p.c.customer_id, p.c.lost_on, t.c.effective_on, t.c.id))
    with engine.connect() as conn:
        for row in conn.execute(complaints):
            m = row._mapping
            out[(m["customer_id"], m["lost_on"])].complaints.append(
                dict(external_id=m["external_id"], opened_at=m["opened_at"], category=m["category"],
                     overdue=bool(m["overdue"]), open=bool(m["open"])))
        for row in conn.execute(deliveries):
            m = row._mapping
            out[(m["customer_id"], m["lost_on"])].deliveries.append(
                dict(external_id=m["external_id"], promised_at=m["promised_at"], delivered_at=m["delivered_at"],
                     late=bool(m["late"]), delay_reason=m["delay_reason"]))
        for row in conn.execute(changes):
            m = row._mapping
            out[(m["customer_id"], m["lost_on"])].tier_changes.append(
                dict(effective_on=m["effective_on"], old_value=m["old_value"], new_value=m["new_value"],
                     cause=m["cause"]))
    return out


def episode_win_back(engine: Engine, page: list[LossEpisode]) -> dict[tuple[int, date], Any]:
    """The win-back attempts of a page of episodes (domain.win_back), keyed like the episodes: one statement."""
    from domain.win_back import win_back_for_episodes

    if not page:
        return {}
    rows = [sa.select(sa.literal(e.customer_id, sa.Integer).label("customer_id"),
                      sa.literal(e.lost_on, sa.Date).label("lost_on"),
                      sa.literal(e.at_risk_on, sa.Date).label("at_risk_on"),
                      sa.literal(e.reactivated_on, sa.Date).label("reactivated_on")) for e in page]
    q = sa.union_all(*rows).subquery("page") if len(rows) > 1 else rows[0].subquery("page")
    with engine.connect() as conn:
        return win_back_for_episodes(conn, q)
