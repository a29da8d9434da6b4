"""Why customers were lost: what lost customers had before their loss, compared with customers who stayed.

Two groups over a period [start, end]:
- lost: the customers with a loss episode (domain.loss_history.episodes) whose loss date is in the period;
- retained: the customers who had ordered on or before `start`, were not in an open loss episode on `start`
  (domain.loss_history.lost_customers_on) and had no episode starting in the period.
A customer's evidence is its records dated in the 12 months (rules.windows' `12m`) up to its reference day -- the
loss date for a lost customer, `end` for a retained one -- with record flags read as of that day
(domain.record_flags, the rules' one definition). A customer lost twice in the period counts once; it has a reason
when the evidence before any of its losses shows it.

Reasons, each as the share of each group that has it and the ratio lost share / retained share:
- OVERDUE_COMPLAINTS: a complaint opened in the window, overdue on the reference day;
- LATE_DELIVERIES: a delivery promised in the window, late on the reference day;
- DETRACTOR_ANSWERS: a survey answered in the window that was a detractor's (NPS below 7, CSAT below 3);
- OVERDUE_INVOICES: an invoice issued in the window, unpaid and past due on the reference day;
- COMPLAINT_CATEGORY (per category): a complaint of that category opened in the window, overdue or not;
- DELAY_REASON (per reason): a delivery late on the reference day with that delay reason (a reason on a
  delivery not late is no evidence of a delay).
The ratio is null when the retained share is 0 or unknown (no retained customers). Reasons come ordered by
ratio, highest first, nulls last. OVERDUE_COMPLAINTS and LATE_DELIVERIES are always listed; the others when a
customer of either group has them (a business without surveys or invoices sees no rows about them).

One statement: the compared customers as rows (customer_id, reference day, group), records joined to them on
customer_id within each one's window, grouped by (group, reason) counting distinct customers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.loss_history import LossRules, episodes, lost_customers_on
from domain.models import Complaint, Customer, Delivery, Invoice, Order, Survey
from domain.record_flags import record_flag
from rules import nodes as n
from rules.to_sql import p_date
from rules.to_sql_dated import bounds_sql

customers_t = Customer.__table__
orders_t = Order.__table__
complaints_t = Complaint.__table__
deliveries_t = Delivery.__table__
surveys_t = Survey.__table__
invoices_t = Invoice.__table__

OVERDUE_COMPLAINTS, LATE_DELIVERIES = "OVERDUE_COMPLAINTS", "LATE_DELIVERIES"
DETRACTOR_ANSWERS, OVERDUE_INVOICES = "DETRACTOR_ANSWERS", "OVERDUE_INVOICES"
COMPLAINT_CATEGORY, DELAY_REASON = "COMPLAINT_CATEGORY", "DELAY_REASON"
KINDS = (OVERDUE_COMPLAINTS, LATE_DELIVERIES, DETRACTOR_ANSWERS, OVERDUE_INVOICES, COMPLAINT_CATEGORY, DELAY_REASON)
LOST, RETAINED = "LOST", "RETAINED"
GROUP_SIZE = "GROUP_SIZE"  # the statement's rows counting each group's customers
EVIDENCE_WINDOW = n.Window(12, "m")


@dataclass(frozen=True)
class Reason:
    kind: str
    value: Optional[str]  # the category / delay reason; None for OVERDUE_COMPLAINTS and LATE_DELIVERIES
    lost_count: int
    retained_count: int
    lost_share: Optional[float]  # None when the group is empty
    retained_share: Optional[float]
    ratio: Optional[float]  # lost_share / retained_share; None when the retained share is 0 or unknown

    @property
    def reason(self) -> str:
        """The reason in words, as it reads in a sentence ("lost customers had <reason> ...")."""
        if self.kind == OVERDUE_COMPLAINTS:
            return "overdue complaints"
        if self.kind == LATE_DELIVERIES:
            return "late deliveries"
        if self.kind == DETRACTOR_ANSWERS:
            return "detractor survey answers"
        if self.kind == OVERDUE_INVOICES:
            return "overdue invoices"
        if self.kind == COMPLAINT_CATEGORY:
            return f"complaints about {self.value}"
        return f"late deliveries because of {self.value}"

    @property
    def summary(self) -> str:
        what = self.reason
        if self.lost_share is None:
            return "no customer was lost in the period"
        if self.retained_share is None:
            return f"{self.lost_share:.0%} of lost customers had {what}; no retained customers to compare with"
        if self.ratio is not None and self.lost_count == 0:
            return f"no lost customer had {what}, {self.retained_share:.0%} of retained ones did"
        if self.ratio is not None:
            return f"lost customers had {what} {self.ratio:.1f}x as often as retained ones"
        if self.lost_count:
            return f"{self.lost_share:.0%} of lost customers had {what}, no retained customer did"
        return f"neither lost nor retained customers had {what}"


@dataclass(frozen=True)
class LossReasons:
    start: date
    end: date
    lost_customers: int
    retained_customers: int
    reasons: list[Reason]


def _self_contained(stmt: sa.Select) -> sa.Select:
    """`stmt` with the CTEs it uses rendered inside it (WITH in the subquery): the loss history names its CTEs
    (judged, candidate_days ...), so two loss-history queries in one statement need each its own scope."""
    ctes = _ctes_in(stmt)
    return stmt.add_cte(*ctes, nest_here=True) if ctes else stmt


def _ctes_in(stmt: sa.ClauseElement) -> list[sa.CTE]:
    """The CTEs `stmt` uses; each element visited once (the loss history's tree shares many branches, so
    sqlalchemy's visitors.iterate, which revisits shared ones, takes seconds)."""
    seen: set[int] = set()
    found: list[sa.CTE] = []
    stack = [stmt]
    while stack:
        element = stack.pop()
        if id(element) in seen:
            continue
        seen.add(id(element))
        if isinstance(element, sa.CTE):
            found.append(element)
        stack.extend(element.get_children())
    return found


def compared_customers(rules: LossRules, start: date, end: date) -> sa.CTE:
    """(customer_id, reference_day, side): one row per loss episode in [start, end] (side LOST, reference day the
    loss date) and one per retained customer (side RETAINED, reference day `end`)."""
    lost = _self_contained(sa.select(episodes(rules, start, end))).cte("lost_in_period")
    lost_on_start = _self_contained(lost_customers_on(rules, start))
    ordered_by_start = sa.exists().where(orders_t.c.customer_id == customers_t.c.id,
                                         orders_t.c.ordered_at <= p_date(start))
    retained = (sa.select(customers_t.c.id.label("customer_id"), p_date(end).label("reference_day"),
                          sa.literal(RETAINED).label("side"))
                .where(ordered_by_start, customers_t.c.id.not_in(lost_on_start),
                       customers_t.c.id.not_in(sa.select(lost.c.customer_id))))
    return sa.union_all(
        sa.select(lost.c.customer_id, lost.c.lost_on.label("reference_day"), sa.literal(LOST).label("side")),
        retained,
    ).cte("compared_customers")


def _evidence(compared: sa.CTE) -> list[sa.Select]:
    """SELECTs of (side, customer_id, kind, value): each customer's reasons found in its evidence window."""
    s = compared.c
    day = s.reference_day
    first, last = bounds_sql(EVIDENCE_WINDOW, day)
    cp, dl = complaints_t, deliveries_t
    complaint_on = sa.and_(cp.c.customer_id == s.customer_id, cp.c.opened_at >= first, cp.c.opened_at <= last)
    delivery_on = sa.and_(dl.c.customer_id == s.customer_id, dl.c.promised_at >= first, dl.c.promised_at <= last)
    sv, iv = surveys_t, invoices_t
    survey_on = sa.and_(sv.c.customer_id == s.customer_id, sv.c.answered_at >= first, sv.c.answered_at <= last)
    invoice_on = sa.and_(iv.c.customer_id == s.customer_id, iv.c.issued_at >= first, iv.c.issued_at <= last)
    overdue = record_flag("complaint", "overdue").sql(cp, day)
    late = record_flag("delivery", "late").sql(dl, day)
    no_value = sa.cast(sa.null(), sa.String)

    def hits(table, on, kind: str, value, *where) -> sa.Select:
        return (sa.select(s.side, s.customer_id, sa.literal(kind).label("kind"), value.label("value"))
                .select_from(compared.join(table, on)).where(*where))

    return [
        hits(cp, complaint_on, OVERDUE_COMPLAINTS, no_value, overdue),
        hits(dl, delivery_on, LATE_DELIVERIES, no_value, late),
        hits(sv, survey_on, DETRACTOR_ANSWERS, no_value, record_flag("survey", "detractor").sql(sv, day)),
        hits(iv, invoice_on, OVERDUE_INVOICES, no_value, record_flag("invoice", "overdue").sql(iv, day)),
        hits(cp, complaint_on, COMPLAINT_CATEGORY, cp.c.category, cp.c.category.is_not(None)),
        hits(dl, delivery_on, DELAY_REASON, dl.c.delay_reason, late, dl.c.delay_reason.is_not(None)),
    ]


def loss_reasons_query(rules: LossRules, start: date, end: date) -> sa.Select:
    """(side, kind, value, customers): per group, the customers with each reason; kind GROUP_SIZE counts the
    group itself."""
    compared = compared_customers(rules, start, end)
    s = compared.c
    sizes = sa.select(s.side, s.customer_id, sa.literal(GROUP_SIZE).label("kind"),
                      sa.cast(sa.null(), sa.String).label("value"))
    rows = sa.union_all(sizes, *_evidence(compared)).subquery("reason_rows")
    r = rows.c
    return (sa.select(r.side, r.kind, r.value, sa.func.count(sa.distinct(r.customer_id)).label("customers"))
            .group_by(r.side, r.kind, r.value))


def loss_reasons(bind: Engine | Connection, rules: LossRules, start: date, end: date) -> LossReasons:
    """The lost and retained groups of [start, end] and every reason found in either, highest ratio first."""
    stmt = loss_reasons_query(rules, start, end)
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            rows = conn.execute(stmt).fetchall()
    else:
        rows = bind.execute(stmt).fetchall()
    sizes = {LOST: 0, RETAINED: 0}
    counts: dict[tuple[str, Optional[str]], dict[str, int]] = {(OVERDUE_COMPLAINTS, None): {},
                                                                (LATE_DELIVERIES, None): {}}
    for row in rows:
        if row.kind == GROUP_SIZE:
            sizes[row.side] = row.customers
        else:
            counts.setdefault((row.kind, row.value), {})[row.side] = row.customers
    reasons = [_reason(kind, value, found.get(LOST, 0), found.get(RETAINED, 0), sizes[LOST], sizes[RETAINED])
               for (kind, value), found in counts.items()]
    reasons.sort(key=_rank)
    return LossReasons(start, end, sizes[LOST], sizes[RETAINED], reasons)


def _reason(kind: str, value: Optional[str], lost: int, retained: int, lost_n: int, retained_n: int) -> Reason:
    lost_share = lost / lost_n if lost_n else None
    retained_share = retained / retained_n if retained_n else None
    # from the counts, not the rounded shares: 3 of 4 against 1 of 5 is exactly 3.75
    ratio = (lost * retained_n) / (retained * lost_n) if lost_n and retained else None
    return Reason(kind, value, lost, retained, lost_share, retained_share, ratio)


def _rank(r: Reason) -> tuple:
    """Highest ratio first, nulls last; then the larger lost share, the kinds' order, the value."""
    return (r.ratio is None, -(r.ratio or 0.0), -(r.lost_share or 0.0), KINDS.index(r.kind), r.value or "")
