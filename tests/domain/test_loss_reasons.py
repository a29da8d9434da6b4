"""lossReasons on a hand-built base (every count and ratio below worked out by hand), on SQLite and PostgreSQL:
who is lost and who is retained over 2024-04-01..2024-06-30, each one's 12-month evidence window up to its
reference day, record flags read as of that day, and the reasons ordered by ratio."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Optional

import pytest
import sqlalchemy as sa

from domain.loss_history import LossRules, episodes
from domain.loss_reasons import (COMPLAINT_CATEGORY, DELAY_REASON, DETRACTOR_ANSWERS, LATE_DELIVERIES,
                                 OVERDUE_COMPLAINTS, OVERDUE_INVOICES, loss_reasons)
from domain.models import Complaint, Customer, Delivery, Interaction, Invoice, Order, SalesRep, Survey
from rules.compiler import compile_rules

D = date.fromisoformat
START, END = D("2024-04-01"), D("2024-06-30")

# `no order 90d`: lost on the 90th day after the last order; `no order 45d`: at risk on the 45th day
LOSS_RULES = """status prospect if count(order) = 0
status lost     if blocked
status lost     if no order 90d
status at_risk  if no order 45d
status active   otherwise
"""


@dataclass
class Person:
    """One customer of a hand-built base: orders, complaints (opened, due, resolved, category), deliveries
    (promised, delivered, delay reason) and interactions (day, rep external id or None)."""

    orders: list[str]
    blocked: Optional[str] = None
    owner: Optional[str] = None
    complaints: list[tuple] = field(default_factory=list)
    deliveries: list[tuple] = field(default_factory=list)
    interactions: list[tuple] = field(default_factory=list)


def insert_people(engine, people: dict[str, Person], reps: tuple[str, ...] = ()) -> dict[str, int]:
    """Writes the base; returns customer ids by external id (reps get ids 1, 2, ... in the given order)."""
    rep_ids = {ext: i for i, ext in enumerate(reps, start=1)}
    ids = {ext: i for i, ext in enumerate(people, start=1)}
    opt = lambda v: D(v) if v else None  # noqa: E731
    with engine.begin() as c:
        if reps:
            c.execute(sa.insert(SalesRep.__table__), [{"id": i, "external_id": ext, "name": f"rep {ext}"}
                                                      for ext, i in rep_ids.items()])
        c.execute(sa.insert(Customer.__table__), [
            {"id": ids[ext], "external_id": ext, "name": f"customer {ext}", "seasonal": False,
             "blocked_from": opt(p.blocked), "owner_rep_id": rep_ids.get(p.owner), "created_at": D("2023-01-01"),
             "attributes": {}} for ext, p in people.items()])
        orders, complaints, deliveries, interactions = [], [], [], []
        for ext, p in people.items():
            first_order = len(orders) + 1
            orders += [{"id": n, "external_id": f"O-{ext}-{day}", "customer_id": ids[ext], "ordered_at": D(day),
                        "amount": 100.0, "line_count": 1} for n, day in enumerate(p.orders, start=first_order)]
            complaints += [{"external_id": f"C-{ext}-{k}", "customer_id": ids[ext], "opened_at": D(opened),
                            "due_at": opt(due), "resolved_at": opt(resolved), "category": category}
                           for k, (opened, due, resolved, category) in enumerate(p.complaints)]
            deliveries += [{"external_id": f"D-{ext}-{k}", "order_id": first_order, "customer_id": ids[ext],
                            "promised_at": D(promised), "delivered_at": opt(delivered), "delay_reason": reason}
                           for k, (promised, delivered, reason) in enumerate(p.deliveries)]
            interactions += [{"external_id": f"I-{ext}-{k}", "customer_id": ids[ext], "rep_id": rep_ids.get(rep),
                              "occurred_at": D(day), "kind": "call"}
                             for k, (day, rep) in enumerate(p.interactions)]
        for table, rows in ((Order, orders), (Complaint, complaints), (Delivery, deliveries),
                            (Interaction, interactions)):
            if rows:
                c.execute(sa.insert(table.__table__), rows)
    return ids


# Lost in the period (4). Evidence window: 12m up to the loss date = [loss date - 12 months + 1 day, loss date].
LOST_PEOPLE = {
    # RULE lost 2024-04-14 (2024-01-15 + 90 days); window [2023-04-15, 2024-04-14]
    "L1": Person(["2024-01-15"],
                 complaints=[("2023-04-15", "2023-04-20", None, "billing")],  # window's first day, overdue
                 deliveries=[("2024-01-20", "2024-01-25", "carrier")]),  # delivered after the promise: late
    # BLOCKED 2024-05-10; window [2023-05-11, 2024-05-10]
    "L2": Person(["2024-02-15", "2024-05-01"], blocked="2024-05-10",
                 complaints=[("2024-03-01", "2024-03-05", "2024-03-04", "billing")]),  # resolved in time
    # RULE lost 2024-05-30 (2024-03-01 + 90 days); window [2023-05-31, 2024-05-30]
    "L3": Person(["2024-03-01"],
                 complaints=[("2023-05-30", "2023-06-05", None, "billing"),  # a day before the window
                             ("2024-05-20", "2024-06-10", None, "quality"),  # due after the loss: not overdue yet
                             ("2024-05-31", "2024-06-02", None, "pricing")],  # opened after the loss
                 deliveries=[("2024-05-30", None, "weather")]),  # promised on the loss date: not late on it
    # RULE lost 2024-04-14, reactivated 2024-04-20, BLOCKED 2024-06-01: lost twice, counted once;
    # the second window [2023-06-02, 2024-06-01] holds both records
    "L4": Person(["2024-01-15", "2024-04-20"], blocked="2024-06-01",
                 complaints=[("2024-05-15", "2024-05-20", "2024-05-18", "billing")],
                 deliveries=[("2024-05-10", "2024-05-20", "carrier")]),
}
# Retained (5): ordered on or before 2024-04-01, not lost on it, no loss in the period. Window: 12m up to
# 2024-06-30 = [2023-07-01, 2024-06-30], flags as of 2024-06-30.
RETAINED_PEOPLE = {
    "R1": Person(["2024-01-10", "2024-03-10", "2024-05-10"],
                 complaints=[("2024-04-01", "2024-04-05", None, "billing")]),  # overdue
    "R2": Person(["2024-02-01", "2024-04-15", "2024-06-01"],
                 deliveries=[("2024-06-20", "2024-06-22", "weather")]),  # late
    "R3": Person(["2024-03-15", "2024-05-15"],
                 complaints=[("2024-07-02", "2024-07-05", None, "pricing")]),  # after `to`: no evidence
    "R4": Person(["2024-03-20", "2024-06-15"],
                 complaints=[("2024-06-01", "2024-06-10", "2024-06-20", "delivery")]),  # resolved late: overdue
    "R5": Person(["2024-03-01", "2024-04-06"]),  # lost only on 2024-07-05, after the period
}
# Neither group; each has an overdue billing complaint that would show if it were counted
OUTSIDE_PEOPLE = {
    "X1": Person(["2023-10-01"], complaints=[("2024-03-01", "2024-03-05", None, "billing")]),  # lost 2023-12-30
    "X2": Person(["2024-04-10"], complaints=[("2024-04-12", "2024-04-15", None, "billing")]),  # first order later
    "X3": Person(["2024-02-01"], blocked="2024-03-01",  # blocked before the period, still lost on its first day
                 complaints=[("2024-03-02", "2024-03-05", None, "billing")]),
}

# (kind, value, lost count, retained count, ratio = (lost / 4) / (retained / 5), summary), in the expected order
EXPECTED = [
    # billing: L1, L2, L4 of 4 lost; R1 of 5 retained: 0.75 / 0.2 = 15/4 = 3.75
    (COMPLAINT_CATEGORY, "billing", 3, 1, 3.75, "lost customers had complaints about billing 3.8x as often as "
                                                "retained ones"),
    # L1, L4 late; R2 late: 0.5 / 0.2 = 2.5
    (LATE_DELIVERIES, None, 2, 1, 2.5, "lost customers had late deliveries 2.5x as often as retained ones"),
    # L1 overdue; R1 and R4 (resolved after its due date): 0.25 / 0.4 = 5/8 = 0.625
    (OVERDUE_COMPLAINTS, None, 1, 2, 0.625, "lost customers had overdue complaints 0.6x as often as retained ones"),
    # R4 only: 0 / 0.2 = 0 (lost share 0: kinds' order breaks the tie)
    (COMPLAINT_CATEGORY, "delivery", 0, 1, 0.0, "no lost customer had complaints about delivery, 20% of retained "
                                                "ones did"),
    # R2 only (L3's weather delivery is not late on its loss date)
    (DELAY_REASON, "weather", 0, 1, 0.0, "no lost customer had late deliveries because of weather, 20% of "
                                         "retained ones did"),
    # L1, L4; no retained: null ratio, last, the larger lost share first (2/4 before 1/4)
    (DELAY_REASON, "carrier", 2, 0, None, "50% of lost customers had late deliveries because of carrier, no "
                                          "retained customer did"),
    (COMPLAINT_CATEGORY, "quality", 1, 0, None, "25% of lost customers had complaints about quality, no retained "
                                                "customer did"),
]


@pytest.fixture
def rules():
    return LossRules.of(compile_rules(LOSS_RULES))


def test_the_fixture_loses_whom_the_comments_say(engine, rules):
    ids = insert_people(engine, {**LOST_PEOPLE, **RETAINED_PEOPLE, **OUTSIDE_PEOPLE})
    by_id = {v: k for k, v in ids.items()}
    with engine.connect() as conn:
        got = {(by_id[r.customer_id], r.lost_on, r.how) for r in conn.execute(sa.select(episodes(rules, START, END)))}
    assert got == {("L1", D("2024-04-14"), "RULE"), ("L2", D("2024-05-10"), "BLOCKED"),
                   ("L3", D("2024-05-30"), "RULE"), ("L4", D("2024-04-14"), "RULE"),
                   ("L4", D("2024-06-01"), "BLOCKED")}


def test_reasons_compare_lost_with_retained_customers(engine, rules):
    insert_people(engine, {**LOST_PEOPLE, **RETAINED_PEOPLE, **OUTSIDE_PEOPLE})
    got = loss_reasons(engine, rules, START, END)
    assert (got.start, got.end, got.lost_customers, got.retained_customers) == (START, END, 4, 5)
    assert [(r.kind, r.value, r.lost_count, r.retained_count) for r in got.reasons] == \
        [(k, v, lost, kept) for k, v, lost, kept, _, _ in EXPECTED]
    for r, (_, _, lost, kept, ratio, summary) in zip(got.reasons, EXPECTED):
        assert r.lost_share == pytest.approx(lost / 4) and r.retained_share == pytest.approx(kept / 5)
        assert r.ratio == (None if ratio is None else pytest.approx(ratio))
        assert r.summary == summary


def test_a_period_with_nobody_retained_or_lost_has_no_ratio(engine, rules):
    # only L1 (lost 2024-04-14): nobody had ordered by 2024-04-01 and stayed
    insert_people(engine, {"L1": LOST_PEOPLE["L1"]})
    got = loss_reasons(engine, rules, START, END)
    assert (got.lost_customers, got.retained_customers) == (1, 0)
    overdue = next(r for r in got.reasons if r.kind == OVERDUE_COMPLAINTS)
    assert (overdue.lost_share, overdue.retained_share, overdue.ratio) == (1.0, None, None)
    assert overdue.summary == "100% of lost customers had overdue complaints; no retained customers to compare with"
    # a period before anybody was lost: the two fixed reasons, no shares on the lost side
    got = loss_reasons(engine, rules, D("2024-01-01"), D("2024-01-31"))
    assert (got.lost_customers, got.retained_customers) == (0, 0)
    assert [(r.kind, r.lost_share, r.ratio) for r in got.reasons] == [(OVERDUE_COMPLAINTS, None, None),
                                                                      (LATE_DELIVERIES, None, None)]
    assert got.reasons[0].summary == "no customer was lost in the period"


def test_detractor_answers_and_overdue_invoices_are_reasons(engine, rules):
    """Surveys and invoices as evidence, read as of each customer's reference day (worked out by hand):
    L1 lost 2024-04-14, L3 lost 2024-05-30; R1, R2 retained (reference day 2024-06-30)."""
    ids = insert_people(engine, {k: v for k, v in {**LOST_PEOPLE, **RETAINED_PEOPLE}.items()
                                 if k in ("L1", "L3", "R1", "R2")})
    with engine.begin() as c:
        for ext, day, kind, score in (
                ("L1", "2024-03-01", "nps", 6.0),   # a detractor before the loss
                ("L3", "2024-05-31", "nps", 2.0),   # the day after its loss: not evidence
                ("L3", "2024-01-10", "csat", 3.0),  # passive
                ("R1", "2024-06-30", "csat", 2.0),  # detractor on the reference day
                ("R2", "2023-06-30", "nps", 0.0)):  # a day before R2's window
            c.execute(sa.insert(Survey.__table__), {"external_id": f"S-{ext}-{day}", "customer_id": ids[ext],
                                                    "answered_at": D(day), "kind": kind, "score": score})
        for ext, issued, due, paid in (
                ("L1", "2024-02-01", "2024-03-01", "2024-04-20"),  # paid after the loss: overdue on it
                ("L3", "2024-04-01", "2024-05-30", None),          # due on the loss date: not yet overdue
                ("R1", "2024-05-01", "2024-05-31", "2024-06-30"),  # paid on the reference day
                ("R2", "2024-05-01", "2024-06-29", None)):         # overdue on the reference day
            c.execute(sa.insert(Invoice.__table__), {"external_id": f"V-{ext}-{issued}", "customer_id": ids[ext],
                                                     "issued_at": D(issued), "due_at": D(due), "amount": 10.0,
                                                     "paid_at": D(paid) if paid else None})
    got = loss_reasons(engine, rules, START, END)
    assert (got.lost_customers, got.retained_customers) == (2, 2)
    found = {r.kind: (r.lost_count, r.retained_count, r.ratio) for r in got.reasons
             if r.kind in (DETRACTOR_ANSWERS, OVERDUE_INVOICES)}
    # detractors: L1 of 2 lost, R1 of 2 retained; overdue invoices: L1 of 2 lost, R2 of 2 retained
    assert found == {DETRACTOR_ANSWERS: (1, 1, 1.0), OVERDUE_INVOICES: (1, 1, 1.0)}
    summary = next(r for r in got.reasons if r.kind == DETRACTOR_ANSWERS).summary
    assert summary == "lost customers had detractor survey answers 1.0x as often as retained ones"
