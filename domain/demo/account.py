"""The account side of each customer: payment terms, credit grade and limit, marketing consent, invoices.

How a customer pays (their habit) is drawn once and drives both their credit grade and every invoice's payment
date, so the grade a credit team would give and the payments the rules see tell the same story.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import catalog as cat
from .activity import Events, Orders
from .profiles import BLOCKED, COSTLY, NONE, Customers

PROMPT, ON_TIME, SLOW, BAD = range(4)


@dataclass
class Accounts:
    """Per customer: terms (days), habit (PAYMENT_HABITS index), grade (CREDIT_GRADES index), limit, consent."""

    terms: np.ndarray
    habit: np.ndarray
    grade: np.ndarray
    credit_limit: np.ndarray
    consent: np.ndarray
    consent_at: np.ndarray  # day offset, NaN without consent


def _draw(rng: np.random.Generator, table: tuple[tuple[float, ...], ...], row: np.ndarray) -> np.ndarray:
    """One draw per element from the distribution table[row]: an index into that row."""
    cum = np.cumsum(np.asarray(table), axis=1)[row]
    return (rng.random(len(row))[:, None] > cum[:, :-1]).sum(axis=1)


def make_accounts(rng: np.random.Generator, c: Customers, created: np.ndarray, days: int) -> Accounts:
    """`created` is the customer's written created_at (day offset): consent is given on or after it."""
    terms = np.asarray(cat.PAYMENT_TERMS)[_draw(rng, cat.TERMS_P, c.size)]
    # Costly accounts pay slowly more often; blocked accounts were blocked for not paying.
    habit_p = np.asarray(cat.HABIT_P)
    costly_p = habit_p * (0.7, 0.8, 2.5, 2.5)
    tables = (tuple(habit_p), tuple(costly_p / costly_p.sum()), (0.0, 0.0, 0.0, 1.0))
    habit = _draw(rng, tables, np.where(c.profile == BLOCKED, 2, np.where(c.profile == COSTLY, 1, 0)))
    grade = _draw(rng, cat.GRADE_P, habit)
    exposure = c.annual_revenue * (terms + 30) / 365.0 * np.asarray(cat.CREDIT_FACTOR)[grade]
    credit_limit = np.maximum(1000.0, np.ceil(exposure / 500.0) * 500.0)
    consent = rng.random(c.n) < 0.88
    given = created + np.minimum(rng.exponential(240.0, c.n), days - created).astype(np.int64)
    consent_at = np.where(consent, given, np.nan)
    return Accounts(terms, habit, grade, credit_limit, consent, consent_at)


def make_invoices(rng: np.random.Generator, c: Customers, a: Accounts, o: Orders, amount: np.ndarray,
                  days: int) -> Events:
    """One invoice per (non-return) order, issued on the order day, due after the customer's terms.

    Payment day by habit: prompt payers well before the due date, on-time payers around it (now and then a few
    days late), slow payers weeks late, bad payers a month or more late or never; a blocked account's invoices
    of its last 120 days stay unpaid. A payment after the end of the period is not known yet: left empty.
    """
    order = np.flatnonzero(~o.is_return)
    n = len(order)
    cust = o.customer[order]
    issued = o.day[order]
    terms = a.terms[cust]
    due = issued + terms
    habit = a.habit[cust]
    lateness = np.choose(habit, [
        -np.round(terms * rng.uniform(0.2, 0.8, n)),
        np.where(rng.random(n) < 0.1, rng.integers(1, 8, n), -rng.integers(0, 6, n)),
        5 + np.round(rng.gamma(2.0, 10.0, n)),
        20 + np.round(rng.gamma(2.0, 25.0, n)),
    ])
    paid = np.maximum(issued, due + lateness).astype(float)
    never = (habit == BAD) & (rng.random(n) < 0.15)
    never |= (c.blocked[cust] != NONE) & (issued >= c.blocked[cust] - 120)
    paid[never | (paid > days)] = np.nan
    return Events({"customer": cust, "issued": issued, "due": due, "amount": np.round(amount[order], 2),
                   "paid": paid})
