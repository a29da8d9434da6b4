"""Benchmark: evaluation cost against the number of rules (it should grow about linearly), SQLite and PostgreSQL.

    .venv/bin/python bench/bench_rule_count.py                     # 2,000 customers, SQLite
    .venv/bin/python bench/bench_rule_count.py --db sqlite,postgresql --customers 5000

Loads one generated base (bench_rules.generate), then for 100 / 500 / 1,000 / the limit (rules.limits.MAX_RULES)
tier rules — each a different threshold on two metrics — checks the text, compiles it and
runs the query, and prints the time per rule with its ratio to the 100-rule run (about 1 means linear).
PostgreSQL's JIT compiles the expressions of a costly query before running it; with thousands of rule conditions
that takes seconds, so the evaluation turns it off for its query (rules.to_sql.without_jit), as this bench does;
--jit on shows the difference.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rules import BENCH_DB, PG_ADMIN, generate, load_pg, load_sqlite, table_rows  # noqa: E402
from domain.db import make_engine, migrate  # noqa: E402
from rules.compiler import compile_rules  # noqa: E402
from rules.limits import MAX_RULES  # noqa: E402
from rules.to_sql import compile_ruleset, without_jit  # noqa: E402


def rule_text(n: int) -> str:
    """n tier rules over two metrics (the last one `otherwise`) and one status list."""
    lines = ["metric revenue = sum(order.amount, 12m)", "metric orders = count(order, 12m)"]
    lines += [f"tier t{i} if revenue > {n - i} * 10 and orders >= 1" for i in range(n - 1)]
    lines += ["tier rest otherwise", "status lost if no order 90d", "status active otherwise"]
    return "\n".join(lines) + "\n"


def timed_run(engine, n: int, as_of: date, repeat: int, jit: str) -> tuple[float, int]:
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        compiled = compile_ruleset(compile_rules(rule_text(n)), as_of)
        with engine.connect() as conn:
            if jit == "off":
                without_jit(conn)
            rows = len(conn.execute(compiled.query).fetchall())
        best = min(best, time.perf_counter() - t0)
    return best, rows


def open_engine(kind: str, rows, sqlite_path: str):
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(sqlite_path + suffix).unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{sqlite_path}")
        migrate(engine)
        load_sqlite(engine, rows)
        return engine, None
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{BENCH_DB}"'))
    engine = make_engine(sa.engine.make_url(PG_ADMIN).set(database=BENCH_DB).render_as_string(False))
    migrate(engine)
    load_pg(engine, rows)
    return engine, admin


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=2_000)
    ap.add_argument("--lines", type=int, default=40_000)
    ap.add_argument("--db", default="sqlite")
    ap.add_argument("--as-of", default="2026-11-23")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sqlite-path", default="/tmp/tiergraph_bench_rule_count.db")
    ap.add_argument("--jit", choices=["on", "off"], default="off", help="PostgreSQL's JIT for the query")
    args = ap.parse_args(argv)
    as_of = date.fromisoformat(args.as_of)
    rows = table_rows(generate(args.customers, args.lines, as_of))
    counts = sorted({100, 500, 1_000, MAX_RULES["tier"]})
    print(f"rule lists of {', '.join(f'{n:,}' for n in counts)} tier rules, {args.customers:,} customers")
    print("| db | rules | seconds | ms per rule | ratio to 100 |")
    print("| --- | --- | --- | --- | --- |")
    for kind in args.db.split(","):
        engine, admin = open_engine(kind, rows, args.sqlite_path)
        try:
            base = None
            for n in counts:
                seconds, _ = timed_run(engine, n, as_of, args.repeat, args.jit)
                per_rule = seconds / n
                base = base or per_rule
                label = kind if kind == "sqlite" else f"{kind} (jit {args.jit})"
                print(f"| {label} | {n:,} | {seconds:.2f} | {per_rule * 1000:.2f} | {per_rule / base:.2f} |",
                      flush=True)
        finally:
            engine.dispose()
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
                admin.dispose()
            else:
                for suffix in ("", "-wal", "-shm"):
                    Path(args.sqlite_path + suffix).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
