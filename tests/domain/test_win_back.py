"""Win-back attempts on a hand-built base (every count worked out by hand below), on SQLite and PostgreSQL: per
episode (before the loss from turning at risk, after it until reactivation or the data's today, by the owner) and
per owner rep over 2024-04-01..2024-06-30."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from domain.loss_history import LossRules, episodes
from domain.win_back import EpisodeWinBack, RepWinBack, win_back_by_rep, win_back_for_episodes
from rules.compiler import compile_rules
from tests.domain.test_loss_reasons import LOSS_RULES, Person, insert_people

D = date.fromisoformat
START, END, TODAY = D("2024-04-01"), D("2024-06-30"), D("2024-09-30")
REPS = ("A", "B")  # ids 1 and 2

# Attempt windows: before = [at_risk_on (last order + 45 days) or the loss date, loss date];
# after = (loss date, reactivation or TODAY]
PEOPLE = {
    # at risk 2024-02-29 (2024-01-15 + 45), lost 2024-04-14 (+ 90), reactivated by the order of 2024-08-20
    "W1": Person(["2024-01-15", "2024-08-20"], owner="A", interactions=[
        ("2024-02-28", "A"),  # the day before turning at risk: no attempt
        ("2024-03-05", "A"),  # before, by the owner
        ("2024-04-14", "B"),  # on the loss date: before, not the owner
        ("2024-05-01", "A"),  # after, by the owner
        ("2024-06-10", None),  # after, no rep; 2024-08-20 - 90 days = 2024-05-22 <= 06-10: reactivated within 90
        ("2024-08-25", "A"),  # after the reactivation: no attempt
    ]),
    # at risk 2024-03-17, lost 2024-05-01, reactivated 2024-09-01; 09-01 - 90 days = 06-03 > 05-10: not within 90
    "W2": Person(["2024-02-01", "2024-09-01"], owner="A", interactions=[("2024-05-10", "A")]),
    # blocked 2024-06-01, never at risk, no interaction, still lost
    "W3": Person(["2024-05-15"], owner="A", blocked="2024-06-01"),
    # at risk 2024-04-15, lost 2024-05-30, still lost: after-window up to TODAY
    "W4": Person(["2024-03-01"], owner="B", interactions=[("2024-09-29", "B"), ("2024-10-01", "B")]),
    # no owner; at risk 2024-03-05, lost 2024-04-19, reactivated 2024-06-15 (- 90 days = 03-17 <= 04-01)
    "W5": Person(["2024-01-20", "2024-06-15"], interactions=[("2024-04-01", "A")]),
    # lost 2023-12-30, before the period: in no count
    "W6": Person(["2023-10-01"], owner="B", interactions=[("2024-05-01", "B")]),
    # lost twice in the period: RULE 2024-04-14 (no attempt; reactivated 2024-04-20), BLOCKED 2024-06-01
    "W7": Person(["2024-01-15", "2024-04-20"], owner="A", blocked="2024-06-01", interactions=[("2024-06-05", "A")]),
}

EXPECTED_EPISODES = {  # (customer, lost_on): before, before by owner, after, after by owner, last attempt, won
    ("W1", "2024-04-14"): (2, 1, 2, 1, "2024-06-10", True),
    ("W2", "2024-05-01"): (0, 0, 1, 1, "2024-05-10", False),
    ("W3", "2024-06-01"): (0, 0, 0, 0, None, False),
    ("W4", "2024-05-30"): (0, 0, 1, 1, "2024-09-29", False),
    ("W5", "2024-04-19"): (1, 0, 0, 0, "2024-04-01", True),
    ("W7", "2024-04-14"): (0, 0, 0, 0, None, False),
    ("W7", "2024-06-01"): (0, 0, 1, 1, "2024-06-05", False),
}
# A: W1, W2, W3, W7 lost (4); with an attempt W1, W2, W7 (3); within 90 days W1 (1); attempts 4 + 1 + 0 + 1 = 6
# B: W4 (1), with an attempt, none reactivated, 1 attempt; no owner: W5 (1), with an attempt, reactivated, 1.
# The most customers lost first; B and no owner tie at 1: a rep before no rep.
EXPECTED_REPS = [RepWinBack(1, 4, 3, 1, 1, 6), RepWinBack(2, 1, 1, 0, 0, 1), RepWinBack(None, 1, 1, 0, 1, 1)]


@pytest.fixture
def rules():
    return LossRules.of(compile_rules(LOSS_RULES))


@pytest.fixture
def ids(engine):
    return insert_people(engine, PEOPLE, reps=REPS)


def test_attempts_per_episode(engine, rules, ids):
    name = {v: k for k, v in ids.items()}
    with engine.connect() as conn:
        at_risk = {(name[r.customer_id], r.lost_on): r.at_risk_on
                   for r in conn.execute(sa.select(episodes(rules, START, END)))}
        got = win_back_for_episodes(conn, episodes(rules, START, END), TODAY)
    # the fixture's at-risk days (the start of the "before" window) are the ones worked out above
    assert at_risk[("W1", D("2024-04-14"))] == D("2024-02-29") and at_risk[("W3", D("2024-06-01"))] is None
    want = {(ids[c], D(lost)): EpisodeWinBack(ids[c], D(lost), before, before_owner, after, after_owner,
                                              D(last) if last else None, won)
            for (c, lost), (before, before_owner, after, after_owner, last, won) in EXPECTED_EPISODES.items()}
    assert got == want


def test_a_page_of_episodes_gets_only_its_own_rows(engine, rules, ids):
    every = episodes(rules, START, END)
    page = sa.select(every).where(every.c.customer_id == ids["W1"]).subquery("page")
    with engine.connect() as conn:
        got = win_back_for_episodes(conn, page, TODAY)
    assert list(got) == [(ids["W1"], D("2024-04-14"))]


def test_the_after_window_ends_on_the_data_today(engine, rules, ids):
    # W4 is still lost: with today 2024-09-28 its attempt of 2024-09-29 has not happened yet
    with engine.connect() as conn:
        got = win_back_for_episodes(conn, episodes(rules, START, END), D("2024-09-28"))
    assert got[(ids["W4"], D("2024-05-30"))].attempts_after == 0


def test_win_back_per_owner_rep(engine, rules, ids):
    assert win_back_by_rep(engine, rules, START, END, TODAY) == EXPECTED_REPS
