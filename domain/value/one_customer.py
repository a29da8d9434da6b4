"""One customer's value scores as of any date, from its own records and the last fitted lifetime models.

The batch (value.batch) scores the whole base as of one date; this answers `Customer.value(asOf:)` for any other
date without re-scoring the base. It mirrors the batch's definitions (value.scores), and a test checks both give
the same numbers on the batch's date. What needs the whole base is left unknown here: RFM quintile scores and
the indirect value of referred customers and of the hierarchy. The lifetime models are the ones fitted by the last
value run, applied to this customer's history as of the date asked.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Optional

import numpy as np

from domain.value import bgnbd, gamma_gamma, mbgnbd
from domain.value.clv import DAYS_PER_MONTH, customer_lifetime_value
from domain.value.scores import gap_and_seasonality, score_windows
from rules.to_python import CustomerRecords

FITS = {"bgnbd": bgnbd.BGNBDFit, "mbgnbd": mbgnbd.MBGNBDFit}


@dataclass
class OneCustomerValue:
    as_of: date
    recency_days: Optional[float]
    frequency: int
    monetary: Optional[float]
    revenue_12m: float
    margin_12m: Optional[float]
    service_cost_12m: float
    profit_12m: Optional[float]
    growth_90d: Optional[float]
    growth_yoy: Optional[float]
    growth_ytd: Optional[float]
    usual_gap_days: Optional[float]
    seasonal_auto: bool
    repeat_purchases: Optional[float]
    recency_weeks: Optional[float]
    age_weeks: Optional[float]
    p_alive: Optional[float] = None
    expected_orders_90d: Optional[float] = None
    expected_spend: Optional[float] = None
    clv: Optional[float] = None


def _within(d: date, start: Optional[date], end: date) -> bool:
    return (start is None or d >= start) and d <= end


def _growth(now: float, before: float) -> Optional[float]:
    return None if before == 0 else now / before - 1


# the record sources the value scores read (revenue and margin from orders; cost to serve from the rest)
VALUE_SOURCES = ("order", "complaint", "delivery", "interaction")


def value_as_of(records: CustomerRecords, as_of: date, fit: Optional[dict] = None,
                monetary: str = "revenue") -> OneCustomerValue:
    w = score_windows(as_of)
    days: dict[date, list] = {}  # order day -> [amount, margin of the known margins or None]
    for o in records.orders:
        if o.ordered_at > as_of:
            continue
        day = days.setdefault(o.ordered_at, [0.0, None])
        day[0] += o.amount
        if o.margin is not None:
            day[1] = (day[1] or 0.0) + o.margin
    in12 = [d for d in days if _within(d, w.w12.start, w.w12.end)]
    revenue_12m = sum(days[d][0] for d in in12)
    margins = [days[d][1] for d in in12 if days[d][1] is not None]
    margin_12m = (sum(margins) if margins else None) if in12 else 0.0
    service = sum(i.cost for i in records.interactions if _within(i.occurred_at, w.w12.start, as_of))
    service += sum(c.cost for c in records.complaints if _within(c.opened_at, w.w12.start, as_of))
    service += sum(d.cost for d in records.deliveries
                   if d.cost is not None and _within(d.promised_at, w.w12.start, as_of))

    def revenue(b) -> float:
        return sum(v[0] for d, v in days.items() if _within(d, b.start, b.end))

    ordered = sorted(days)
    day_numbers = np.array([d.toordinal() - date(1970, 1, 1).toordinal() for d in ordered], dtype=np.int64)
    cid = np.array([records.customer.id])
    gap, seasonal = gap_and_seasonality(cid, np.repeat(cid, len(ordered)), day_numbers)
    value = OneCustomerValue(
        as_of=as_of,
        recency_days=float((as_of - ordered[-1]).days) if ordered else None,
        frequency=len(in12),
        monetary=None if not ordered else (revenue_12m if monetary == "revenue" else margin_12m),
        revenue_12m=revenue_12m,
        margin_12m=margin_12m,
        service_cost_12m=service,
        profit_12m=None if margin_12m is None else margin_12m - service,
        growth_90d=_growth(revenue(w.w90), revenue(w.w90_prev)),
        growth_yoy=_growth(revenue_12m, revenue(w.w12_prev)),
        growth_ytd=_growth(revenue(w.ytd), revenue(w.ytd_prev)),
        usual_gap_days=None if np.isnan(gap[0]) else float(gap[0]),
        seasonal_auto=bool(seasonal[0]),
        repeat_purchases=float(len(ordered) - 1) if ordered else None,
        recency_weeks=(ordered[-1] - ordered[0]).days / 7 if ordered else None,
        age_weeks=(as_of - ordered[0]).days / 7 if ordered else None,
    )
    if fit and fit.get("status") == "fitted" and ordered:
        _lifetime(value, fit, sum(days[d][0] for d in ordered[1:]))
    return value


def _lifetime(value: OneCustomerValue, fit: dict, repeat_amount: float) -> None:
    """P(alive), expected orders, expected spend and CLV from the stored fits, for this customer's history."""
    p = fit["purchases"]
    model_cls = FITS[p.get("model", fit.get("model", "bgnbd"))]
    model = model_cls(**{f.name: p[f.name] for f in fields(model_cls) if f.name in p})
    s = fit.get("spend")
    unit = fit.get("unit_days", 7)
    x = np.array([value.repeat_purchases])
    t_x, big_t = np.array([value.recency_weeks]), np.array([value.age_weeks])
    m = np.array([repeat_amount / value.repeat_purchases if value.repeat_purchases else 0.0])
    if s is None:  # the run fitted the purchase model only (see its notes): spend and CLV stay unknown
        spend = np.array([np.nan])
    else:
        spend_model = gamma_gamma.GammaGammaFit(**{f.name: s[f.name] for f in fields(gamma_gamma.GammaGammaFit)
                                                   if f.name in s})
        spend = spend_model.expected_average_profit(x, m)
        if spend_model.q <= 1:
            spend = np.where(x > 0, spend, np.nan)
    clv = customer_lifetime_value(model, spend, x, t_x, big_t, months=fit.get("clv_months", 12),
                                  monthly_discount_rate=fit.get("monthly_discount_rate", 0.01),
                                  units_per_month=DAYS_PER_MONTH / unit)
    value.p_alive = float(model.p_alive(x, t_x, big_t)[0])
    value.expected_orders_90d = float(np.ravel(model.expected_purchases(fit.get("horizon_days", 90) / unit,
                                                                        x, t_x, big_t))[0])
    value.expected_spend = _finite(spend[0])
    value.clv = _finite(np.ravel(clv)[0])


def _finite(v: Any) -> Optional[float]:
    v = float(v)
    return v if np.isfinite(v) else None
