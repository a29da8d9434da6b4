"""Benchmark of the value batch (run_value_batch) on synthetic bases, on SQLite and PostgreSQL.

    python bench/bench_value.py [--sizes 100000 1000000] [--backends sqlite postgresql] [--seed 1]
                                [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--keep]

For each size: generates customers (5% in company hierarchies, 5% referred), orders over 3 years (about 5 per
customer, 10% with unknown margin), interactions, complaints and deliveries, all vectorised with numpy. Bulk loads
them into a fresh SQLite file (executemany on the raw connection) and a fresh PostgreSQL database (COPY; created
here and dropped at the end). Then it times, in the same run:

  baseline   SELECT customer_id, sum(amount) FROM orders GROUP BY customer_id   (fetched to the client)
  batch      run_value_batch end to end, and its steps from run.fit["timings"]: the aggregate query, the order-day
             query, the model fit (+ holdout backtest fit), scoring (numpy), store (delete + COPY / executemany), graph
             rollup (recursive CTE)
  arpu       arpu_by_tier over 12 months with the tiers in force each month, on a history of 12 month-end
             evaluation runs where 10% of the customers change tier at each run (tier_changes)

and prints each figure in seconds and as a multiple of the baseline.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.db import make_engine, migrate  # noqa: E402
from domain.models import CustomerEvaluation, EvaluationRun, TierChange  # noqa: E402
from domain.value.batch import run_value_batch  # noqa: E402
from domain.value.reports import arpu_by_tier  # noqa: E402
from rules.windows import add_months  # noqa: E402

AS_OF = date(2025, 11, 20)
YEARS_DAYS = 3 * 365
EPOCH_DAY = int(np.datetime64(AS_OF, "D").astype(np.int64)) - YEARS_DAYS
REGIONS = np.array(["north", "south", "east", "west"])


def synthetic_base(n: int, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Column arrays per table. Days are int day numbers since 1970-01-01."""
    ids = np.arange(1, n + 1)
    created = EPOCH_DAY + rng.integers(0, YEARS_DAYS - 30, n)
    parent = np.full(n, -1)
    has_parent = (rng.random(n) < 0.05) & (ids > 1)
    parent[has_parent] = np.floor(rng.random(has_parent.sum()) * (ids[has_parent] - 1)).astype(np.int64) + 1
    referrer = np.full(n, -1)
    has_ref = (rng.random(n) < 0.05) & (ids > 1)
    referrer[has_ref] = np.floor(rng.random(has_ref.sum()) * (ids[has_ref] - 1)).astype(np.int64) + 1
    customers = {"id": ids, "created": created, "parent": parent, "referrer": referrer,
                 "region": rng.integers(0, 4, n)}
    # orders: each customer buys at a gamma-distributed rate from creation until a random churn day
    rate = rng.gamma(0.8, 1.0 / 0.8, n) * 5.0 / YEARS_DAYS * 2.9  # ~5 orders per customer on average
    end = np.minimum(created + rng.exponential(900, n).astype(np.int64), EPOCH_DAY + YEARS_DAYS)
    counts = rng.poisson(rate * np.maximum(end - created, 1))
    cust = np.repeat(np.arange(n), counts)
    span = np.maximum(end - created, 1)[cust]
    day = created[cust] + np.floor(rng.random(cust.shape[0]) * span).astype(np.int64)
    spend = rng.gamma(3.0, 1.0 / rng.gamma(3.0, 1.0 / 150.0, n))[cust] if n else np.zeros(0)
    amount = np.round(rng.gamma(4.0, spend / 4.0), 2)
    margin = np.round(amount * rng.uniform(0.05, 0.45, amount.shape[0]), 2)
    unknown = rng.random(amount.shape[0]) < 0.10
    orders = {"id": np.arange(1, cust.shape[0] + 1), "customer": ids[cust], "day": day, "amount": amount,
              "margin": np.where(unknown, np.nan, margin)}

    def events(per_customer: float, mean_cost: float) -> dict[str, np.ndarray]:
        k = rng.poisson(per_customer, n)
        c = np.repeat(np.arange(n), k)
        d = created[c] + np.floor(rng.random(c.shape[0]) * (EPOCH_DAY + YEARS_DAYS - created[c])).astype(np.int64)
        return {"id": np.arange(1, c.shape[0] + 1), "customer": ids[c], "day": d,
                "cost": np.round(rng.exponential(mean_cost, c.shape[0]), 2)}

    interactions = events(2.0, 15.0)
    complaints = events(0.3, 80.0)
    # deliveries: one per order for half of the orders, cost unknown for a fifth of them
    pick = np.flatnonzero(rng.random(cust.shape[0]) < 0.5)
    dcost = np.round(rng.exponential(12.0, pick.shape[0]), 2)
    dcost[rng.random(pick.shape[0]) < 0.2] = np.nan
    deliveries = {"id": np.arange(1, pick.shape[0] + 1), "order": orders["id"][pick],
                  "customer": orders["customer"][pick], "day": day[pick] + 2, "cost": dcost}
    return {"customers": customers, "orders": orders, "interactions": interactions, "complaints": complaints,
            "deliveries": deliveries}


def _iso(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype(str)


def table_rows(base: dict) -> dict[str, tuple[list[str], list[tuple]]]:
    """(column names, row tuples) per table in load order; None for NULL."""
    c, o, i, k, d = (base[t] for t in ("customers", "orders", "interactions", "complaints", "deliveries"))

    def opt(a):
        obj = a.astype(object)
        obj[a < 0] = None
        return obj

    def optf(a):
        obj = a.astype(object)
        obj[np.isnan(a)] = None
        return obj

    out = {}
    out["customers"] = (["id", "external_id", "name", "region", "seasonal", "created_at", "parent_id",
                         "referred_by_id", "attributes"],
                        list(zip(c["id"].tolist(), [f"C{x}" for x in c["id"].tolist()],
                                 [f"customer {x}" for x in c["id"].tolist()], REGIONS[c["region"]].tolist(),
                                 [False] * len(c["id"]), _iso(c["created"]).tolist(), opt(c["parent"]).tolist(),
                                 opt(c["referrer"]).tolist(), ["{}"] * len(c["id"]))))
    margin = optf(o["margin"])
    cogs = optf(np.round(o["amount"] - o["margin"], 2))
    out["orders"] = (["id", "external_id", "customer_id", "ordered_at", "amount", "cost_of_goods", "margin",
                      "line_count"],
                     list(zip(o["id"].tolist(), [f"O{x}" for x in o["id"].tolist()], o["customer"].tolist(),
                              _iso(o["day"]).tolist(), o["amount"].tolist(), cogs.tolist(), margin.tolist(),
                              [1] * len(o["id"]))))
    out["interactions"] = (["id", "external_id", "customer_id", "occurred_at", "kind", "cost"],
                           list(zip(i["id"].tolist(), [f"I{x}" for x in i["id"].tolist()], i["customer"].tolist(),
                                    _iso(i["day"]).tolist(), ["call"] * len(i["id"]), i["cost"].tolist())))
    out["complaints"] = (["id", "external_id", "customer_id", "opened_at", "cost"],
                         list(zip(k["id"].tolist(), [f"K{x}" for x in k["id"].tolist()], k["customer"].tolist(),
                                  _iso(k["day"]).tolist(), k["cost"].tolist())))
    out["deliveries"] = (["id", "external_id", "order_id", "customer_id", "promised_at", "cost"],
                         list(zip(d["id"].tolist(), [f"D{x}" for x in d["id"].tolist()], d["order"].tolist(),
                                  d["customer"].tolist(), _iso(d["day"]).tolist(), optf(d["cost"]).tolist())))
    return out


def load_sqlite(engine, rows) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, (cols, data) in rows.items():
            cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", data)
        raw.commit()
        cur.execute("ANALYZE")
    finally:
        raw.close()


def _copy_text(data: list[tuple]) -> str:
    def cell(v):
        if v is None:
            return "\\N"
        if isinstance(v, bool):
            return "t" if v else "f"
        return str(v)
    return "".join("\t".join(cell(v) for v in row) + "\n" for row in data)


def load_postgres(engine, rows) -> None:
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            for table, (cols, data) in rows.items():
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                    for s in range(0, len(data), 200_000):
                        cp.write(_copy_text(data[s:s + 200_000]))
        raw.commit()
        with raw.cursor() as cur:
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def baseline(engine) -> float:
    t = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT customer_id, sum(amount) FROM orders GROUP BY customer_id")).all()
    return time.perf_counter() - t


TIERS = ["key", "important", "general", "maintain"]


def tier_history(engine, n: int, rng: np.random.Generator, runs: int = 12, move_share: float = 0.10) -> None:
    """Month-end evaluation runs before AS_OF's month; at each run after the first, move_share of the customers
    change tier (logged in tier_changes, as run_batch logs them); customer_evaluations holds the last run's tiers."""
    first = AS_OF.replace(day=1)
    days = [add_months(first, -k) - timedelta(days=1) for k in range(runs, 0, -1)]
    tier = rng.integers(0, len(TIERS), n)
    changes = []
    with engine.begin() as conn:
        for i, day in enumerate(days, start=1):
            conn.execute(EvaluationRun.__table__.insert(), {"id": i, "rules_checksum": "bench", "as_of": day,
                                                            "customer_count": n, "cutoffs": {}})
            if i > 1:
                who = np.flatnonzero(rng.random(n) < move_share)
                new = (tier[who] + rng.integers(1, len(TIERS), who.shape[0])) % len(TIERS)
                changes += [{"customer_id": int(c) + 1, "run_id": i, "as_of": day, "kind": "tier",
                             "old_value": TIERS[o], "new_value": TIERS[w]}
                            for c, o, w in zip(who.tolist(), tier[who].tolist(), new.tolist())]
                tier[who] = new
        for s in range(0, len(changes), 50_000):
            conn.execute(TierChange.__table__.insert(), changes[s:s + 50_000])
        evals = [{"customer_id": c + 1, "run_id": runs, "as_of": days[-1], "tier": TIERS[t], "tier_line": t,
                  "status": None, "tags": [], "metrics": {}} for c, t in enumerate(tier.tolist())]
        for s in range(0, n, 50_000):
            conn.execute(CustomerEvaluation.__table__.insert(), evals[s:s + 50_000])
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT setval('evaluation_runs_id_seq', :n)"), {"n": runs})


def bench_one(kind: str, engine, rows, n_orders: int) -> dict:
    t = time.perf_counter()
    (load_sqlite if kind == "sqlite" else load_postgres)(engine, rows)
    load = time.perf_counter() - t
    baseline(engine)  # warm the cache
    base = min(baseline(engine) for _ in range(2))
    t = time.perf_counter()
    run = run_value_batch(engine, AS_OF)
    whole = time.perf_counter() - t
    tm = run.fit["timings"]
    tier_history(engine, run.customer_count, np.random.default_rng(0))
    t = time.perf_counter()
    arpu_rows = arpu_by_tier(engine, 12, AS_OF, include_current_month=True)
    arpu = time.perf_counter() - t
    return {"load": load, "baseline": base, "whole": whole, "timings": tm, "fit": run.fit,
            "customers": run.customer_count, "orders": n_orders, "arpu": arpu, "arpu_rows": len(arpu_rows)}


def report(kind: str, n: int, res: dict) -> None:
    tm, base = res["timings"], res["baseline"]
    print(f"\n== {kind}, {res['customers']:,} customers, {res['orders']:,} orders "
          f"(bulk load {res['load']:.1f} s) ==")
    print(f"{'step':<52} {'seconds':>9} {'x baseline':>11}")
    lines = [
        ("baseline: SELECT customer_id, sum(amount) GROUP BY", base),
        ("aggregate query (orders by day + costs + RANK)", tm["aggregate_sql"]),
        ("order-day query (distinct customer, day)", tm["order_days_sql"]),
        ("model fit (BG/NBD + Gamma-Gamma + scores)", tm["model_fit"]),
        ("holdout backtest fit", tm["holdout_fit"]),
        ("scoring (gaps, seasonality, columns; numpy)", tm["scoring"]),
        ("store (delete + COPY on PostgreSQL / executemany on SQLite)", tm["store"]),
        ("graph rollup (recursive CTE + referrals)", tm["rollup_sql"]),
        ("run_value_batch end to end", res["whole"]),
        (f"arpu, 12 months + current, tiers in force ({res['arpu_rows']} rows)", res["arpu"]),
    ]
    for label, sec in lines:
        print(f"{label:<52} {sec:>9.2f} {sec / base:>11.1f}")
    f = res["fit"]
    if f.get("status") == "fitted":
        p = f["purchases"]
        print(f"fit: r={p['r']:.3f} alpha={p['alpha']:.2f} a={p['a']:.3f} b={p['b']:.3f} "
              f"holdout error {100 * (f['holdout'].get('relative_error') or float('nan')):+.1f}%")
    else:
        print(f"fit skipped: {f.get('reason')}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--keep", action="store_true", help="keep the databases (default: drop them)")
    args = ap.parse_args(argv)
    for n in args.sizes:
        rng = np.random.default_rng(args.seed)
        t = time.perf_counter()
        base = synthetic_base(n, rng)
        rows = table_rows(base)
        n_orders = len(base["orders"]["id"])
        print(f"\ngenerated {n:,} customers, {n_orders:,} orders in {time.perf_counter() - t:.1f} s")
        for kind in args.backends:
            if kind == "sqlite":
                tmp = Path(tempfile.mkdtemp(prefix="bench_value_"))
                engine = make_engine(f"sqlite:///{tmp / 'bench.db'}")
                migrate(engine)
                try:
                    report(kind, n, bench_one(kind, engine, rows, n_orders))
                finally:
                    engine.dispose()
                    if not args.keep:
                        for p in tmp.iterdir():
                            p.unlink()
                        tmp.rmdir()
            else:
                admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
                name = f"tiergraph_bench_{uuid.uuid4().hex[:10]}"
                with admin.connect() as c:
                    c.execute(sa.text(f'CREATE DATABASE "{name}"'))
                engine = make_engine(sa.engine.make_url(args.pg_url).set(database=name)
                                     .render_as_string(hide_password=False))
                try:
                    migrate(engine)
                    report(kind, n, bench_one(kind, engine, rows, n_orders))
                finally:
                    engine.dispose()
                    if not args.keep:
                        with admin.connect() as c:
                            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
