"""The loss history: every loss episode of every customer, derived from the data for any period, set-based.

A loss episode starts on its loss date and ends on reactivation (the customer's next order) or is still open:
- BLOCKED: the business stopped trading with the customer; the loss date is `blocked_from`;
- RULE: the active rule set's status list makes the customer `lost` (the first-match list decides, so a rule
  before the `lost` rules, e.g. `unless seasonal` or a `prospect` rule, keeps a customer out); the loss date is the
  first day the data known on that day satisfied it (`no order 90d`: the day the last order left the window),
  whether or not an evaluation ran then;
- MANUAL: a `markCustomerLost` mark (domain.loss_marks), ended by `reactivateCustomer` or the next order.
The time between two consecutive orders (or before the first) is a gap; an episode that starts while an earlier one
of its gap is open is the same loss and is left out (on the same day BLOCKED, then MANUAL, then RULE), so a gap
holds one episode unless a manual loss was ended by hand and a rule loss starts after that.

How RULE losses are found without evaluating every day: a status can only change on a change day (a record
entering or leaving a window the status rules read, a record flag changing, `blocked` starting:
rules.change_days). Those days are generated as rows in SQL (rules.to_sql_dated.change_day_rows), each placed in
its gap by window functions over the customer's days, and the status list is evaluated on all of them in one query
(rules.to_sql_dated.status_on_days); the loss date of a gap is its first day with the status `lost`. Only gaps
still open after the period's first day are evaluated, so the cost follows the period, not the whole history.
Every step groups or partitions by customer id and joins on customer id only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Optional

import sqlalchemy as sa

from domain.data_date import FIRST_DAY
from domain.models import Customer, Order
from rules import nodes as n
from rules.change_days import reads
from rules.to_sql import p_date
from rules.to_sql_dated import change_day_rows, condition_on_days, status_on_days

customers_t = Customer.__table__
orders_t = Order.__table__

LOST = "lost"
AT_RISK = "at_risk"
# on the same day, the more definite cause names the episode
HOW_ORDER = {"BLOCKED": 0, "MANUAL": 1, "RULE": 2}
# an episode's columns, derived or stored (loss_episodes)
EPISODE_COLUMNS = ("customer_id", "lost_on", "how", "rule_line", "reason", "reactivated_on", "end_kind",
                   "reactivation_note", "last_order_at", "at_risk_on")


@dataclass(frozen=True)
class LossRules:
    """What the status list says about losing a customer: the indexes of its `lost` and `at_risk` rules."""

    ruleset: n.RuleSet
    lost: tuple[int, ...]
    at_risk: tuple[int, ...]
    # True: read the history kept in loss_episodes (domain.loss_store.prepared says when it is current for these
    # rules); False: derive it from the records
    stored: bool = False

    @classmethod
    def of(cls, ruleset: n.RuleSet) -> "LossRules":
        labels = [r.label for r in ruleset.statuses]
        return cls(ruleset, tuple(i for i, x in enumerate(labels) if x == LOST),
                   tuple(i for i, x in enumerate(labels) if x == AT_RISK))

    def line(self, index: int) -> int:
        return self.ruleset.statuses[index].pos.line

    def text(self, line: Optional[int]) -> Optional[str]:
        lines = self.ruleset.source.splitlines()
        return lines[line - 1].strip() if line and 1 <= line <= len(lines) else None


# ---------- the days to look at, placed in their gaps ----------


def _only(table: Any, customer_ids: Optional[list[int]], column: str = "customer_id") -> list[Any]:
    return [] if customer_ids is None else [table.c[column].in_(list(customer_ids))]


def _ordered_days() -> sa.Select:
    return sa.select(orders_t.c.customer_id, orders_t.c.ordered_at.label("day"), sa.literal(1).label("is_order"))


def candidate_days(condition_reads, open_after: date, up_to: date,
                   customer_ids: Optional[list[int]] = None) -> sa.CTE:
    """(customer_id, day, gap_key, last_order_at, next_order_at): every day up to `up_to` on which a condition
    with these reads can change, the day each customer was created and its order days, in the gaps still open
    after `open_after` (no order since, or the next order after it). gap_key is the gap's last order day
    (FIRST_DAY before the first order)."""
    rows = [_ordered_days(),
            sa.select(customers_t.c.id.label("customer_id"), customers_t.c.created_at.label("day"),
                      sa.literal(0).label("is_order"))]
    rows += [q.add_columns(sa.literal(0).label("is_order")) for q in change_day_rows(condition_reads)]
    every = sa.union_all(*rows).subquery("every_day")
    # the first gap still open after open_after begins at the customer's last order on or before it: days before
    # that are in gaps closed before the period, left out before anything is sorted or evaluated
    o = orders_t
    first_open = (sa.select(o.c.customer_id, sa.func.max(o.c.ordered_at).label("gap_start"))
                  .where(o.c.ordered_at <= p_date(open_after), *_only(o, customer_ids))
                  .group_by(o.c.customer_id).subquery("first_open_gap"))
    # orders after up_to still end a gap (the reactivation), but are not evaluated
    days = (sa.select(every.c.customer_id, every.c.day, sa.func.max(every.c.is_order).label("is_order"))
            .select_from(every.outerjoin(first_open, first_open.c.customer_id == every.c.customer_id))
            .where(sa.or_(every.c.day <= p_date(up_to), every.c.is_order == 1), *_only(every, customer_ids),
                   sa.or_(first_open.c.gap_start.is_(None), every.c.day >= first_open.c.gap_start))
            .group_by(every.c.customer_id, every.c.day).cte("change_days"))
    order_day = sa.case((days.c.is_order == 1, days.c.day))
    by_customer = dict(partition_by=days.c.customer_id, order_by=days.c.day)
    placed = sa.select(
        days.c.customer_id, days.c.day,
        sa.func.max(order_day).over(**by_customer, rows=(None, 0)).label("last_order_at"),
        sa.func.min(order_day).over(**by_customer, rows=(1, None)).label("next_order_at"),
    ).subquery("placed_days")
    return (sa.select(placed.c.customer_id, placed.c.day,
                      sa.func.coalesce(placed.c.last_order_at, p_date(FIRST_DAY)).label("gap_key"),
                      placed.c.last_order_at, placed.c.next_order_at)
            .where(placed.c.day <= p_date(up_to),
                   sa.or_(placed.c.next_order_at.is_(None), placed.c.next_order_at > p_date(open_after)))
            .cte("candidate_days"))


# ---------- the episodes ----------


def _first_days(judged: Any, hit: Any, extra: Optional[Any] = None) -> sa.Subquery:
    """Per gap: its first day on which `hit` holds (lost_on, with that day's row) and `extra`'s first day
    (at_risk_on). Window functions over each gap's rows: no join of derived tables."""
    j = judged.c
    gap = dict(partition_by=(j.customer_id, j.gap_key))
    cols = [judged, sa.func.min(sa.case((hit, j.day))).over(**gap).label("lost_on")]
    if extra is not None:
        cols.append(sa.func.min(sa.case((extra, j.day))).over(**gap).label("at_risk_on"))
    rows = sa.select(*cols).subquery("gap_days")
    return sa.select(rows).where(rows.c.day == rows.c.lost_on).subquery("gap_firsts")


def rule_episodes(rules: LossRules, open_after: date, up_to: date,
                  customer_ids: Optional[list[int]] = None) -> sa.Select:
    """RULE episodes of the gaps open after `open_after`, loss dates up to `up_to`: (customer_id, lost_on,
    last_order_at, next_order_at, rule_line, at_risk_on)."""
    statuses = rules.ruleset.statuses
    conditions = [r.condition for r in statuses if r.condition is not None]
    candidates = candidate_days(reads(rules.ruleset, conditions), open_after, up_to, customer_ids)
    # MATERIALIZED: status_index is read three times below (lost, at risk, the deciding line)
    judged = status_on_days(rules.ruleset, candidates).cte("judged").prefix_with("MATERIALIZED")
    idx = judged.c.status_index
    is_lost = idx.in_([sa.literal_column(str(i)) for i in rules.lost]) if rules.lost else sa.false()
    is_risk = idx.in_([sa.literal_column(str(i)) for i in rules.at_risk]) if rules.at_risk else sa.false()
    firsts = _first_days(judged, is_lost, is_risk)
    f = firsts.c
    line = sa.case(*((f.status_index == sa.literal_column(str(i)), sa.literal_column(str(rules.line(i))))
                     for i in rules.lost)) if rules.lost else sa.cast(sa.null(), sa.Integer)  # typed for UNION
    return sa.select(f.customer_id, f.lost_on, f.last_order_at, f.next_order_at, line.label("rule_line"),
                     sa.case((f.at_risk_on <= f.lost_on, f.at_risk_on)).label("at_risk_on"))


def condition_episodes(condition: Any, ruleset: n.RuleSet, open_after: date, up_to: date) -> sa.Select:
    """The episodes a loss condition alone would start (the backtest): per gap open after `open_after`, its first
    day up to `up_to` on which the condition holds. (customer_id, lost_on, last_order_at, next_order_at)."""
    candidates = candidate_days(reads(ruleset, [condition]), open_after, up_to)
    judged = condition_on_days(condition, ruleset, candidates).subquery("judged")
    f = _first_days(judged, judged.c.holds).c
    return sa.select(f.customer_id, f.lost_on, f.last_order_at, f.next_order_at)


def _with_gap(rows: sa.Subquery) -> sa.Subquery:
    """Each episode start with the customer's last order on or before it and first order after it."""
    o = orders_t
    last = (sa.select(sa.func.max(o.c.ordered_at))
            .where(o.c.customer_id == rows.c.customer_id, o.c.ordered_at <= rows.c.lost_on).scalar_subquery())
    nxt = (sa.select(sa.func.min(o.c.ordered_at))
           .where(o.c.customer_id == rows.c.customer_id, o.c.ordered_at > rows.c.lost_on).scalar_subquery())
    return sa.select(rows, last.label("gap_last_order"), nxt.label("gap_next_order")).subquery("placed_starts")


def _all_episodes(rules: LossRules, open_after: date, up_to: date,
                  customer_ids: Optional[list[int]] = None) -> sa.Subquery:
    """Every episode with a loss date up to `up_to`, BLOCKED and MANUAL ones of all history and RULE ones of the
    gaps open after `open_after`, one per gap (the first to start)."""
    from domain.loss_marks import manual_episodes_query

    none_date, none_int, none_text = sa.cast(sa.null(), sa.Date), sa.cast(sa.null(), sa.Integer), \
        sa.cast(sa.null(), sa.String)
    rule = rule_episodes(rules, open_after, up_to, customer_ids).cte("rule_starts").prefix_with("MATERIALIZED")
    c = customers_t
    manual = manual_episodes_query().subquery("manual_starts")
    starts = sa.union_all(
        sa.select(rule.c.customer_id, rule.c.lost_on, sa.literal("RULE").label("how"),
                  sa.literal(HOW_ORDER["RULE"]).label("priority"), rule.c.rule_line, none_text.label("reason"),
                  rule.c.next_order_at.label("ended_on"),
                  sa.case((rule.c.next_order_at.is_not(None), sa.literal("ORDER")), else_=none_text).label("end_kind"),
                  none_text.label("reactivation_note"), rule.c.at_risk_on),
        sa.select(c.c.id, c.c.blocked_from, sa.literal("BLOCKED"), sa.literal(HOW_ORDER["BLOCKED"]), none_int,
                  none_text, none_date, none_text, none_text, none_date)
        .where(c.c.blocked_from.is_not(None), c.c.blocked_from <= p_date(up_to), *_only(c, customer_ids, "id")),
        sa.select(manual.c.customer_id, manual.c.lost_on, sa.literal("MANUAL"), sa.literal(HOW_ORDER["MANUAL"]),
                  none_int, manual.c.reason, manual.c.ended_on, manual.c.end_kind, manual.c.reactivation_note,
                  none_date)
        .where(manual.c.lost_on <= p_date(up_to), *_only(manual, customer_ids)),
    ).subquery("loss_starts")
    placed = _with_gap(starts)
    p = placed.c
    # a BLOCKED episode ends with the next order, like a RULE one
    ends = sa.case((p.how == "BLOCKED", p.gap_next_order), else_=p.ended_on)
    # an episode counts unless it starts while an earlier one of its gap is still open (on the same day BLOCKED,
    # then MANUAL, then RULE): a manual loss reactivated by hand leaves room for a later rule loss
    gap = dict(partition_by=(p.customer_id, sa.func.coalesce(p.gap_last_order, p_date(FIRST_DAY))),
               order_by=(p.lost_on, p.priority), rows=(None, -1))
    open_until = sa.func.max(sa.func.coalesce(ends, p_date(date.max))).over(**gap).label("open_until")
    ranked = sa.select(placed, open_until, ends.label("ends")).subquery("ranked_starts")
    r = ranked.c
    ended = r.ends
    end_kind = sa.case((r.how == "BLOCKED", sa.case((r.gap_next_order.is_not(None), sa.literal("ORDER")))),
                       else_=r.end_kind)
    return (sa.select(r.customer_id, r.lost_on, r.how, r.rule_line, r.reason, ended.label("reactivated_on"),
                      end_kind.label("end_kind"), r.reactivation_note, r.gap_last_order.label("last_order_at"),
                      r.at_risk_on)
            .where(sa.or_(r.open_until.is_(None), r.open_until <= r.lost_on)).subquery("episodes"))


def episodes(rules: LossRules, start: date, end: date, customer_ids: Optional[list[int]] = None) -> sa.CTE:
    """The loss episodes whose loss date is in [start, end] (both inclusive): customer_id, lost_on, how
    (BLOCKED / MANUAL / RULE), rule_line (RULE: the status rule that made the customer lost), reason (MANUAL),
    reactivated_on (the next order, or for MANUAL the reactivation if earlier; NULL: still lost), end_kind
    (ORDER / REACTIVATED), reactivation_note, last_order_at (the last order on or before the loss date) and
    at_risk_on (RULE: the first day of the gap with the status at_risk, if before the loss). `customer_ids`
    narrows it to those customers."""
    if rules.stored:
        every = _stored(lost_on_or_before=end, customer_ids=customer_ids)
    else:
        every = _all_episodes(rules, start, end, customer_ids)
    # MATERIALIZED: reports join it several times (orders, complaints, deliveries); derived once
    return (sa.select(every).where(every.c.lost_on >= p_date(start))
            .cte("episodes_in_period").prefix_with("MATERIALIZED"))


def _stored(lost_on_or_before: date, customer_ids: Optional[list[int]] = None) -> sa.Subquery:
    """The stored history (domain.loss_store) as the derivation gives it, up to a loss date."""
    from domain.models import StoredLossEpisode

    t = StoredLossEpisode.__table__
    return (sa.select(*(t.c[c] for c in EPISODE_COLUMNS))
            .where(t.c.lost_on <= p_date(lost_on_or_before), *_only(t, customer_ids)).subquery("episodes"))


def lost_customers_on(rules: LossRules, day: date) -> sa.Select:
    """SELECT customer_id of the customers in a loss episode open on `day` (lost on or before it, not
    reactivated by it)."""
    every = _stored(day) if rules.stored else _all_episodes(rules, day, day)
    return sa.select(every.c.customer_id).where(
        sa.or_(every.c.reactivated_on.is_(None), every.c.reactivated_on > p_date(day)))
