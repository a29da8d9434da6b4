"""Per-customer value aggregates, computed set-based in SQL (SQLite and PostgreSQL, same text).

Every query groups by `customer_id` and joins on customer id only, so it runs unchanged on a database distributed
by customer (Citus): one aggregate pass over each record table, conditional aggregation for the windows, RANK()
window functions for the RFM quintiles. Window bounds come from `rules.windows` (computed in Python); dates reach
SQL only as bound parameters, and there is no date arithmetic in SQL: day differences (recency, t_x, T, gaps)
are taken in numpy on the fetched dates.

- `score_windows(as_of)`      the bounds of every window the scores use
- `fetch_customer_aggregates` ONE query: per customer (created_at <= as_of) the order, service-cost, growth and
                              RFM figures, plus the lifetime-value summary inputs (first / last order day, order
                              days, repeat spend; the same for the holdout calibration period)
- `fetch_order_days`          ONE query: the distinct (customer, order day) pairs up to as_of, sorted
- `gap_and_seasonality`       usual_gap_days and seasonal_auto from those pairs, vectorised (no loop per customer)
- `ROLLUP_GROUP_SQL` / `ROLLUP_REFERRED_SQL`  the indirect value over the customer graph, applied to
                              customer_scores inside the batch transaction (recursive CTE, cycle-safe)

Definitions are in docs/value-models.md, "Scores".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rules.nodes import Window
from rules.windows import Bounds, add_months, bounds

__all__ = [
    "ScoreWindows",
    "score_windows",
    "CustomerAggregates",
    "fetch_customer_aggregates",
    "aggregates_sql",
    "fetch_order_days",
    "gap_and_seasonality",
    "to_day_numbers",
    "ROLLUP_GROUP_SQL",
    "ROLLUP_REFERRED_SQL",
    "MONETARY_CHOICES",
]

MONETARY_CHOICES = ("revenue", "margin")

# seasonal_auto: >= SEASON_SHARE of the order days fall in at most SEASON_MONTHS calendar months (of the year),
# with at least SEASON_MIN_DAYS order days spread over at least two calendar years.
SEASON_MONTHS = 3
SEASON_SHARE = 0.8
SEASON_MIN_DAYS = 4


@dataclass(frozen=True)
class ScoreWindows:
    as_of: date
    w12: Bounds  # 12m: RFM frequency / monetary, revenue, margin, service cost, profit, indirect value
    w12_prev: Bounds  # 12m before 12m (growth_yoy)
    ytd: Bounds  # 1 January of as_of's year .. as_of (growth_ytd)
    ytd_prev: Bounds  # the same days of the year before
    w90: Bounds  # 90d (growth_90d)
    w90_prev: Bounds  # 90d before 90d
    holdout: Bounds  # the last `holdout_days` days: the lifetime-value backtest predicts them
    calibration_end: date  # the day before the holdout starts

    def params(self) -> dict[str, date]:
        return {
            "as_of": self.as_of,
            "w12_start": self.w12.start, "w12p_start": self.w12_prev.start, "w12p_end": self.w12_prev.end,
            "ytd_start": self.ytd.start, "ytdp_start": self.ytd_prev.start, "ytdp_end": self.ytd_prev.end,
            "w90_start": self.w90.start, "w90p_start": self.w90_prev.start, "w90p_end": self.w90_prev.end,
            "cal_end": self.calibration_end,
        }

    def as_dict(self) -> dict[str, list[str]]:
        def b(x: Bounds) -> list[str]:
            return [x.start.isoformat(), x.end.isoformat()]
        return {"12m": b(self.w12), "12m before 12m": b(self.w12_prev), "90d": b(self.w90),
                "90d before 90d": b(self.w90_prev), "year to date": b(self.ytd),
                "same days last year": b(self.ytd_prev), "holdout": b(self.holdout)}


def score_windows(as_of: date, holdout_days: int = 90) -> ScoreWindows:
    """All window bounds, from rules.windows (inclusive both ends; `12m` is calendar months)."""
    w12 = Window(12, "m")
    w90 = Window(90, "d")
    hold = bounds(Window(holdout_days, "d"), as_of)
    return ScoreWindows(
        as_of=as_of,
        w12=bounds(w12, as_of),
        w12_prev=bounds(Window(12, "m", offset=w12), as_of),
        ytd=Bounds(date(as_of.year, 1, 1), as_of),
        ytd_prev=Bounds(date(as_of.year - 1, 1, 1), add_months(as_of, -12)),  # 29 Feb -> 28 Feb
        w90=bounds(w90, as_of),
        w90_prev=bounds(Window(90, "d", offset=w90), as_of),
        holdout=hold,
        calibration_end=hold.start - timedelta(days=1),
    )


# One pass over orders (grouped by customer and day first, as the lifetime-value models count purchase days), one
# per cost table, joined to customers on customer id; then the RFM scores by RANK(). `{monetary}` is one of two
# fixed column names chosen in Python, never user text.
_AGGREGATES_SQL = """
WITH daily AS (
    SELECT customer_id, ordered_at AS odate, SUM(amount) AS amount, SUM(margin) AS margin
    FROM orders
    WHERE ordered_at <= :as_of
    GROUP BY customer_id, ordered_at
),
daily_first AS (
    SELECT customer_id, odate, amount, margin, MIN(odate) OVER (PARTITION BY customer_id) AS first_day
    FROM daily
),
o AS (
    SELECT customer_id,
        MIN(odate) AS first_day,
        MAX(odate) AS last_day,
        COUNT(*) AS order_days,
        SUM(CASE WHEN odate = first_day THEN 0 ELSE amount END) AS repeat_amount,
        SUM(CASE WHEN odate >= :w12_start THEN 1 ELSE 0 END) AS days_12m,
        SUM(CASE WHEN odate >= :w12_start THEN amount ELSE 0 END) AS revenue_12m,
        SUM(CASE WHEN odate >= :w12_start THEN margin END) AS margin_12m,
        SUM(CASE WHEN odate >= :w90_start THEN amount ELSE 0 END) AS revenue_90d,
        SUM(CASE WHEN odate BETWEEN :w90p_start AND :w90p_end THEN amount ELSE 0 END) AS revenue_90d_prev,
        SUM(CASE WHEN odate BETWEEN :w12p_start AND :w12p_end THEN amount ELSE 0 END) AS revenue_12m_prev,
        SUM(CASE WHEN odate >= :ytd_start THEN amount ELSE 0 END) AS revenue_ytd,
        SUM(CASE WHEN odate BETWEEN :ytdp_start AND :ytdp_end THEN amount ELSE 0 END) AS revenue_ytd_prev,
        SUM(CASE WHEN odate <= :cal_end THEN 1 ELSE 0 END) AS cal_order_days,
        MAX(CASE WHEN odate <= :cal_end THEN odate END) AS cal_last_day,
        SUM(CASE WHEN odate <= :cal_end AND odate > first_day THEN amount ELSE 0 END) AS cal_repeat_amount,
        SUM(CASE WHEN odate > :cal_end THEN 1 ELSE 0 END) AS holdout_order_days
    FROM daily_first
    GROUP BY customer_id
),
ic AS (
    SELECT customer_id, SUM(cost) AS cost FROM interactions
    WHERE occurred_at BETWEEN :w12_start AND :as_of GROUP BY customer_id
),
kc AS (
    SELECT customer_id, SUM(cost) AS cost FROM complaints
    WHERE opened_at BETWEEN :w12_start AND :as_of GROUP BY customer_id
),
dc AS (
    SELECT customer_id, SUM(cost) AS cost FROM deliveries
    WHERE promised_at BETWEEN :w12_start AND :as_of AND cost IS NOT NULL GROUP BY customer_id
),
base AS (
    SELECT c.id AS customer_id,
        o.first_day, o.last_day,
        COALESCE(o.order_days, 0) AS order_days,
        COALESCE(o.repeat_amount, 0) AS repeat_amount,
        COALESCE(o.days_12m, 0) AS frequency,
        COALESCE(o.revenue_12m, 0) AS revenue_12m,
        CASE WHEN COALESCE(o.days_12m, 0) = 0 THEN 0 ELSE o.margin_12m END AS margin_12m,
        COALESCE(ic.cost, 0) + COALESCE(kc.cost, 0) + COALESCE(dc.cost, 0) AS service_cost_12m,
        COALESCE(o.revenue_90d, 0) AS revenue_90d,
        COALESCE(o.revenue_90d_prev, 0) AS revenue_90d_prev,
        COALESCE(o.revenue_12m_prev, 0) AS revenue_12m_prev,
        COALESCE(o.revenue_ytd, 0) AS revenue_ytd,
        COALESCE(o.revenue_ytd_prev, 0) AS revenue_ytd_prev,
        COALESCE(o.cal_order_days, 0) AS cal_order_days,
        o.cal_last_day,
        COALESCE(o.cal_repeat_amount, 0) AS cal_repeat_amount,
        COALESCE(o.holdout_order_days, 0) AS holdout_order_days
    FROM customers c
    LEFT JOIN o ON o.customer_id = c.id
    LEFT JOIN ic ON ic.customer_id = c.id
    LEFT JOIN kc ON kc.customer_id = c.id
    LEFT JOIN dc ON dc.customer_id = c.id
    WHERE c.created_at <= :as_of
),
vals AS (
    SELECT base.*,
        margin_12m - service_cost_12m AS profit_12m,
        CASE WHEN last_day IS NULL THEN NULL ELSE frequency END AS f_value,
        CASE WHEN last_day IS NULL THEN NULL ELSE {monetary} END AS m_value
    FROM base
)
SELECT customer_id, first_day, last_day, order_days, repeat_amount, frequency, revenue_12m, margin_12m,
    service_cost_12m, profit_12m, revenue_90d, revenue_90d_prev, revenue_12m_prev, revenue_ytd, revenue_ytd_prev,
    cal_order_days, cal_last_day, cal_repeat_amount, holdout_order_days,
    m_value AS monetary,
    CASE WHEN revenue_90d_prev = 0 THEN NULL ELSE revenue_90d / revenue_90d_prev - 1 END AS growth_90d,
    CASE WHEN revenue_12m_prev = 0 THEN NULL ELSE revenue_12m / revenue_12m_prev - 1 END AS growth_yoy,
    CASE WHEN revenue_ytd_prev = 0 THEN NULL ELSE revenue_ytd / revenue_ytd_prev - 1 END AS growth_ytd,
    CASE WHEN last_day IS NULL THEN NULL ELSE
        1 + 5 * (RANK() OVER (PARTITION BY CASE WHEN last_day IS NULL THEN 1 ELSE 0 END ORDER BY last_day) - 1)
            / COUNT(last_day) OVER () END AS rfm_r,
    CASE WHEN f_value IS NULL THEN NULL ELSE
        1 + 5 * (RANK() OVER (PARTITION BY CASE WHEN f_value IS NULL THEN 1 ELSE 0 END ORDER BY f_value) - 1)
            / COUNT(f_value) OVER () END AS rfm_f,
    CASE WHEN m_value IS NULL THEN NULL ELSE
        1 + 5 * (RANK() OVER (PARTITION BY CASE WHEN m_value IS NULL THEN 1 ELSE 0 END ORDER BY m_value) - 1)
            / COUNT(m_value) OVER () END AS rfm_m
FROM vals
ORDER BY customer_id
"""

def aggregates_sql(monetary: str = "revenue") -> str:
    """The aggregate query's text (bind with `score_windows(as_of).params()`): one definition of every score, read by
    the value batch and by reports that need the scores as of another day (valueSummary(asOf))."""
    return _AGGREGATES_SQL.format(monetary="revenue_12m" if monetary == "revenue" else "margin_12m")


_ORDER_DAYS_SQL = """
SELECT customer_id, ordered_at FROM orders
WHERE ordered_at <= :as_of
GROUP BY customer_id, ordered_at
ORDER BY customer_id, ordered_at
"""

_INT_COLS = ("customer_id", "order_days", "frequency", "cal_order_days", "holdout_order_days",
             "rfm_r", "rfm_f", "rfm_m")
_DATE_COLS = ("first_day", "last_day", "cal_last_day")


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def to_day_numbers(values) -> np.ndarray:
    """Dates as returned by the driver (date objects on PostgreSQL, ISO text on SQLite, None) -> days since
    1970-01-01 as float64, NaN for None. (numpy's own conversion of date objects is ~20x slower.)"""
    vals = values if isinstance(values, (list, tuple)) else list(values)
    sample = next((v for v in vals if v is not None), None)
    if sample is None:
        return np.full(len(vals), np.nan)
    if isinstance(sample, date):
        return np.fromiter((np.nan if v is None else v.toordinal() - _EPOCH_ORDINAL for v in vals),
                           dtype=np.float64, count=len(vals))
    arr = np.array(vals, dtype="datetime64[D]")
    out = arr.astype(np.int64).astype(np.float64)
    out[np.isnat(arr)] = np.nan
    return out


@dataclass
class CustomerAggregates:
    """Column arrays aligned with `customer_id` (ascending). Dates are float day numbers (NaN = none); integer
    columns that may be unknown (rfm_*) are float with NaN."""

    columns: dict[str, np.ndarray]
    seconds: float = 0.0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @property
    def n(self) -> int:
        return int(self.columns["customer_id"].shape[0])


def _stream(conn: Connection, sql: str, params: dict[str, Any], batch: int = 50_000):
    stmt = sa.text(sql).bindparams(*(sa.bindparam(k, type_=sa.Date) for k, v in params.items() if isinstance(v, date)))
    # options on the statement, not the connection: the caller's writer transaction goes on to write with it
    result = conn.execute(stmt.execution_options(stream_results=True, yield_per=batch), params)
    keys = list(result.keys())
    return keys, result.partitions(batch)


def fetch_customer_aggregates(conn: Connection, windows: ScoreWindows, monetary: str = "revenue",
                              ) -> CustomerAggregates:
    """Run the aggregate query (see module docstring) and return its columns as numpy arrays."""
    if monetary not in MONETARY_CHOICES:
        raise ValueError(f"monetary must be one of {MONETARY_CHOICES}, not {monetary!r}")
    t0 = time.perf_counter()
    sql = aggregates_sql(monetary)
    keys, parts = _stream(conn, sql, windows.params())
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for part in parts:
        cols = list(zip(*part))
        for k, col in zip(keys, cols):
            if k in _DATE_COLS:
                chunks[k].append(to_day_numbers(col))
            elif k == "customer_id":
                chunks[k].append(np.array(col, dtype=np.int64))
            else:
                chunks[k].append(np.array(col, dtype=np.float64))
    columns = {}
    for k in keys:
        if chunks[k]:
            columns[k] = np.concatenate(chunks[k])
        else:
            columns[k] = np.zeros(0, dtype=np.int64 if k == "customer_id" else np.float64)
    return CustomerAggregates(columns, time.perf_counter() - t0)


def fetch_order_days(conn: Connection, as_of: date) -> tuple[np.ndarray, np.ndarray]:
    """(customer ids, day numbers) of every distinct order day up to as_of, sorted by customer then day."""
    keys, parts = _stream(conn, _ORDER_DAYS_SQL, {"as_of": as_of})
    ids, days = [], []
    for part in parts:
        c, d = zip(*part)
        ids.append(np.array(c, dtype=np.int64))
        days.append(to_day_numbers(d).astype(np.int64))
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ids), np.concatenate(days)


def gap_and_seasonality(customer_ids: np.ndarray, order_ids: np.ndarray, order_days: np.ndarray,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """usual_gap_days (float, NaN with < 2 order days) and seasonal_auto (bool) for each of `customer_ids`
    (ascending), from distinct (customer, day) pairs sorted by customer then day. Vectorised:

    - gap: np.diff of the days within a customer, then a grouped median by one lexsort of (customer, gap);
    - seasonal: order days counted per (customer, calendar month of the year) with one bincount, the 3 largest
      months per customer by a row sort."""
    n = customer_ids.shape[0]
    gap = np.full(n, np.nan)
    seasonal = np.zeros(n, dtype=bool)
    if order_ids.shape[0] == 0 or n == 0:
        return gap, seasonal
    pos = np.searchsorted(customer_ids, order_ids)
    pos_c = np.minimum(pos, n - 1)
    known = customer_ids[pos_c] == order_ids
    code, days = pos_c[known], order_days[known]
    if code.shape[0] == 0:
        return gap, seasonal
    # usual gap: median of the gaps between consecutive distinct order days
    same = code[1:] == code[:-1]
    g_code = code[1:][same]
    g_val = (days[1:] - days[:-1])[same].astype(np.float64)
    if g_code.shape[0]:
        order = np.lexsort((g_val, g_code))
        g_code, g_val = g_code[order], g_val[order]
        starts = np.flatnonzero(np.r_[True, g_code[1:] != g_code[:-1]])
        counts = np.diff(np.r_[starts, g_code.shape[0]])
        lo = starts + (counts - 1) // 2
        hi = starts + counts // 2
        gap[g_code[starts]] = 0.5 * (g_val[lo] + g_val[hi])
    # seasonality
    d64 = days.astype("datetime64[D]")
    month = (d64.astype("datetime64[M]").astype(np.int64) % 12)
    year = d64.astype("datetime64[Y]").astype(np.int64)
    total = np.bincount(code, minlength=n)
    cand = total >= SEASON_MIN_DAYS
    if cand.any():
        first_year = np.full(n, np.iinfo(np.int64).max)
        last_year = np.full(n, np.iinfo(np.int64).min)
        np.minimum.at(first_year, code, year)
        np.maximum.at(last_year, code, year)
        cand &= last_year > first_year
        cidx = np.flatnonzero(cand)
        if cidx.shape[0]:
            remap = np.full(n, -1, dtype=np.int64)
            remap[cidx] = np.arange(cidx.shape[0])
            sel = remap[code] >= 0
            cells = np.bincount(remap[code[sel]] * 12 + month[sel], minlength=cidx.shape[0] * 12)
            cells = cells.reshape(cidx.shape[0], 12)
            top = np.sort(cells, axis=1)[:, -SEASON_MONTHS:].sum(axis=1)
            seasonal[cidx] = top >= SEASON_SHARE * total[cidx]
    return gap, seasonal


# Indirect value, run inside the batch transaction after customer_scores holds this run's own figures (group_*
# initialised to the customer's own values, referred_* to 0). `below` is every (ancestor, descendant) pair of the
# company hierarchy; UNION (not UNION ALL) drops repeated pairs, so a cycle in parent_id ends the recursion, and
# a customer is never its own descendant. Profit sums add the known profits: NULL only when none is known.
ROLLUP_GROUP_SQL = """
WITH RECURSIVE below(root_id, node_id) AS (
    SELECT parent_id, id FROM customers WHERE parent_id IS NOT NULL AND parent_id <> id
    UNION
    SELECT below.root_id, c.id FROM below JOIN customers c ON c.parent_id = below.node_id
    WHERE c.id <> below.root_id
)
UPDATE customer_scores
SET group_revenue_12m = customer_scores.revenue_12m + g.revenue,
    group_profit_12m = CASE WHEN customer_scores.profit_12m IS NULL AND g.profit IS NULL THEN NULL
                            ELSE COALESCE(customer_scores.profit_12m, 0) + COALESCE(g.profit, 0) END
FROM (
    SELECT below.root_id AS root_id, SUM(s.revenue_12m) AS revenue, SUM(s.profit_12m) AS profit
    FROM below JOIN customer_scores s ON s.customer_id = below.node_id
    GROUP BY below.root_id
) AS g
WHERE customer_scores.customer_id = g.root_id
"""

ROLLUP_REFERRED_SQL = """
UPDATE customer_scores
SET referred_revenue_12m = r.revenue, referred_profit_12m = r.profit
FROM (
    SELECT c.referred_by_id AS referrer_id, SUM(s.revenue_12m) AS revenue, SUM(s.profit_12m) AS profit
    FROM customers c JOIN customer_scores s ON s.customer_id = c.id
    WHERE c.referred_by_id IS NOT NULL AND c.referred_by_id <> c.id
    GROUP BY c.referred_by_id
) AS r
WHERE customer_scores.customer_id = r.referrer_id
"""
