"""Recency-frequency-monetary summaries of order histories, the input of the lifetime-value models.

Conventions (those of Fader, Hardie & Lee 2005 and of the `lifetimes` package):

- Time is measured in days and expressed in units of `unit_days` days (7: weeks), as a fraction: a purchase
  10 days after the first one is at t = 10/7 weeks. No rounding to whole periods.
- Several orders of one customer on the same calendar day count as one purchase, whose value is their sum.
- The first purchase is the customer's "birth": frequency x counts the REPEAT purchase days only.
- recency t_x is the time of the last purchase since the first (0 when x = 0); age T is the time from the first
  purchase to the end of the calibration period (inclusive end: an order on `calibration_end` is in it).
- monetary_value is the mean value of the repeat purchases (the first purchase excluded), 0 when x = 0.
- Only orders on or before `calibration_end` are used; customers whose first order is later are left out.

Everything is vectorised: one sort of (customer, day) pairs and `np.add.reduceat`, no loop per customer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RFMSummary", "rfm_summary", "holdout_purchases", "to_days"]


def to_days(dates) -> np.ndarray:
    """Calendar days (int64, days since 1970-01-01) from ISO strings, date/datetime objects, datetime64 or ints
    (taken as days since the epoch already).

    A timestamp is reduced to its calendar date as written (no time-zone conversion)."""
    arr = np.asarray(dates)
    if arr.dtype.kind in "iu":  # already days since epoch
        return arr.astype(np.int64)
    return arr.astype("datetime64[D]").astype(np.int64)


def _day(d) -> int:
    return int(to_days(np.asarray([d]))[0])


@dataclass(frozen=True)
class RFMSummary:
    """Per-customer summary; all arrays are aligned with `customer_ids` (sorted ascending)."""

    customer_ids: np.ndarray
    frequency: np.ndarray  # x: number of repeat purchase days in the calibration period
    recency: np.ndarray  # t_x: time of the last purchase since the first, in units
    T: np.ndarray  # age: calibration_end - first purchase, in units
    monetary_value: np.ndarray  # mean value of the repeat purchases (0 when x = 0)
    first_purchase_day: np.ndarray  # int64 days since epoch
    calibration_end_day: int
    unit_days: float

    @property
    def n_customers(self) -> int:
        return int(self.customer_ids.shape[0])

    @property
    def first_purchase(self) -> np.ndarray:
        return self.first_purchase_day.astype("datetime64[D]")

    def subset(self, mask: np.ndarray) -> "RFMSummary":
        mask = np.asarray(mask)
        return RFMSummary(
            self.customer_ids[mask], self.frequency[mask], self.recency[mask], self.T[mask],
            self.monetary_value[mask], self.first_purchase_day[mask], self.calibration_end_day, self.unit_days,
        )


def _daily_purchases(customer_ids, days, order_amounts):
    """Collapse orders to one row per (customer, day): returns (customer codes, unique ids, days, day totals),
    sorted by customer then day. `days` are int64 days since epoch."""
    ids = np.asarray(customer_ids)
    if order_amounts is None:
        amounts = np.zeros(days.shape[0], dtype=np.float64)
    else:
        amounts = np.asarray(order_amounts, dtype=np.float64)
    if not (ids.shape[0] == days.shape[0] == amounts.shape[0]):
        raise ValueError("customer_ids, order_dates and order_amounts must have the same length")
    uniq, code = np.unique(ids, return_inverse=True)
    code = code.reshape(-1)
    order = np.lexsort((days, code))
    code, days, amounts = code[order], days[order], amounts[order]
    if code.shape[0] == 0:
        return code, uniq, days, amounts
    new_pair = np.empty(code.shape[0], dtype=bool)
    new_pair[0] = True
    new_pair[1:] = (code[1:] != code[:-1]) | (days[1:] != days[:-1])
    starts = np.flatnonzero(new_pair)
    return code[starts], uniq, days[starts], np.add.reduceat(amounts, starts)


def rfm_summary(
    customer_ids,
    order_dates,
    order_amounts=None,
    *,
    calibration_end,
    unit_days: float = 7,
) -> RFMSummary:
    """Frequency, recency, age and mean repeat spend per customer from order lines (see the module docstring).

    customer_ids: any array of hashable scalars (strings or ints); order_dates: ISO strings, dates or
    datetime64; order_amounts: value of each line (None: all zero); calibration_end: last day included."""
    end = _day(calibration_end)
    days_all = to_days(order_dates)
    keep = days_all <= end
    ids = np.asarray(customer_ids)[keep]
    amts = None if order_amounts is None else np.asarray(order_amounts, dtype=np.float64)[keep]
    code, uniq, days, totals = _daily_purchases(ids, days_all[keep], amts)
    n = uniq.shape[0]
    if code.shape[0] == 0:
        empty = np.zeros(0)
        return RFMSummary(uniq, empty.astype(np.int64), empty, empty, empty, empty.astype(np.int64), end,
                          float(unit_days))
    cust_start = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    cust_end = np.r_[cust_start[1:], code.shape[0]] - 1
    # Every unique id kept here has at least one order (ids were filtered with the orders).
    assert cust_start.shape[0] == n
    n_days = cust_end - cust_start + 1
    first = days[cust_start]
    last = days[cust_end]
    spend_all = np.add.reduceat(totals, cust_start)
    x = (n_days - 1).astype(np.int64)
    repeat_spend = spend_all - totals[cust_start]
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(x > 0, repeat_spend / np.maximum(x, 1), 0.0)
    u = float(unit_days)
    return RFMSummary(
        customer_ids=uniq,
        frequency=x,
        recency=(last - first) / u,
        T=(end - first) / u,
        monetary_value=monetary,
        first_purchase_day=first.astype(np.int64),
        calibration_end_day=end,
        unit_days=u,
    )


def holdout_purchases(summary: RFMSummary, customer_ids, order_dates, *, holdout_end) -> tuple[np.ndarray, float]:
    """Purchases (distinct order days) per summary customer in (calibration_end, holdout_end].

    Returns (counts aligned with summary.customer_ids, holdout length in units). Customers absent from the
    summary (first order after the calibration period) are ignored."""
    end = _day(holdout_end)
    start = summary.calibration_end_day
    days_all = to_days(order_dates)
    ids_all = np.asarray(customer_ids)
    keep = (days_all > start) & (days_all <= end)
    ids = ids_all[keep]
    days = days_all[keep]
    counts = np.zeros(summary.n_customers, dtype=np.int64)
    if ids.shape[0]:
        pos = np.searchsorted(summary.customer_ids, ids)
        pos_c = np.minimum(pos, max(summary.n_customers - 1, 0))
        known = (pos < summary.n_customers) & (summary.customer_ids[pos_c] == ids) if summary.n_customers else \
            np.zeros(ids.shape[0], dtype=bool)
        pos, days = pos[known], days[known]
        pairs = np.unique(pos.astype(np.int64) * (1 << 32) + (days - start))  # distinct (customer, day)
        counts += np.bincount((pairs >> 32).astype(np.int64), minlength=summary.n_customers)
    return counts, (end - start) / summary.unit_days
