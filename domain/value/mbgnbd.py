"""Modified BG/NBD (MBG/NBD; Batislam, Denizel & Filiztekin 2007, Hoppe & Wagner 2007), as implemented in
`lifetimes` as ModifiedBetaGeoFitter.

Same story as BG/NBD, except that the dropout coin (probability p ~ Beta(a, b)) is also tossed right after the
FIRST purchase, so a customer with no repeat purchase may be gone: P(alive | x = 0) < 1.

    L = Gamma(r+x) alpha^r / Gamma(r) * B(a, b+x+1) / B(a, b)
        * [ (alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x) ]          (for every x, including x = 0)

    P(alive) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))
    E[Y(t) | x, t_x, T] = P(alive) (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; z)]
    E[X(t)] = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]

Fitting and standard errors as in `bgnbd`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln

from .bgnbd import (BetaGeoFitBase, _log1p_ratio_pow, _near_one_safe, as_rfm, fit_generic, scaled_hyp2f1,
                    wsum, x_groups)
from .bgnbd import simulate as _simulate_bg

__all__ = [
    "MBGNBDFit",
    "fit",
    "log_likelihood",
    "log_likelihood_terms",
    "log_likelihood_grad",
    "p_alive",
    "conditional_expected_purchases",
    "unconditional_expected_purchases",
    "simulate",
]


def log_likelihood_terms(params, x, t_x, T) -> np.ndarray:
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = as_rfm(x, t_x, T)
    A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    A2 = betaln(a, b + x + 1) - betaln(a, b)
    A3 = -(r + x) * np.log(alpha + T)
    A4 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + t_x)
    return A1 + A2 + np.logaddexp(A3, A4)


def log_likelihood(params, x, t_x, T, weights=None) -> float:
    ll = log_likelihood_terms(params, x, t_x, T)
    return wsum(weights, ll)


def log_likelihood_grad(params, x, t_x, T, weights=None, groups=None) -> tuple[float, np.ndarray]:
    """(log-likelihood, gradient wrt (r, alpha, a, b)) summed over customers. `groups` = x_groups(x), optional."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = as_rfm(x, t_x, T)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    xu, inv = x_groups(x) if groups is None else groups
    A12u = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu + 1) - betaln(a, b)
    la4u = np.log(a) - np.log(b + xu)
    dg_abx1u = digamma(a + b + xu + 1)
    dr_u = digamma(r + xu) - digamma(r) + np.log(alpha)
    da_u = digamma(a + b) - dg_abx1u
    db_u = digamma(b + xu + 1) - dg_abx1u - digamma(b) + digamma(a + b)
    rx = r + x
    lT = np.log(alpha + T)
    lt = np.log(alpha + t_x)
    A3 = -rx * lT
    A4 = la4u[inv] - rx * lt
    lse = np.logaddexp(A3, A4)
    ll = wsum(w, A12u[inv] + lse)
    w4 = np.exp(A4 - lse)
    w3 = 1.0 - w4
    d_r = dr_u[inv] - w3 * lT - w4 * lt
    d_alpha = r / alpha - rx * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = da_u[inv] + w4 / a
    d_b = db_u[inv] - w4 / (b + xu[inv])
    g = np.array([wsum(w, d_r), wsum(w, d_alpha), wsum(w, d_a), wsum(w, d_b)])
    return ll, g


def p_alive(params, x, t_x, T) -> np.ndarray:
    """P(still active at T | x, t_x, T); below 1 for x = 0 customers too."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = as_rfm(x, t_x, T)
    L = np.log(a) - np.log(b + x) + _log1p_ratio_pow(alpha, T, t_x, r + x)
    return expit(-L)


def _cond_bracket(a, b, r, alpha, t, x, T):
    # (a+b+x)/(a-1) [1 - (1-z)^(r+x) 2F1(r+x, b+x+1; a+b+x; z)]
    z = t / (alpha + T + t)
    c = a + b + x
    return c / (a - 1) * (1.0 - scaled_hyp2f1(r + x, b + x + 1, c, z))


def conditional_expected_purchases(params, t, x, t_x, T) -> np.ndarray:
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = as_rfm(x, t_x, T)
    t = np.asarray(t, dtype=np.float64)
    bracket = _near_one_safe(lambda aa: _cond_bracket(aa, b, r, alpha, t, x, T), a)
    return bracket * p_alive(params, x, t_x, T)


def _uncond(a, b, r, alpha, t):
    # b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; z)]
    z = t / (alpha + t)
    return b / (a - 1) * (1.0 - scaled_hyp2f1(r, b + 1, a + b, z))


def unconditional_expected_purchases(params, t) -> np.ndarray:
    r, alpha, a, b = (float(v) for v in params)
    t = np.asarray(t, dtype=np.float64)
    return _near_one_safe(lambda aa: _uncond(aa, b, r, alpha, t), a)


def simulate(params, T, rng=None):
    """Draw (x, t_x) from the MBG/NBD generative process (dropout possible right after the first purchase)."""
    return _simulate_bg(params, T, rng, dropout_at_first=True)


@dataclass(frozen=True)
class MBGNBDFit(BetaGeoFitBase):
    model_name = "mbgnbd"

    def p_alive(self, x, t_x, T) -> np.ndarray:
        return p_alive(self.params, x, t_x, T)

    def expected_purchases(self, t, x, t_x, T) -> np.ndarray:
        return conditional_expected_purchases(self.params, t, x, t_x, T)

    def expected_purchases_new(self, t) -> np.ndarray:
        return unconditional_expected_purchases(self.params, t)

    def log_likelihood_terms(self, x, t_x, T) -> np.ndarray:
        return log_likelihood_terms(self.params, x, t_x, T)


def fit(x, t_x, T, *, weights=None, compress: bool = True) -> MBGNBDFit:
    """Maximum-likelihood MBG/NBD fit on (frequency, recency, T) arrays."""
    res, cov, se, n = fit_generic(log_likelihood_grad, x, t_x, T, weights=weights, compress=compress)
    return MBGNBDFit(*(float(v) for v in res.params), *(float(v) for v in se), log_likelihood=res.log_likelihood,
                     n_customers=n, converged=res.converged, cov=cov)
