"""Record flags as of a date (domain.record_flags): the documented meaning at each date edge, the SQL form and the
Python form giving the same answer on SQLite and PostgreSQL, and the places that show flags using them."""
from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from domain.models import Complaint, Customer, Delivery, Interaction, Invoice, Opportunity, Order, Survey
from domain.record_flags import FLAGS, RECORD_VALUES, known_on, record_flag
from rules.builtins import SOURCES

D = date(2026, 6, 15)
DAY = timedelta(days=1)

# (opened, due, resolved) -> expected (open, overdue) on D
COMPLAINTS = [
    ((D - 30 * DAY, None, None), (True, False)),  # never resolved, no due date
    ((D - 30 * DAY, D - DAY, None), (True, True)),  # due yesterday, pending: open and overdue
    ((D - 30 * DAY, D, None), (True, False)),  # due today: not overdue yet
    ((D - 30 * DAY, D + DAY, None), (True, False)),
    ((D - 30 * DAY, D - 10 * DAY, D), (False, True)),  # resolved on D, late: closed, stays overdue
    ((D - 30 * DAY, D - 10 * DAY, D - 10 * DAY), (False, False)),  # resolved on its due date
    ((D - 30 * DAY, D - 10 * DAY, D - 9 * DAY), (False, True)),  # resolved a day late
    ((D - 30 * DAY, D - 10 * DAY, D - 11 * DAY), (False, False)),
    ((D - 30 * DAY, D - 10 * DAY, D + DAY), (True, True)),  # resolved after D: still pending on D
    ((D - 30 * DAY, None, D), (False, False)),
    ((D - 30 * DAY, None, D + DAY), (True, False)),
]
# (promised, delivered) -> expected (late, on_time) on D
DELIVERIES = [
    ((D - DAY, None), (True, False)),  # promised yesterday, not delivered
    ((D, None), (False, False)),  # promised today: not late yet
    ((D + DAY, None), (False, False)),
    ((D - 5 * DAY, D - 5 * DAY), (False, True)),  # delivered on the promised date
    ((D - 5 * DAY, D - 4 * DAY), (True, False)),  # a day late
    ((D - 5 * DAY, D - 6 * DAY), (False, True)),  # early
    ((D - 5 * DAY, D), (True, False)),  # delivered late, on D
    ((D - 5 * DAY, D + DAY), (True, False)),  # delivered after D: not delivered on D, and promised before D
    ((D, D), (False, True)),
    ((D, D + DAY), (False, False)),  # not delivered by D, promised on D: not late on D
    ((D + 3 * DAY, D + DAY), (False, False)),  # delivered after D (early for its promise): not on time yet on D
]
# kind -> win_back
KINDS = [("win_back", True), ("Win-Back", True), ("WIN BACK", True), ("winback", True), ("call", False),
         ("win_back ", False), ("win_bac\u212a", False)]  # a Kelvin sign is not an ASCII K

# (kind, score) -> (detractor, passive, promoter)
SURVEYS = [(("nps", 0.0), (True, False, False)), (("nps", 6.0), (True, False, False)),
           (("nps", 6.5), (True, False, False)), (("nps", 7.0), (False, True, False)),
           (("nps", 8.9), (False, True, False)), (("nps", 9.0), (False, False, True)),
           (("nps", 10.0), (False, False, True)), (("csat", 1.0), (True, False, False)),
           (("csat", 2.9), (True, False, False)), (("csat", 3.0), (False, True, False)),
           (("csat", 4.0), (False, False, True)), (("csat", 5.0), (False, False, True))]
# (closed, outcome, expected close) -> (open, won, lost, stalled) on D
OPPORTUNITIES = [
    ((None, None, None), (True, False, False, False)),
    ((None, None, D - DAY), (True, False, False, True)),  # past its expected close, still open: stalled
    ((None, None, D), (True, False, False, False)),
    ((D, "won", D - 5 * DAY), (False, True, False, False)),  # closed on D
    ((D - DAY, "lost", None), (False, False, True, False)),
    ((D + DAY, "won", D - 5 * DAY), (True, False, False, True)),  # closed after D: open (and stalled) on D
]
# (due, paid, amount) -> (paid, open, overdue, paid_late, days_late, outstanding) on D
INVOICES = [
    ((D + DAY, None, 100.0), (False, True, False, False, 0.0, 100.0)),
    ((D, None, 100.0), (False, True, False, False, 0.0, 100.0)),  # due today: not overdue yet
    ((D - DAY, None, 100.0), (False, True, True, False, 1.0, 100.0)),
    ((D - 10 * DAY, D - 10 * DAY, 50.0), (True, False, False, False, 0.0, 0.0)),  # paid on its due date
    ((D - 10 * DAY, D - 7 * DAY, 50.0), (True, False, False, True, 3.0, 0.0)),
    ((D - 10 * DAY, D - 12 * DAY, 50.0), (True, False, False, False, 0.0, 0.0)),  # paid early
    ((D - 10 * DAY, D + DAY, 50.0), (False, True, True, False, 10.0, 50.0)),  # paid after D: unpaid on D
    ((D - 10 * DAY, D, 50.0), (True, False, False, True, 10.0, 0.0)),
]


def test_the_new_sources_flags_and_values_mean_what_the_docs_say():
    for (kind, score), want in SURVEYS:
        rec = SimpleNamespace(kind=kind, score=score)
        assert tuple(record_flag("survey", f).python(rec, D) for f in ("detractor", "passive", "promoter")) == want
    for (closed, outcome, expected), want in OPPORTUNITIES:
        rec = SimpleNamespace(closed_at=closed, outcome=outcome, expected_close_on=expected, amount=10.0,
                              probability=0.5)
        got = tuple(record_flag("opportunity", f).python(rec, D) for f in ("open", "won", "lost", "stalled"))
        assert got == want, (closed, outcome, expected)
        assert RECORD_VALUES[("opportunity", "weighted_amount")].python(rec, D) == 5.0
    for (due, paid, amount), want in INVOICES:
        rec = SimpleNamespace(issued_at=D - 40 * DAY, due_at=due, paid_at=paid, amount=amount)
        got = tuple(record_flag("invoice", f).python(rec, D) for f in ("paid", "open", "overdue", "paid_late"))
        got += (RECORD_VALUES[("invoice", "days_late")].python(rec, D),
                RECORD_VALUES[("invoice", "outstanding")].python(rec, D))
        assert got == want, (due, paid)


def test_the_flags_mean_what_the_docs_say():
    for (opened, due, resolved), want in COMPLAINTS:
        rec = SimpleNamespace(opened_at=opened, due_at=due, resolved_at=resolved)
        got = (record_flag("complaint", "open").python(rec, D), record_flag("complaint", "overdue").python(rec, D))
        assert got == want, (opened, due, resolved)
    for (promised, delivered), want in DELIVERIES:
        rec = SimpleNamespace(promised_at=promised, delivered_at=delivered)
        got = (record_flag("delivery", "late").python(rec, D), record_flag("delivery", "on_time").python(rec, D))
        assert got == want, (promised, delivered)
    for kind, want in KINDS:
        assert record_flag("interaction", "win_back").python(SimpleNamespace(kind=kind), D) is want, kind


def test_the_rule_language_offers_exactly_the_defined_flags():
    assert {(source, name) for source, info in SOURCES.items() for name in info.flags} == set(FLAGS)


def test_sql_and_python_forms_agree_on_the_edges(engine):
    """Every flag on every edge record, on the edge days around D: the SQL form computes what the Python form does."""
    with engine.begin() as conn:
        conn.execute(Customer.__table__.insert(), [dict(id=1, external_id="c1", name="c", seasonal=False,
                                                        created_at=date(2020, 1, 1), attributes={})])
        conn.execute(Order.__table__.insert(), [dict(id=1, external_id="o1", customer_id=1, ordered_at=D,
                                                     amount=1.0, line_count=1)])
        conn.execute(Complaint.__table__.insert(), [
            dict(id=i, external_id=f"k{i}", customer_id=1, opened_at=o, due_at=d, resolved_at=r, cost=0.0)
            for i, ((o, d, r), _) in enumerate(COMPLAINTS, 1)])
        conn.execute(Delivery.__table__.insert(), [
            dict(id=i, external_id=f"d{i}", customer_id=1, order_id=1, promised_at=p, delivered_at=dl)
            for i, ((p, dl), _) in enumerate(DELIVERIES, 1)])
        conn.execute(Interaction.__table__.insert(), [
            dict(id=i, external_id=f"i{i}", customer_id=1, occurred_at=D, kind=k, cost=0.0)
            for i, (k, _) in enumerate(KINDS, 1)])
        conn.execute(Survey.__table__.insert(), [
            dict(id=i, external_id=f"s{i}", customer_id=1, answered_at=D, kind=k, score=sc)
            for i, ((k, sc), _) in enumerate(SURVEYS, 1)])
        conn.execute(Opportunity.__table__.insert(), [
            dict(id=i, external_id=f"p{i}", customer_id=1, opened_at=D - 30 * DAY, stage="proposal", amount=10.0,
                 probability=0.5, expected_close_on=e, closed_at=c, outcome=o)
            for i, ((c, o, e), _) in enumerate(OPPORTUNITIES, 1)])
        conn.execute(Invoice.__table__.insert(), [
            dict(id=i, external_id=f"v{i}", customer_id=1, issued_at=D - 40 * DAY, due_at=d, paid_at=p, amount=a)
            for i, ((d, p, a), _) in enumerate(INVOICES, 1)])
    tables = {"complaint": Complaint.__table__, "delivery": Delivery.__table__, "interaction": Interaction.__table__,
              "survey": Survey.__table__, "opportunity": Opportunity.__table__, "invoice": Invoice.__table__}
    checked = 0
    with engine.connect() as conn:
        for (source, name), flag in FLAGS.items():
            t = tables[source]
            rows = {r.id: r for r in conn.execute(sa.select(t))}
            for day in (D - DAY, D, D + DAY, D + 10 * DAY):
                bound = sa.bindparam(None, day, type_=sa.Date)
                expr = sa.case((flag.sql(t, bound), sa.true()), else_=sa.false())
                sql = {r[0]: bool(r[1]) for r in conn.execute(sa.select(t.c.id, expr.label("flag")))}
                python = {i: flag.python(r, day) for i, r in rows.items()}
                assert sql == python, (source, name, day)
                # NOT of the SQL form selects the complement: the SQL form is never unknown
                negated = {r[0] for r in conn.execute(sa.select(t.c.id).where(sa.not_(flag.sql(t, bound))))}
                assert negated == {i for i, v in python.items() if not v}, (source, name, day)
                checked += 1
    assert checked == 4 * len(FLAGS)
    with engine.connect() as conn:  # the derived record values too
        for (source, name), value in RECORD_VALUES.items():
            t = tables[source]
            rows = {r.id: r for r in conn.execute(sa.select(t))}
            for day in (D - DAY, D, D + DAY, D + 10 * DAY):
                bound = sa.bindparam(None, day, type_=sa.Date)
                sql = {r[0]: float(r[1]) for r in conn.execute(sa.select(t.c.id, value.sql(t, bound)))}
                assert sql == {i: float(value.python(r, day)) for i, r in rows.items()}, (source, name, day)


def test_a_record_is_known_on_a_day_only_with_what_had_happened_by_then():
    complaint = SimpleNamespace(opened_at=D - 5 * DAY, due_at=D + 5 * DAY, resolved_at=D + DAY)
    assert known_on("complaint", complaint, D).resolved_at is None  # resolved later: not yet known
    assert known_on("complaint", complaint, D).due_at == D + 5 * DAY  # the due date is known when opened
    assert known_on("complaint", complaint, D + DAY).resolved_at == D + DAY
    assert known_on("complaint", complaint, D - 6 * DAY) is None  # opened later
    delivery = SimpleNamespace(promised_at=D - DAY, delivered_at=D + 2 * DAY)
    assert known_on("delivery", delivery, D).delivered_at is None
    assert known_on("order", SimpleNamespace(ordered_at=D + DAY), D) is None


@pytest.mark.parametrize("field", ["open", "overdue"])
def test_graphql_complaint_flags_follow_as_of(field):
    """Complaint.open / overdue in GraphQL are the record flags on asOf (resolved_at is not ignored)."""
    from schema.customers import Complaint as ComplaintType

    c = ComplaintType(external_id="k", opened_at=D - 30 * DAY, due_at=D - 10 * DAY, resolved_at=D - 5 * DAY,
                      category=None, cost=0.0)
    flag = record_flag("complaint", field)
    for day in (D - 20 * DAY, D - 6 * DAY, D):
        assert flag.python(c, day) == {"open": day < D - 5 * DAY, "overdue": day > D - 10 * DAY}[field]
