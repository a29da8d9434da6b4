"""The loss history and the backtest on the real CDNOW purchases, against an independent computation in plain
Python over the CSV files (csv module only, no Tiergraph code), on SQLite and PostgreSQL.

Under `no order 90d` a customer is lost on the 90th day after an order when no order came before it: per customer,
per gap between consecutive order days (and after the last one), the loss day is the gap's order day + 90 when
that is before the next order day.

The data's end: CDNOW's purchases stop on 1998-06-30, the last order day in orders.csv, and the engine derives no
loss for days the data has not reached (the API clamps every period to the data's today). So the months of 1998
are counted up to that day: January to June; July to December have none. The engine would go on to declare in
July to September the customers whose last order was in April to June, which the data cannot confirm or refute;
that the clamp is the only thing removing them is checked too.
"""
from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import date, timedelta
from statistics import median

import pytest
import sqlalchemy as sa

from domain.backtest import backtest
from domain.importer import import_directory
from domain.loss_history import LossRules, episodes
from domain.models import Customer
from rules.compiler import compile_condition, compile_rules

LOSS_RULES = compile_rules("status lost if no order 90d\nstatus active otherwise\n")
MONTHS_1998 = [(date(1998, m, 1), (date(1998, m + 1, 1) if m < 12 else date(1999, 1, 1)) - timedelta(days=1))
               for m in range(1, 13)]


def order_days_from_csv(directory) -> dict[str, list[date]]:
    """external id -> every order's day (one per order row, in file order)."""
    days = defaultdict(list)
    with open(directory / "orders.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            days[row["customer_external_id"]].append(date.fromisoformat(row["ordered_at"]))
    return days


def gaps(days: list[date]):
    """(order day, next order day or None) for each distinct order day of a customer."""
    distinct = sorted(set(days))
    return zip(distinct, distinct[1:] + [None])


def losses_after(days: list[date], quiet_days: int):
    """(loss day, last order day, next order day or None) under `no order <quiet_days>d`."""
    for last, following in gaps(days):
        lost = last + timedelta(days=quiet_days)
        if following is None or lost < following:
            yield lost, last, following


@pytest.fixture
def cdnow(engine, cdnow_dir):
    import_directory(engine, cdnow_dir)
    return engine


def test_rule_losses_per_month_of_1998(cdnow, cdnow_dir):
    orders = order_days_from_csv(cdnow_dir)
    data_end = max(d for days in orders.values() for d in days)
    assert data_end == date(1998, 6, 30)
    expected, unclamped = Counter(), Counter()
    for days in orders.values():
        for lost, _, _ in losses_after(days, 90):
            if lost.year == 1998:
                unclamped[lost.month] += 1
                if lost <= data_end:
                    expected[lost.month] += 1

    rules = LossRules.of(LOSS_RULES)
    found = Counter()
    with cdnow.connect() as conn:
        for first, last in MONTHS_1998:
            if first > data_end:
                continue
            e = episodes(rules, first, min(last, data_end))
            found[first.month] = conn.execute(sa.select(sa.func.count()).select_from(e)
                                              .where(e.c.how == "RULE")).scalar()
            kinds = conn.execute(sa.select(e.c.how).distinct()).scalars().all()
            assert set(kinds) <= {"RULE"}, kinds  # CDNOW has no blocked customers and no manual marks
        # what the clamp removes: past the data's end the rule goes on declaring, as the plain count says
        whole_year = episodes(rules, date(1998, 1, 1), date(1998, 12, 31))
        beyond = Counter(d.month for d in conn.execute(sa.select(whole_year.c.lost_on)).scalars())

    assert [found[m] for m in range(1, 13)] == [expected[m] for m in range(1, 13)]
    assert all(found[m] > 50 for m in range(1, 7)) and not any(found[m] for m in range(7, 13))
    assert [beyond[m] for m in range(1, 13)] == [unclamped[m] for m in range(1, 13)]
    assert unclamped[7] > 0 and unclamped[10] == 0  # the last order is 06-30: nobody is lost after 09-28


def test_rule_loss_episodes_of_one_month_match_customer_by_customer(cdnow, cdnow_dir):
    orders = order_days_from_csv(cdnow_dir)
    march = (date(1998, 3, 1), date(1998, 3, 31))
    expected = {(ext, lost, last, following) for ext, days in orders.items()
                for lost, last, following in losses_after(days, 90) if march[0] <= lost <= march[1]}
    e = episodes(LossRules.of(LOSS_RULES), *march)
    c = Customer.__table__
    with cdnow.connect() as conn:
        got = {tuple(r) for r in conn.execute(
            sa.select(c.c.external_id, e.c.lost_on, e.c.last_order_at, e.c.reactivated_on)
            .select_from(e.join(c, c.c.id == e.c.customer_id)))}
    assert got == expected


def plain_backtest(orders, lost_days, start: date, end: date, horizon: int):
    """declared, ordered again, median days from the last order, from (loss, last, next) triples."""
    declared = [(lost, last, following) for days in orders.values() for lost, last, following in lost_days(days)
                if start <= lost <= end]
    again = sum(1 for lost, _, following in declared
                if following is not None and (following - lost).days <= horizon)
    return len(declared), again, median((lost - last).days for lost, last, _ in declared)


def losses_when_few_orders(days: list[date]):
    """`no order 60d and count(order, 365d) <= 2`: per gap, the first day from the order day + 60 on (before the
    next order) with at most 2 orders in the 365 days up to it; the count only falls when an order leaves."""
    for last, following in gaps(days):
        candidates = sorted({last + timedelta(days=60)} | {o + timedelta(days=365) for o in days if o <= last})
        for day in candidates:
            if day < last + timedelta(days=60):
                continue
            if following is not None and day >= following:
                break
            if sum(1 for o in days if day - timedelta(days=365) < o <= day) <= 2:
                yield day, last, following
                break


@pytest.mark.parametrize("condition, lost_days", [
    ("no order 120d", lambda days: losses_after(days, 120)),
    ("no order 60d and count(order, 365d) <= 2", losses_when_few_orders),
])
def test_backtest_of_the_second_half_of_1997(cdnow, cdnow_dir, condition, lost_days):
    start, end, horizon = date(1997, 7, 1), date(1997, 12, 31), 180
    declared, again, middle = plain_backtest(order_days_from_csv(cdnow_dir), lost_days, start, end, horizon)
    got = backtest(cdnow, compile_condition(condition), LOSS_RULES, start, end, horizon, today=date(1998, 6, 30))
    assert (got.declared, got.ordered_again, got.median_days_from_last_order) == (declared, again, middle)
    assert got.false_loss_rate == pytest.approx(again / declared)
    assert got.horizon_incomplete == 0  # 1997-12-31 + 180 days is 1998-06-29, before the data's end
    assert declared > 100 and 0 < again < declared
