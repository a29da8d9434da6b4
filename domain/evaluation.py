"""Running the rules: the batch run inside the database, one customer in Python, and the tier distribution.

run_batch executes the compiled rule query (rules.to_sql) in the database and stores the results through
domain.evaluation_state in ONE writer transaction (a failed run leaves the previous results untouched): only
customers whose result changed are rewritten, and tier / status / tag changes are logged with their effective date
and cause. It records the run with its rank cut-offs in evaluation_runs. evaluate_customer runs the Python
back end (rules.to_python) for one customer, with the cut-offs of the latest matching run.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.evaluation_state import Cause, Effective, NewState, apply_states, in_writer_transaction, writer_transaction
from domain.faults import crash_point
from domain.models import (Complaint, Customer, CustomerEvaluation, Delivery, EvaluationRun, Interaction, Order,
                           RuleSet as RuleSetTable, TierChange, utcnow)
from domain.records import load_all_records, load_records
from rules import nodes as n
from rules.to_python import CustomerResult, evaluate, is_evaluated
from rules.tree import rank_key, rank_nodes, record_sources_read
from rules.to_sql import compile_cutoffs, compile_ruleset, without_jit

CHUNK = 5000
runs_t = EvaluationRun.__table__
evals_t = CustomerEvaluation.__table__
changes_t = TierChange.__table__
customers_t = Customer.__table__
rule_sets_t = RuleSetTable.__table__

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


def run_batch(bind: Engine | Connection, ruleset: n.RuleSet, as_of: date, *, rule_set_id: int | None = None,
              progress: Progress | None = None, then: Callable[[Connection], None] | None = None,
              cause: Cause | None = None) -> EvaluationRun:
    """Evaluate every customer (created_at <= as_of) in the database and store the results atomically.

    `bind`: an engine (the run is its own writer transaction) or a connection already inside
    evaluation_state.writer_transaction (e.g. `tiergraph evaluate`, which stores the value scores in the same one).
    The rules run in the database (set-based); only customers whose result changed are rewritten, and only real
    changes are logged (evaluation_state.apply_states). `cause`: RULES with the version for a publish / rollback;
    by default a change is TIME, or CUTOFFS when its deciding rule reads a rank (the run refreshes the cut-offs).
    `then` runs inside the same transaction once the results are stored (publish activates the rule set there,
    so a rule set becomes active only together with its successful evaluation)."""
    if not isinstance(bind, Connection):
        with writer_transaction(bind) as conn:
            return run_batch(conn, ruleset, as_of, rule_set_id=rule_set_id, progress=progress, then=then,
                             cause=cause)
    conn = bind
    if not in_writer_transaction(conn):
        raise RuntimeError("run_batch on a connection must run inside evaluation_state.writer_transaction")
    compiled = compile_ruleset(ruleset, as_of)
    checksum = rules_checksum(ruleset)
    started = utcnow()
    without_jit(conn)
    run_id = conn.execute(
        runs_t.insert().values(rule_set_id=rule_set_id, rules_checksum=checksum, as_of=as_of,
                               started_at=started, customer_count=0, cutoffs={}).returning(runs_t.c.id)
    ).scalar_one()
    crash_point("batch:before_rules")
    rows = conn.execute(compiled.query).fetchall()
    cutoffs = compiled.cutoffs(rows)
    # customers not yet created on as_of (an earlier as_of than the stored one) have no evaluation
    conn.execute(evals_t.delete().where(evals_t.c.customer_id.in_(
        sa.select(customers_t.c.id).where(customers_t.c.created_at > sa.bindparam(None, as_of, type_=sa.Date)))))
    stored = {r.customer_id: r for r in conn.execute(sa.select(
        evals_t.c.customer_id, *(evals_t.c[k] for k in _RESULT), evals_t.c.next_change_on))}
    total = len(rows)
    if progress:  # the query is done: from here on the count of customers is known
        progress(0, total)
    decoded = [compiled.decode(row) for row in rows]
    del rows
    version = None if rule_set_id is None else conn.execute(
        sa.select(rule_sets_t.c.version).where(rule_sets_t.c.id == rule_set_id)).scalar()
    cause = cause or Cause("TIME")
    # effective dates, in Python, only for customers whose result changed
    redate = _with_new_data(conn, as_of)
    timing = _timing(conn, ruleset, as_of, cutoffs,
                     [d for d in decoded if _changed(d, stored.get(d["customer_id"])) or d["customer_id"] in redate])

    def states():
        for done, d in enumerate(decoded, 1):
            cid = d["customer_id"]
            if progress and (done % CHUNK == 0 or done == total):
                progress(done, total)
            yield NewState(customer_id=cid, as_of=as_of, tier=d["tier"], tier_line=d["tier_line"],
                           status=d["status"], status_line=d["status_line"], tags=d["tags"],
                           metrics={k: _clean(v) for k, v in d["metrics"].items()},
                           next_change_on=_next_change(d, stored.get(cid), as_of, cause),
                           effective=timing.get(cid, {}), run_id=run_id, redate=cid in redate)

    apply_states(conn, states(), cause, rule_set_version=version, rules_source=ruleset.source or None,
                 rank_cause=Cause("CUTOFFS") if cause.kind == "TIME" else None)
    crash_point("batch:after_rules")
    finished = utcnow()
    conn.execute(runs_t.update().where(runs_t.c.id == run_id).values(
        finished_at=finished, customer_count=total, cutoffs=cutoffs))
    if then is not None:
        then(conn)
    return EvaluationRun(id=run_id, rule_set_id=rule_set_id, rules_checksum=checksum, as_of=as_of,
                         started_at=started, finished_at=finished, customer_count=total, cutoffs=cutoffs)


_RESULT = ("tier", "tier_line", "status", "status_line", "tags", "metrics")


def _with_new_data(conn: Connection, as_of: date) -> set[int]:
    """Customers with a record dated after their stored evaluation and on or before as_of (an order, a complaint
    opened, due or resolved, a delivery promised or delivered, an interaction, blocked_from): their `since` is
    derived again even where the value did not change. Set-based, joined on customer id only."""
    at = sa.bindparam(None, as_of, type_=sa.Date)
    dated = [(Order.__table__, ("ordered_at",)), (Complaint.__table__, ("opened_at", "due_at", "resolved_at")),
             (Delivery.__table__, ("promised_at", "delivered_at")), (Interaction.__table__, ("occurred_at",)),
             (customers_t, ("blocked_from",))]
    found: set[int] = set()
    for table, columns in dated:
        key = table.c.id if table is customers_t else table.c.customer_id
        after_stored = sa.or_(*(sa.and_(table.c[c] > evals_t.c.as_of, table.c[c] <= at) for c in columns))
        found.update(conn.execute(sa.select(key).distinct().select_from(
            table.join(evals_t, evals_t.c.customer_id == key)).where(after_stored)).scalars())
    return found


def _changed(d: dict, old: Any) -> bool:
    """A new customer, or a result that differs from the stored one."""
    if old is None:
        return True
    metrics = {k: _clean(v) for k, v in d["metrics"].items()}
    return any(getattr(old, k) != (metrics if k == "metrics" else d[k]) for k in _RESULT)


def _next_change(d: dict, old: Any, as_of: date, cause: Cause) -> date | None:
    """The batch keeps a stored forecast that still holds; otherwise (a changed result, new rules, a forecast come
    due) it stores the next day: a bound that is never late, so the tick re-derives the exact day from the data
    (rules.effective.next_change_on, per customer) for only those customers, and the batch stays set-based."""
    if cause.kind != "RULES" and not _changed(d, old) and (old.next_change_on is None or old.next_change_on > as_of):
        return old.next_change_on
    return as_of + timedelta(days=1)


def _timing(conn: Connection, ruleset: n.RuleSet, as_of: date, cutoffs: dict,
            decoded: list[dict]) -> dict[int, Mapping[str, Effective]]:
    """{customer id: effective dates (rules.effective, computed lazily: apply_states reads only the values that
    changed)}, with records read on the writer's connection so the scores stored in this transaction count."""
    if not decoded or importlib.util.find_spec("rules.effective") is None:
        return {}  # without rules.effective apply_states dates a change on as_of with exact = false
    from rules import effective as eff

    by_line = {kind: {r.pos.line: r for r in rules} for kind, rules in
               (("tier", ruleset.tiers), ("status", ruleset.statuses))}
    tag_rules = {r.label: r for r in ruleset.tags}
    out: dict[int, Mapping[str, Effective]] = {}
    for start in range(0, len(decoded), CHUNK):
        part = decoded[start:start + CHUNK]
        records = load_all_records(conn, [d["customer_id"] for d in part], as_of, record_sources_read(ruleset))
        for d in part:
            result = CustomerResult(
                customer_id=d["customer_id"], as_of=as_of, metrics=d["metrics"], tier=d["tier"],
                tier_line=d["tier_line"], status=d["status"], status_line=d["status_line"], tags=d["tags"],
                tier_rule=by_line["tier"].get(d["tier_line"]), status_rule=by_line["status"].get(d["status_line"]),
                tag_rules=[tag_rules[t] for t in d["tags"] if t in tag_rules])
            out[d["customer_id"]] = eff.effective_for(ruleset, records[d["customer_id"]], result, cutoffs)
    return out


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
        if row.as_of not in cutoffs:  # the cut-offs the stored row was evaluated with, live or in a batch
            from domain.live import cutoffs_in_force

            with engine.connect() as conn:
                cutoffs[row.as_of] = cutoffs_in_force(conn, ruleset, row.as_of)
        out.append(explain(ruleset, records[cid], row.as_of, cutoffs[row.as_of]))
    return out
