"""Lost customers of a period, checked by hand on a small base: loss dates of each kind, one episode per gap,
cost, level (tier at loss from the change log), the records behind the signs of why, and the summary per tier."""
from datetime import date

import pytest

from domain import loss
from domain.loss_history import LossRules, lost_customers_on
from domain.models import Complaint, Customer, Delivery, LossMark, Order, TierChange
from rules.compiler import compile_rules

RULES = """tier big if sum(order.amount, 12m) >= 1000
tier small otherwise
status prospect if count(order) = 0
status lost if blocked
status lost if no order 90d unless seasonal
status at_risk if no order 45d
status active otherwise
"""
YEAR = (date(2025, 1, 1), date(2025, 12, 31))


def _customer(cid, ext, **kw):
    return dict(dict(id=cid, external_id=ext, name=ext, region=None, seasonal=False, blocked_from=None,
                     created_at=date(2025, 1, 1), attributes={}, owner_rep_id=None), **kw)


@pytest.fixture
def base(engine):
    with engine.begin() as conn:
        conn.execute(Customer.__table__.insert(), [
            _customer(1, "A", region="north"), _customer(2, "B", seasonal=True),
            _customer(3, "C", blocked_from=date(2025, 4, 1)), _customer(4, "D"), _customer(5, "E")])
        conn.execute(Order.__table__.insert(), [
            dict(external_id=ext, customer_id=cid, ordered_at=day, amount=amount, margin=margin, line_count=1)
            for ext, cid, day, amount, margin in [
                ("a1", 1, date(2025, 1, 10), 600.0, 100.0), ("a2", 1, date(2025, 3, 1), 500.0, None),
                ("a3", 1, date(2025, 7, 1), 50.0, 20.0),
                ("b1", 2, date(2025, 1, 5), 80.0, 10.0),
                ("c1", 3, date(2025, 3, 20), 200.0, 50.0),
                ("d1", 4, date(2025, 2, 1), 30.0, 5.0)]])
        conn.execute(Complaint.__table__.insert(), [
            dict(external_id="k1", customer_id=1, opened_at=date(2025, 2, 1), due_at=date(2025, 2, 10),
                 resolved_at=date(2025, 6, 1), category="billing", cost=0.0),
            dict(external_id="k2", customer_id=1, opened_at=date(2025, 5, 31), due_at=None, resolved_at=None,
                 category="quality", cost=0.0)])
        conn.execute(Delivery.__table__.insert(), [
            dict(external_id="v1", customer_id=1, order_id=1, promised_at=date(2025, 1, 15),
                 delivered_at=date(2025, 1, 20), delay_reason="carrier")])
        conn.execute(TierChange.__table__.insert(), [
            dict(customer_id=1, as_of=date(2025, 1, 31), effective_on=date(2025, 1, 10), kind="tier",
                 old_value=None, new_value="small", cause="NEW_DATA"),
            dict(customer_id=1, as_of=date(2025, 3, 31), effective_on=date(2025, 3, 1), kind="tier",
                 old_value="small", new_value="big", cause="NEW_DATA"),
            # seen only after the second loss (recorded 09-30): the level in force on 09-29 was still `big`
            dict(customer_id=1, as_of=date(2025, 9, 30), effective_on=date(2025, 7, 20), kind="tier",
                 old_value="big", new_value="small", cause="TIME")])
        conn.execute(LossMark.__table__.insert(), [
            dict(customer_id=4, kind="lost", marked_on=date(2025, 2, 15), text="went bankrupt")])
    return engine


def _rules():
    return LossRules.of(compile_rules(RULES))


def test_episodes_of_a_year_biggest_loss_first(base):
    found = loss.lost_customers(base, _rules(), *YEAR)
    assert [(e.external_id, e.lost_on, e.how) for e in found] == [
        ("A", date(2025, 9, 29), "RULE"),   # last order 07-01 + 90 days; 12m revenue 600 + 500 + 50
        ("A", date(2025, 5, 30), "RULE"),   # last order 03-01 + 90 days; 600 + 500
        ("C", date(2025, 4, 1), "BLOCKED"),  # blocked_from (the `lost if blocked` rule says the same day)
        ("D", date(2025, 2, 15), "MANUAL"),  # the mark comes before the rule's 05-02 in the same gap
    ]  # B is seasonal (never lost under `unless seasonal`), E never ordered (prospect)
    a2, a1, c, d = found
    assert (a1.revenue_lost, a2.revenue_lost, c.revenue_lost, d.revenue_lost) == (1100.0, 1150.0, 200.0, 30.0)
    assert a1.margin_lost is None and c.margin_lost == 50.0  # a2 has no known margin: the year's is unknown
    assert (a1.rule_line, a1.rule_text) == (5, "status lost if no order 90d unless seasonal")
    assert (a1.reactivated_on, a1.end_kind, a2.reactivated_on) == (date(2025, 7, 1), "ORDER", None)
    assert (a1.at_risk_on, a1.last_order_at) == (date(2025, 4, 15), date(2025, 3, 1))  # 03-01 + 45 days
    assert (d.reason, d.reactivated_on) == ("went bankrupt", None)
    assert (a1.orders_before_loss, c.orders_before_loss) == (2, 1)


def test_the_period_is_inclusive_and_filters_apply(base):
    rules = _rules()
    may = loss.lost_customers(base, rules, date(2025, 5, 30), date(2025, 5, 30))
    assert [(e.external_id, e.lost_on) for e in may] == [("A", date(2025, 5, 30))]
    assert loss.lost_customers(base, rules, date(2025, 5, 31), date(2025, 9, 28)) == []
    assert loss.lost_count(base, rules, *YEAR, loss.LossFilter(how="BLOCKED")) == 1
    assert loss.lost_count(base, rules, *YEAR, loss.LossFilter(region="north")) == 2
    assert loss.lost_count(base, rules, *YEAR, loss.LossFilter(tier_at_loss="big")) == 2
    page = loss.lost_customers(base, rules, *YEAR, limit=2)
    rest = loss.lost_customers(base, rules, *YEAR, after=(page[-1].revenue_lost, page[-1].customer_id,
                                                          page[-1].lost_on))
    assert [e.key for e in page + rest] == [e.key for e in loss.lost_customers(base, rules, *YEAR)]


def test_level_and_evidence_as_of_the_loss_date(base):
    a2, a1, c, d = loss.lost_customers(base, _rules(), *YEAR)
    assert (a1.tier_at_loss, a2.tier_at_loss, c.tier_at_loss) == ("big", "big", None)
    # on 05-30: k1 is overdue (due 02-10, resolved 06-01) and still open; k2 (opened 05-31) is not there yet
    assert (a1.complaints, a1.overdue_complaints, a1.open_complaints) == (1, 1, 1)
    # on 09-29: k1 resolved (still overdue in the record), k2 open
    assert (a2.complaints, a2.overdue_complaints, a2.open_complaints) == (2, 1, 1)
    assert (a1.deliveries, a1.late_deliveries) == (1, 1)
    details = loss.episode_details(base, [a1.key, a2.key])
    assert [(k["external_id"], k["overdue"], k["open"]) for k in details[a1.key].complaints] == [("k1", True, True)]
    assert [(v["external_id"], v["late"], v["delay_reason"]) for v in details[a1.key].deliveries] == [
        ("v1", True, "carrier")]
    assert [(t["effective_on"], t["new_value"]) for t in details[a1.key].tier_changes] == [
        (date(2025, 1, 10), "small"), (date(2025, 3, 1), "big")]
    assert [t["new_value"] for t in details[a2.key].tier_changes] == ["small", "big", "small"]


def test_summary_per_tier_at_loss(base):
    rows = {r.tier_at_loss: r for r in loss.loss_summary(base, _rules(), *YEAR)}
    assert set(rows) == {"big", None}
    big, unknown = rows["big"], rows[None]
    assert (big.customers, big.episodes, big.revenue_lost, big.rule, big.reactivated) == (1, 2, 2250.0, 2, 1)
    assert (unknown.customers, unknown.episodes, unknown.revenue_lost) == (2, 2, 230.0)
    # v1 (late, promised 2025-01-15) is within the 12 months before both of A's losses
    assert (unknown.blocked, unknown.manual, big.with_overdue_complaints, big.with_late_deliveries) == (1, 1, 2, 2)


def test_who_is_lost_on_a_day(base):
    rules = _rules()
    with base.connect() as conn:
        on = lambda day: sorted(r[0] for r in conn.execute(lost_customers_on(rules, day)))  # noqa: E731
        assert on(date(2025, 6, 30)) == [1, 3, 4]     # A lost on 05-30, its next order comes on 07-01
        assert on(date(2025, 5, 29)) == [3, 4]
        assert on(date(2025, 7, 1)) == [3, 4]         # A's order that day ends its episode
        assert on(date(2025, 9, 29)) == [1, 3, 4]


def test_a_rule_loss_after_a_manual_loss_ended_by_hand_counts(base):
    with base.begin() as conn:
        conn.execute(Customer.__table__.insert(), [_customer(6, "F")])
        conn.execute(Order.__table__.insert(), [dict(external_id="f1", customer_id=6, ordered_at=date(2025, 1, 1),
                                                     amount=10.0, margin=1.0, line_count=1)])
        conn.execute(LossMark.__table__.insert(), [
            dict(customer_id=6, kind="lost", marked_on=date(2025, 2, 1), text="said they would stop"),
            dict(customer_id=6, kind="reactivated", marked_on=date(2025, 2, 10), text="changed their mind")])
    found = loss.lost_customers(base, _rules(), *YEAR, customer_ids=[6])
    # the manual loss 02-01..02-10, then still no order: the rule loses it on 01-01 + 90 days
    assert sorted((e.lost_on, e.how, e.reactivated_on) for e in found) == [
        (date(2025, 2, 1), "MANUAL", date(2025, 2, 10)), (date(2025, 4, 1), "RULE", None)]


def test_a_first_tier_is_in_force_without_a_change_row(base):
    """The change log holds moves, not first tiers: a customer evaluated by the loss date and never moved since
    was lost at its current tier; one that moved after the loss at the tier it left; one no evaluation had seen
    by then at none."""
    from domain.models import CustomerEvaluation, EvaluationRun

    with base.begin() as conn:
        run = conn.execute(EvaluationRun.__table__.insert().values(rules_checksum="x", as_of=date(2025, 3, 31), cutoffs={})
                           ).inserted_primary_key[0]
        conn.execute(CustomerEvaluation.__table__.insert(), [
            dict(customer_id=cid, run_id=run, as_of=date(2025, 3, 31), tier=tier, status="active", tags=[], metrics={})
            for cid, tier in [(3, "small"), (4, "small")]])

    def level(ext: str):
        return {e.external_id: e.tier_at_loss for e in loss.lost_customers(base, _rules(), *YEAR)}[ext]

    # C: blocked from 04-01, seen by the 03-31 evaluation, never moved: its current tier
    # D: marked lost on 02-15, before any evaluation: no tier then
    assert (level("C"), level("D")) == ("small", None)
    with base.begin() as conn:  # C moves after its loss: it was lost at the tier it left
        conn.execute(TierChange.__table__.insert().values(
            customer_id=3, as_of=date(2025, 6, 30), effective_on=date(2025, 6, 1), kind="tier", old_value="big",
            new_value="small", cause="TIME"))
    assert (level("C"), level("D")) == ("big", None)


def test_a_page_carries_the_count_of_every_kept_episode(base):
    rules = _rules()
    everyone = loss.lost_customers(base, rules, *YEAR)
    first, total = loss.lost_page(base, rules, *YEAR, limit=2)
    assert total == len(everyone) == 4 and [e.key for e in first] == [e.key for e in everyone[:2]]
    last = first[-1]
    second, total = loss.lost_page(base, rules, *YEAR, limit=2, after=(last.revenue_lost, last.customer_id,
                                                                       last.lost_on))
    assert total == 4 and [e.key for e in second] == [e.key for e in everyone[2:]]  # counted before the cursor
    big = loss.LossFilter(tier_at_loss="big")
    assert loss.lost_page(base, rules, *YEAR, big, limit=1)[1] == loss.lost_count(base, rules, *YEAR, big) == 2
    end = everyone[-1]
    assert loss.lost_page(base, rules, *YEAR, limit=2, after=(end.revenue_lost, end.customer_id, end.lost_on)) \
        == ([], 4)  # past the end: no row carries the count, so it is counted on its own
