"""BG/NBD and MBG/NBD: the CDNOW check against the literature, parameter recovery on simulated data, and
properties of the formulas.

Reference numbers and where they come from:
- Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing Science 24(2): BG/NBD on the CDNOW
  sample, 39-week calibration: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
- CLVTools (R) tests/testthat/test_correctness_bgnbd.R, same data from the daily transactions:
  r = 0.2425945, alpha = 4.4136019, a = 0.7929199, b = 2.4258881, LL = -9582.429.
- `lifetimes` 0.11.3 (run in a throwaway venv while developing, not a dependency): BetaGeoFitter and
  ModifiedBetaGeoFitter on calibration_and_holdout_data(freq="D") of CDNOW_sample with recency/T divided by 7,
  which is this repository's /work/shared/data/cdnow converted back; numbers quoted below at their printed
  precision.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from tests_support import cdnow_orders
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import betaln

from domain.value import bgnbd, clv, mbgnbd
from domain.value.summary import holdout_purchases, rfm_summary

CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"



@pytest.fixture(scope="module")
def cdnow():
    ids, dates, amounts = cdnow_orders()
    s = rfm_summary(ids, dates, amounts, calibration_end=CALIBRATION_END, unit_days=7)
    holdout, units = holdout_purchases(s, ids, dates, holdout_end=HOLDOUT_END)
    return s, holdout, units


@pytest.fixture(scope="module")
def cdnow_bgnbd(cdnow):
    s, _, _ = cdnow
    return bgnbd.fit(s.frequency, s.recency, s.T)


@pytest.fixture(scope="module")
def cdnow_mbgnbd(cdnow):
    s, _, _ = cdnow
    return mbgnbd.fit(s.frequency, s.recency, s.T)


# ------------------------------------------------------------------------------------------------------------
# CDNOW against the literature
# ------------------------------------------------------------------------------------------------------------

def test_cdnow_summary_is_the_papers(cdnow):
    s, holdout, units = cdnow
    # Hardie's published summary (also lifetimes' cdnow_customers_summary.csv): 2,357 customers, 946 repeaters,
    # 2,457 repeat purchases; customer 1: x = 2, t_x = 30.43, T = 38.86 (213 and 272 days / 7).
    assert s.n_customers == 2357
    assert int((s.frequency > 0).sum()) == 946
    assert int(s.frequency.sum()) == 2457
    assert s.frequency[0] == 2 and s.recency[0] == pytest.approx(213 / 7) and s.T[0] == pytest.approx(272 / 7)
    assert s.monetary_value[0] == pytest.approx((29.73 + 14.96) / 2)
    assert units == 39.0
    # lifetimes calibration_and_holdout_data(freq="D"): 1,882 holdout purchase days.
    assert int(holdout.sum()) == 1882


def test_bgnbd_cdnow_matches_published_estimates(cdnow_bgnbd):
    f = cdnow_bgnbd
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # Fader, Hardie & Lee (2005)
    for k, v in published.items():
        assert abs(getattr(f, k) - v) < 0.0005, (k, getattr(f, k), v)
    assert abs(f.log_likelihood - (-9582.4)) < 0.05
    assert f.converged and f.n_customers == 2357
    # Finer: CLVTools' estimates on the same daily data.
    clvtools = (0.2425945, 4.4136019, 0.7929199, 2.4258881)
    np.testing.assert_allclose(f.params, clvtools, rtol=2e-5)
    assert f.log_likelihood == pytest.approx(-9582.429, abs=1e-3)


def test_bgnbd_cdnow_standard_errors_match_lifetimes(cdnow_bgnbd):
    # lifetimes BetaGeoFitter.summary se(coef) on its cdnow_customers_summary.csv (t_x, T rounded to 0.01 week).
    lifetimes_se = (0.012557, 0.378221, 0.185719, 0.705345)
    np.testing.assert_allclose(cdnow_bgnbd.standard_errors, lifetimes_se, rtol=2e-3)


def test_bgnbd_cdnow_scores_match_lifetimes(cdnow, cdnow_bgnbd):
    s, _, _ = cdnow
    f = cdnow_bgnbd
    sl = slice(0, 8)
    # lifetimes 0.11.3, same fit: conditional_probability_alive, conditional_expected_number_of_purchases_up_to_time
    ref_palive = [0.7266202977882521, 0.21239102434937765, 1.0, 1.0, 1.0, 0.6418347405112688, 0.3149409188589562,
                  1.0]
    ref_cond39 = [1.225994429671698, 0.20341882760530636, 0.19479364221265055, 0.19479364221265055,
                  0.19479364221265055]
    np.testing.assert_allclose(f.p_alive(s.frequency[sl], s.recency[sl], s.T[sl]), ref_palive, rtol=1e-5)
    np.testing.assert_allclose(f.expected_purchases(39, s.frequency[:5], s.recency[:5], s.T[:5]), ref_cond39,
                               rtol=1e-5)
    # expected_number_of_purchases_up_to_time([1, 10, 39, 78, 500])
    ref_uncond = [0.05318428769282793, 0.4317586685918213, 1.1950099744790117, 1.8579583170092702,
                  4.8819773594907465]
    np.testing.assert_allclose(f.expected_purchases_new([1.0, 10.0, 39.0, 78.0, 500.0]), ref_uncond, rtol=1e-5)


def test_bgnbd_cdnow_holdout(cdnow, cdnow_bgnbd):
    s, holdout, units = cdnow
    chk = clv.holdout_check(cdnow_bgnbd, s, holdout, units)
    # lifetimes: sum of conditional expectations over the 39-week holdout = 1653.41; actual = 1,882. The model
    # under-predicts the holdout of this cohort by 12% (see docs/value-models.md): we assert the number, not a fit.
    assert chk.total_predicted == pytest.approx(1653.41, abs=0.05)
    assert chk.total_actual == 1882
    assert chk.bucket_customers.tolist() == [1411, 439, 214, 100, 62, 38, 29, 64]
    # Conditional expectations rise with calibration frequency, as in FHL (2005) Figure 4.
    assert np.all(np.diff(chk.bucket_predicted_mean) > 0)
    # Cohort tracking (FHL 2005 Figure 2): expected cumulative repeat purchases at week 78 from the unconditional
    # E[X(t)], vs the actual 2,457 + 1,882 = 4,339. Our measurement: 4,165.7 (-4.0%); asserted within 5%.
    start = np.datetime64("1997-01-01").astype(np.int64)
    births = (s.first_purchase_day - start) / 7.0
    cum = clv.expected_cohort_repeat_purchases(cdnow_bgnbd, births, [39.0, 78.0])
    actual78 = s.frequency.sum() + holdout.sum()
    assert abs(cum[1] - actual78) / actual78 < 0.05
    assert abs(cum[0] - s.frequency.sum()) / s.frequency.sum() < 0.05


def test_mbgnbd_cdnow_matches_lifetimes(cdnow, cdnow_bgnbd, cdnow_mbgnbd):
    s, _, _ = cdnow
    m = cdnow_mbgnbd
    # lifetimes ModifiedBetaGeoFitter on the same data: r 0.524843, alpha 6.183082, a 0.891360, b 1.614003
    # (and on its rounded cdnow_customers_summary.csv: 0.524838, 6.182988, 0.891356, 1.614000, se 0.083264,
    # 0.695597, 0.154785, 0.537472).
    np.testing.assert_allclose(m.params, (0.524843, 6.183082, 0.891360, 1.614003), rtol=2e-5)
    np.testing.assert_allclose(m.standard_errors, (0.083264, 0.695597, 0.154785, 0.537472), rtol=3e-3)
    assert np.isfinite(m.log_likelihood)
    assert abs(m.log_likelihood - cdnow_bgnbd.log_likelihood) < 5.0  # -9582.14 vs -9582.43
    pa = m.p_alive(s.frequency, s.recency, s.T)
    zero = s.frequency == 0
    assert np.all(pa[zero] < 1.0)
    # lifetimes conditional_probability_alive for customers 1..8 (x = 0 customers: 0.3897231043088379)
    ref = [0.706138490795351, 0.17095108033103545, 0.3897231043088379, 0.3897231043088379, 0.3897231043088379,
           0.622679859370448, 0.2595227288264109, 0.3897231043088379]
    np.testing.assert_allclose(pa[:8], ref, rtol=1e-5)
    # lifetimes expected_number_of_purchases_up_to_time([1, 10, 39, 78, 500])
    ref_uncond = [0.053060332652604694, 0.43325101143190803, 1.1822798470838023, 1.803630518032706,
                  4.343701811460856]
    np.testing.assert_allclose(m.expected_purchases_new([1.0, 10.0, 39.0, 78.0, 500.0]), ref_uncond, rtol=1e-5)
    # lifetimes conditional expectation over the 39-week holdout, summed: 1576.728
    assert float(m.expected_purchases(39, s.frequency, s.recency, s.T).sum()) == pytest.approx(1576.728, abs=0.01)


# ------------------------------------------------------------------------------------------------------------
# Parameter recovery on simulated data
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "module, true",
    [
        (bgnbd, (0.243, 4.414, 0.793, 2.426)),
        (bgnbd, (1.2, 8.0, 2.0, 6.0)),
        (mbgnbd, (0.525, 6.183, 0.891, 1.614)),
    ],
)
def test_recovers_simulated_parameters(module, true):
    rng = np.random.default_rng(20240601)
    n = 20_000
    T = 39.0 - rng.uniform(0.0, 13.0, n)  # a quarter's cohort observed to week 39
    x, t_x = module.simulate(true, T, rng)
    assert np.all((t_x >= 0) & (t_x <= T)) and np.all(t_x[x == 0] == 0)
    f = module.fit(x, t_x, T)
    assert f.converged
    se = np.asarray(f.standard_errors)
    assert np.all(se > 0) and np.all(np.isfinite(se))
    z = (np.asarray(f.params) - np.asarray(true)) / se
    assert np.all(np.abs(z) < 3.0), z


# ------------------------------------------------------------------------------------------------------------
# Formulas
# ------------------------------------------------------------------------------------------------------------

def _reference_ll_bgnbd(params, x, t_x, T):
    """The FHL (2005) equation (6), term by term, on the natural scale, one customer at a time."""
    r, alpha, a, b = params
    out = []
    for xi, ti, Ti in zip(x, t_x, T):
        A1 = math.exp(math.lgamma(r + xi) - math.lgamma(r)) * alpha**r
        A2 = math.exp(math.lgamma(a + b) + math.lgamma(b + xi) - math.lgamma(b) - math.lgamma(a + b + xi))
        A3 = (1.0 / (alpha + Ti)) ** (r + xi)
        A4 = (a / (b + xi - 1)) * (1.0 / (alpha + ti)) ** (r + xi) if xi > 0 else 0.0
        out.append(math.log(A1 * A2 * (A3 + A4)))
    return np.array(out)


def _reference_ll_mbgnbd(params, x, t_x, T):
    r, alpha, a, b = params
    out = []
    for xi, ti, Ti in zip(x, t_x, T):
        A1 = math.exp(math.lgamma(r + xi) - math.lgamma(r)) * alpha**r
        A2 = math.exp(betaln(a, b + xi + 1) - betaln(a, b))
        out.append(math.log(A1 * A2 * ((alpha + Ti) ** -(r + xi) + a / (b + xi) * (alpha + ti) ** -(r + xi))))
    return np.array(out)


FEW = dict(x=[0, 1, 2, 5, 12, 0], t_x=[0.0, 3.5, 30.43, 20.0, 38.0, 0.0], T=[38.86, 38.86, 38.86, 30.0, 38.5, 2.0])


@pytest.mark.parametrize("params", [(0.243, 4.414, 0.793, 2.426), (2.0, 1.5, 3.0, 0.7), (0.5, 10.0, 1.0, 1.0)])
def test_vectorised_likelihood_equals_per_customer_reference(params):
    got = bgnbd.log_likelihood_terms(params, FEW["x"], FEW["t_x"], FEW["T"])
    np.testing.assert_allclose(got, _reference_ll_bgnbd(params, FEW["x"], FEW["t_x"], FEW["T"]), rtol=1e-10)
    got_m = mbgnbd.log_likelihood_terms(params, FEW["x"], FEW["t_x"], FEW["T"])
    np.testing.assert_allclose(got_m, _reference_ll_mbgnbd(params, FEW["x"], FEW["t_x"], FEW["T"]), rtol=1e-10)
    assert bgnbd.log_likelihood(params, FEW["x"], FEW["t_x"], FEW["T"]) == pytest.approx(got.sum())


@pytest.mark.parametrize("module", [bgnbd, mbgnbd])
def test_analytic_gradient_matches_finite_differences(module):
    params = np.array([0.6, 3.0, 1.3, 2.2])
    x, t_x, T = (np.asarray(FEW[k], dtype=float) for k in ("x", "t_x", "T"))
    w = np.array([1.0, 2.0, 1.0, 3.0, 1.0, 1.0])
    _, g = module.log_likelihood_grad(params, x, t_x, T, w)
    num = np.empty(4)
    for i in range(4):
        h = 1e-6 * params[i]
        up, dn = params.copy(), params.copy()
        up[i] += h
        dn[i] -= h
        num[i] = (module.log_likelihood(up, x, t_x, T, w) - module.log_likelihood(dn, x, t_x, T, w)) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-7)


def _quad_conditional(params, t, x, t_x, T, modified=False):
    """E[Y(t)|x,t_x,T] = P(alive) * E_post[(1/p)(1 - ((alpha+T)/(alpha+T+p t))^(r+x))] with the posterior
    p ~ Beta(a, b+x) (BG/NBD) or Beta(a, b+x+1) (MBG/NBD), integrated numerically."""
    r, alpha, a, b = params
    bb = b + x + (1 if modified else 0)
    lognorm = betaln(a, bb)

    def integrand(p):
        dens = math.exp((a - 1) * math.log(p) + (bb - 1) * math.log1p(-p) - lognorm)
        return (1.0 / p) * (1.0 - ((alpha + T) / (alpha + T + p * t)) ** (r + x)) * dens

    val, _ = integrate.quad(integrand, 0.0, 1.0, limit=200, epsabs=1e-13, epsrel=1e-11)
    mod = mbgnbd if modified else bgnbd
    return val * float(mod.p_alive(params, x, t_x, T))


@pytest.mark.parametrize(
    "params",
    [(0.243, 4.414, 0.793, 2.426), (1.5, 2.0, 3.5, 4.0), (0.8, 6.0, 1.00002, 2.0), (0.8, 6.0, 1.0 + 3e-7, 2.0),
     (0.8, 6.0, 1.0, 2.0)],
)
@pytest.mark.parametrize("cust", [(0, 0.0, 38.0), (3, 20.0, 38.0), (40, 37.0, 39.0)])
@pytest.mark.parametrize("modified", [False, True])
def test_conditional_expectation_matches_numerical_integral(params, cust, modified):
    x, t_x, T = cust
    mod = mbgnbd if modified else bgnbd
    for t in (1.0, 39.0, 200.0):
        got = float(mod.conditional_expected_purchases(params, t, x, t_x, T))
        assert got == pytest.approx(_quad_conditional(params, t, x, t_x, T, modified), rel=1e-6)


def test_unconditional_equals_conditional_for_a_new_customer():
    # A customer with no history (x = 0, T = 0) under BG/NBD: E[Y(t)|0,0,0] = E[X(t)].
    params = (0.243, 4.414, 0.793, 2.426)
    t = np.array([0.5, 5.0, 52.0])
    np.testing.assert_allclose(bgnbd.conditional_expected_purchases(params, t, 0, 0.0, 0.0),
                               bgnbd.unconditional_expected_purchases(params, t), rtol=1e-10)


_params = st.tuples(
    st.floats(0.05, 5.0), st.floats(0.1, 50.0), st.floats(0.1, 5.0), st.floats(0.1, 10.0)
)
_customer = st.tuples(st.integers(0, 60), st.floats(0.0, 1.0), st.floats(0.5, 150.0))


@settings(max_examples=150, deadline=None)
@given(params=_params, cust=_customer)
def test_p_alive_and_expectations_properties(params, cust):
    x, frac, T = cust
    t_x = 0.0 if x == 0 else frac * T
    for mod in (bgnbd, mbgnbd):
        pa = float(mod.p_alive(params, x, t_x, T))
        assert 0.0 <= pa <= 1.0
        if mod is bgnbd and x == 0:
            assert pa == 1.0
        if mod is mbgnbd:
            assert pa < 1.0 or x > 0
        ts = np.array([0.0, 1.0, 5.0, 26.0, 52.0, 104.0])
        e = mod.conditional_expected_purchases(params, ts, x, t_x, T)
        assert np.all(np.isfinite(e))
        assert e[0] == pytest.approx(0.0, abs=1e-9)
        assert np.all(np.diff(e) >= -1e-9 * np.maximum(1.0, e[1:])), e
        u = mod.unconditional_expected_purchases(params, ts)
        assert np.all(np.isfinite(u)) and np.all(np.diff(u) >= -1e-9 * np.maximum(1.0, u[1:]))


def test_bgnbd_p_alive_is_one_for_x0_and_below_one_for_mbgnbd():
    params = (0.243, 4.414, 0.793, 2.426)
    assert np.all(bgnbd.p_alive(params, [0, 0], [0.0, 0.0], [1.0, 100.0]) == 1.0)
    pa = mbgnbd.p_alive(params, [0, 0], [0.0, 0.0], [1.0, 100.0])
    assert np.all(pa < 1.0) and pa[1] < pa[0]  # longer silence, lower chance of being alive


def test_fit_rejects_inconsistent_input():
    with pytest.raises(ValueError):
        bgnbd.fit([1, 2], [5.0, 50.0], [10.0, 10.0])  # t_x > T
    with pytest.raises(ValueError):
        bgnbd.fit([0, 1], [1.0, 2.0], [10.0, 10.0])  # x = 0 with t_x > 0
    with pytest.raises(ValueError):
        bgnbd.fit([], [], [])


def test_weights_equal_repeated_rows():
    rng = np.random.default_rng(7)
    T = np.full(3000, 39.0)
    x, t_x = bgnbd.simulate((0.5, 5.0, 1.0, 3.0), T, rng)
    x, t_x = x[:300], np.round(t_x[:300])
    T = T[:300]
    w = rng.integers(1, 4, size=300)
    f_w = bgnbd.fit(x, t_x, T, weights=w)
    f_rep = bgnbd.fit(np.repeat(x, w), np.repeat(t_x, w), np.repeat(T, w))
    np.testing.assert_allclose(f_w.params, f_rep.params, rtol=1e-4)
    assert f_w.log_likelihood == pytest.approx(f_rep.log_likelihood, rel=1e-9)
    assert f_w.n_customers == int(w.sum())
