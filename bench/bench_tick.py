"""Benchmark: a daily tick against the full batch, on SQLite.

    .venv/bin/python bench/bench_tick.py                        # 100,000 customers / 1,000,000 order lines
    .venv/bin/python bench/bench_tick.py --customers 20000 --lines 200000

Generates a base (bench_rules.generate), publishes the default rules and runs the full batch on day D (it stores
next_change_on = D + 1 for every customer it changed, a bound), runs the first tick on D + 1 (which derives every
such customer's exact day: a one-off, reported), then times the daily tick on each of the next --days days and the full batch (run_batch) on the last of them,
and prints the customers the tick touched and the ratio batch / tick.
The tick's cost follows the customers who change; the batch's, the base.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rules import generate, load_sqlite, table_rows  # noqa: E402
from domain.db import make_engine, migrate  # noqa: E402
from domain.evaluation import run_batch  # noqa: E402
from domain.rulesets import ensure_active  # noqa: E402
from domain.settings import DEFAULT_RULES  # noqa: E402
from domain.tick import tick  # noqa: E402
from rules.compiler import load_rules_file  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--lines", type=int, default=None, help="order lines (default: 10 per customer)")
    ap.add_argument("--days", type=int, default=3, help="daily ticks timed after the first one")
    args = ap.parse_args(argv)
    as_of = date(2024, 6, 30)
    with tempfile.TemporaryDirectory() as work:
        engine = make_engine(f"sqlite:///{work}/bench.db")
        migrate(engine)
        t0 = time.perf_counter()
        load_sqlite(engine, table_rows(generate(args.customers, args.lines or 10 * args.customers, as_of)))
        print(f"base: {args.customers:,} customers loaded in {time.perf_counter() - t0:.1f} s")
        ensure_active(engine, DEFAULT_RULES)
        ruleset = load_rules_file(DEFAULT_RULES)
        t0 = time.perf_counter()
        run_batch(engine, ruleset, as_of)
        print(f"full batch on {as_of}: {time.perf_counter() - t0:.2f} s")
        first = tick(engine, as_of + timedelta(days=1))
        print(f"first tick (exact days for the customers the batch changed, once): {first.summary()}")
        print(f"{'day':<12} {'tick s':>8} {'touched':>8} {'changes':>8}")
        ticks = []
        for k in range(2, args.days + 2):
            report = tick(engine, as_of + timedelta(days=k))
            ticks.append(report)
            print(f"{report.as_of.isoformat():<12} {report.seconds:>8.2f} {report.customers:>8,} {report.changes:>8,}")
        # the batch last: interleaved, it would store as_of + 1 for every customer whose metrics moved, and the
        # next tick would re-derive those (the cost of a batch, not of a tick)
        t0 = time.perf_counter()
        run_batch(engine, ruleset, ticks[-1].as_of)
        batch = time.perf_counter() - t0
        per_tick = sum(r.seconds for r in ticks) / len(ticks)
        touched = sum(r.customers for r in ticks) / len(ticks)
        print(f"daily tick: {per_tick:.2f} s, {touched:,.0f} of {args.customers:,} customers touched "
              f"({100 * touched / args.customers:.2f}%); full batch (run_batch) on {ticks[-1].as_of}: {batch:.2f} s; "
              f"batch / tick = {batch / max(per_tick, 1e-9):.1f}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
