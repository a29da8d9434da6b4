"""Gamma-Gamma spend model: CDNOW against the literature, recovery on simulated data, formulas.

References:
- Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (also Fader, Hardie & Lee 2005, "RFM and CLV"):
  946 CDNOW repeat customers, mean repeat spend in the 39-week calibration period: p = 6.25, q = 3.74,
  gamma (v) = 15.44; LL = -4055.9177 as used in CLVTools' tests/testthat/test_correctness_gg.R.
- `lifetimes` 0.11.3 GammaGammaFitter on load_cdnow_summary_data_with_monetary_value() (the same customers, mean
  repeat spend rounded to cents): p = 6.248802, q = 3.744588, v = 15.447748 (run in a throwaway venv).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from tests_support import cdnow_orders

from domain.value import gamma_gamma
from domain.value.summary import rfm_summary




@pytest.fixture(scope="module")
def calibration():
    ids, dates, amounts = cdnow_orders()
    return rfm_summary(ids, dates, amounts, calibration_end="1997-09-30")


def test_cdnow_calibration_matches_published(calibration):
    s = calibration
    g = gamma_gamma.fit(s.frequency, s.monetary_value)
    assert g.n_customers == 946 and g.converged
    for name, published in (("p", 6.25), ("q", 3.74), ("v", 15.44)):
        assert abs(getattr(g, name) - published) < 0.005, (name, getattr(g, name))
    assert g.log_likelihood == pytest.approx(-4055.9177, abs=1e-3)
    assert all(se > 0 for se in g.standard_errors)
    # lifetimes' se(coef) on its rounded summary: 1.189687, 0.290166, 4.159994
    np.testing.assert_allclose(g.standard_errors, (1.189687, 0.290166, 4.159994), rtol=3e-3)
    # Spend and frequency nearly independent on CDNOW (the model's assumption): lifetimes docs report 0.11.
    assert abs(g.freq_spend_correlation - 0.1139) < 0.001


def test_cdnow_cent_rounding_reproduces_lifetimes(calibration):
    """lifetimes' v = 15.4477 (vs 15.4435 here) comes from its summary file, whose mean spends are rounded to
    cents: rounding ours the same way gives lifetimes' numbers."""
    s = calibration
    g = gamma_gamma.fit(s.frequency, np.round(s.monetary_value + 1e-9, 2))
    np.testing.assert_allclose(g.params, (6.248802, 3.744588, 15.447748), rtol=2e-6)


def test_full_period_summary_does_not_match_the_published_values():
    """The published estimates are for the calibration period (to 1997-09-30); the full 78 weeks give others."""
    ids, dates, amounts = cdnow_orders()
    full = rfm_summary(ids, dates, amounts, calibration_end="1998-06-30")
    g = gamma_gamma.fit(full.frequency, full.monetary_value)
    assert g.n_customers == 1139
    assert abs(g.p - 6.25) > 1.0 and abs(g.v - 15.44) > 5.0  # p = 4.68, q = 4.19, v = 24.39


def test_expected_average_profit_matches_lifetimes(calibration):
    s = calibration
    g = gamma_gamma.fit(s.frequency, s.monetary_value)
    # lifetimes conditional_expected_average_profit for customers 1..8 with the same fit
    ref = [24.65391871323464, 18.910018475337225, 35.170371330453996, 35.170371330453996, 35.170371330453996,
           71.46470572273908, 18.910018475337225, 35.170371330453996]
    np.testing.assert_allclose(g.expected_average_profit(s.frequency[:8], s.monetary_value[:8]), ref, rtol=1e-6)
    assert g.population_mean_spend == pytest.approx(35.170371330453996, rel=1e-6)


def test_reference_likelihood_per_customer():
    p, q, v = 6.25, 3.74, 15.44
    x = np.array([1, 2, 7, 30])
    m = np.array([11.77, 22.345, 73.74, 5.0])
    ref = []
    for xi, mi in zip(x, m):
        # density of the mean of xi Gamma(p, nu) values, nu ~ Gamma(q, v), by the closed form of FHL (2005)
        ref.append(math.lgamma(p * xi + q) - math.lgamma(p * xi) - math.lgamma(q) + q * math.log(v)
                   + (p * xi - 1) * math.log(mi) + p * xi * math.log(xi) - (p * xi + q) * math.log(v + mi * xi))
    np.testing.assert_allclose(gamma_gamma.log_likelihood_terms((p, q, v), x, m), ref, rtol=1e-12)


def test_gradient_matches_finite_differences():
    params = np.array([3.0, 2.5, 12.0])
    x = np.array([1.0, 2.0, 5.0, 9.0])
    m = np.array([10.0, 30.0, 22.0, 41.0])
    _, g = gamma_gamma.log_likelihood_grad(params, x, m)
    for i in range(3):
        h = 1e-6 * params[i]
        up, dn = params.copy(), params.copy()
        up[i] += h
        dn[i] -= h
        num = (gamma_gamma.log_likelihood(up, x, m) - gamma_gamma.log_likelihood(dn, x, m)) / (2 * h)
        assert g[i] == pytest.approx(num, rel=1e-6)


@pytest.mark.parametrize("true", [(6.25, 3.74, 15.44), (2.0, 6.0, 40.0)])
def test_recovers_simulated_parameters(true):
    rng = np.random.default_rng(11)
    x = rng.geometric(0.35, size=20_000)
    m = gamma_gamma.simulate(true, x, rng)
    g = gamma_gamma.fit(x, m)
    z = (np.asarray(g.params) - np.asarray(true)) / np.asarray(g.standard_errors)
    assert g.converged and np.all(np.abs(z) < 3.0), z


def test_fit_ignores_customers_without_repeat_spend():
    x = np.array([0, 0, 1, 2, 3, 1, 4, 2])
    m = np.array([0.0, 5.0, 10.0, 20.0, 15.0, 0.0, 30.0, 12.0])
    g = gamma_gamma.fit(x, m)
    assert g.n_customers == 5
    with pytest.raises(ValueError):
        gamma_gamma.fit([0, 1], [0.0, 3.0])


def test_expected_profit_shrinks_towards_population_mean():
    params = (6.25, 3.74, 15.44)
    pop = 6.25 * 15.44 / 2.74
    e = gamma_gamma.conditional_expected_average_profit(params, [0, 1, 10, 1000], [0.0, 100.0, 100.0, 100.0])
    assert e[0] == pytest.approx(pop)
    assert pop < e[1] < e[2] < e[3] < 100.0 + 1e-9
