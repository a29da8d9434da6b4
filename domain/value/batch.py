"""The value batch: every score of every customer as of a date, replacing customer_scores atomically.

    run = run_value_batch(engine, date(2025, 11, 20), model="bgnbd", monetary="revenue")
    run.fit["purchases"]["r"], run.fit["holdout"]["relative_error"], run.fit["timings"]

Steps (nothing loops over customers or orders in Python except building the rows to write):
1. read   two queries (domain.value.scores): the per-customer aggregates (GROUP BY customer_id, RFM by RANK())
          and the sorted distinct (customer, order day) pairs for usual_gap_days / seasonal_auto;
2. fit    the purchase model (BG/NBD or MBG/NBD) and Gamma-Gamma on per-customer arrays from the aggregate query
          (domain.value.clv.fit_value_models), plus a backtest: the same model fitted on the history up to
          `holdout_days` before as_of, predicting the order days of the last `holdout_days` days;
3. store  ONE writer transaction (domain.evaluation_state; steps 1-2 run inside it too): insert the value_runs
          row, delete every customer_scores row, insert the new rows with COPY (PostgreSQL) or executemany in
          chunks (domain.bulk), roll the indirect value up the customer graph in SQL, finish the run row.
          Any failure rolls everything back: the previous scores stay whole and no run row is left behind.
"""
from __future__ import annotations

import math
import time
import warnings
from datetime import date
from typing import Any, Callable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.bulk import insert_rows
from domain.evaluation_state import in_writer_transaction, writer_transaction
from domain.models import CustomerScore, ValueRun, utcnow
from domain.value import clv as clv_mod
from domain.value.clv import fit_value_models, holdout_check
from domain.value.scores import (
    MONETARY_CHOICES,
    ROLLUP_GROUP_SQL,
    ROLLUP_REFERRED_SQL,
    CustomerAggregates,
    ScoreWindows,
    fetch_customer_aggregates,
    fetch_order_days,
    gap_and_seasonality,
    score_windows,
)
from domain.value.summary import RFMSummary

__all__ = ["run_value_batch", "Progress", "CHUNK", "MIN_REPEAT_BUYERS", "fit_lifetime_value"]

Progress = Callable[[str, int, int], None]  # (step, done, total)
CHUNK = 5000
MIN_REPEAT_BUYERS = 20
PG_WORK_MEM_MB = 256  # per sort / hash of the read queries, for this transaction only (SET LOCAL)
UNIT_DAYS = 7.0  # the models run in weeks, as in the literature
scores_t = CustomerScore.__table__
runs_t = ValueRun.__table__
MODEL_COLUMNS = ("p_alive", "expected_orders_90d", "expected_spend", "clv", "repeat_purchases", "recency_weeks",
                 "age_weeks")


def _json(v: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN / inf to None (PostgreSQL's json rejects NaN)."""
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_json(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, date):
        return v.isoformat()
    return v


def _summary(ids, order_days, first, last, repeat_amount, end_day: float) -> RFMSummary:
    """The lifetime-value summary (x, t_x, T in weeks, mean repeat spend) from the SQL aggregates."""
    x = (order_days - 1).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(x > 0, repeat_amount / np.maximum(x, 1), 0.0)
    return RFMSummary(
        customer_ids=ids, frequency=x, recency=(last - first) / UNIT_DAYS, T=(end_day - first) / UNIT_DAYS,
        monetary_value=m, first_purchase_day=first.astype(np.int64), calibration_end_day=int(end_day),
        unit_days=UNIT_DAYS,
    )


class ModelRefused(ValueError):
    """The fit ran but its result cannot be used; the message is the reason stored in the run's fit JSON."""


def _fit_quietly(fn, *args, **kwargs):
    """Run a fit, returning (result, warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(all="ignore"):
            res = fn(*args, **kwargs)
    return res, [str(w.message) for w in caught]


def fit_lifetime_value(agg: CustomerAggregates, windows: ScoreWindows, model: str = "bgnbd", *,
                       monthly_discount_rate: float = 0.01, clv_months: int = 12,
                       min_repeat_buyers: int = MIN_REPEAT_BUYERS) -> tuple[dict[str, np.ndarray], dict]:
    """Fit and score the lifetime-value models on the aggregate arrays.

    Returns (columns aligned with agg's customers, NaN where unknown; fit JSON). Never raises for a small or
    degenerate base: the columns stay NaN and the fit JSON says why ("status": "skipped", "reason")."""
    n = agg.n
    out = {k: np.full(n, np.nan) for k in MODEL_COLUMNS}
    as_of_day = float(np.datetime64(windows.as_of, "D").astype(np.int64))
    has = np.isfinite(agg["first_day"])
    summary = _summary(agg["customer_id"][has], agg["order_days"][has], agg["first_day"][has],
                       agg["last_day"][has], agg["repeat_amount"][has], as_of_day)
    repeaters = int((summary.frequency > 0).sum())
    out["repeat_purchases"][has] = summary.frequency
    out["recency_weeks"][has] = summary.recency
    out["age_weeks"][has] = summary.T
    fit: dict[str, Any] = {"status": "skipped", "reason": None, "model": model, "unit_days": UNIT_DAYS,
                           "customers": int(summary.n_customers), "repeat_buyers": repeaters,
                           "clv_months": clv_months, "monthly_discount_rate": monthly_discount_rate,
                           "horizon_days": 90, "notes": []}
    t0 = time.perf_counter()
    if repeaters < min_repeat_buyers:
        fit["reason"] = f"too few repeat buyers to fit ({repeaters} < {min_repeat_buyers})"
    else:
        try:
            res, msgs = _fit_quietly(fit_value_models, summary, model, horizon_days=90.0, clv_months=clv_months,
                                     monthly_discount_rate=monthly_discount_rate)
            params = np.asarray(res.purchases.params, dtype=np.float64)
            if not np.all(np.isfinite(params)) or not np.all(params > 0):
                raise ModelRefused(f"the {model} estimates are degenerate ({params.tolist()})")
            if not np.any(np.isfinite(res.p_alive)):
                raise ModelRefused(f"the fitted {model} model gives no finite P(alive) on this base")
            fit.update(status="fitted", purchases=res.purchases.as_dict(),
                       spend=res.spend.as_dict() if res.spend is not None else None, notes=list(res.notes) + msgs)
            out["p_alive"][has] = res.p_alive
            out["expected_orders_90d"][has] = res.expected_purchases
            out["expected_spend"][has] = res.expected_spend
            out["clv"][has] = res.clv
        except ModelRefused as exc:
            fit["status"] = "skipped"
            fit["reason"] = f"model not used: {exc}"
        except Exception as exc:  # noqa: BLE001 - a failed fit must not fail the batch: scores stay NULL
            fit["status"] = "skipped"
            fit["reason"] = f"model fit failed: {type(exc).__name__}: {exc}"
    fit["fit_seconds"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    fit["holdout"] = _holdout(agg, windows, model, min_repeat_buyers) if fit["status"] == "fitted" else \
        {"status": "skipped", "reason": "no model fitted"}
    fit["holdout"]["fit_seconds"] = time.perf_counter() - t1
    return out, fit


def _holdout(agg: CustomerAggregates, windows: ScoreWindows, model: str, min_repeat_buyers: int) -> dict:
    """Backtest: fit on the order days up to calibration_end, predict the holdout window's order days."""
    cal_end_day = float(np.datetime64(windows.calibration_end, "D").astype(np.int64))
    holdout_days = (windows.holdout.end - windows.holdout.start).days + 1
    info: dict[str, Any] = {"status": "skipped", "reason": None,
                            "calibration_end": windows.calibration_end.isoformat(),
                            "holdout_start": windows.holdout.start.isoformat(),
                            "holdout_end": windows.holdout.end.isoformat(), "holdout_days": holdout_days}
    keep = np.isfinite(agg["first_day"]) & (agg["first_day"] <= cal_end_day)
    cal = _summary(agg["customer_id"][keep], agg["cal_order_days"][keep], agg["first_day"][keep],
                   agg["cal_last_day"][keep], agg["cal_repeat_amount"][keep], cal_end_day)
    repeaters = int((cal.frequency > 0).sum())
    info["customers"] = int(cal.n_customers)
    info["repeat_buyers"] = repeaters
    if repeaters < min_repeat_buyers:
        info["reason"] = f"too few repeat buyers before the holdout ({repeaters} < {min_repeat_buyers})"
        return info
    try:
        purchases, msgs = _fit_quietly(clv_mod.MODELS[model], cal.frequency, cal.recency, cal.T)
        check = holdout_check(purchases, cal, agg["holdout_order_days"][keep], holdout_days / UNIT_DAYS)
    except Exception as exc:  # noqa: BLE001
        info["reason"] = f"holdout fit failed: {type(exc).__name__}: {exc}"
        return info
    info.update(
        status="checked", purchases=purchases.as_dict(), notes=msgs,
        actual=check.total_actual, predicted=check.total_predicted, relative_error=check.relative_error,
        buckets=[{"x": lab, "customers": int(nc), "actual_mean": a, "predicted_mean": p}
                 for lab, nc, a, p in zip(check.bucket_labels, check.bucket_customers, check.bucket_actual_mean,
                                          check.bucket_predicted_mean)],
    )
    return info


# column kinds for the rows written: float (NaN -> NULL), int (NaN -> NULL), or plain (written as is)
_NULLABLE_FLOAT = ("recency_days", "monetary", "margin_12m", "profit_12m", "growth_90d", "growth_yoy", "growth_ytd",
                   *MODEL_COLUMNS, "usual_gap_days", "referred_profit_12m", "group_profit_12m")
_NULLABLE_INT = ("rfm_r", "rfm_f", "rfm_m")


def _nullable(arr: np.ndarray, as_int: bool = False) -> list:
    """Column values for the database: NaN -> None, integers as int."""
    arr = np.asarray(arr, dtype=np.float64)
    ok = np.isfinite(arr)
    obj = (np.where(ok, arr, 0).astype(np.int64) if as_int else arr).astype(object)
    obj[~ok] = None
    return obj.tolist()


def _columns(agg: CustomerAggregates, windows: ScoreWindows, model_cols: dict[str, np.ndarray],
             gap: np.ndarray, seasonal: np.ndarray) -> dict[str, np.ndarray]:
    """Every customer_scores column as one array aligned with agg's customers (vectorised)."""
    as_of_day = float(np.datetime64(windows.as_of, "D").astype(np.int64))
    r, f, m = (agg[k] for k in ("rfm_r", "rfm_f", "rfm_m"))
    known = np.isfinite(r) & np.isfinite(f) & np.isfinite(m)
    cell = np.full(agg.n, None, dtype=object)
    if known.any():
        parts = [v[known].astype(np.int64).astype(str) for v in (r, f, m)]
        cell[known] = np.char.add(np.char.add(np.char.add(np.char.add(parts[0], "-"), parts[1]), "-"), parts[2])
    return {
        "customer_id": agg["customer_id"],
        "recency_days": as_of_day - agg["last_day"],  # NaN when never ordered
        "frequency": agg["frequency"].astype(np.int64),
        "monetary": agg["monetary"],
        "rfm_r": r, "rfm_f": f, "rfm_m": m,
        "rfm_cell": cell,
        "revenue_12m": agg["revenue_12m"],
        "margin_12m": agg["margin_12m"],
        "service_cost_12m": agg["service_cost_12m"],
        "profit_12m": agg["profit_12m"],
        "growth_90d": agg["growth_90d"],
        "growth_yoy": agg["growth_yoy"],
        "growth_ytd": agg["growth_ytd"],
        **{k: model_cols[k] for k in MODEL_COLUMNS},
        "seasonal_auto": seasonal,
        "usual_gap_days": gap,
        # indirect value: own figures / nothing referred; ROLLUP_*_SQL adds the rest inside the transaction
        "referred_revenue_12m": np.zeros(agg.n),
        "referred_profit_12m": np.zeros(agg.n),
        "group_revenue_12m": agg["revenue_12m"],
        "group_profit_12m": agg["profit_12m"],
    }


def _chunk_rows(cols: dict[str, np.ndarray], fixed: dict[str, Any], start: int, stop: int) -> list[dict]:
    """Rows [start, stop) as dicts for the bulk insert; converted per chunk to keep memory flat."""
    lists = []
    for name, arr in cols.items():
        part = arr[start:stop]
        if name in _NULLABLE_FLOAT:
            lists.append(_nullable(part))
        elif name in _NULLABLE_INT:
            lists.append(_nullable(part, as_int=True))
        else:
            lists.append(part.tolist())
    names = list(cols)
    return [{**fixed, **dict(zip(names, vals))} for vals in zip(*lists)]


def run_value_batch(bind: Engine | Connection, as_of: date, *, model: str = "bgnbd", monetary: str = "revenue",
                    progress: Progress | None = None, monthly_discount_rate: float = 0.01, clv_months: int = 12,
                    holdout_days: int = 90, min_repeat_buyers: int = MIN_REPEAT_BUYERS) -> ValueRun:
    """Compute every score of every customer with created_at <= as_of and replace customer_scores atomically.

    model: "bgnbd" or "mbgnbd"; monetary: "revenue" or "margin" (what RFM's M ranks). Returns the stored run
    (fit JSON: params, standard errors, log-likelihood, holdout check, fit seconds, step timings).
    `bind`: an engine (the batch is its own writer transaction) or a connection inside
    evaluation_state.writer_transaction (`tiergraph evaluate` stores the scores and the rules' results in one).
    Reading, fitting and storing all happen inside it, so no write can slip between what is read and stored."""
    if not isinstance(bind, Connection):
        with writer_transaction(bind) as conn:
            return run_value_batch(conn, as_of, model=model, monetary=monetary, progress=progress,
                                   monthly_discount_rate=monthly_discount_rate, clv_months=clv_months,
                                   holdout_days=holdout_days, min_repeat_buyers=min_repeat_buyers)
    conn = bind
    if not in_writer_transaction(conn):
        raise RuntimeError("run_value_batch on a connection must run inside evaluation_state.writer_transaction")
    if model not in clv_mod.MODELS:
        raise ValueError(f"model must be one of {sorted(clv_mod.MODELS)}, not {model!r}")
    if monetary not in MONETARY_CHOICES:
        raise ValueError(f"monetary must be one of {MONETARY_CHOICES}, not {monetary!r}")
    step = progress or (lambda *_: None)
    started = utcnow()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    windows = score_windows(as_of, holdout_days)

    # 1. read (writers take turns: nothing changes the data until this transaction ends)
    if conn.dialect.name == "postgresql":  # the sorts for RANK() and the day grouping stay in memory
        conn.execute(sa.text(f"SET LOCAL work_mem = '{int(PG_WORK_MEM_MB)}MB'"))
    agg = fetch_customer_aggregates(conn, windows, monetary)
    timings["aggregate_sql"] = agg.seconds
    step("aggregate", agg.n, agg.n)
    t = time.perf_counter()
    order_ids, order_days = fetch_order_days(conn, as_of)
    timings["order_days_sql"] = time.perf_counter() - t
    step("order days", int(order_ids.shape[0]), int(order_ids.shape[0]))

    # 2. fit and score
    model_cols, fit = fit_lifetime_value(agg, windows, model, monthly_discount_rate=monthly_discount_rate,
                                         clv_months=clv_months, min_repeat_buyers=min_repeat_buyers)
    timings["model_fit"] = fit["fit_seconds"]
    timings["holdout_fit"] = fit["holdout"]["fit_seconds"]
    step("fit", 1, 1)
    t = time.perf_counter()
    gap, seasonal = gap_and_seasonality(agg["customer_id"], order_ids, order_days)
    timings["gap_seasonality"] = time.perf_counter() - t
    fit.update(monetary=monetary, windows=windows.as_dict(), as_of=as_of.isoformat())

    # 3. store, all or nothing (in the caller's transaction)
    run_id = conn.execute(
        runs_t.insert().values(as_of=as_of, model=model, started_at=started, customer_count=0, fit={})
        .returning(runs_t.c.id)).scalar_one()
    t = time.perf_counter()
    cols = _columns(agg, windows, model_cols, gap, seasonal)
    fixed = {"run_id": run_id, "as_of": as_of}
    timings["scoring"] = time.perf_counter() - t + timings["gap_seasonality"]
    t = time.perf_counter()
    conn.execute(scores_t.delete())

    def chunks():
        for start in range(0, agg.n, CHUNK):
            yield from _chunk_rows(cols, fixed, start, start + CHUNK)
            step("store", min(start + CHUNK, agg.n), agg.n)

    insert_rows(conn, scores_t, chunks(), [*fixed, *cols])
    timings["store"] = time.perf_counter() - t
    t = time.perf_counter()
    conn.execute(sa.text(ROLLUP_GROUP_SQL))
    conn.execute(sa.text(ROLLUP_REFERRED_SQL))
    timings["rollup_sql"] = time.perf_counter() - t
    step("rollup", 1, 1)
    timings["total"] = time.perf_counter() - t_start
    fit["timings"] = timings
    finished = utcnow()
    fit = _json(fit)
    conn.execute(runs_t.update().where(runs_t.c.id == run_id)
                 .values(finished_at=finished, customer_count=agg.n, fit=fit))
    return ValueRun(id=run_id, as_of=as_of, model=model, started_at=started, finished_at=finished,
                    customer_count=agg.n, fit=fit)
