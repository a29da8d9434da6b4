"""Discounted customer lifetime value from a purchase-count model (BG/NBD or MBG/NBD) and the Gamma-Gamma spend
model, plus a holdout check of the count model.

CLV over `months` months with a monthly discount rate d, as in `lifetimes`' customer_lifetime_value:

    CLV = sum_{i=1..months} (E[Y(i m) | x, t_x, T] - E[Y((i-1) m) | x, t_x, T]) * E[Z | x, m_x] / (1+d)^i

where m is one month in model time units (by default 365.25/12 days / unit_days; `lifetimes` uses 4.345 weeks)
and E[Z | x, m_x] the Gamma-Gamma expected spend per purchase. This is a margin only if the amounts are margins:
Tiergraph passes order values unless costs are known.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import bgnbd, gamma_gamma, mbgnbd
from .bgnbd import BetaGeoFitBase, unique_rows
from .gamma_gamma import GammaGammaFit
from .summary import RFMSummary

__all__ = [
    "customer_lifetime_value",
    "fit_value_models",
    "ValueModelResult",
    "HoldoutCheck",
    "holdout_check",
    "expected_cohort_repeat_purchases",
    "DAYS_PER_MONTH",
]

DAYS_PER_MONTH = 365.25 / 12
MODELS = {"bgnbd": bgnbd.fit, "mbgnbd": mbgnbd.fit}


def customer_lifetime_value(
    purchase_model: BetaGeoFitBase,
    expected_spend,
    x,
    t_x,
    T,
    *,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
    units_per_month: float = DAYS_PER_MONTH / 7,
) -> np.ndarray:
    """Discounted expected value of each customer's purchases over the next `months` months."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    spend = np.asarray(expected_spend, dtype=np.float64)
    shape = np.broadcast_shapes(x.shape, t_x.shape, T.shape, spend.shape)
    x, t_x, T = (np.broadcast_to(v, shape).ravel() for v in (x, t_x, T))
    # Expected purchases depend on (x, t_x, T) only: evaluate once per distinct row (day-granular data repeats
    # rows a lot), accumulate the discounted purchase counts, then multiply by each customer's spend.
    (xu, txu, Tu), inv = unique_rows(x, t_x, T)
    disc = np.zeros(xu.shape[0])
    prev = np.zeros_like(disc)
    for i in range(1, int(months) + 1):
        cum = purchase_model.expected_purchases(i * units_per_month, xu, txu, Tu)
        disc += (cum - prev) / (1.0 + monthly_discount_rate) ** i
        prev = cum
    return (disc[inv].reshape(shape) * np.broadcast_to(spend, shape))


@dataclass(frozen=True)
class ValueModelResult:
    """Fitted models and per-customer scores (arrays aligned with `customer_ids`)."""

    model: str
    purchases: BetaGeoFitBase
    spend: GammaGammaFit | None  # None when the spend model could not be fitted (see notes): no spend, no CLV
    customer_ids: np.ndarray
    p_alive: np.ndarray
    expected_purchases: np.ndarray  # in the next `horizon_days` days
    expected_spend: np.ndarray  # per purchase (Gamma-Gamma conditional expectation)
    clv: np.ndarray
    horizon_days: float
    clv_months: int
    monthly_discount_rate: float
    unit_days: float = 7.0
    notes: list[str] = field(default_factory=list)

    def params(self) -> dict:
        """Parameters and standard errors of both models."""
        return {"purchases": self.purchases.as_dict(), "spend": self.spend.as_dict() if self.spend else None}


def fit_value_models(
    summary: RFMSummary,
    model: str = "bgnbd",
    *,
    horizon_days: float = 365.0,
    clv_months: int = 12,
    monthly_discount_rate: float = 0.01,
    units_per_month: float | None = None,
) -> ValueModelResult:
    """Fit the purchase model (`"bgnbd"` or `"mbgnbd"`) and the Gamma-Gamma spend model on an RFM summary and score
    every customer: P(alive), expected purchases in `horizon_days`, expected spend per purchase and discounted CLV
    over `clv_months` months."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, not {model!r}")
    x, t_x, T, m = summary.frequency, summary.recency, summary.T, summary.monetary_value
    notes: list[str] = []
    purchases = MODELS[model](x, t_x, T)
    if not purchases.converged:
        notes.append(f"{model} fit did not converge cleanly")
    notes.extend(bound_notes(model, purchases.as_dict(), bgnbd.PARAM_NAMES))
    try:
        spend: GammaGammaFit | None = gamma_gamma.fit(x, m)
    except ValueError as exc:  # e.g. fewer than 3 repeat buyers with a positive spend: P(alive) stays usable
        spend = None
        notes.append(f"spend model not fitted: {exc}; expected spend and CLV are unknown")
    if spend is None:
        exp_spend = np.full(np.shape(x), np.nan)
    else:
        if not spend.converged:
            notes.append("gamma-gamma fit did not converge cleanly")
        notes.extend(bound_notes("gamma-gamma", spend.as_dict(), gamma_gamma.PARAM_NAMES))
        if abs(spend.freq_spend_correlation) > 0.3:
            notes.append(f"frequency and spend are correlated (r = {spend.freq_spend_correlation:.2f}): "
                         "the Gamma-Gamma independence assumption is doubtful")
        exp_spend = spend.expected_average_profit(x, m)
        if spend.q <= 1:
            notes.append("gamma-gamma q <= 1: population mean spend is infinite; spend for x = 0 customers is NaN")
            exp_spend = np.where(x > 0, exp_spend, np.nan)
    u = summary.unit_days
    upm = DAYS_PER_MONTH / u if units_per_month is None else float(units_per_month)
    clv = customer_lifetime_value(purchases, exp_spend, x, t_x, T, months=clv_months,
                                  monthly_discount_rate=monthly_discount_rate, units_per_month=upm)
    return ValueModelResult(
        model=model,
        purchases=purchases,
        spend=spend,
        customer_ids=summary.customer_ids,
        p_alive=purchases.p_alive(x, t_x, T),
        expected_purchases=purchases.expected_purchases(horizon_days / u, x, t_x, T),
        expected_spend=exp_spend,
        clv=clv,
        horizon_days=float(horizon_days),
        clv_months=int(clv_months),
        monthly_discount_rate=float(monthly_discount_rate),
        unit_days=u,
        notes=notes,
    )


def bound_notes(model: str, params: dict, names: tuple[str, ...], bound: float = 25.0) -> list[str]:
    """A note per parameter that ended at the edge of the search box (e^-25 .. e^25): the data do not pin it down
    (e.g. a tending to 0 when no customer seems to drop out), so the model works as its limiting case."""
    out = []
    for k in names:
        v = float(params[k])
        if abs(np.log(v)) > bound - 1e-3:
            out.append(f"{model} parameter {k} = {v:.3g} is at the edge of the search range: the data do not "
                       "identify it and the model works as its limiting case")
    return out


# --------------------------------------------------------------------------------------------------------------
# Holdout check
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HoldoutCheck:
    """Predicted vs actual purchases in the holdout period, in total and by calibration frequency bucket."""

    holdout_units: float
    total_actual: float
    total_predicted: float
    bucket_labels: list[str]
    bucket_customers: np.ndarray
    bucket_actual_mean: np.ndarray
    bucket_predicted_mean: np.ndarray

    @property
    def relative_error(self) -> float:
        """(predicted - actual) / actual for the total."""
        return (self.total_predicted - self.total_actual) / self.total_actual if self.total_actual else np.nan

    def table(self) -> str:
        lines = [f"{'x (calibration)':>16} {'customers':>10} {'actual/cust':>12} {'predicted/cust':>15}"]
        for lab, n, a, p in zip(self.bucket_labels, self.bucket_customers, self.bucket_actual_mean,
                                self.bucket_predicted_mean):
            lines.append(f"{lab:>16} {int(n):>10d} {a:>12.3f} {p:>15.3f}")
        lines.append(f"{'total':>16} {int(self.bucket_customers.sum()):>10d} {self.total_actual:>12.1f} "
                     f"{self.total_predicted:>15.1f}  ({100 * self.relative_error:+.1f}%)")
        return "\n".join(lines)


def holdout_check(
    purchase_model: BetaGeoFitBase,
    summary: RFMSummary,
    holdout_counts,
    holdout_units: float,
    *,
    max_bucket: int = 7,
) -> HoldoutCheck:
    """Compare the conditional expectation E[Y(holdout) | x, t_x, T] with the purchases actually made in the
    holdout period (from `summary.holdout_purchases`), in total and for x = 0, 1, ..., max_bucket-1, max_bucket+."""
    x = summary.frequency
    actual = np.asarray(holdout_counts, dtype=np.float64)
    pred = purchase_model.expected_purchases(holdout_units, x, summary.recency, summary.T)
    bucket = np.minimum(x, max_bucket).astype(np.int64)
    nb = max_bucket + 1
    n = np.bincount(bucket, minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        act_mean = np.bincount(bucket, weights=actual, minlength=nb) / n
        pred_mean = np.bincount(bucket, weights=pred, minlength=nb) / n
    labels = [str(k) for k in range(max_bucket)] + [f"{max_bucket}+"]
    return HoldoutCheck(float(holdout_units), float(actual.sum()), float(pred.sum()), labels, n, act_mean,
                        pred_mean)


def expected_cohort_repeat_purchases(purchase_model: BetaGeoFitBase, birth_times, t) -> np.ndarray:
    """Expected cumulative repeat purchases of a cohort at times t (same units), each customer entering at its
    first-purchase time `birth_times`: sum_i E[X(t - s_i)] over the customers born before t. Used to draw the
    tracking plot of Fader, Hardie & Lee (2005, Figure 2)."""
    s = np.asarray(birth_times, dtype=np.float64)
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    # Customers sharing a birth time share E[X]: evaluate once per distinct birth time.
    uniq, counts = np.unique(s, return_counts=True)
    out = np.empty(t.shape[0])
    for j, tj in enumerate(t):
        age = np.maximum(tj - uniq, 0.0)
        out[j] = float((counts * purchase_model.expected_purchases_new(age)).sum())
    return out
