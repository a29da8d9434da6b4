"""Concurrent callers of the whole customer's writes take turns (domain.evaluation_state.writer_transaction), on
SQLite and on PostgreSQL: the same invoice recorded and paid by several callers at once is stored once and paid
once, a deal moved by several callers ends as one of them left it, and two erasures of one customer erase it once
with one audit row."""
from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa

from domain import privacy, writes
from domain.models import Customer

CALLERS = 4


def _at_once(calls: list) -> list:
    """Run the calls in threads released together; each one's result or exception."""
    start = threading.Barrier(len(calls))
    out: list = [None] * len(calls)

    def run(i: int) -> None:
        start.wait(10)
        try:
            out[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


@pytest.fixture
def base(engine):
    with engine.begin() as conn:
        conn.execute(Customer.__table__.insert(), [
            {"external_id": f"K{i}", "name": f"Customer {i}", "created_at": date(2024, 1, 1),
             "attributes": {"email": f"k{i}@x"}, "payment_terms_days": 30} for i in (1, 2)])
    return engine


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def test_one_invoice_recorded_and_paid_by_many_at_once(base):
    invoice = {"external_id": "V1", "customer_external_id": "K1", "issued_at": date(2024, 3, 1), "amount": 100.0}
    done = _at_once([lambda: writes.record_invoice(base, invoice) for _ in range(CALLERS)])
    assert not [d for d in done if isinstance(d, Exception)], done
    assert sorted(d.changed for d in done) == [False] * (CALLERS - 1) + [True]
    assert _count(base, "select count(*) from invoices") == 1
    paid = _at_once([lambda: writes.pay_invoice(base, "V1", date(2024, 4, 2)) for _ in range(CALLERS)])
    assert sorted(p.changed for p in paid) == [False] * (CALLERS - 1) + [True]
    assert _count(base, "select count(*) from invoices where paid_at is not null") == 1


def test_a_deal_moved_by_many_at_once_ends_as_one_of_them_left_it(base):
    stages = [f"stage {i}" for i in range(CALLERS)]
    deal = {"external_id": "P1", "customer_external_id": "K1", "opened_at": date(2024, 3, 1), "amount": 10.0,
            "probability": 0.5}
    done = _at_once([lambda s=s: writes.record_opportunity(base, {**deal, "stage": s}) for s in stages])
    assert not [d for d in done if isinstance(d, Exception)], done
    with base.connect() as conn:
        rows = conn.execute(sa.text("select stage from opportunities")).scalars().all()
    assert len(rows) == 1 and rows[0] in stages
    assert done[[d.record.stage for d in done].index(rows[0])].changed is True


def test_two_erasures_at_once_erase_once(base):
    done = _at_once([lambda: privacy.erase_customer(base, "K1", "dpo") for _ in range(2)])
    outcomes = [d for d in done if not isinstance(d, Exception)]
    # the second one finds either the erased customer (a no-op) or no customer named K1 any more
    assert [d.changed for d in outcomes].count(True) == 1
    assert all(isinstance(d, privacy.CustomerNotFound) for d in done if isinstance(d, Exception)), done
    assert _count(base, "select count(*) from privacy_audit where action = 'erase'") == 1
    assert _count(base, "select count(*) from customers where external_id = 'K1'") == 0
    assert _count(base, "select count(*) from customers where external_id = 'K2'") == 1
