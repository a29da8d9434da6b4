"""Running the rules: the batch run inside the database, one customer in Python, and the tier distribution.

run_batch executes the compiled rule query (rules.to_sql) in the database and replaces customer_evaluations
whole in ONE transaction (a failed run leaves the previous results untouched), records the run with its rank
cut-offs in evaluation_runs and appends tier / status moves to tier_changes. evaluate_customer runs the Python
back end (rules.to_python) for one customer, with the cut-offs of the latest matching run.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.bulk import insert_rows
from domain.models import CustomerEvaluation, EvaluationRun, TierChange, utcnow
from domain.records import load_all_records, load_records
from rules import nodes as n
from rules.to_python import CustomerResult, evaluate, is_evaluated
from rules.tree import rank_key, rank_nodes
from rules.to_sql import compile_cutoffs, compile_ruleset, without_jit

CHUNK = 5000
runs_t = EvaluationRun.__table__
evals_t = CustomerEvaluation.__table__
changes_t = TierChange.__table__

Progress = Callable[[int, int], None]  # (customers stored so far, total)


class CustomerNotEvaluated(LookupError):
    """The customer did not exist yet on as_of (created_at > as_of), so rules do not apply to it."""


def rules_checksum(ruleset: n.RuleSet) -> str:
    """sha256 of the rule text (of the tree when the rule set was built without text)."""
    text = ruleset.source or repr((ruleset.metrics, ruleset.tiers, ruleset.statuses, ruleset.tags))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_batch(engine: Engine, ruleset: n.RuleSet, as_of: date, *, rule_set_id: int | None = None,
              progress: Progress | None = None,
              then: Callable[[Connection], None] | None = None) -> EvaluationRun:
    """Evaluate every customer (created_at <= as_of) in the database and store the results atomically.

    `then` runs inside the same transaction once the results are stored (publish activates the rule set there,
    so a rule set becomes active only together with its successful evaluation)."""
    compiled = compile_ruleset(ruleset, as_of)
    checksum = rules_checksum(ruleset)
    started = utcnow()
    with engine.begin() as conn:
        without_jit(conn)
        run_id = conn.execute(
            runs_t.insert().values(rule_set_id=rule_set_id, rules_checksum=checksum, as_of=as_of,
                                   started_at=started, customer_count=0, cutoffs={}).returning(runs_t.c.id)
        ).scalar_one()
        rows = conn.execute(compiled.query).fetchall()
        cutoffs = compiled.cutoffs(rows)
        previous = {r.customer_id: (r.tier, r.status) for r in conn.execute(
            sa.select(evals_t.c.customer_id, evals_t.c.tier, evals_t.c.status))}
        conn.execute(evals_t.delete())
        total = len(rows)
        if progress:  # the query is done: from here on the count of customers is known
            progress(0, total)
        changes: list[dict] = []
        now = utcnow()

        def results():
            for done, row in enumerate(rows, 1):
                d = compiled.decode(row)
                cid = d["customer_id"]
                if cid in previous:
                    old_tier, old_status = previous[cid]
                    for kind, old, new in (("tier", old_tier, d["tier"]), ("status", old_status, d["status"])):
                        if old != new:
                            changes.append({"customer_id": cid, "run_id": run_id, "as_of": as_of, "kind": kind,
                                            "old_value": old, "new_value": new, "changed_at": now})
                if progress and (done % CHUNK == 0 or done == total):
                    progress(done, total)
                yield {"customer_id": cid, "run_id": run_id, "as_of": as_of,
                       "tier": d["tier"], "tier_line": d["tier_line"],
                       "status": d["status"], "status_line": d["status_line"],
                       "tags": d["tags"], "metrics": {k: _clean(v) for k, v in d["metrics"].items()}}

        insert_rows(conn, evals_t, results(), ["customer_id", "run_id", "as_of", "tier", "tier_line", "status",
                                                "status_line", "tags", "metrics"])
        for i in range(0, len(changes), CHUNK):
            conn.execute(changes_t.insert(), changes[i:i + CHUNK])
        finished = utcnow()
        conn.execute(runs_t.update().where(runs_t.c.id == run_id).values(
            finished_at=finished, customer_count=total, cutoffs=cutoffs))
        if then is not None:
            then(conn)
    return EvaluationRun(id=run_id, rule_set_id=rule_set_id, rules_checksum=checksum, as_of=as_of,
                         started_at=started, finished_at=finished, customer_count=total, cutoffs=cutoffs)


def latest_run(bind: Engine | Connection, checksum: str | None = None, as_of: date | None = None) -> Any:
    """The newest finished run (optionally for a rules checksum and as_of), or None."""
    q = sa.select(runs_t).where(runs_t.c.finished_at.is_not(None))
    if checksum is not None:
        q = q.where(runs_t.c.rules_checksum == checksum)
    if as_of is not None:
        q = q.where(runs_t.c.as_of == as_of)
    q = q.order_by(runs_t.c.id.desc()).limit(1)
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return conn.execute(q).first()
    return bind.execute(q).first()


def cutoffs_for(engine: Engine, ruleset: n.RuleSet, as_of: date) -> dict[str, float | None]:
    """Rank cut-offs: from the latest run of the same rules and as_of, else computed by a one-row SQL query."""
    conditions = [r.condition for r in (*ruleset.tiers, *ruleset.statuses, *ruleset.tags) if r.condition is not None]
    keys = [rank_key(r) for r in rank_nodes(conditions)]
    if not keys:
        return {}
    run = latest_run(engine, rules_checksum(ruleset), as_of)
    if run is not None and all(k in (run.cutoffs or {}) for k in keys):
        return dict(run.cutoffs)
    return compute_cutoffs(engine, ruleset, as_of)


def compute_cutoffs(engine: Engine, ruleset: n.RuleSet, as_of: date) -> dict[str, float | None]:
    query, ranks = compile_cutoffs(ruleset, as_of)
    if not ranks:
        return {}
    with engine.connect() as conn:
        row = conn.execute(query).one()
    return {key: (None if row[i] is None else float(row[i])) for i, (key, _node) in enumerate(ranks)}


def evaluate_customer(engine: Engine, ruleset: n.RuleSet, customer_id: int, as_of: date) -> CustomerResult:
    """One customer through the Python back end (same semantics as the batch run)."""
    records = load_records(engine, customer_id, as_of)
    if not is_evaluated(records.customer, as_of):
        raise CustomerNotEvaluated(f"customer {customer_id} was created on {records.customer.created_at}, "
                                   f"after {as_of}")
    return evaluate(ruleset, records, as_of, cutoffs_for(engine, ruleset, as_of))


@dataclass
class Distribution:
    tiers: dict[str | None, int]
    statuses: dict[str | None, int]
    customers: int
    as_of: date | None
    run_id: int | None


def distribution(engine: Engine) -> Distribution:
    """Counts per tier and per status of the stored results (for the CLI table)."""
    with engine.connect() as conn:
        tiers = Counter({r[0]: r[1] for r in conn.execute(
            sa.select(evals_t.c.tier, sa.func.count()).group_by(evals_t.c.tier))})
        statuses = Counter({r[0]: r[1] for r in conn.execute(
            sa.select(evals_t.c.status, sa.func.count()).group_by(evals_t.c.status))})
    run = latest_run(engine)
    return Distribution(dict(tiers), dict(statuses), sum(tiers.values()),
                        run.as_of if run is not None else None, run.id if run is not None else None)


def explain_customer(engine: Engine, ruleset: n.RuleSet, customer_id: int, as_of: date):
    """rules.explain.Explanation for one customer: deciding rules, the values they read, coming changes."""
    from rules.explain import explain

    records = load_records(engine, customer_id, as_of)
    if not is_evaluated(records.customer, as_of):
        raise CustomerNotEvaluated(f"customer {customer_id} was created on {records.customer.created_at}, "
                                   f"after {as_of}")
    return explain(ruleset, records, as_of, cutoffs_for(engine, ruleset, as_of))


def explain_stored(engine: Engine, ruleset: n.RuleSet | None, customer_ids: list[int]) -> list[Any]:
    """Explanations of many customers' stored evaluations, each as of its own evaluation date and reading only
    what was known then; records are loaded once per date for all of them. None where there is nothing to explain."""
    from rules.explain import explain

    with engine.connect() as conn:
        stored = {r.customer_id: r for r in conn.execute(
            sa.select(evals_t).where(evals_t.c.customer_id.in_(customer_ids)))}
    records: dict[int, Any] = {}
    for as_of in {r.as_of for r in stored.values()}:
        records.update(load_all_records(engine, [c for c, r in stored.items() if r.as_of == as_of], as_of))
    cutoffs: dict[date, dict] = {}
    out = []
    for cid in customer_ids:
        row = stored.get(cid)
        if row is None or cid not in records or ruleset is None:
            out.append(None)
            continue
        if row.as_of not in cutoffs:
            cutoffs[row.as_of] = cutoffs_for(engine, ruleset, row.as_of)
        out.append(explain(ruleset, records[cid], row.as_of, cutoffs[row.as_of]))
    return out
