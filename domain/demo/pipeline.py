"""The sales pipeline: opportunities per customer, won, lost, open and stalled, and big deals with prospects.

Deals open while the customer is active (bigger accounts more often), worth a share of a year's revenue. Most
close around their expected date; some stall and are given up months later, so the ones opened lately are still
open past their expected close date at the end. Prospects (no orders yet) each have large deals in the works.
"""
from __future__ import annotations

import numpy as np

from . import catalog as cat
from .activity import Events
from .profiles import CHURNER, COSTLY, GROWER, PROSPECT, Customers

WON, LOST, OPEN = 0, 1, 2
CLOSED = -1  # the stage of a closed deal: closed_won / closed_lost by its state


def make_opportunities(rng: np.random.Generator, c: Customers, days: int) -> Events:
    begin = np.maximum(c.created, 0)
    span = np.maximum(np.minimum(c.active_to, days) - begin, 0)
    buyer = c.profile != PROSPECT
    k = rng.poisson(buyer * np.asarray(cat.OPPORTUNITIES_PER_YEAR)[c.size] * span / 365.0)
    k_prospect = np.where(buyer, 0, rng.integers(1, 4, c.n))
    cust = np.repeat(np.arange(c.n), k + k_prospect)
    prospect = c.profile[cust] == PROSPECT
    n = len(cust)
    opened = begin[cust] + np.floor(rng.random(n) * (span[cust] + 1)).astype(np.int64)
    # Prospects' deals are recent: opened within 200 days before the end, never before the account existed.
    opened[prospect] = np.maximum(begin[cust], days - rng.integers(0, 200, n))[prospect]
    amount = np.where(prospect, rng.uniform(15_000, 90_000, n),
                      np.maximum(500.0, c.annual_revenue[cust] * rng.lognormal(np.log(0.25), 0.6, n)))
    amount = np.round(amount, -2)
    expected = opened + rng.integers(20, 121, n)

    win_p = np.select([c.profile[cust] == CHURNER, c.profile[cust] == COSTLY, c.profile[cust] == GROWER],
                      [0.25, 0.35, 0.65], 0.45)
    stalls = (rng.random(n) < 0.15) | prospect
    closed = np.maximum(opened + 1, expected + np.where(stalls, rng.integers(60, 241, n), rng.integers(-15, 46, n)))
    won = ~stalls & (rng.random(n) < win_p)
    state = np.where((closed > days) | prospect, OPEN, np.where(won, WON, LOST))
    closed = np.where(state == OPEN, np.nan, closed)

    # An open deal's stage follows how far it is towards its expected close.
    progress = (days - opened) / np.maximum(expected - opened, 1)
    stage = np.where(state == OPEN, np.minimum((progress * 3).astype(int), 2), CLOSED)
    probability = np.where(state == WON, 1.0, np.where(state == LOST, 0.0,
                                                       np.asarray(cat.OPEN_STAGE_PROBABILITY)[np.maximum(stage, 0)]))
    # Mostly the account's owner; sometimes a colleague of the same region (reps are numbered region by region).
    other = c.region[cust] * cat.REPS_PER_REGION + rng.integers(0, cat.REPS_PER_REGION, n)
    owner = np.where(rng.random(n) < 0.15, other, c.owner[cust])
    sort = np.lexsort((cust, opened))
    return Events({"customer": cust[sort], "opened": opened[sort], "expected": expected[sort],
                   "closed": closed[sort], "state": state[sort], "stage": stage[sort], "amount": amount[sort],
                   "probability": probability[sort], "owner": owner[sort]})


def stage_names(state: np.ndarray, stage: np.ndarray) -> list[str]:
    """The stage column: an open deal's stage, or closed_won / closed_lost."""
    won, lost = cat.CLOSED_STAGES["won"], cat.CLOSED_STAGES["lost"]
    return [won if s == WON else lost if s == LOST else cat.OPEN_STAGES[g]
            for s, g in zip(state.tolist(), stage.tolist())]
