"""Readable rule cases (tests/rules/cases/*.json): rule text, a small data fixture, as_of and the expected tier,
status, tags and metric values per customer, checked on both back ends (the batch SQL run, stored; the
per-customer Python path) and on both databases.

A case file:
    {"description": "...",
     "rules": "metric ...\\ntier ...",          (or a list of lines)
     "customers": [{"id": 1, "region": "east", "seasonal": false, "blocked_from": null,
                    "created_at": "2020-01-01", "attributes": {}}],
     "orders": [{"customer": 1, "date": "2026-08-26", "amount": 10, "margin": 3}],
     "complaints": [{"customer": 1, "opened_at": "...", "due_at": null, "resolved_at": null, "cost": 0}],
     "deliveries": [{"customer": 1, "promised_at": "...", "delivered_at": null}],
     "interactions": [{"customer": 1, "date": "...", "kind": "call", "cost": 5}],
     "checks": [{"as_of": "2026-11-23",
                 "expect": {"1": {"tier": "key", "status": "active", "tags": ["hot"],
                                  "metrics": {"revenue_12m": 10.0, "growth_90d": null}},
                            "2": {"evaluated": false}}}]}
Only the keys given in an expectation are checked; null is unknown.
"""
from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.evaluation import CustomerNotEvaluated, evaluate_customer, run_batch
from domain.models import CustomerEvaluation
from rules import to_sql
from rules.compiler import compile_rules

CASES_DIR = Path(__file__).parent / "cases"
CASE_FILES = sorted(CASES_DIR.glob("*.json"))


def _d(v):
    return None if v is None else date.fromisoformat(v)


def load_case(engine, case: dict) -> None:
    """Insert the case's fixture (defaults for everything it leaves out)."""
    customers, orders, complaints, deliveries, interactions = [], [], [], [], []
    for c in case["customers"]:
        customers.append(dict(
            id=c["id"], external_id=f"c{c['id']}", name=c.get("name", f"Customer {c['id']}"),
            region=c.get("region"), industry=c.get("industry"), size=c.get("size"),
            seasonal=c.get("seasonal", False), blocked_from=_d(c.get("blocked_from")),
            created_at=_d(c.get("created_at", "2020-01-01")), attributes=c.get("attributes", {})))
    first_order: dict[int, int] = {}
    for i, o in enumerate(case.get("orders", []), 1):
        margin = o.get("margin")
        orders.append(dict(id=i, external_id=f"o{i}", customer_id=o["customer"], ordered_at=_d(o["date"]),
                           amount=float(o.get("amount", 0)),
                           cost_of_goods=None if margin is None else float(o.get("amount", 0)) - margin,
                           margin=margin, line_count=1))
        first_order.setdefault(o["customer"], i)
    for i, k in enumerate(case.get("complaints", []), 1):
        complaints.append(dict(id=i, external_id=f"k{i}", customer_id=k["customer"], opened_at=_d(k["opened_at"]),
                               due_at=_d(k.get("due_at")), resolved_at=_d(k.get("resolved_at")),
                               category=k.get("category"), cost=float(k.get("cost", 0))))
    for i, d in enumerate(case.get("deliveries", []), 1):
        deliveries.append(dict(id=i, external_id=f"d{i}", customer_id=d["customer"],
                               order_id=first_order[d["customer"]], promised_at=_d(d["promised_at"]),
                               delivered_at=_d(d.get("delivered_at")), cost=d.get("cost")))
    for i, x in enumerate(case.get("interactions", []), 1):
        interactions.append(dict(id=i, external_id=f"i{i}", customer_id=x["customer"], occurred_at=_d(x["date"]),
                                 kind=x.get("kind", "call"), cost=float(x.get("cost", 0))))
    with engine.begin() as conn:
        for table, rows in ((to_sql.customers, customers), (to_sql.orders, orders),
                            (to_sql.complaints, complaints), (to_sql.deliveries, deliveries),
                            (to_sql.interactions, interactions)):
            if rows:
                conn.execute(table.insert(), rows)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def check(label: str, got: dict | None, want: dict) -> list[str]:
    problems = []
    if want.get("evaluated", True) is False:
        return [] if got is None else [f"{label}: expected not evaluated, got {got}"]
    if got is None:
        return [f"{label}: not evaluated"]
    for key in ("tier", "tier_line", "status", "status_line"):
        if key in want and got[key] != want[key]:
            problems.append(f"{label}: {key} {got[key]!r} != expected {want[key]!r}")
    if "tags" in want and sorted(got["tags"]) != sorted(want["tags"]):
        problems.append(f"{label}: tags {got['tags']} != expected {want['tags']}")
    for name, value in want.get("metrics", {}).items():
        if not _same(got["metrics"].get(name), value):
            problems.append(f"{label}: metric {name} = {got['metrics'].get(name)!r} != expected {value!r}")
    return problems


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case(engine, path):
    case = json.loads(path.read_text(encoding="utf-8"))
    rules = case["rules"] if isinstance(case["rules"], str) else "\n".join(case["rules"])
    ruleset = compile_rules(rules)
    load_case(engine, case)
    checks = case.get("checks") or [{"as_of": case["as_of"], "expect": case["expect"]}]
    problems: list[str] = []
    for chk in checks:
        as_of = date.fromisoformat(chk["as_of"])
        run_batch(engine, ruleset, as_of)
        with engine.connect() as conn:
            stored = {r.customer_id: dict(tier=r.tier, tier_line=r.tier_line, status=r.status,
                                          status_line=r.status_line, tags=r.tags, metrics=r.metrics)
                      for r in conn.execute(sa.select(CustomerEvaluation.__table__))}
        for cid, want in chk["expect"].items():
            cid = int(cid)
            problems += check(f"{as_of} customer {cid} [sql]", stored.get(cid), want)
            try:
                py = evaluate_customer(engine, ruleset, cid, as_of)
                got = dict(tier=py.tier, tier_line=py.tier_line, status=py.status, status_line=py.status_line,
                           tags=py.tags, metrics=py.metrics)
            except CustomerNotEvaluated:
                got = None
            problems += check(f"{as_of} customer {cid} [python]", got, want)
    assert not problems, "\n".join([case.get("description", path.stem), *problems])


def test_case_files_exist():
    assert len(CASE_FILES) >= 10


def test_rule_values_reach_sql_only_as_bound_parameters():
    """No value from the rules (strings, numbers, dates, percentages) is formatted into the SQL text."""
    from sqlalchemy.dialects import postgresql, sqlite

    from rules.compiler import compile_condition
    from rules.to_sql import compile_cutoffs, compile_filter, compile_ruleset

    source = "\n".join([
        "metric revenue_12m = sum(order.amount, 12m)",
        "metric calls = count(interaction where kind = \"win_back\", 90d before 90d)",
        "tier key if revenue_12m in top 37.5%",
        "tier big if revenue_12m > 10000 and region = \"east\"",
        "tier other otherwise",
        "status vip if attributes.plan = \"platinum\" or attr.score > 4321",
        "status gone if no order where amount > 777 45d",
        "status other otherwise",
        "tag small if revenue_12m in (12345, 23456) or days since last order > 999",
    ])
    ruleset = compile_rules(source)
    as_of = date(2026, 11, 23)
    condition = compile_condition('revenue_12m > 31337 and industry = "mining"', ruleset)
    statements = [compile_ruleset(ruleset, as_of).query, compile_cutoffs(ruleset, as_of)[0],
                  compile_filter(condition, ruleset, as_of)]
    for stmt in statements:
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            sql = str(stmt.compile(dialect=dialect))
            for literal in ("east", "platinum", "win_back", "mining", "plan", "score", "10000", "4321", "777",
                            "12345", "23456", "999", "31337", "37.5", "0.375", "2026", "2025", "key", "vip"):
                assert literal not in sql, (literal, dialect.name)
