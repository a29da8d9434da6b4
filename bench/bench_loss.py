"""Benchmark: the loss reports (issue 9) at 100,000 customers, each against a plain GROUP BY over the same orders.

    .venv/bin/python bench/bench_loss.py                               # 100,000 customers on PostgreSQL
    .venv/bin/python bench/bench_loss.py --customers 20000 --database-url sqlite:////tmp/loss_20000.db

The base: N customers with ~10 orders each over the 2 years up to 2024-12-31 (40% stop buying at some point),
complaints, deliveries (some late, with reasons), interactions by sales reps, 2% blocked customers, 10% seasonal,
a few manual loss marks (table loss_marks, some reactivated) and two tier changes per buyer (so tierAtLoss has a
change log to read). Generated with numpy and loaded in one transaction (PostgreSQL: COPY), so a base is either
whole or absent; it is kept in a database named for the size (tiergraph_bench_loss_<N> on 127.0.0.1:5432) and
reused by the next run (--rebuild makes it again). Nothing is evaluated: the reports derive the loss history from
the records, with the status rules of rules/default.rules.

Each report is timed as the best of --repeat runs (one when the first exceeds --patience), and so is the baseline
    SELECT customer_id, sum(amount), count(*) FROM orders GROUP BY customer_id
measured again just before each report (the machine's load moves during a long run); the table shows both and
the ratio report / baseline. The ratio is how many full passes over the orders a
report costs: the baseline reads every order once and hashes it by customer, so ratio 10 means "as much work as
reading the orders ten times". It is comparable across machines and sizes; absolute seconds are not.

What dominates: the loss history itself (domain.loss_history.episodes). Every report starts from it, and its RULE
part evaluates the status list on each candidate day (every order day, every day a record enters or leaves a window
the status rules read) of every gap still open after the period's first day, then sorts those days by customer
with window functions; so a report costs roughly its episodes' cost plus a join over a few rows per episode. The
period is a bound, not a scan: a month and a quarter differ only by the gaps they reach back to. lostCustomers
(page and count) and lossSummary add per-episode aggregates (orders of the year before the loss, complaints,
deliveries) and a tier-at-loss lookup; lossReasons adds a second history (the customers lost on the period's
first day) and the retained customers' evidence; the revenue bridge reads the orders of two months plus the
customers lost at the month's end (a history of the gaps open on that day); the backtest derives the history of one
condition instead of the status list.

Then the stored history (domain.loss_store, what the server's reports read): one rebuild of the whole history
(what a batch costs on top of its evaluation), and the same reports reading it, marked "(stored)".
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rules import _f, _iso, load_pg  # noqa: E402
from domain.db import make_engine, migrate  # noqa: E402
from domain.loss import lost_count, lost_customers, loss_summary  # noqa: E402
from domain import loss_store  # noqa: E402
from domain.evaluation_state import writer_transaction  # noqa: E402
from domain.loss_history import LossRules, episodes, lost_customers_on  # noqa: E402
from domain.loss_reasons import loss_reasons  # noqa: E402
from domain.revenue_bridge import PREVIOUS_MONTH, STOPPED_LOST, month_end, revenue_bridge  # noqa: E402
from domain.settings import DEFAULT_RULES  # noqa: E402
from domain.win_back import win_back_by_rep  # noqa: E402
from rules.compiler import compile_condition, load_rules_file  # noqa: E402

PG_SERVER = os.environ.get("TIERGRAPH_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
EPOCH = date(1970, 1, 1)
TODAY = date(2024, 12, 31)  # the data's last day
YEARS_OF_ORDERS = 2
MONTH = (date(2024, 10, 1), date(2024, 10, 31))
QUARTER = (date(2024, 7, 1), date(2024, 9, 30))
BASELINE = "SELECT customer_id, sum(amount), count(*) FROM orders GROUP BY customer_id"
BACKTEST_CONDITION = "no order 90d"

REGIONS = ["north", "south", "east", "west"]
CATEGORIES = ["billing", "quality", "delivery", "service"]
DELAY_REASONS = ["carrier", "stock", "weather", "address"]
KINDS = ["call", "visit", "email", "win_back"]
TIERS = ["key", "important", "general", "maintain"]
MARK_REASONS = ["moved to a competitor", "closed the business", "price", "asked us to stop calling"]


# ---------------------------------------------------------------- the base


def generate(n_customers: int, seed: int = 11) -> dict[str, tuple[list[str], list[tuple]]]:
    """Rows per table (columns, tuples), in foreign-key order; every date on or before TODAY."""
    rng = np.random.default_rng(seed)
    today = (TODAY - EPOCH).days
    days = 365 * YEARS_OF_ORDERS
    first = today - days + 1
    n = n_customers
    ids = np.arange(1, n + 1)
    n_reps = max(5, n // 2000)

    buys = rng.random(n) >= 0.03  # 3% never order (prospects)
    # most customers start early; 40% stop buying some time after their first order
    start = first + (rng.random(n) ** 2 * (days - 30)).astype(np.int64)
    stop = np.where(rng.random(n) < 0.4, np.minimum(start + rng.integers(30, days, n), today), today)
    per_customer = np.where(buys, np.maximum(1, rng.poisson(10, n)), 0)
    o_cust = np.repeat(ids, per_customer)
    n_o = len(o_cust)
    span = (stop - start + 1)[o_cust - 1]
    o_day = start[o_cust - 1] + (rng.random(n_o) * span).astype(np.int64)
    order = np.lexsort((o_cust, o_day))  # stored as they came in: by day
    o_cust, o_day = o_cust[order], o_day[order]
    o_id = np.arange(1, n_o + 1)
    amount = np.round(rng.gamma(2.0, 60.0, n_o) + 5, 2)
    margin = np.where(rng.random(n_o) < 0.02, np.nan, np.round(amount * rng.uniform(0.15, 0.45, n_o), 2))

    created = np.where(buys, start - rng.integers(0, 60, n), first + rng.integers(0, days, n))
    blocked = np.where(rng.random(n) < 0.02, first + rng.integers(60, days, n), -1)
    owner = np.where(rng.random(n) < 0.9, rng.integers(1, n_reps + 1, n), 0)
    seasonal = rng.random(n) < 0.1
    buyer_ids = ids[buys]

    def some_buyers(k: int) -> np.ndarray:
        return rng.choice(buyer_ids, k)

    def day_after(since: np.ndarray) -> np.ndarray:  # a day between `since` and TODAY
        return since + (rng.random(len(since)) * (today - since + 1)).astype(np.int64)

    n_k = n // 3
    k_cust = some_buyers(n_k)
    k_open = day_after(start[k_cust - 1])
    k_res = np.where(rng.random(n_k) < 0.7, k_open + rng.integers(0, 40, n_k), -1)
    k_res = np.where(k_res > today, -1, k_res)
    k_cat = rng.integers(0, len(CATEGORIES) + 1, n_k)  # the last: no category

    d_pick = np.flatnonzero(rng.random(n_o) < 0.4)
    n_d = len(d_pick)
    promised = o_day[d_pick] + rng.integers(2, 8, n_d)
    late = rng.random(n_d) < 0.15
    delivered = promised + np.where(late, rng.integers(1, 12, n_d), rng.integers(-2, 1, n_d))
    delivered = np.where(delivered > today, -1, delivered)
    d_reason = np.where(late & (rng.random(n_d) < 0.8), rng.integers(0, len(DELAY_REASONS), n_d), -1)

    n_i = n + n // 2
    i_cust = some_buyers(n_i)
    i_rep = np.where(rng.random(n_i) < 0.6, owner[i_cust - 1], rng.integers(0, n_reps + 1, n_i))

    m_cust = rng.choice(buyer_ids, max(1, n * 3 // 1000), replace=False)
    m_lost = first + rng.integers(90, days, len(m_cust))
    back = (rng.random(len(m_cust)) < 0.35) & (m_lost + 120 <= today)
    r_cust, r_day = m_cust[back], m_lost[back] + rng.integers(10, 120, int(back.sum()))

    t_cust = np.repeat(buyer_ids, 2)
    t_day = day_after(start[t_cust - 1])
    t_keep = t_day <= today
    t_cust, t_day = t_cust[t_keep], t_day[t_keep]
    t_old, t_new = rng.integers(0, len(TIERS), len(t_cust)), rng.integers(0, len(TIERS), len(t_cust))

    recorded = f"{TODAY.isoformat()} 12:00:00+00:00"
    pick = lambda names, idx: [names[x] if x >= 0 else None for x in idx.tolist()]  # noqa: E731
    rep_or_none = lambda a: [x if x > 0 else None for x in a.tolist()]  # noqa: E731
    c_list, o_list = ids.tolist(), o_id.tolist()
    k_ids, d_ids, i_ids = range(1, n_k + 1), range(1, n_d + 1), range(1, n_i + 1)
    return {
        "sales_reps": (["id", "external_id", "name"],
                       [(r, f"rep{r}", f"Rep {r}") for r in range(1, n_reps + 1)]),
        "customers": (["id", "external_id", "name", "region", "owner_rep_id", "seasonal", "blocked_from",
                       "created_at", "attributes"],
                      list(zip(c_list, [f"c{x}" for x in c_list], [f"Customer {x}" for x in c_list],
                               pick(REGIONS, rng.integers(0, 4, n)), rep_or_none(owner), seasonal.tolist(),
                               _iso(blocked), _iso(created), ["{}"] * n))),
        "orders": (["id", "external_id", "customer_id", "ordered_at", "amount", "cost_of_goods", "margin",
                    "line_count"],
                   list(zip(o_list, [f"o{x}" for x in o_list], o_cust.tolist(), _iso(o_day), amount.tolist(),
                            _f(np.round(amount - margin, 2)), _f(margin), [1] * n_o))),
        "complaints": (["id", "external_id", "customer_id", "opened_at", "due_at", "resolved_at", "category",
                        "cost"],
                       list(zip(k_ids, [f"k{x}" for x in k_ids], k_cust.tolist(), _iso(k_open), _iso(k_open + 14),
                                _iso(k_res), pick(CATEGORIES + [None], k_cat),
                                np.round(rng.gamma(2.0, 30.0, n_k), 2).tolist()))),
        "deliveries": (["id", "external_id", "order_id", "customer_id", "promised_at", "delivered_at",
                        "delay_reason", "cost"],
                       list(zip(d_ids, [f"d{x}" for x in d_ids], o_id[d_pick].tolist(), o_cust[d_pick].tolist(),
                                _iso(promised), _iso(delivered), pick(DELAY_REASONS, d_reason), [5.0] * n_d))),
        "interactions": (["id", "external_id", "customer_id", "rep_id", "occurred_at", "kind", "cost"],
                         list(zip(i_ids, [f"i{x}" for x in i_ids], i_cust.tolist(), rep_or_none(i_rep),
                                  _iso(day_after(start[i_cust - 1])), pick(KINDS, rng.integers(0, 4, n_i)),
                                  np.round(rng.gamma(2.0, 10.0, n_i), 2).tolist()))),
        "loss_marks": (["customer_id", "kind", "marked_on", "text", "recorded_at", "recorded_by"],
                       [(c, "lost", d, why, recorded, "bench") for c, d, why in
                        zip(m_cust.tolist(), _iso(m_lost), pick(MARK_REASONS, rng.integers(0, 4, len(m_cust))))]
                       + [(c, "reactivated", d, "came back", recorded, "bench")
                          for c, d in zip(r_cust.tolist(), _iso(r_day))]),
        "tier_changes": (["customer_id", "as_of", "kind", "old_value", "new_value", "changed_at", "effective_on",
                          "exact", "cause"],
                         list(zip(t_cust.tolist(), _iso(t_day), ["tier"] * len(t_cust), pick(TIERS, t_old),
                                  pick(TIERS, t_new), [recorded] * len(t_cust), _iso(t_day), [True] * len(t_cust),
                                  ["TIME"] * len(t_cust)))),
    }


def load_sqlite(engine, rows) -> None:
    """Every table in one transaction (a base is whole or absent), then ANALYZE."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, (cols, values) in rows.items():
            cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            values)
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def database_url(args) -> str:
    if args.database_url:
        return args.database_url
    return sa.engine.make_url(PG_SERVER).set(database=f"tiergraph_bench_loss_{args.customers}").render_as_string(False)


def prepare_database(url: str, rebuild: bool) -> None:
    """Create the database when it is missing (PostgreSQL) or drop it first with --rebuild."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if rebuild and parsed.database:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        return
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if rebuild:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                              {"name": parsed.database}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def ensure_base(engine, n_customers: int) -> str:
    """Build the base unless the database already holds one of this size; a line saying which."""
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT count(*) FROM customers")).scalar_one()
    if found == n_customers:
        return f"reusing the base of {found:,} customers in {engine.url.render_as_string()}"
    if found:
        raise SystemExit(f"{engine.url.render_as_string()} holds {found:,} customers, not {n_customers:,}: "
                         "give another --database-url or --rebuild")
    t0 = time.perf_counter()
    rows = generate(n_customers)
    generated = time.perf_counter() - t0
    t0 = time.perf_counter()
    (load_sqlite if engine.dialect.name == "sqlite" else load_pg)(engine, rows)
    sizes = ", ".join(f"{len(v):,} {t}" for t, (_, v) in rows.items())
    return (f"built {sizes} in {generated:.1f} s (generate) + {time.perf_counter() - t0:.1f} s (load) "
            f"into {engine.url.render_as_string()}")


# ---------------------------------------------------------------- the reports


def best_of(fn: Callable[[], Any], repeat: int, patience: float) -> tuple[float, int, Any]:
    """(best seconds, runs, last result): `repeat` runs, or one when the first takes longer than `patience`."""
    times, result = [], None
    while len(times) < repeat and (not times or times[0] <= patience):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), len(times), result


def reports(engine, rules: LossRules) -> list[tuple[str, Callable[[], str]]]:
    """(name, run) pairs; run returns what the report found, in a few words."""
    ruleset = rules.ruleset
    q_start, q_end = QUARTER
    m_start, m_end = MONTH

    def count_episodes(start: date, end: date) -> str:
        e = episodes(rules, start, end)
        with engine.connect() as conn:
            return f"{conn.execute(sa.select(sa.func.count()).select_from(e)).scalar_one():,} episodes"

    def bridge() -> str:
        b = revenue_bridge(engine, m_start, PREVIOUS_MONTH, lost_customers_on(rules, month_end(m_start)))
        stopped_lost = next(k for k in b.categories if k.category == STOPPED_LOST)
        return f"{sum(k.customers for k in b.categories):,} customers moved, {stopped_lost.customers:,} stopped lost"

    def reasons() -> str:
        r = loss_reasons(engine, rules, q_start, q_end)
        return f"{r.lost_customers:,} lost vs {r.retained_customers:,} retained, {len(r.reasons)} reasons"

    found = [
        ("episodes, one month (count)", lambda: count_episodes(m_start, m_end)),
        ("episodes, one quarter (count)", lambda: count_episodes(q_start, q_end)),
        ("lostCustomers, quarter, first 50",
         lambda: f"{len(lost_customers(engine, rules, q_start, q_end, limit=50))} rows"),
        ("lostCustomers totalCount, quarter", lambda: f"{lost_count(engine, rules, q_start, q_end):,} episodes"),
        ("lossSummary, quarter", lambda: f"{len(loss_summary(engine, rules, q_start, q_end))} tiers"),
        ("lossReasons, quarter", reasons),
        ("winBack per rep, quarter",
         lambda: f"{len(win_back_by_rep(engine, rules, q_start, q_end, TODAY))} reps"),
        (f"revenueBridge {m_start:%Y-%m} vs previous", bridge),
    ]
    try:
        from domain.backtest import backtest
    except ImportError:
        print("note: domain/backtest.py is not there yet: the backtest is skipped")
        return found
    condition = compile_condition(BACKTEST_CONDITION, ruleset)

    def backtested() -> str:
        b = backtest(engine, condition, ruleset, q_start, q_end, 90, TODAY)
        return f"{b.declared:,} declared, {b.ordered_again:,} ordered again within 90 days"

    found.append((f"backtest `{BACKTEST_CONDITION}`, quarter", backtested))
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--database-url", default=None,
                    help="default: tiergraph_bench_loss_<N> on 127.0.0.1:5432 (user postgres); or sqlite:///path")
    ap.add_argument("--repeat", type=int, default=3, help="runs per report; the best counts")
    ap.add_argument("--patience", type=float, default=120.0,
                    help="seconds: a report whose first run takes longer is not repeated")
    ap.add_argument("--rebuild", action="store_true", help="drop the cached base and build it again")
    args = ap.parse_args(argv)

    url = database_url(args)
    prepare_database(url, args.rebuild)
    engine = make_engine(url)
    migrate(engine)
    print(ensure_base(engine, args.customers), flush=True)
    rules = LossRules.of(load_rules_file(DEFAULT_RULES))

    def group_by() -> str:
        with engine.connect() as conn:
            return f"{len(conn.execute(sa.text(BASELINE)).fetchall()):,} customers"

    todo = reports(engine, rules)

    def rebuild() -> str:
        with writer_transaction(engine) as conn:
            loss_store.rebuild(conn, rules)
        with engine.connect() as conn:
            return f"{conn.execute(sa.text('SELECT count(*) FROM loss_episodes')).scalar_one():,} episodes stored"

    # the same reports reading the stored history (domain.loss_store), after one rebuild of it
    stored = [(f"{name} (stored)", run) for name, run in reports(engine, replace(rules, stored=True))
              if not name.startswith("backtest")]
    todo += [("rebuild the stored loss history (whole)", rebuild), *stored]
    print(f"\n{engine.dialect.name}, {args.customers:,} customers, data up to {TODAY}; month {MONTH[0]:%Y-%m}, "
          f"quarter {QUARTER[0]} .. {QUARTER[1]}; best of {args.repeat} (1 when a run takes over "
          f"{args.patience:.0f} s); load average {os.getloadavg()[0]:.1f}\n")
    print(f"| {'report':<44} | {'seconds':>8} | {'GROUP BY':>8} | {'ratio':>7} | found")
    print(f"| {'-' * 44} | {'-' * 8} | {'-' * 8} | {'-' * 7} | -----")
    ratios = []
    for name, run in todo:
        # the baseline just before each report: on a shared machine the load changes during a long run
        base, _, base_found = best_of(group_by, args.repeat, args.patience)
        seconds, runs, what = best_of(run, args.repeat, args.patience)
        ratios.append(seconds / base)
        once = "" if runs == args.repeat else f" ({runs} run{'s' if runs > 1 else ''})"
        print(f"| {name:<44} | {seconds:>8.3f} | {base:>8.3f} | {seconds / base:>7.1f} | {what}{once}", flush=True)
    print(f"\nGROUP BY over the orders: {base_found}; median ratio {statistics.median(ratios):.1f}, highest "
          f"{max(ratios):.1f}; load average {os.getloadavg()[0]:.1f}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
