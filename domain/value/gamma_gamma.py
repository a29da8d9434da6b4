"""Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value Curves
for Customer Base Analysis"; Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value"; `lifetimes`'
GammaGammaFitter).

Each transaction value of a customer is Gamma(p, nu); nu varies across customers as Gamma(q, v). For a customer
with x repeat transactions whose mean value is m, the density of the mean is

    f(m | x) = Gamma(px+q) / (Gamma(px) Gamma(q)) * v^q m^(px-1) x^(px) / (v + x m)^(px+q)

and the conditional expected spend per transaction is

    E[Z | x, m] = p (v + x m) / (p x + q - 1)
                = (q-1)/(px+q-1) * p v/(q-1) + px/(px+q-1) * m       (a weighted mean of population and own mean)

The model is fitted on customers with x > 0 and m > 0 only; it assumes spend is independent of purchase frequency
(check `freq_spend_correlation`). Standard errors as in `bgnbd` (inverse numerical Hessian).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import digamma, gammaln

from .bgnbd import compress_rows, maximize, numerical_hessian, standard_errors, wsum, x_groups

__all__ = ["GammaGammaFit", "fit", "log_likelihood", "log_likelihood_terms", "log_likelihood_grad",
           "conditional_expected_average_profit", "simulate"]

PARAM_NAMES = ("p", "q", "v")


def _as(x, m):
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    return np.broadcast_arrays(x, m)


def log_likelihood_terms(params, x, m) -> np.ndarray:
    """Per-customer log density of the mean spend m given x transactions (x > 0, m > 0)."""
    p, q, v = (float(u) for u in params)
    x, m = _as(x, m)
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(m)
            + px * np.log(x) - (px + q) * np.log(x * m + v))


def log_likelihood(params, x, m, weights=None) -> float:
    ll = log_likelihood_terms(params, x, m)
    return wsum(weights, ll)


def log_likelihood_grad(params, x, m, weights=None, groups=None) -> tuple[float, np.ndarray]:
    """(log-likelihood, gradient wrt (p, q, v)); `groups` = bgnbd.x_groups(x), optional: the special functions
    depend on x only and are evaluated once per distinct x."""
    p, q, v = (float(u) for u in params)
    x, m = _as(x, m)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    xu, inv = x_groups(x) if groups is None else groups
    pxu = p * xu
    dgu = digamma(pxu + q)
    lxu = np.log(xu)
    llu = gammaln(pxu + q) - gammaln(pxu) - gammaln(q) + q * np.log(v) + pxu * lxu
    dpu = xu * (dgu - digamma(pxu) + lxu)
    dqu = dgu - digamma(q) + np.log(v)
    px = pxu[inv]
    lm = np.log(m)
    xmv = x * m + v
    lxmv = np.log(xmv)
    ll = llu[inv] + (px - 1) * lm - (px + q) * lxmv
    d_p = dpu[inv] + x * (lm - lxmv)
    d_q = dqu[inv] - lxmv
    d_v = q / v - (px + q) / xmv
    return wsum(w, ll), np.array([wsum(w, d_p), wsum(w, d_q), wsum(w, d_v)])


def conditional_expected_average_profit(params, x, m) -> np.ndarray:
    """E[Z | x, m]; for x = 0 (no repeat spend observed) it is the population mean p v / (q - 1)."""
    p, q, v = (float(u) for u in params)
    x, m = _as(x, m)
    m = np.where(x > 0, m, 0.0)
    return p * (v + x * m) / (p * x + q - 1)


def simulate(params, x, rng=None) -> np.ndarray:
    """Mean spend of x transactions per customer drawn from the Gamma-Gamma process (x > 0)."""
    p, q, v = (float(u) for u in params)
    rng = np.random.default_rng(rng)
    x = np.asarray(x, dtype=np.float64)
    nu = rng.gamma(q, 1.0 / v, size=x.shape)
    # The sum of x Gamma(p, nu) draws is Gamma(px, nu).
    return rng.gamma(p * x, 1.0 / nu) / x


@dataclass(frozen=True)
class GammaGammaFit:
    p: float
    q: float
    v: float
    se_p: float
    se_q: float
    se_v: float
    log_likelihood: float
    n_customers: int  # customers used in the fit (x > 0 and m > 0)
    freq_spend_correlation: float  # Pearson corr(x, m) on the fitted customers; should be near 0
    converged: bool = True
    cov: np.ndarray = field(default=None, repr=False, compare=False)

    @property
    def params(self) -> tuple[float, float, float]:
        return (self.p, self.q, self.v)

    @property
    def standard_errors(self) -> tuple[float, float, float]:
        return (self.se_p, self.se_q, self.se_v)

    @property
    def population_mean_spend(self) -> float:
        """E[Z] = p v / (q - 1) (infinite when q <= 1)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else math.inf

    def expected_average_profit(self, x, m) -> np.ndarray:
        return conditional_expected_average_profit(self.params, x, m)

    def as_dict(self) -> dict:
        return dict(model="gamma_gamma", p=self.p, q=self.q, v=self.v, se_p=self.se_p, se_q=self.se_q,
                    se_v=self.se_v, log_likelihood=self.log_likelihood, n_customers=self.n_customers,
                    freq_spend_correlation=self.freq_spend_correlation, converged=self.converged)


def fit(frequency, monetary_value, *, weights=None, compress: bool = True) -> GammaGammaFit:
    """Fit on the customers with frequency > 0 and monetary_value > 0 (others are ignored)."""
    x, m = _as(frequency, monetary_value)
    x, m = x.ravel(), m.ravel()
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    x, m = x[keep], m[keep]
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()[keep]
    if x.shape[0] < 3:
        raise ValueError("the Gamma-Gamma model needs at least 3 customers with repeat purchases and spend > 0")
    corr = float(np.corrcoef(x, m)[0, 1]) if np.std(x) > 0 and np.std(m) > 0 else float("nan")
    n = float(x.shape[0] if w is None else w.sum())
    if compress:
        (x, m), w = compress_rows(x, m, weights=w)

    groups = x_groups(x)

    def nll_grad_log(z):
        theta = np.exp(z)
        ll, g = log_likelihood_grad(theta, x, m, w, groups)
        return -ll, -g * theta

    mean_m = float(np.average(m, weights=w))
    starts = [np.zeros(3), np.log([1.0, 2.0, mean_m]), np.log([5.0, 4.0, 3.0 * mean_m / 5.0 * 1.0])]
    res = maximize(nll_grad_log, starts, scale=n)
    H = numerical_hessian(lambda th: -log_likelihood_grad(th, x, m, w, groups)[1], res.params)
    cov, se = standard_errors(H)
    return GammaGammaFit(*(float(u) for u in res.params), *(float(u) for u in se),
                         log_likelihood=res.log_likelihood, n_customers=int(round(n)),
                         freq_spend_correlation=corr, converged=res.converged, cov=cov)
