"""The lifetime model on any base: it fits with finite parameters, or it refuses with a stated reason; never an
exception, never "model fit failed: ValueError: math domain error" with CLV and P(alive) null for everyone.

The bases are built in numpy as the batch's aggregate query would return them (distinct order days per customer),
so the whole path of `fit_lifetime_value` runs -- the fit, the scores and the holdout backtest -- without a
database.
"""
from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.value import bgnbd, mbgnbd
from domain.value.batch import fit_lifetime_value
from domain.value.scores import CustomerAggregates, score_windows

AS_OF = date(2025, 11, 20)
AS_OF_DAY = int(np.datetime64(AS_OF, "D").astype(np.int64))
WINDOWS = score_windows(AS_OF)
CAL_END_DAY = int(np.datetime64(WINDOWS.calibration_end, "D").astype(np.int64))
# a failure the fit must never produce: only stated refusals ("too few repeat buyers", "model not used: ...")
UNEXPECTED = ("model fit failed", "holdout fit failed")


def aggregates(n: int, cust: np.ndarray, day: np.ndarray, amount: np.ndarray) -> CustomerAggregates:
    """The lifetime-model columns of domain.value.scores' aggregate query, from orders (customer index, day
    number, amount) in numpy: same-day orders count once, the holdout is the window after calibration_end."""
    keep = day <= AS_OF_DAY
    cust, day, amount = cust[keep].astype(np.int64), day[keep].astype(np.int64), amount[keep].astype(np.float64)
    keys, inverse = np.unique(cust * 10**7 + day, return_inverse=True)
    day_amount = np.bincount(inverse.ravel(), weights=amount, minlength=keys.shape[0])
    dc, dd = keys // 10**7, (keys % 10**7).astype(np.float64)
    first, last, cal_last = (np.full(n, np.nan) for _ in range(3))
    np.fmin.at(first, dc, dd)
    np.fmax.at(last, dc, dd)
    cal = dd <= CAL_END_DAY
    np.fmax.at(cal_last, dc[cal], dd[cal])
    repeat = dd > first[dc]
    cols = {
        "customer_id": np.arange(1, n + 1),
        "first_day": first, "last_day": last,
        "order_days": np.bincount(dc, minlength=n),
        "repeat_amount": np.bincount(dc, weights=np.where(repeat, day_amount, 0.0), minlength=n),
        "cal_order_days": np.bincount(dc[cal], minlength=n),
        "cal_last_day": cal_last,
        "cal_repeat_amount": np.bincount(dc, weights=np.where(cal & repeat, day_amount, 0.0), minlength=n),
        "holdout_order_days": np.bincount(dc[~cal], minlength=n),
    }
    return CustomerAggregates(cols)


def steady_buyers(n: int, seed: int = 7) -> CustomerAggregates:
    """Customers who never drop out: each buys as a Poisson process at its own rate from its first day on (the
    kind of synthetic base whose fit ended in "math domain error": the drop-out parameter a tends to 0)."""
    rng = np.random.default_rng(seed)
    start = AS_OF_DAY - rng.integers(7, 1050, n)
    rate = rng.gamma(2.0, 0.5, n) * 0.5 / 7  # about one order every two weeks, per day
    counts = 1 + rng.poisson(rate * (AS_OF_DAY - start))
    cust = np.repeat(np.arange(n), counts)
    first = np.r_[True, cust[1:] != cust[:-1]]
    later = start[cust] + np.floor(rng.random(cust.shape[0]) * (AS_OF_DAY - start[cust] + 1))
    day = np.where(first, start[cust], later)
    amount = np.round(rng.gamma(4.0, 25.0, cust.shape[0]), 2)
    return aggregates(n, cust, day.astype(np.int64), amount)


def check(cols: dict, fit: dict) -> None:
    """The contract: fitted with finite positive parameters and usable scores, or skipped with a stated reason."""
    assert fit["status"] in ("fitted", "skipped")
    if fit["status"] == "skipped":
        assert isinstance(fit["reason"], str) and fit["reason"]
        assert not fit["reason"].startswith(UNEXPECTED), fit["reason"]
        assert np.all(np.isnan(cols["p_alive"]))
        return
    params = [fit["purchases"][k] for k in ("r", "alpha", "a", "b")]
    assert all(np.isfinite(p) and p > 0 for p in params), params
    p_alive = cols["p_alive"][np.isfinite(cols["repeat_purchases"])]
    assert np.all(np.isfinite(p_alive)) and np.all((p_alive >= 0) & (p_alive <= 1))
    orders = cols["expected_orders_90d"][np.isfinite(cols["repeat_purchases"])]
    assert np.all(np.isfinite(orders)) and np.all(orders >= 0)
    assert fit["holdout"]["status"] in ("checked", "skipped")
    assert not (fit["holdout"]["reason"] or "").startswith(UNEXPECTED), fit["holdout"]["reason"]


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_a_100000_customer_base_where_nobody_drops_out_is_fitted(model):
    """Regression: this base gave "model fit failed: ValueError: math domain error" (the Hessian's step took the
    drop-out parameter below zero) and left CLV and P(alive) null for every customer."""
    cols, fit = fit_lifetime_value(steady_buyers(100_000), WINDOWS, model)
    check(cols, fit)
    assert fit["status"] == "fitted", fit["reason"]
    assert np.isfinite(cols["clv"]).mean() > 0.99
    assert any("edge of the search range" in note for note in fit["notes"]) or fit["purchases"]["a"] < 1e-3


@pytest.mark.parametrize("fit_fn", [bgnbd.fit, mbgnbd.fit])
def test_every_repeat_buyer_with_the_same_history_is_fitted(fit_fn):
    """Regression: x = 3, t_x = T = 10 weeks for everyone raised "math domain error" in the old fit."""
    n = 3000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fit_fn(np.full(n, 3.0), np.full(n, 10.0), np.full(n, 10.0))
        orders = model.expected_purchases(90 / 7, np.array([3.0]), np.array([10.0]), np.array([10.0]))
    assert all(np.isfinite(p) and p > 0 for p in model.params)
    # everybody buys 3 times in 10 weeks and nobody has left: about 3.9 orders in the next 90 days
    assert float(orders[0]) == pytest.approx(90 / 7 * 0.3, rel=0.05)


def test_the_hessian_never_steps_out_of_the_positive_parameters():
    seen = []

    def grad(theta):
        seen.append(theta.copy())
        return np.log(theta)  # would raise / give nan at theta <= 0

    bgnbd.numerical_hessian(grad, np.array([1e-11, 2.0, 5e-9, 1e10]))
    assert all(np.all(t > 0) for t in seen)


def test_degenerate_bases_are_refused_with_a_reason_or_fitted():
    n = 500
    cust = np.arange(n)
    one_timers = aggregates(n, cust, np.full(n, AS_OF_DAY - 30), np.full(n, 10.0))
    same_day = aggregates(n, np.r_[cust, cust], np.r_[np.full(n, AS_OF_DAY), np.full(n, AS_OF_DAY)],
                          np.full(2 * n, 10.0))
    all_today = aggregates(n, np.r_[cust, cust], np.r_[np.full(n, AS_OF_DAY - 1), np.full(n, AS_OF_DAY)],
                           np.full(2 * n, 10.0))
    no_spend = aggregates(n, np.r_[cust, cust], np.r_[np.full(n, AS_OF_DAY - 200), np.full(n, AS_OF_DAY - 3)],
                          np.zeros(2 * n))
    nobody = aggregates(n, np.zeros(0), np.zeros(0), np.zeros(0))
    for agg in (one_timers, same_day, all_today, no_spend, nobody):
        check(*fit_lifetime_value(agg, WINDOWS, "bgnbd"))
    cols, fit = fit_lifetime_value(one_timers, WINDOWS, "bgnbd")
    assert fit["status"] == "skipped" and "too few repeat buyers" in fit["reason"]
    cols, fit = fit_lifetime_value(no_spend, WINDOWS, "bgnbd")
    assert fit["status"] == "fitted" and fit["spend"] is None
    assert any("spend model not fitted" in note for note in fit["notes"])
    assert np.all(np.isfinite(cols["p_alive"])) and np.all(np.isnan(cols["clv"]))


# A customer: its first order day (days before as_of), then gaps between order days, and an amount per order.
_customer = st.tuples(
    st.integers(0, 1500),
    st.lists(st.one_of(st.integers(0, 3), st.integers(1, 400)), max_size=12),
    st.sampled_from([0.0, 0.01, 1.0, 49.99, 1e4, 1e9]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(customers=st.lists(_customer, min_size=1, max_size=150), model=st.sampled_from(["bgnbd", "mbgnbd"]),
       clones=st.integers(1, 40))
def test_any_small_base_is_fitted_or_refused_with_a_reason(customers, model, clones):
    """Random bases, including degenerate ones (everyone alike -- `clones` repeats the drawn customers --, orders
    on one day, zero or huge amounts): fitted with finite parameters or a stated reason, never an exception."""
    cust, day, amount = [], [], []
    for i, (back, gaps, value) in enumerate(customers * clones):
        d = AS_OF_DAY - back
        for g in [0, *gaps]:
            d += g
            if d > AS_OF_DAY:
                break
            cust.append(i)
            day.append(d)
            amount.append(value)
    agg = aggregates(len(customers) * clones, np.array(cust), np.array(day), np.array(amount))
    check(*fit_lifetime_value(agg, WINDOWS, model, min_repeat_buyers=3))
