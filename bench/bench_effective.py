"""Benchmark: effective dates and next_change_on for one customer, against one plain evaluation.

    .venv/bin/python bench/bench_effective.py                 # 300 orders, the default rules
    .venv/bin/python bench/bench_effective.py --orders 1000 --repeat 50

A customer with a few hundred orders over several years (regular buying with some long gaps, so its status has
changed many times), complaints, deliveries and interactions, evaluated with rules/default.rules. Times
  - evaluate(): one plain evaluation (rules.to_python),
  - effective_for(): the effective dates of its tier, status and tags (rules.effective),
  - next_change_on(),
and prints each as a ratio of the plain evaluation. Pure Python, no database.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.settings import DEFAULT_RULES  # noqa: E402
from rules.compiler import load_rules_file  # noqa: E402
from rules.effective import effective_for, next_change_on  # noqa: E402
from rules.to_python import CustomerRecords, evaluate  # noqa: E402

AS_OF = date(2026, 11, 23)
CUTOFFS = {"top:profit_12m:20%": 5000.0, "top:profit_12m:50%": 800.0}


def history(n_orders: int, seed: int, pauses: bool = True) -> CustomerRecords:
    rnd = random.Random(seed)
    pause = 0.03 if pauses else 0.0
    # mostly regular, sometimes a long pause (at risk, lost, back again); the last order a few days ago
    gaps = [rnd.choice([1, 3, 7, 7, 14, 20]) if rnd.random() >= pause else rnd.randint(50, 200)
            for _ in range(n_orders - 1)]
    day, orders = AS_OF - timedelta(days=3 + sum(gaps)), []
    for gap in [0, *gaps]:
        day += timedelta(days=gap)
        amount = round(rnd.uniform(20, 900), 2)
        orders.append(SimpleNamespace(ordered_at=day, amount=amount, margin=round(amount * 0.3, 2),
                                      cost_of_goods=round(amount * 0.7, 2)))
    first = orders[0].ordered_at
    span = (orders[-1].ordered_at - first).days

    def some_day():
        return first + timedelta(days=rnd.randint(0, span))

    complaints = []
    for _ in range(n_orders // 15):
        opened = some_day()
        complaints.append(SimpleNamespace(opened_at=opened, due_at=opened + timedelta(days=14), cost=25.0,
                                          resolved_at=opened + timedelta(days=rnd.randint(1, 40)), category=None))
    deliveries = []
    for _ in range(n_orders // 15):
        promised = some_day()
        deliveries.append(SimpleNamespace(promised_at=promised, cost=5.0,
                                          delivered_at=promised + timedelta(days=rnd.randint(-2, 5))))
    interactions = [SimpleNamespace(occurred_at=some_day(), kind="call", cost=10.0) for _ in range(n_orders // 15)]
    customer = SimpleNamespace(id=1, seasonal=False, blocked_from=None, created_at=first, region=None,
                               industry=None, size=None, name="C1", external_id="c1", attributes={})
    return CustomerRecords(customer, orders=orders, complaints=complaints, deliveries=deliveries,
                           interactions=interactions)


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--seed", type=int, default=8)
    args = ap.parse_args()
    rules = load_rules_file(DEFAULT_RULES)
    for title, recs in (("with pauses (its status changed many times)", history(args.orders, args.seed)),
                        ("buying regularly (active for years: the longest walk back)",
                         history(args.orders, args.seed, pauses=False)),
                        ("with 3 orders (most customers: the cost per customer of a batch that dates changes)",
                         history(3, args.seed))):
        report(title, rules, recs, args.repeat)


def report(title: str, rules, recs: CustomerRecords, repeat: int) -> None:
    result = evaluate(rules, recs, AS_OF, CUTOFFS)
    eff = effective_for(rules, recs, result, CUTOFFS)
    nxt = next_change_on(rules, recs, AS_OF, CUTOFFS)
    n_records = sum(len(recs.of(s)) for s in ("order", "complaint", "delivery", "interaction"))
    print(f"one customer {title}:\n  {n_records} records ({len(recs.orders)} orders since "
          f"{recs.orders[0].ordered_at}), default rules, as of {AS_OF}")
    print(f"  tier {result.tier}, status {result.status}, tags {result.tags}")
    print("  effective: " + ", ".join(f"{k} {v.on}{'' if v.exact else ' (not exact)'}" for k, v in eff.items()))
    print(f"  next change on: {nxt}")
    plain = timed(lambda: evaluate(rules, recs, AS_OF, CUTOFFS), repeat)
    both = timed(lambda: dict(effective_for(rules, recs, result, CUTOFFS)), repeat)  # every date computed
    ahead = timed(lambda: next_change_on(rules, recs, AS_OF, CUTOFFS), repeat)
    print(f"  evaluate()       {plain * 1e3:8.2f} ms")
    print(f"  effective_for()  {both * 1e3:8.2f} ms   ratio {both / plain:6.1f}x")
    print(f"  next_change_on() {ahead * 1e3:8.2f} ms   ratio {ahead / plain:6.1f}x")

if __name__ == "__main__":
    main()
