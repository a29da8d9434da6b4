"""Manual loss marks (domain.loss_marks): episodes end at the next order after the lost day or the next reactivation,
whichever comes first; retries are no-ops; contradicting marks are CONFLICTs; concurrent callers never leave two
open episodes. Every expected episode below is worked out by hand from the marks and orders the test stores."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from domain import loss_marks as lm
from domain.models import Customer, LossMark, Order
from domain.writes import BadInput

CREATED = date(2024, 1, 1)
customers_t, orders_t, marks_t = Customer.__table__, Order.__table__, LossMark.__table__


def d(month: int, day: int) -> date:
    return date(2024, month, day)


@pytest.fixture
def base(engine):
    """Customers K1..K9, created on 2024-01-01, with the orders each test adds itself."""
    with engine.begin() as conn:
        conn.execute(customers_t.insert(), [{"external_id": f"K{i}", "name": f"Customer {i}", "created_at": CREATED,
                                             "attributes": {}} for i in range(1, 10)])
    return engine


def add_order(engine, customer: str, day: date) -> None:
    with engine.begin() as conn:
        cid = conn.execute(sa.select(customers_t.c.id).where(customers_t.c.external_id == customer)).scalar_one()
        n = conn.execute(sa.select(sa.func.count()).select_from(orders_t)).scalar_one()
        conn.execute(orders_t.insert().values(external_id=f"{customer}-O{n + 1}", customer_id=cid, ordered_at=day,
                                              amount=10.0, line_count=1))


def episodes(engine, customer: str | None = None) -> list[tuple]:
    """(customer external id, lost_on, reason, ended_on, end_kind, reactivation_note), by customer and day."""
    q = lm.manual_episodes_query().subquery()
    stmt = (sa.select(customers_t.c.external_id, q.c.lost_on, q.c.reason, q.c.ended_on, q.c.end_kind,
                      q.c.reactivation_note)
            .join(customers_t, customers_t.c.id == q.c.customer_id)
            .order_by(customers_t.c.external_id, q.c.lost_on))
    if customer is not None:
        stmt = stmt.where(customers_t.c.external_id == customer)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


def mark_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(marks_t)).scalar_one()


# ---- episode ends ----


def test_an_order_after_the_lost_day_ends_the_episode_but_one_on_that_day_does_not(base):
    for day in (d(1, 10), d(3, 5), d(3, 20)):
        add_order(base, "K1", day)
    done = lm.mark_lost(base, "K1", d(3, 5), "moved to a competitor", by="admin")
    assert done.changed and done.mark.kind == "lost" and done.mark.marked_on == d(3, 5)
    assert done.customer.external_id == "K1"
    # the order on 03-05 is the lost day itself; the first order after it is 03-20
    assert episodes(base) == [("K1", d(3, 5), "moved to a competitor", d(3, 20), "ORDER", None)]


def test_a_reactivation_ends_the_episode_with_its_note(base):
    lm.mark_lost(base, "K2", d(2, 1), "price")
    back = lm.reactivate(base, "K2", d(2, 15), "called back, new contract")
    assert back.changed and back.mark.kind == "reactivated" and back.mark.text == "called back, new contract"
    assert episodes(base) == [("K2", d(2, 1), "price", d(2, 15), "REACTIVATED", "called back, new contract")]


def test_whichever_comes_first_ends_it(base):
    # K3: reactivated on 02-10, then an order on 02-20 -> the reactivation is first
    lm.mark_lost(base, "K3", d(2, 1), "quiet")
    lm.reactivate(base, "K3", d(2, 10), "visited")
    add_order(base, "K3", d(2, 20))
    # K4: reactivated on 02-10, then an order dated 02-05 arrives late -> the order is first, no note
    lm.mark_lost(base, "K4", d(2, 1), "quiet")
    lm.reactivate(base, "K4", d(2, 10), "visited")
    add_order(base, "K4", d(2, 5))
    # K5: an order arriving late on the reactivation's day: a tie goes to the reactivation
    lm.mark_lost(base, "K5", d(2, 1), "quiet")
    lm.reactivate(base, "K5", d(2, 10), None)
    add_order(base, "K5", d(2, 10))
    # K6: neither yet -> open
    add_order(base, "K6", d(1, 20))
    lm.mark_lost(base, "K6", d(2, 1), "bankrupt")
    assert episodes(base) == [
        ("K3", d(2, 1), "quiet", d(2, 10), "REACTIVATED", "visited"),
        ("K4", d(2, 1), "quiet", d(2, 5), "ORDER", None),
        ("K5", d(2, 1), "quiet", d(2, 10), "REACTIVATED", None),
        ("K6", d(2, 1), "bankrupt", None, None, None),
    ]


def test_one_customer_can_be_lost_several_times(base):
    lm.mark_lost(base, "K1", d(1, 15), "first")
    add_order(base, "K1", d(2, 1))
    lm.mark_lost(base, "K1", d(3, 1), "second")
    lm.reactivate(base, "K1", d(4, 1), "back")
    lm.mark_lost(base, "K1", d(5, 1), "third")
    assert episodes(base, "K1") == [("K1", d(1, 15), "first", d(2, 1), "ORDER", None),
                                    ("K1", d(3, 1), "second", d(4, 1), "REACTIVATED", "back"),
                                    ("K1", d(5, 1), "third", None, None, None)]


def test_the_query_binds_every_value_on_both_dialects():
    q = lm.manual_episodes_query()
    assert list(q.selected_columns.keys()) == ["customer_id", "lost_on", "reason", "ended_on", "end_kind",
                                               "reactivation_note"]
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        sql = str(q.compile(dialect=dialect))
        assert "'lost'" not in sql and "'reactivated'" not in sql and "'ORDER'" not in sql, sql


# ---- retries and conflicts ----


def test_the_same_lost_mark_again_is_a_no_op_even_after_the_episode_ended(base):
    first = lm.mark_lost(base, "K1", d(3, 1), "no budget")
    again = lm.mark_lost(base, "K1", d(3, 1), "  no budget ")  # surrounding blanks are not part of the reason
    assert (again.changed, again.mark.id, again.mark.text) == (False, first.mark.id, "no budget")
    lm.reactivate(base, "K1", d(4, 1), None)
    late_retry = lm.mark_lost(base, "K1", d(3, 1), "no budget")
    assert late_retry.changed is False and late_retry.mark.id == first.mark.id
    assert mark_count(base) == 2
    assert episodes(base) == [("K1", d(3, 1), "no budget", d(4, 1), "REACTIVATED", None)]


def test_another_reason_on_the_same_day_is_a_conflict(base):
    lm.mark_lost(base, "K1", d(3, 1), "no budget")
    with pytest.raises(lm.MarkConflict, match="already marked lost on 2024-03-01 with another reason") as exc:
        lm.mark_lost(base, "K1", d(3, 1), "went bankrupt")
    assert (exc.value.lost_on, exc.value.reason) == (d(3, 1), "no budget")
    assert mark_count(base) == 1


def test_marking_lost_while_a_loss_is_open_is_a_conflict(base):
    lm.mark_lost(base, "K1", d(3, 1), "no budget")
    add_order(base, "K1", d(3, 1))  # on the lost day: the episode stays open
    with pytest.raises(lm.MarkConflict, match="already marked lost since 2024-03-01 .* reactivate it first"):
        lm.mark_lost(base, "K1", d(3, 10), "still nothing")
    add_order(base, "K1", d(3, 20))  # ends it on 03-20: lost again on 03-19 still overlaps, on 03-20 does not
    with pytest.raises(lm.MarkConflict):
        lm.mark_lost(base, "K1", d(3, 19), "still nothing")
    assert lm.mark_lost(base, "K1", d(3, 20), "gone again").changed
    assert [e[1:5] for e in episodes(base)] == [(d(3, 1), "no budget", d(3, 20), "ORDER"),
                                                (d(3, 20), "gone again", None, None)]


def test_an_earlier_loss_that_would_run_into_a_later_one_is_a_conflict(base):
    lm.mark_lost(base, "K1", d(3, 1), "no budget")
    with pytest.raises(lm.MarkConflict, match="marked lost from 2024-03-01 .* would run into it") as exc:
        lm.mark_lost(base, "K1", d(2, 1), "earlier")
    assert exc.value.lost_on == d(3, 1)
    assert mark_count(base) == 1  # the conflicting insert was rolled back
    add_order(base, "K1", d(2, 10))  # an order between them ends the earlier one first
    assert lm.mark_lost(base, "K1", d(2, 1), "earlier").changed
    assert [e[1:5] for e in episodes(base)] == [(d(2, 1), "earlier", d(2, 10), "ORDER"),
                                                (d(3, 1), "no budget", None, None)]


def test_a_loss_on_a_reactivation_day_is_a_conflict(base):
    lm.mark_lost(base, "K1", d(3, 1), "no budget")
    lm.reactivate(base, "K1", d(3, 15), "came back")
    with pytest.raises(lm.MarkConflict, match="reactivated on 2024-03-15"):
        lm.mark_lost(base, "K1", d(3, 15), "gone again")
    assert lm.mark_lost(base, "K1", d(3, 16), "gone again").changed


def test_reactivation_needs_a_manual_loss_open_on_its_day(base):
    with pytest.raises(lm.NotLost, match="customer 'K1' is not marked lost on 2024-03-01: it has no lost mark"):
        lm.reactivate(base, "K1", d(3, 1), None)
    lm.mark_lost(base, "K1", d(3, 1), "no budget")
    with pytest.raises(lm.NotLost, match="not marked lost on 2024-02-28: it is marked lost from 2024-03-01") as exc:
        lm.reactivate(base, "K1", d(2, 28), None)
    assert (exc.value.customer_external_id, exc.value.on) == ("K1", d(2, 28))
    add_order(base, "K1", d(3, 10))
    with pytest.raises(lm.NotLost, match="from 2024-03-01 ended on 2024-03-10 by an order"):
        lm.reactivate(base, "K1", d(3, 10), None)
    back = lm.reactivate(base, "K1", d(3, 9), "phoned")  # the day before the order it was still open
    assert back.changed
    assert mark_count(base) == 2


def test_reactivating_on_the_lost_day_ends_it_that_day(base):
    lm.mark_lost(base, "K1", d(3, 1), "marked by mistake")
    lm.reactivate(base, "K1", d(3, 1), "mistake")
    assert episodes(base) == [("K1", d(3, 1), "marked by mistake", d(3, 1), "REACTIVATED", "mistake")]


def test_the_same_reactivation_again_is_a_no_op_another_note_a_conflict(base):
    lm.mark_lost(base, "K1", d(3, 1), "no budget")
    first = lm.reactivate(base, "K1", d(4, 1), "  new budget ")
    again = lm.reactivate(base, "K1", d(4, 1), "new budget")
    assert (again.changed, again.mark.id) == (False, first.mark.id)
    with pytest.raises(lm.MarkConflict, match="already reactivated on 2024-04-01 with another note"):
        lm.reactivate(base, "K1", d(4, 1), "other")
    lm.mark_lost(base, "K2", d(3, 1), "no budget")
    assert lm.reactivate(base, "K2", d(4, 1), "  ").mark.text is None  # a blank note is no note
    assert lm.reactivate(base, "K2", d(4, 1), None).changed is False
    assert mark_count(base) == 4


# ---- bad input ----


@pytest.mark.parametrize("reason, problem", [(None, "'reason' is required"), ("   ", "'reason' is required"),
                                             ("x" * 2001, "2001 characters long; at most 2000"),
                                             ("a\x00b", "NUL")])
def test_a_bad_reason_writes_nothing(base, reason, problem):
    with pytest.raises(BadInput, match=problem) as exc:
        lm.mark_lost(base, "K1", d(3, 1), reason)
    assert exc.value.problems[0].path == ("reason",)
    assert mark_count(base) == 0


def test_a_reason_of_2000_characters_is_kept_whole(base):
    done = lm.mark_lost(base, "K1", d(3, 1), "é" * 2000)
    assert done.mark.text == "é" * 2000


@pytest.mark.parametrize("on, problem", [(date(1899, 12, 31), "between 1900-01-01 and 2999-12-31"),
                                         (date(3000, 1, 1), "between 1900-01-01 and 2999-12-31"),
                                         (date(2023, 12, 31), "before customer 'K1' was created"),
                                         (datetime(2024, 3, 1), "must be a date")])
def test_a_day_outside_the_calendar_or_before_the_customer_writes_nothing(base, on, problem):
    for write in (lambda: lm.mark_lost(base, "K1", on, "r"), lambda: lm.reactivate(base, "K1", on, None)):
        with pytest.raises(BadInput, match=problem) as exc:
            write()
        assert exc.value.problems[0].path == ("on",)
    assert mark_count(base) == 0


def test_an_unknown_customer_is_not_found(base):
    with pytest.raises(lm.CustomerNotFound, match="'NOPE'"):
        lm.mark_lost(base, "NOPE", d(3, 1), "r")
    with pytest.raises(lm.CustomerNotFound):
        lm.reactivate(base, 10_000, d(3, 1), None)
    assert mark_count(base) == 0


def test_the_mark_records_who_and_when_and_takes_a_row_id(base):
    with base.connect() as conn:
        row_id = conn.execute(sa.select(customers_t.c.id).where(customers_t.c.external_id == "K7")).scalar_one()
    before = datetime.now(timezone.utc)
    done = lm.mark_lost(base, row_id, d(3, 1), "r", by="admin")
    recorded = done.mark.recorded_at
    recorded = recorded if recorded.tzinfo else recorded.replace(tzinfo=timezone.utc)
    assert before - timedelta(seconds=1) <= recorded <= datetime.now(timezone.utc) + timedelta(seconds=1)
    assert (done.mark.recorded_by, done.customer.external_id) == ("admin", "K7")
    assert lm.reactivate(base, "K7", d(3, 2), None).mark.recorded_by is None


# ---- concurrent callers ----


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


def _open_episodes(engine) -> list[tuple]:
    return [e for e in episodes(engine) if e[3] is None]


def test_concurrent_identical_marks_store_one(base):
    for round_ in range(3):
        customer = f"K{round_ + 1}"
        out = _at_once([lambda c=customer: lm.mark_lost(base, c, d(3, 1), "same reason")] * 8)
        assert all(isinstance(o, lm.MarkWritten) for o in out), out
        assert sorted(o.changed for o in out) == [False] * 7 + [True]
        assert len({o.mark.id for o in out}) == 1
    assert mark_count(base) == 3 and len(_open_episodes(base)) == 3


def test_concurrent_different_marks_never_leave_two_open_episodes(base):
    # eight callers mark K1 lost on eight different days with no order between them: any two would overlap
    calls = [lambda i=i: lm.mark_lost(base, "K1", d(3, 1) + timedelta(days=i), f"reason {i}") for i in range(8)]
    out = _at_once(calls)
    stored = [o for o in out if isinstance(o, lm.MarkWritten)]
    assert len(stored) == 1 and stored[0].changed, out
    assert all(isinstance(o, lm.MarkConflict) for o in out if o is not stored[0]), out
    assert mark_count(base) == 1 and len(_open_episodes(base)) == 1
    # and reactivations racing with new marks: never an open episode beside another
    calls = [lambda: lm.reactivate(base, "K1", d(3, 20), "back")] * 4 + \
            [lambda i=i: lm.mark_lost(base, "K1", d(3, 21) + timedelta(days=i), f"again {i}") for i in range(4)]
    out = _at_once(calls)
    assert not [o for o in out if isinstance(o, Exception) and not isinstance(o, (lm.MarkConflict, lm.NotLost))]
    assert len(_open_episodes(base)) <= 1
    eps = episodes(base, "K1")
    for a, b in zip(eps, eps[1:]):  # no two share a day
        assert a[3] is not None and a[3] <= b[1], eps
