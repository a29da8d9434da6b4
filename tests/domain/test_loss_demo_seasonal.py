"""On the demo base, seasonal buyers are not lost in their off-season under the shipped rules, and the backtest
shows how many the rule without `unless seasonal` would have wrongly declared lost (on SQLite and PostgreSQL).

A seasonal buyer orders in its season and comes back every season: `no order 90d` alone declares it lost in
every off-season, and the next season's orders prove each of those losses false. The shipped status list
(rules/default.rules) says `status lost if no order 90d unless seasonal`. The false losses are also counted here in
plain Python over the demo's CSV files, independently of the engine.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.backtest import backtest, backtest_episodes
from domain.demo import generate_demo
from domain.importer import import_directory
from domain.loss_history import LossRules, episodes
from domain.models import Customer
from domain.settings import DEFAULT_RULES
from rules.compiler import compile_condition, load_rules_file

UNTIL = date(2025, 11, 20)
# a period whose horizons all end before the demo's last day, so every false loss can show
START, END, HORIZON = date(2024, 1, 1), date(2024, 10, 31), 365
SHIPPED_LOSS_RULE = "status lost if no order 90d unless seasonal"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "data"
    summary = generate_demo(out, seed=7, customers=150, until=UNTIL)
    assert summary.profiles["seasonal"] >= 5
    return out


@pytest.fixture
def demo(engine, demo_dir):
    import_directory(engine, demo_dir)
    return engine


def false_seasonal_losses_from_csv(directory) -> int:
    """Under `no order 90d`: the losses of customers flagged seasonal with a loss day in [START, END] after which
    they ordered within HORIZON days. Per customer, the loss day of the time before its first order is the day it
    was created (no order in 90 days then), of each later gap its order day + 90, when before the next order."""
    with open(directory / "customers.csv", newline="", encoding="utf-8") as fh:
        seasonal = {r["external_id"]: date.fromisoformat(r["created_at"]) for r in csv.DictReader(fh)
                    if r["seasonal"].lower() in {"true", "1", "yes"}}
    days = defaultdict(set)
    with open(directory / "orders.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["customer_external_id"] in seasonal:
                days[r["customer_external_id"]].add(date.fromisoformat(r["ordered_at"]))
    false = 0
    for ext, created in seasonal.items():
        ordered = sorted(days[ext])
        starts = ([(created, ordered[0] if ordered else None)] if not ordered or created < ordered[0] else [])
        starts += [(d + timedelta(days=90), nxt) for d, nxt in zip(ordered, ordered[1:] + [None])]
        for lost, nxt in starts:
            if nxt is not None and lost < nxt and START <= lost <= END and (nxt - lost).days <= HORIZON:
                false += 1
    return false


def test_seasonal_buyers_are_not_lost_off_season_and_the_backtest_counts_the_false_losses(demo, demo_dir):
    ruleset = load_rules_file(DEFAULT_RULES)
    rules = LossRules.of(ruleset)
    (line,) = [rules.line(i) for i in rules.lost if " ".join(rules.text(rules.line(i)).split()) == SHIPPED_LOSS_RULE]
    e = episodes(rules, START, END)
    c = Customer.__table__
    with demo.connect() as conn:
        by_rule = conn.execute(sa.select(c.c.seasonal, sa.func.count())
                               .select_from(e.join(c, c.c.id == e.c.customer_id))
                               .where(e.c.how == "RULE", e.c.rule_line == line).group_by(c.c.seasonal)).all()
    assert dict(by_rule).get(True, 0) == 0  # the shipped rule never declares a seasonal buyer
    assert dict(by_rule).get(False, 0) > 0  # ... while it does declare others

    plain, unless = (backtest(demo, compile_condition(text, ruleset), ruleset, START, END, HORIZON, UNTIL)
                     for text in ("no order 90d", "no order 90d unless seasonal"))
    assert plain.horizon_incomplete == unless.horizon_incomplete == 0
    wrongly_declared = plain.ordered_again - unless.ordered_again
    assert wrongly_declared > 0
    assert wrongly_declared == false_seasonal_losses_from_csv(demo_dir)

    # the difference is exactly the seasonal buyers' episodes: `unless seasonal` changes nobody else's
    seasonal_only = backtest_episodes(compile_condition("no order 90d", ruleset), ruleset, START, END).subquery()
    with demo.connect() as conn:
        seasonal_declared = conn.execute(
            sa.select(sa.func.count()).select_from(seasonal_only.join(c, c.c.id == seasonal_only.c.customer_id))
            .where(c.c.seasonal.is_(True))).scalar()
    assert plain.declared - unless.declared == seasonal_declared >= wrongly_declared
