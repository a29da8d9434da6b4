"""The loss report counts complaints, late deliveries and win-back attempts with the record flags as of the
evaluation date (domain.record_flags): before the fix a delivery made after that date counted as late."""
from __future__ import annotations

from datetime import date

from domain.evaluation import run_batch
from domain.loss import loss_episodes
from domain.models import Complaint, Customer, Delivery, Interaction, Order
from rules.compiler import compile_rules

AS_OF = date(2026, 6, 30)


def test_loss_report_uses_the_flags_as_of_the_evaluation(engine):
    with engine.begin() as conn:
        conn.execute(Customer.__table__.insert(), [dict(id=1, external_id="L1", name="Lost", seasonal=False,
                                                        created_at=date(2020, 1, 1), attributes={})])
        conn.execute(Order.__table__.insert(), [dict(id=1, external_id="o1", customer_id=1,
                                                     ordered_at=date(2026, 1, 10), amount=500.0, line_count=1)])
        conn.execute(Delivery.__table__.insert(), [
            # promised on as_of, delivered after it: not late on as_of (the old query said late)
            dict(id=1, external_id="d1", customer_id=1, order_id=1, promised_at=AS_OF, delivered_at=date(2026, 7, 9)),
            # promised before as_of and not delivered by then: late
            dict(id=2, external_id="d2", customer_id=1, order_id=1, promised_at=date(2026, 1, 20),
                 delivered_at=date(2026, 7, 9)),
            dict(id=3, external_id="d3", customer_id=1, order_id=1, promised_at=date(2026, 1, 20),
                 delivered_at=date(2026, 1, 20))])
        conn.execute(Complaint.__table__.insert(), [
            dict(id=1, external_id="k1", customer_id=1, opened_at=date(2026, 2, 1), due_at=date(2026, 2, 10),
                 resolved_at=date(2026, 7, 1), cost=0.0),  # pending on as_of: open and overdue
            dict(id=2, external_id="k2", customer_id=1, opened_at=date(2026, 2, 1), due_at=date(2026, 2, 10),
                 resolved_at=date(2026, 3, 1), cost=0.0)])  # resolved late: overdue in the record, not pending
        conn.execute(Interaction.__table__.insert(), [
            dict(id=1, external_id="i1", customer_id=1, occurred_at=date(2026, 5, 1), kind="Win-Back", cost=0.0),
            dict(id=2, external_id="i2", customer_id=1, occurred_at=date(2026, 5, 2), kind="call", cost=0.0)])
    run_batch(engine, compile_rules("tier any otherwise\nstatus lost if no order 90d\nstatus active otherwise\n"),
              AS_OF)
    [e] = loss_episodes(engine)
    assert (e.deliveries, e.late_deliveries) == (3, 1)
    assert (e.open_complaints, e.overdue_complaints) == (1, 1)
    assert e.win_back_attempts == 1
