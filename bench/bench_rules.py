"""Benchmark: the compiled default rules against a hand-written SQL query, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_rules.py                       # 100,000 customers / 2,000,000 order lines
    .venv/bin/python bench/bench_rules.py --customers 10000 --lines 200000 --db sqlite

Generates a base (numpy, vectorised; SQLite: executemany in big transactions; PostgreSQL: COPY through psycopg
into a fresh database `tiergraph_bench`, dropped at the end unless --keep), then times
  - the compiled query (rules.to_sql) executed and fetched,
  - the hand-written query (below: the same result with window functions, written the way a person would),
  - the full run_batch (query + storing customer_evaluations + evaluation_runs),
checks the compiled and hand-written results are identical and reports the ratio compiled / hand-written.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.db import make_engine, migrate  # noqa: E402
from domain.evaluation import run_batch  # noqa: E402
from domain.settings import DEFAULT_RULES  # noqa: E402
from rules.compiler import load_rules_file  # noqa: E402
from rules.nodes import Window  # noqa: E402
from rules.to_sql import compile_ruleset  # noqa: E402
from rules.windows import bounds  # noqa: E402

PG_ADMIN = os.environ.get("TIERGRAPH_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BENCH_DB = "tiergraph_bench"
EPOCH = date(1970, 1, 1)

HAND_WRITTEN = """
WITH o AS (
    SELECT customer_id,
           SUM(CASE WHEN ordered_at >= :s12m THEN amount END) AS revenue_12m,
           SUM(CASE WHEN ordered_at >= :s12m THEN margin END) AS margin_12m,
           SUM(CASE WHEN ordered_at >= :s90 THEN amount END) AS rev_90,
           SUM(CASE WHEN ordered_at >= :sp90 AND ordered_at <= :ep90 THEN amount END) AS rev_prev_90,
           COUNT(CASE WHEN ordered_at >= :s12m THEN 1 END) AS n_12m,
           COUNT(*) AS n_all,
           MAX(ordered_at) AS last_order
    FROM orders WHERE ordered_at <= :as_of
    GROUP BY customer_id
), k AS (
    SELECT customer_id,
           SUM(CASE WHEN opened_at >= :s12m THEN cost END) AS cost_12m,
           COUNT(CASE WHEN opened_at >= :s30 AND (resolved_at IS NULL OR resolved_at > :as_of) THEN 1 END) AS open_30
    FROM complaints WHERE opened_at <= :as_of
    GROUP BY customer_id
), i AS (
    SELECT customer_id, SUM(cost) AS cost_12m
    FROM interactions WHERE occurred_at <= :as_of AND occurred_at >= :s12m
    GROUP BY customer_id
), m AS (
    SELECT c.id, c.seasonal, c.blocked_from, o.last_order,
           COALESCE(o.revenue_12m, 0) AS revenue_12m,
           -- a sum over orders whose margins are all unknown is unknown; over no orders it is 0
           CASE WHEN COALESCE(o.n_12m, 0) = 0 THEN 0 ELSE o.margin_12m END AS margin_12m,
           COALESCE(i.cost_12m, 0) + COALESCE(k.cost_12m, 0) AS service_cost,
           COALESCE(o.rev_90, 0) * 1.0 / NULLIF(COALESCE(o.rev_prev_90, 0), 0) - 1 AS growth_90d,
           COALESCE(o.n_12m, 0) AS n_12m, COALESCE(o.n_all, 0) AS n_all, COALESCE(k.open_30, 0) AS open_30
    FROM customers c
    LEFT JOIN o ON o.customer_id = c.id
    LEFT JOIN k ON k.customer_id = c.id
    LEFT JOIN i ON i.customer_id = c.id
    WHERE c.created_at <= :as_of
), r AS (
    SELECT m.*, margin_12m - service_cost AS profit_12m,
           COUNT(*) OVER (PARTITION BY margin_12m IS NULL ORDER BY margin_12m - service_cost DESC) AS at_or_above,
           COUNT(margin_12m) OVER () AS n
    FROM m
)
SELECT id, revenue_12m, margin_12m, service_cost, profit_12m, growth_90d,
       CASE WHEN profit_12m IS NOT NULL AND at_or_above * 100 <= 20 * n THEN 'key'
            WHEN profit_12m IS NOT NULL AND at_or_above * 100 <= 50 * n THEN 'important'
            WHEN n_12m >= 2 THEN 'general'
            ELSE 'maintain' END AS tier,
       CASE WHEN n_all = 0 THEN 'prospect'
            WHEN blocked_from IS NOT NULL AND blocked_from <= :as_of THEN 'lost'
            WHEN last_order < :s90 AND NOT seasonal THEN 'lost'
            WHEN last_order < :s400 THEN 'lost'
            WHEN last_order < :s45 OR open_30 >= 2 THEN 'at_risk'
            ELSE 'active' END AS status,
       CASE WHEN growth_90d > 0.3 AND revenue_12m > 10000 THEN 1 ELSE 0 END AS hot,
       CASE WHEN margin_12m - service_cost < 0 THEN 1 ELSE 0 END AS negative,
       CASE WHEN service_cost > 0.5 * margin_12m THEN 1 ELSE 0 END AS over_served
FROM r
ORDER BY id
"""


def hand_params(as_of: date) -> dict:
    b = lambda w: bounds(w, as_of)  # noqa: E731
    prev = b(Window(90, "d", Window(90, "d")))
    return dict(as_of=as_of, s12m=b(Window(12, "m")).start, s90=b(Window(90, "d")).start, sp90=prev.start,
                ep90=prev.end, s30=b(Window(30, "d")).start, s45=b(Window(45, "d")).start,
                s400=b(Window(400, "d")).start)


# ---------------------------------------------------------------- data


def generate(n_customers: int, n_lines: int, as_of: date, seed: int = 7) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    today = (as_of - EPOCH).days
    c_ids = np.arange(1, n_customers + 1)
    created = today - rng.integers(-20, 3 * 365, n_customers)  # a few created after as_of
    seasonal = rng.random(n_customers) < 0.1
    blocked = np.where(rng.random(n_customers) < 0.02, today - rng.integers(-30, 600, n_customers), -1)
    customers = dict(id=c_ids, created_at=created, seasonal=seasonal, blocked_from=blocked,
                     region=rng.integers(0, 4, n_customers))
    n_orders = max(1, n_lines // 3)
    # skewed activity: some customers order a lot, ~25% never
    weight = rng.pareto(1.5, n_customers) + 0.05
    weight[rng.random(n_customers) < 0.25] = 0
    weight /= weight.sum()
    o_cust = rng.choice(c_ids, n_orders, p=weight)
    o_date = today - rng.integers(-5, 3 * 365, n_orders)
    lines_per = rng.integers(1, 6, n_orders)
    scale = n_lines / lines_per.sum()
    lines_per = np.maximum(1, np.round(lines_per * scale)).astype(np.int64)
    n_l = int(lines_per.sum())
    l_order = np.repeat(np.arange(1, n_orders + 1), lines_per)
    l_no = np.arange(n_l) - np.repeat(np.cumsum(lines_per) - lines_per, lines_per) + 1
    qty = rng.integers(1, 10, n_l).astype(float)
    price = np.round(rng.gamma(2.0, 40.0, n_l), 2)
    cost_known = rng.random(n_l) > 0.02
    unit_cost = np.where(cost_known, np.round(price * rng.uniform(0.4, 0.9, n_l), 2), np.nan)
    amount = np.bincount(l_order - 1, qty * price, n_orders)
    cogs = np.bincount(l_order - 1, np.nan_to_num(qty * unit_cost), n_orders)
    unknown = np.bincount(l_order - 1, ~cost_known, n_orders) > 0
    margin = np.where(unknown, np.nan, amount - cogs)
    orders = dict(id=np.arange(1, n_orders + 1), customer_id=o_cust, ordered_at=o_date, amount=np.round(amount, 2),
                  cost_of_goods=np.where(unknown, np.nan, np.round(cogs, 2)), margin=np.round(margin, 2),
                  line_count=lines_per)
    lines = dict(id=np.arange(1, n_l + 1), order_id=l_order, customer_id=o_cust[l_order - 1], line_no=l_no,
                 product_id=rng.integers(1, 1001, n_l), quantity=qty, unit_price=price, unit_cost=unit_cost)
    n_k = n_customers // 3
    k_open = today - rng.integers(0, 2 * 365, n_k)
    resolved = np.where(rng.random(n_k) < 0.7, k_open + rng.integers(0, 40, n_k), -1)
    complaints = dict(id=np.arange(1, n_k + 1), customer_id=rng.choice(c_ids, n_k, p=weight), opened_at=k_open,
                      due_at=k_open + 14, resolved_at=resolved, cost=np.round(rng.gamma(2.0, 30.0, n_k), 2))
    n_i = n_customers
    interactions = dict(id=np.arange(1, n_i + 1), customer_id=rng.choice(c_ids, n_i),
                        occurred_at=today - rng.integers(0, 2 * 365, n_i), cost=np.round(rng.gamma(2.0, 10.0, n_i), 2))
    return dict(customers=customers, orders=orders, order_lines=lines, complaints=complaints,
                interactions=interactions)


def _iso(days: np.ndarray) -> list[str | None]:
    base = np.datetime64("1970-01-01")
    out = (base + days.astype("timedelta64[D]")).astype(str).tolist()
    return [None if d < 0 else s for d, s in zip(days.tolist(), out)]


def _f(a: np.ndarray) -> list:
    return [None if math.isnan(x) else x for x in a.tolist()]


REGIONS = ["north", "south", "east", "west"]


def table_rows(data) -> dict[str, tuple[list[str], list[tuple]]]:
    c, o, ln, k, i = (data[n] for n in ("customers", "orders", "order_lines", "complaints", "interactions"))
    ids = c["id"].tolist()
    customers = (["id", "external_id", "name", "region", "seasonal", "blocked_from", "created_at", "attributes"],
                 list(zip(ids, [f"c{x}" for x in ids], [f"Customer {x}" for x in ids],
                          [REGIONS[r] for r in c["region"].tolist()], c["seasonal"].tolist(),
                          _iso(c["blocked_from"]), _iso(c["created_at"]), ["{}"] * len(ids))))
    oid = o["id"].tolist()
    orders = (["id", "external_id", "customer_id", "ordered_at", "amount", "cost_of_goods", "margin", "line_count"],
              list(zip(oid, [f"o{x}" for x in oid], o["customer_id"].tolist(), _iso(o["ordered_at"]),
                       o["amount"].tolist(), _f(o["cost_of_goods"]), _f(o["margin"]), o["line_count"].tolist())))
    lines = (["id", "order_id", "customer_id", "line_no", "product_id", "quantity", "unit_price", "unit_cost",
              "is_return"],
             list(zip(ln["id"].tolist(), ln["order_id"].tolist(), ln["customer_id"].tolist(), ln["line_no"].tolist(),
                      ln["product_id"].tolist(), ln["quantity"].tolist(), ln["unit_price"].tolist(),
                      _f(ln["unit_cost"]), [False] * len(ln["id"]))))
    kid = k["id"].tolist()
    complaints = (["id", "external_id", "customer_id", "opened_at", "due_at", "resolved_at", "cost"],
                  list(zip(kid, [f"k{x}" for x in kid], k["customer_id"].tolist(), _iso(k["opened_at"]),
                           _iso(k["due_at"]), _iso(k["resolved_at"]), k["cost"].tolist())))
    iid = i["id"].tolist()
    interactions = (["id", "external_id", "customer_id", "occurred_at", "kind", "cost"],
                    list(zip(iid, [f"i{x}" for x in iid], i["customer_id"].tolist(), _iso(i["occurred_at"]),
                             ["call"] * len(iid), i["cost"].tolist())))
    products = (["id", "sku", "name", "seasonal"],
                [(p, f"sku{p}", f"Product {p}", False) for p in range(1, 1001)])
    return dict(products=products, customers=customers, orders=orders, order_lines=lines, complaints=complaints,
                interactions=interactions)


def load_sqlite(engine, rows) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, (cols, values) in rows.items():
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for start in range(0, len(values), 200_000):
                cur.executemany(sql, values[start:start + 200_000])
            raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def _copy_text(values) -> str:
    def cell(v):
        if v is None:
            return "\\N"
        if v is True:
            return "t"
        if v is False:
            return "f"
        return str(v)
    return "".join("\t".join(cell(v) for v in row) + "\n" for row in values)


def load_pg(engine, rows) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, (cols, values) in rows.items():
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                for start in range(0, len(values), 200_000):
                    cp.write(_copy_text(values[start:start + 200_000]))
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


# ---------------------------------------------------------------- timing and comparing


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _r(v):
    return None if v is None else round(float(v), 6)


def compare(compiled, compiled_rows, hand_rows) -> int:
    a = []
    for row in compiled_rows:
        d = compiled.decode(row)
        m = d["metrics"]
        a.append((d["customer_id"], _r(m["revenue_12m"]), _r(m["margin_12m"]), _r(m["service_cost"]),
                  _r(m["profit_12m"]), _r(m["growth_90d"]), d["tier"], d["status"],
                  "hot" in d["tags"], "negative" in d["tags"], "over_served" in d["tags"]))
    b = [(r.id, _r(r.revenue_12m), _r(r.margin_12m), _r(r.service_cost), _r(r.profit_12m), _r(r.growth_90d),
          r.tier, r.status, bool(r.hot), bool(r.negative), bool(r.over_served)) for r in hand_rows]
    if len(a) != len(b):
        raise SystemExit(f"row counts differ: compiled {len(a)}, hand-written {len(b)}")
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    if diff:
        raise SystemExit(f"{len(diff)} rows differ, e.g. {diff[:3]}")
    return len(a)


def bench(kind: str, engine, ruleset, as_of: date, repeat: int) -> dict:
    compiled = compile_ruleset(ruleset, as_of)
    hand = sa.text(HAND_WRITTEN)
    params = hand_params(as_of)

    def run_compiled():
        with engine.connect() as conn:
            return conn.execute(compiled.query).fetchall()

    def run_hand():
        with engine.connect() as conn:
            return conn.execute(hand, params).fetchall()

    run_compiled(), run_hand()  # warm caches
    t_hand, hand_rows = timed(run_hand, repeat)
    t_comp, comp_rows = timed(run_compiled, repeat)
    n = compare(compiled, comp_rows, hand_rows)
    t_batch, _ = timed(lambda: run_batch(engine, ruleset, as_of), 1)
    return dict(db=kind, customers=n, hand=t_hand, compiled=t_comp, ratio=t_comp / t_hand, run_batch=t_batch)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--as-of", default="2026-11-23")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sqlite-path", default="/tmp/tiergraph_bench.db")
    ap.add_argument("--keep", action="store_true", help="keep the bench databases")
    args = ap.parse_args(argv)
    as_of = date.fromisoformat(args.as_of)
    ruleset = load_rules_file(DEFAULT_RULES)

    t0 = time.perf_counter()
    data = generate(args.customers, args.lines, as_of)
    rows = table_rows(data)
    print(f"generated {args.customers:,} customers, {len(rows['orders'][1]):,} orders, "
          f"{len(rows['order_lines'][1]):,} order lines, {len(rows['complaints'][1]):,} complaints, "
          f"{len(rows['interactions'][1]):,} interactions in {time.perf_counter() - t0:.1f}s", flush=True)

    results = []
    for kind in args.db.split(","):
        if kind == "sqlite":
            path = Path(args.sqlite_path)
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            engine = make_engine(f"sqlite:///{path}")
            migrate(engine)
            t0 = time.perf_counter()
            load_sqlite(engine, rows)
        else:
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{BENCH_DB}"'))
            engine = make_engine(sa.engine.make_url(PG_ADMIN).set(database=BENCH_DB).render_as_string(False))
            migrate(engine)
            t0 = time.perf_counter()
            load_pg(engine, rows)
        print(f"[{kind}] loaded in {time.perf_counter() - t0:.1f}s", flush=True)
        res = bench(kind, engine, ruleset, as_of, args.repeat)
        results.append(res)
        print(f"[{kind}] {res['customers']:,} customers: hand-written {res['hand']:.2f}s, compiled "
              f"{res['compiled']:.2f}s, ratio {res['ratio']:.2f}x, run_batch (with storing) {res['run_batch']:.2f}s; "
              f"results identical", flush=True)
        engine.dispose()
        if not args.keep:
            if kind == "sqlite":
                for suffix in ("", "-wal", "-shm"):
                    Path(str(args.sqlite_path) + suffix).unlink(missing_ok=True)
            else:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
                admin.dispose()
    print("\n| db | customers | hand-written | compiled | ratio | run_batch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['db']} | {r['customers']:,} | {r['hand']:.2f}s | {r['compiled']:.2f}s | {r['ratio']:.2f}x | "
              f"{r['run_batch']:.2f}s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
