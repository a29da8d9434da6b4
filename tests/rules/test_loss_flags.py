"""The loss report reads complaints and deliveries with the record flags as of the loss date
(domain.record_flags): a delivery made after that day is not known on it, so one promised before it and not yet
delivered is late, and one promised on the day itself is not."""
from __future__ import annotations

from datetime import date

from domain import loss
from domain.loss_history import LossRules
from domain.models import Complaint, Customer, Delivery, Order
from rules.compiler import compile_rules

LOST_ON = date(2026, 4, 10)  # the last order (01-10) + 90 days


def test_loss_report_uses_the_flags_as_of_the_loss_date(engine):
    with engine.begin() as conn:
        conn.execute(Customer.__table__.insert(), [dict(id=1, external_id="L1", name="Lost", seasonal=False,
                                                        created_at=date(2020, 1, 1), attributes={})])
        conn.execute(Order.__table__.insert(), [dict(id=1, external_id="o1", customer_id=1,
                                                     ordered_at=date(2026, 1, 10), amount=500.0, line_count=1)])
        conn.execute(Delivery.__table__.insert(), [
            # promised on the loss date, delivered after it: not late on that day
            dict(id=1, external_id="d1", customer_id=1, order_id=1, promised_at=LOST_ON, delivered_at=date(2026, 7, 9)),
            # promised before it and not delivered by then: late
            dict(id=2, external_id="d2", customer_id=1, order_id=1, promised_at=date(2026, 1, 20),
                 delivered_at=date(2026, 7, 9)),
            dict(id=3, external_id="d3", customer_id=1, order_id=1, promised_at=date(2026, 1, 20),
                 delivered_at=date(2026, 1, 20)),
            # promised after the loss: not part of it
            dict(id=4, external_id="d4", customer_id=1, order_id=1, promised_at=date(2026, 4, 11), delivered_at=None)])
        conn.execute(Complaint.__table__.insert(), [
            dict(id=1, external_id="k1", customer_id=1, opened_at=date(2026, 2, 1), due_at=date(2026, 2, 10),
                 resolved_at=date(2026, 7, 1), cost=0.0),  # on the loss date: open and overdue
            dict(id=2, external_id="k2", customer_id=1, opened_at=date(2026, 2, 1), due_at=date(2026, 2, 10),
                 resolved_at=date(2026, 3, 1), cost=0.0)])  # resolved late: overdue in the record, not open
    rules = LossRules.of(compile_rules("tier any otherwise\nstatus lost if no order 90d\nstatus active otherwise\n"))
    [e] = loss.lost_customers(engine, rules, date(2026, 1, 1), date(2026, 12, 31))
    assert e.lost_on == LOST_ON
    assert (e.deliveries, e.late_deliveries) == (3, 1)
    assert (e.complaints, e.open_complaints, e.overdue_complaints) == (2, 1, 2)
    details = loss.episode_details(engine, [e.key])[e.key]
    assert [(d["external_id"], d["late"], d["delivered_at"]) for d in details.deliveries] == [
        ("d2", True, None), ("d3", False, date(2026, 1, 20)), ("d1", False, None)]
