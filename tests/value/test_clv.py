"""RFM summary, discounted CLV, fit_value_models and the holdout check.

CLV reference: `lifetimes` 0.11.3 (throwaway venv) GammaGammaFitter.customer_lifetime_value(BetaGeoFitter, ...,
time=12, discount_rate=0.01, freq="W") on CDNOW calibration_and_holdout_data(freq="D") with recency/T in weeks;
lifetimes counts a month as 4.345 weeks, hence units_per_month=4.345 below.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from tests_support import cdnow_orders

from domain.value import bgnbd, clv, gamma_gamma, mbgnbd
from domain.value.summary import holdout_purchases, rfm_summary




@pytest.fixture(scope="module")
def cdnow():
    ids, dates, amounts = cdnow_orders()
    s = rfm_summary(ids, dates, amounts, calibration_end="1997-09-30")
    h, units = holdout_purchases(s, ids, dates, holdout_end="1998-06-30")
    return s, h, units


# ------------------------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------------------------

def _naive_summary(ids, dates, amounts, end, unit):
    """Per-customer loop, the obvious way: the reference for the vectorised version."""
    end = dt.date.fromisoformat(end)
    out = {}
    for cid in sorted(set(ids)):
        days = {}
        for i, d, a in zip(ids, dates, amounts):
            d = dt.date.fromisoformat(d)
            if i == cid and d <= end:
                days[d] = days.get(d, 0.0) + a
        if not days:
            continue
        ds = sorted(days)
        x = len(ds) - 1
        mon = sum(days[d] for d in ds[1:]) / x if x else 0.0
        out[cid] = (x, (ds[-1] - ds[0]).days / unit, (end - ds[0]).days / unit, mon)
    return out


def test_summary_same_day_orders_count_once_and_monetary_is_repeat_mean():
    ids = ["b", "a", "a", "a", "a", "c", "b"]
    dates = ["2024-01-10", "2024-01-01", "2024-01-01", "2024-01-08", "2024-01-15", "2024-02-01", "2024-01-10"]
    amounts = [5.0, 10.0, 2.0, 30.0, 20.0, 7.0, 6.0]
    s = rfm_summary(ids, dates, amounts, calibration_end="2024-01-29", unit_days=7)
    assert s.customer_ids.tolist() == ["a", "b"]  # c first buys after the calibration end
    assert s.frequency.tolist() == [2, 0]  # a: 3 distinct days; b: two orders on one day
    np.testing.assert_allclose(s.recency, [2.0, 0.0])
    np.testing.assert_allclose(s.T, [4.0, 19 / 7])
    np.testing.assert_allclose(s.monetary_value, [25.0, 0.0])  # mean of 30 and 20; the first day excluded
    counts, units = holdout_purchases(s, ids + ["a", "a"], dates + ["2024-02-02", "2024-02-02"],
                                      holdout_end="2024-02-26")
    assert counts.tolist() == [1, 0] and units == 4.0  # two orders on one day: one purchase; c is not scored


def test_summary_vectorised_equals_naive_loop():
    rng = np.random.default_rng(3)
    n = 600
    ids = [f"c{int(k)}" for k in rng.integers(0, 80, n)]
    base = dt.date(2023, 1, 1)
    dates = [(base + dt.timedelta(days=int(d))).isoformat() for d in rng.integers(0, 400, n)]
    amounts = np.round(rng.gamma(2.0, 20.0, n), 2).tolist()
    s = rfm_summary(ids, dates, amounts, calibration_end="2023-10-31", unit_days=7)
    ref = _naive_summary(ids, dates, amounts, "2023-10-31", 7)
    assert s.customer_ids.tolist() == sorted(ref)
    got = np.column_stack([s.frequency, s.recency, s.T, s.monetary_value])
    np.testing.assert_allclose(got, np.array([ref[c] for c in sorted(ref)]), rtol=1e-12)


def test_summary_accepts_dates_and_timestamps():
    ids = np.array([1, 1, 2])
    s1 = rfm_summary(ids, [dt.date(2024, 1, 1), dt.date(2024, 1, 8), dt.date(2024, 1, 3)], [1.0, 2.0, 3.0],
                     calibration_end=dt.date(2024, 1, 15), unit_days=1)
    s2 = rfm_summary(ids, ["2024-01-01T09:00:00", "2024-01-08 23:59:00", "2024-01-03"], [1.0, 2.0, 3.0],
                     calibration_end="2024-01-15", unit_days=1)
    for f in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_array_equal(getattr(s1, f), getattr(s2, f))
    assert s1.frequency.tolist() == [1, 0] and s1.T.tolist() == [14.0, 12.0]


# ------------------------------------------------------------------------------------------------------------
# CLV
# ------------------------------------------------------------------------------------------------------------

def test_clv_matches_lifetimes_on_cdnow(cdnow):
    s, _, _ = cdnow
    res = clv.fit_value_models(s, "bgnbd", clv_months=12, monthly_discount_rate=0.01, units_per_month=4.345)
    ref8 = [36.27397745115865, 4.640936126483654, 8.344480971583977, 8.344480971583977, 8.344480971583977,
            283.5581079165028, 6.881744143934067, 8.344480971583977]
    np.testing.assert_allclose(res.clv[:8], ref8, rtol=1e-6)
    assert float(res.clv.sum()) == pytest.approx(71507.95331613533, rel=1e-6)


def test_fit_value_models_result(cdnow):
    s, _, _ = cdnow
    for model in ("bgnbd", "mbgnbd"):
        res = clv.fit_value_models(s, model, horizon_days=273)
        n = s.n_customers
        for arr in (res.p_alive, res.expected_purchases, res.expected_spend, res.clv):
            assert arr.shape == (n,) and np.all(np.isfinite(arr))
        assert np.all((res.p_alive >= 0) & (res.p_alive <= 1))
        assert np.all(res.clv >= 0) and np.all(res.expected_spend > 0)
        # 273 days = the 39-week holdout: same as the conditional expectation at t = 39 weeks
        np.testing.assert_allclose(res.expected_purchases,
                                   res.purchases.expected_purchases(39.0, s.frequency, s.recency, s.T))
        params = res.params()
        assert params["purchases"]["model"] == model and params["spend"]["n_customers"] == 946
        assert all(params["purchases"][f"se_{k}"] > 0 for k in ("r", "alpha", "a", "b"))
        zero = s.frequency == 0
        if model == "bgnbd":
            assert np.all(res.p_alive[zero] == 1.0)
        else:
            assert np.all(res.p_alive[zero] < 1.0)
    with pytest.raises(ValueError):
        clv.fit_value_models(s, "pareto")


def test_clv_properties():
    model = bgnbd.BGNBDFit(0.243, 4.414, 0.793, 2.426, 0, 0, 0, 0, log_likelihood=0.0, n_customers=1)
    x, t_x, T = np.array([0, 2, 7]), np.array([0.0, 30.0, 29.0]), np.array([38.0, 38.0, 38.0])
    spend = np.array([35.0, 24.0, 71.0])
    upm = clv.DAYS_PER_MONTH / 7
    undiscounted = clv.customer_lifetime_value(model, spend, x, t_x, T, months=12, monthly_discount_rate=0.0)
    np.testing.assert_allclose(undiscounted, model.expected_purchases(12 * upm, x, t_x, T) * spend, rtol=1e-12)
    d = clv.customer_lifetime_value(model, spend, x, t_x, T, months=12, monthly_discount_rate=0.01)
    assert np.all(d < undiscounted) and np.all(d > undiscounted / 1.01**12)
    longer = clv.customer_lifetime_value(model, spend, x, t_x, T, months=24, monthly_discount_rate=0.01)
    assert np.all(longer > d)


def test_holdout_check_table(cdnow):
    s, h, units = cdnow
    m = mbgnbd.fit(s.frequency, s.recency, s.T)
    chk = clv.holdout_check(m, s, h, units)
    assert chk.bucket_labels == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert chk.bucket_customers.sum() == s.n_customers
    assert chk.total_actual == 1882
    # Per-bucket means reassemble the totals.
    assert float(np.dot(chk.bucket_customers, chk.bucket_predicted_mean)) == pytest.approx(chk.total_predicted)
    assert float(np.dot(chk.bucket_customers, chk.bucket_actual_mean)) == pytest.approx(1882)
    text = chk.table()
    assert "7+" in text and "total" in text and "%" in text
    assert -0.20 < chk.relative_error < -0.10  # MBG/NBD: 1576.7 vs 1882 on CDNOW (see docs/value-models.md)


def test_spend_model_used_in_clv_is_gamma_gamma(cdnow):
    s, _, _ = cdnow
    res = clv.fit_value_models(s, "bgnbd")
    g = gamma_gamma.fit(s.frequency, s.monetary_value)
    np.testing.assert_allclose(res.expected_spend, g.expected_average_profit(s.frequency, s.monetary_value))
