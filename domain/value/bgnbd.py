"""BG/NBD purchase-count model (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way").

While active, a customer buys as a Poisson process with rate lambda ~ Gamma(shape r, rate alpha); after each
REPEAT purchase the customer drops out for good with probability p ~ Beta(a, b). For a customer with x repeat
purchases, the last at t_x, observed for T time units since the first purchase:

    L = Gamma(r+x) alpha^r / Gamma(r) * B(a, b+x) / B(a, b)
        * [ (alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) ]

Everything is computed on the log scale (gammaln, betaln, logaddexp) and vectorised over customers. Maximum
likelihood runs on the log-parameters (L-BFGS-B with the analytic gradient); standard errors come from the inverse
of the Hessian of the negative log-likelihood on the parameter scale, the Hessian being central finite differences
of the analytic gradient.

This module also holds the fitting machinery shared with `mbgnbd` and `gamma_gamma`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import optimize
from scipy.special import betaln, digamma, expit, gammaln, hyp1f1, hyp2f1

__all__ = [
    "BGNBDFit",
    "fit",
    "log_likelihood",
    "log_likelihood_terms",
    "log_likelihood_grad",
    "p_alive",
    "conditional_expected_purchases",
    "unconditional_expected_purchases",
    "simulate",
]

PARAM_NAMES = ("r", "alpha", "a", "b")


# --------------------------------------------------------------------------------------------------------------
# Shared machinery
# --------------------------------------------------------------------------------------------------------------

def as_rfm(x, t_x, T):
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    x, t_x, T = np.broadcast_arrays(x, t_x, T)
    return x, t_x, T


def check_rfm(x, t_x, T) -> None:
    if x.size == 0:
        raise ValueError("no customers to fit")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
        raise ValueError("frequency, recency and T must be finite")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a non-negative integer")
    if np.any(t_x < 0) or np.any(t_x > T * (1 + 1e-12) + 1e-12):
        raise ValueError("recency must satisfy 0 <= t_x <= T")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 when frequency is 0")


def compress_rows(*cols: np.ndarray, weights: np.ndarray | None = None, min_gain: float = 0.7):
    """Merge identical rows into (unique rows, counts) when that shrinks the data to at most `min_gain` of its size.

    Day-granular summaries have many duplicates (synthetic 100,000 customers with daily data: ~30,000 distinct rows); the
    likelihood is then evaluated once per distinct row and weighted by its count."""
    n = cols[0].shape[0]
    if n < 2000:  # not worth it
        return cols, weights
    order = np.lexsort(cols[::-1])
    sorted_cols = [c[order] for c in cols]
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for c in sorted_cols:
        change[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(change)
    if starts.shape[0] > min_gain * n:
        return cols, weights
    if weights is None:
        counts = np.diff(np.r_[starts, n]).astype(np.float64)
    else:
        counts = np.add.reduceat(np.asarray(weights, dtype=np.float64)[order], starts)
    return tuple(c[starts] for c in sorted_cols), counts


def wsum(w, v) -> float:
    """Weighted sum without BLAS: np.dot on long vectors goes through (multi-threaded) BLAS, whose thread start-up
    made each likelihood evaluation ~10x slower on a busy 2-core machine."""
    v = np.asarray(v)
    return float(v.sum()) if w is None else float((w * v).sum())


def unique_rows(*cols: np.ndarray):
    """(distinct rows as a tuple of columns, inverse index) for equal-length 1-d arrays, by one lexsort."""
    n = cols[0].shape[0]
    if n == 0:
        return cols, np.zeros(0, dtype=np.int64)
    order = np.lexsort(cols[::-1])
    sorted_cols = [c[order] for c in cols]
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for c in sorted_cols:
        change[1:] |= c[1:] != c[:-1]
    group = np.cumsum(change) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group
    return tuple(c[change] for c in sorted_cols), inverse


def numerical_hessian(grad: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, rel_step: float = 1e-4):
    """Hessian by central differences of an analytic gradient, on the parameter scale, symmetrised.

    The parameters are positive; the step never exceeds half of one, so theta - h stays in the domain (a step of
    1e-7 below a parameter of 1e-11 once raised "math domain error" and lost the whole fit)."""
    theta = np.asarray(theta, dtype=np.float64)
    k = theta.shape[0]
    H = np.empty((k, k))
    for i in range(k):
        h = rel_step * max(abs(theta[i]), 1e-3)
        if theta[i] > 0:
            h = min(h, 0.5 * theta[i])
        up = theta.copy()
        dn = theta.copy()
        up[i] += h
        dn[i] -= h
        H[:, i] = (grad(up) - grad(dn)) / (2 * h)
    return 0.5 * (H + H.T)


def standard_errors(H: np.ndarray):
    """(covariance, standard errors) from the Hessian of the NEGATIVE log-likelihood; NaN if not invertible/PD."""
    k = H.shape[0]
    try:
        np.linalg.cholesky(H)
        cov = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        warnings.warn("Hessian of the negative log-likelihood is not positive definite: standard errors are NaN",
                      RuntimeWarning, stacklevel=3)
        return np.full((k, k), np.nan), np.full(k, np.nan)
    return cov, np.sqrt(np.diag(cov))


@dataclass(frozen=True)
class MLEResult:
    params: np.ndarray
    log_likelihood: float
    converged: bool
    grad_norm: float
    message: str
    n_iter: int


def maximize(
    nll_grad_log: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: list[np.ndarray],
    scale: float,
    bound: float = 25.0,
) -> MLEResult:
    """Minimise a negative log-likelihood given on log-parameters (value, gradient wrt log-params).

    The objective is divided by `scale` (number of customers) so tolerances do not depend on data size. The best of
    the starting points (by objective) is run with L-BFGS-B, then refined with a second L-BFGS-B from its end point
    (restarting the curvature memory) unless the gradient is already ~0, falling back to Nelder-Mead if the
    gradient-based runs fail."""

    def f(z):
        # Nelder-Mead is unbounded: keep every trial inside the box, where exp(z) neither underflows to 0 nor
        # overflows; a trial the formulas cannot evaluate is just a very bad point, not a failed fit.
        z = np.clip(z, -bound, bound)
        try:
            with np.errstate(all="ignore"):
                v, g = nll_grad_log(z)
        except (ValueError, OverflowError, ZeroDivisionError, FloatingPointError):
            return 1e300, np.zeros_like(z)
        if not np.isfinite(v) or not np.all(np.isfinite(g)):
            return (1e300, np.zeros_like(z)) if not np.isfinite(v) else (v / scale, np.nan_to_num(g) / scale)
        return v / scale, g / scale

    vals = [f(np.asarray(s, dtype=np.float64))[0] for s in starts]
    z0 = np.asarray(starts[int(np.argmin(vals))], dtype=np.float64)
    bounds = [(-bound, bound)] * z0.shape[0]
    opts = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20}
    res = optimize.minimize(f, z0, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    n_iter = res.nit
    gnorm = float(np.max(np.abs(f(res.x)[1])))
    if gnorm > 1e-7:  # refine: restart L-BFGS-B from its end point with a fresh curvature memory
        res2 = optimize.minimize(f, res.x, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
        n_iter += res2.nit
        if res2.fun <= res.fun:
            res = res2
        gnorm = float(np.max(np.abs(f(res.x)[1])))
    if not np.isfinite(res.fun) or gnorm > 1e-4:
        nm = optimize.minimize(lambda z: f(z)[0], res.x, method="Nelder-Mead",
                               options={"maxiter": 3000, "maxfev": 6000, "xatol": 1e-10, "fatol": 1e-14})
        res3 = optimize.minimize(f, np.clip(nm.x, -bound, bound), jac=True, method="L-BFGS-B", bounds=bounds,
                                 options=opts)
        n_iter += nm.nit + res3.nit
        if res3.fun < res.fun:
            res = res3
        g = f(res.x)[1]
        gnorm = float(np.max(np.abs(g)))
    converged = bool(np.isfinite(res.fun) and gnorm < 1e-4 and np.all(np.abs(res.x) < bound - 1e-6))
    if not converged:
        warnings.warn(f"maximum likelihood did not converge cleanly (max |grad| = {gnorm:.2e}, "
                      f"log-params {np.round(res.x, 3).tolist()}): {res.message}", RuntimeWarning, stacklevel=3)
    x = np.clip(res.x, -bound, bound)
    return MLEResult(np.exp(x), -float(res.fun) * scale, converged, gnorm, str(res.message), int(n_iter))


def _log1p_ratio_pow(alpha, T, t_x, r_x):
    """(r+x) * (log(alpha+T) - log(alpha+t_x)), computed without cancellation when T is close to t_x."""
    return r_x * np.log1p((T - t_x) / (alpha + t_x))


def scaled_hyp2f1(A, B, C, z):
    """(1-z)^A 2F1(A, B; C; z) for 0 <= z < 1, arrays broadcast.

    Computed with Euler's transformation as (1-z)^(C-A-B) ... = (1-z)^(C-B) 2F1(C-A, C-B; C; z): for the
    BG/NBD expectations C-B = a-1 does not grow with x, so neither factor overflows. scipy's hyp2f1 can return
    inf/nan near z = 1 when C-A-B is an integer (e.g. r == a); such entries are recomputed with the direct form,
    then, if still not finite, with A nudged by a relative 1e-9 (a change far below the model's precision)."""
    A, B, C, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (A, B, C, z)))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = np.power(1.0 - z, C - B) * hyp2f1(C - A, C - B, C, z)
        bad = ~np.isfinite(out)
        if np.any(bad):
            Ab, Bb, Cb, zb = A[bad], B[bad], C[bad], z[bad]
            alt = np.exp(Ab * np.log1p(-zb)) * hyp2f1(Ab, Bb, Cb, zb)
            still = ~np.isfinite(alt)
            if np.any(still):
                An = Ab[still] * (1 + 1e-9)
                alt[still] = np.power(1.0 - zb[still], Cb[still] - Bb[still]) * hyp2f1(
                    Cb[still] - An, Cb[still] - Bb[still], Cb[still], zb[still])
            still = ~np.isfinite(alt)
            if np.any(still):
                # A huge (r -> inf with r/alpha fixed: every customer buys at the same rate) with A z moderate:
                # the confluent limit (1-z)^A 2F1(A, B; C; z) -> 1F1(C-B; C; -A z / (1-z)), error O(1/A)
                As, Bs, Cs, zs = Ab[still], Bb[still], Cb[still], zb[still]
                alt[still] = hyp1f1(Cs - Bs, Cs, -As * zs / (1.0 - zs))
            out = np.array(out, dtype=np.float64)  # a writable copy, also for 0-d inputs
            out[bad] = alt
    return out


def _near_one_safe(func, a, *args, eps=1e-6):
    """Evaluate func(a, ...), which has a removable 0/0 at a == 1 (the (a-1) denominators), by linear
    interpolation between a = 1 - eps and a = 1 + eps when |a - 1| < eps (error O(eps^2), against a cancellation
    error of about 1e-16/|a-1| for the direct formula)."""
    a = float(a)
    if abs(a - 1.0) >= eps:
        return func(a, *args)
    lo, hi = func(1.0 - eps, *args), func(1.0 + eps, *args)
    return lo + (a - (1.0 - eps)) / (2 * eps) * (hi - lo)


# --------------------------------------------------------------------------------------------------------------
# BG/NBD formulas
# --------------------------------------------------------------------------------------------------------------

def log_likelihood_terms(params, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood (vectorised)."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = as_rfm(x, t_x, T)
    A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    A2 = betaln(a, b + x) - betaln(a, b)
    A3 = -(r + x) * np.log(alpha + T)
    pos = x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        A4 = np.where(pos, np.log(a) - np.log(np.where(pos, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
                      -np.inf)
    return A1 + A2 + np.logaddexp(A3, A4)


def log_likelihood(params, x, t_x, T, weights=None) -> float:
    ll = log_likelihood_terms(params, x, t_x, T)
    return wsum(weights, ll)


def x_groups(x) -> tuple[np.ndarray, np.ndarray]:
    """(distinct frequencies, index of each customer's) so that special functions of x are evaluated once per
    distinct x rather than once per customer (frequencies take few values)."""
    xu, inv = np.unique(np.asarray(x, dtype=np.float64), return_inverse=True)
    return xu, inv.reshape(-1)


def log_likelihood_grad(params, x, t_x, T, weights=None, groups=None) -> tuple[float, np.ndarray]:
    """(log-likelihood, gradient wrt (r, alpha, a, b)) summed over customers. `groups` = x_groups(x), optional."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = as_rfm(x, t_x, T)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    xu, inv = x_groups(x) if groups is None else groups
    # Terms depending on x only, per distinct x, then spread to customers.
    posu = xu > 0
    bx1u = np.where(posu, b + xu - 1, 1.0)
    A12u = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu) - betaln(a, b)
    la4u = np.where(posu, np.log(a) - np.log(bx1u), -np.inf)
    dg_abxu = digamma(a + b + xu)
    dr_u = digamma(r + xu) - digamma(r) + np.log(alpha)
    da_u = digamma(a + b) - dg_abxu
    db_u = digamma(b + xu) - dg_abxu - digamma(b) + digamma(a + b)
    rx = r + x
    lT = np.log(alpha + T)
    lt = np.log(alpha + t_x)
    A3 = -rx * lT
    A4 = la4u[inv] - rx * lt
    lse = np.logaddexp(A3, A4)
    ll = wsum(w, A12u[inv] + lse)
    w4 = np.exp(A4 - lse)  # 0 where x = 0 (A4 = -inf)
    w3 = 1.0 - w4
    d_r = dr_u[inv] - w3 * lT - w4 * lt
    d_alpha = r / alpha - rx * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = da_u[inv] + w4 / a
    d_b = db_u[inv] - w4 / bx1u[inv]
    g = np.array([wsum(w, d_r), wsum(w, d_alpha), wsum(w, d_a), wsum(w, d_b)])
    return ll, g


def p_alive(params, x, t_x, T) -> np.ndarray:
    """P(still active at T | x, t_x, T). Under BG/NBD it is exactly 1 whenever x = 0 (nobody can drop out
    before a repeat purchase) -- a known weakness the MBG/NBD fixes."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = as_rfm(x, t_x, T)
    pos = x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        L = np.log(a) - np.log(np.where(pos, b + x - 1, 1.0)) + _log1p_ratio_pow(alpha, T, t_x, r + x)
    return np.where(pos, expit(-L), 1.0)


def _near_c0_safe(func, a, b, eps=1e-6):
    """func(b) for the BG/NBD expectations, whose x = 0 terms have (a+b-1) * 2F1(...; a+b-1; z): a removable 0 * inf
    at a + b = 1. Interpolates linearly in b across b = 1 - a -/+ eps there."""
    if abs(a + b - 1.0) >= eps:
        return func(b)
    b1, b2 = 1.0 - a - eps, 1.0 - a + eps
    lo, hi = func(b1), func(b2)
    return lo + (b - b1) / (b2 - b1) * (hi - lo)


def _cond_bracket(a, b, r, alpha, t, x, T):
    """(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)], z = t/(alpha+T+t)."""
    z = t / (alpha + T + t)
    c = a + b + x - 1
    return c / (a - 1) * (1.0 - scaled_hyp2f1(r + x, b + x, c, z))


def conditional_expected_purchases(params, t, x, t_x, T) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected number of purchases in the next t units for a customer with history
    (x, t_x, T). `t` broadcasts against the customers."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = as_rfm(x, t_x, T)
    t = np.asarray(t, dtype=np.float64)
    bracket = _near_one_safe(
        lambda aa: _near_c0_safe(lambda bb: _cond_bracket(aa, bb, r, alpha, t, x, T), aa, b), a)
    return bracket * p_alive(params, x, t_x, T)


def _uncond(a, b, r, alpha, t):
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1.0 - scaled_hyp2f1(r, b, a + b - 1, z))


def unconditional_expected_purchases(params, t) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in the first t units after a (new) customer's first purchase."""
    r, alpha, a, b = (float(v) for v in params)
    t = np.asarray(t, dtype=np.float64)
    return _near_one_safe(lambda aa: _near_c0_safe(lambda bb: _uncond(aa, bb, r, alpha, t), aa, b), a)


def simulate(params, T, rng: np.random.Generator | int | None = None, *, dropout_at_first: bool = False):
    """Draw (x, t_x) for customers of ages T from the BG/NBD generative process (vectorised).

    With dropout_at_first=True, the customer may also drop out right after the first purchase (MBG/NBD)."""
    r, alpha, a, b = (float(v) for v in params)
    rng = np.random.default_rng(rng)
    T = np.asarray(T, dtype=np.float64)
    n = T.shape[0]
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    # Repeat purchases made before dropping out (if time were unlimited): geometric on {1,2,...} for BG/NBD
    # (the dropout coin is tossed after each repeat purchase), on {0,1,...} for MBG/NBD.
    k = rng.geometric(np.clip(p, 1e-300, 1.0)).astype(np.float64)
    if dropout_at_first:
        k -= 1.0
    n_T = rng.poisson(lam * T).astype(np.float64)  # purchases by T had the customer stayed active
    x = np.minimum(n_T, k)
    # Given n_T arrivals in [0, T], the x-th arrival is the x-th order statistic of n_T uniforms: T*Beta(x, n_T-x+1)
    pos = x > 0
    t_x = np.zeros(n)
    t_x[pos] = T[pos] * rng.beta(x[pos], n_T[pos] - x[pos] + 1)
    return x.astype(np.int64), t_x


# --------------------------------------------------------------------------------------------------------------
# Fitted model
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BetaGeoFitBase:
    """Common shape of a fitted BG/NBD or MBG/NBD model."""

    r: float
    alpha: float
    a: float
    b: float
    se_r: float
    se_alpha: float
    se_a: float
    se_b: float
    log_likelihood: float
    n_customers: int
    converged: bool = True
    cov: np.ndarray = field(default=None, repr=False, compare=False)

    model_name = "base"

    @property
    def params(self) -> tuple[float, float, float, float]:
        return (self.r, self.alpha, self.a, self.b)

    @property
    def standard_errors(self) -> tuple[float, float, float, float]:
        return (self.se_r, self.se_alpha, self.se_a, self.se_b)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in PARAM_NAMES}
        d.update({f"se_{k}": getattr(self, f"se_{k}") for k in PARAM_NAMES})
        d.update(model=self.model_name, log_likelihood=self.log_likelihood, n_customers=self.n_customers,
                 converged=self.converged)
        return d

    # implemented by subclasses through the module functions
    def p_alive(self, x, t_x, T) -> np.ndarray:
        raise NotImplementedError

    def expected_purchases(self, t, x, t_x, T) -> np.ndarray:
        raise NotImplementedError

    def expected_purchases_new(self, t) -> np.ndarray:
        raise NotImplementedError

    def log_likelihood_terms(self, x, t_x, T) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class BGNBDFit(BetaGeoFitBase):
    model_name = "bgnbd"

    def p_alive(self, x, t_x, T) -> np.ndarray:
        return p_alive(self.params, x, t_x, T)

    def expected_purchases(self, t, x, t_x, T) -> np.ndarray:
        """Conditional expectation E[Y(t) | x, t_x, T] of purchases in the next t units."""
        return conditional_expected_purchases(self.params, t, x, t_x, T)

    def expected_purchases_new(self, t) -> np.ndarray:
        """Unconditional E[X(t)] for a customer t units after the first purchase."""
        return unconditional_expected_purchases(self.params, t)

    def log_likelihood_terms(self, x, t_x, T) -> np.ndarray:
        return log_likelihood_terms(self.params, x, t_x, T)


def default_starts(x, t_x, T) -> list[np.ndarray]:
    """A few starting points on the log-parameter scale; `maximize` runs from the best of them."""
    mean_rate = float(np.sum(x) / max(np.sum(T), 1e-9))
    starts = [np.zeros(4)]
    for r0 in (0.25, 1.0):
        alpha0 = r0 / max(mean_rate, 1e-6)
        for ab in ((0.8, 2.5), (1.5, 5.0)):
            starts.append(np.log([r0, alpha0, ab[0], ab[1]]))
    return starts


def fit_generic(ll_grad, x, t_x, T, *, weights=None, compress=True, starts=None):
    """Fit a 4-parameter (r, alpha, a, b) count model given its (ll, grad) function. Returns (MLEResult, cov, se)."""
    x, t_x, T = as_rfm(x, t_x, T)
    x, t_x, T = x.ravel(), t_x.ravel(), T.ravel()
    check_rfm(x, t_x, T)
    n = float(x.shape[0] if weights is None else np.sum(weights))
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if compress:
        (x, t_x, T), w = compress_rows(x, t_x, T, weights=w)

    groups = x_groups(x)

    def nll_grad_log(z):
        theta = np.exp(z)
        ll, g = ll_grad(theta, x, t_x, T, w, groups)
        return -ll, -g * theta

    res = maximize(nll_grad_log, starts or default_starts(x, t_x, T), scale=n)
    H = numerical_hessian(lambda th: -ll_grad(th, x, t_x, T, w, groups)[1], res.params)
    cov, se = standard_errors(H)
    return res, cov, se, int(round(n))


def fit(x, t_x, T, *, weights=None, compress: bool = True) -> BGNBDFit:
    """Maximum-likelihood BG/NBD fit on (frequency, recency, T) arrays."""
    res, cov, se, n = fit_generic(log_likelihood_grad, x, t_x, T, weights=weights, compress=compress)
    return BGNBDFit(*(float(v) for v in res.params), *(float(v) for v in se), log_likelihood=res.log_likelihood, n_customers=n, converged=res.converged,
                    cov=cov)
