"""Live re-evaluation: the customers a write touches, scored and evaluated inside the write's transaction.

A write (domain.writes, `tiergraph import`) calls `reevaluate` inside `evaluation_state.writer_transaction`, so the
record, the new scores, the new evaluation and its change events commit together or not at all.

What is recomputed, per customer, as of `as_of`:
- the value scores that are the customer's own (domain.value.one_customer: recency, frequency, revenue / margin /
  profit windows, growth, usual gap; P(alive), expected orders and CLV from the model fitted by the LAST value run);
- the RFM quintile scores, placed against the quintile boundaries of the last value run (the smallest value that
  earned each score in that run), so one write never re-ranks the base;
- the roll-ups: group_revenue_12m / group_profit_12m (self + every descendant in the company hierarchy) and
  referred_revenue_12m / referred_profit_12m (customers it referred), from the stored scores of the others.
  Every ancestor and the referrer of a touched customer is touched too: their roll-ups read its revenue;
- the rules, through the Python back end, with the rank cut-offs of the last full run of the same rules
  (computed on this connection only when no run holds them), and when each value started / next changes
  (rules.effective).
Nothing here commits: the caller's transaction does.

as_of of a live write: the data's now (domain.data_date.data_today) or the record's own date when that is later.
A record dated after the data's now is evidence that time has passed, so the customer is evaluated on that date
(evaluating it on an earlier day would hide the record: records are read as known on as_of). A back-dated record
is evaluated on the data's now, like every other customer.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Iterable, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain import evaluation_state as es, loss_store
from domain.evaluation import _clean, rules_checksum
from domain.models import Customer, CustomerScore, EvaluationRun, RuleSet as RuleSetTable, ValueRun
from domain.records import load_all_records
from domain.value.one_customer import VALUE_SOURCES, OneCustomerValue, value_as_of
from domain.value.scores import ROLLUP_GROUP_SQL, ROLLUP_REFERRED_SQL
from rules import nodes as n
from rules.compiler import compile_rules
from rules.to_python import CustomerRecords, CustomerResult, evaluate, is_evaluated
from rules.to_sql import compile_cutoffs
from rules.tree import rank_key, rank_nodes, record_sources_read

customers_t = Customer.__table__
scores_t = CustomerScore.__table__
value_runs_t = ValueRun.__table__
eval_runs_t = EvaluationRun.__table__
rule_sets_t = RuleSetTable.__table__
CHUNK = 2000  # customers loaded and evaluated at a time (and under SQLite's limit of bound parameters)
ROLLUP_ONE_BY_ONE = 200  # beyond this many touched customers the roll-ups are recomputed for the base in SQL
_compiled: dict[str, n.RuleSet] = {}  # checksum -> compiled rules (rule text never changes under a checksum)

OWN_SCORES = ("recency_days", "frequency", "monetary", "revenue_12m", "margin_12m", "service_cost_12m", "profit_12m",
              "growth_90d", "growth_yoy", "growth_ytd", "usual_gap_days", "seasonal_auto", "repeat_purchases",
              "recency_weeks", "age_weeks", "p_alive", "expected_orders_90d", "expected_spend", "clv")


def live_as_of(conn: Connection, *record_dates: Optional[date]) -> date:
    """The evaluation date of a live write: the data's now, or the latest of the record's dates if later."""
    from domain.data_date import data_today

    return max([data_today(conn), *(d for d in record_dates if d is not None)])


def active_rules(conn: Connection, name: str = "default") -> tuple[Any, n.RuleSet] | None:
    """(the active rule_sets row, its compiled rules), or None on a database with no active version."""
    row = conn.execute(sa.select(rule_sets_t).where(rule_sets_t.c.name == name, rule_sets_t.c.is_active.is_(True))
                       .order_by(rule_sets_t.c.version.desc()).limit(1)).first()
    if row is None:
        return None
    if row.checksum not in _compiled:
        _compiled[row.checksum] = compile_rules(row.source)
    return row, _compiled[row.checksum]


def reevaluate(conn: Connection, customer_ids: Iterable[int], as_of: date, cause: es.Cause, *,
               rules: tuple[Any, n.RuleSet] | None = None) -> list[es.NewState]:
    """Inside writer_transaction: rescore and re-evaluate these customers (and the ancestors / referrers whose
    roll-ups read them) as of `as_of`, then apply_states with `cause`. `rules`: (version, compiled rules) when the
    caller has them; else the active version. Returns the new states (applied only where something changed)."""
    touched = sorted(_with_rollup_readers(conn, set(customer_ids)))
    if not touched:
        return []
    run = conn.execute(sa.select(value_runs_t).where(value_runs_t.c.finished_at.is_not(None))
                       .order_by(value_runs_t.c.id.desc()).limit(1)).first()
    if run is not None:  # without any value run there is no scores row to keep current (built-ins stay unknown)
        bounds = _rfm_bounds(conn, run)
        for chunk in _chunks(touched):  # every own score first: the roll-ups read the others' new revenue
            _rescore(conn, load_all_records(conn, chunk, as_of, VALUE_SOURCES), as_of, run, bounds)
        _rollups(conn, touched)
    rules = rules or active_rules(conn)
    if rules is None:
        return []
    version, ruleset = rules
    cutoffs = cutoffs_in_force(conn, ruleset, as_of)
    states = []
    sources = record_sources_read(ruleset)
    for chunk in _chunks(touched):
        records = load_all_records(conn, chunk, as_of, sources)
        fresh = []
        for cid in sorted(records):
            rec = records[cid]
            if not is_evaluated(rec.customer, as_of):
                continue
            result = evaluate(ruleset, rec, as_of, cutoffs)
            effective, next_on = _timing(ruleset, rec, result, cutoffs, as_of)
            fresh.append(es.NewState(
                customer_id=cid, as_of=as_of, tier=result.tier, tier_line=result.tier_line, status=result.status,
                status_line=result.status_line, tags=result.tags,
                metrics={k: _clean(v) for k, v in result.metrics.items()}, next_change_on=next_on,
                effective=effective, redate=cause.kind == "NEW_DATA"))
        es.apply_states(conn, fresh, cause, rule_set_version=version.version, rules_source=version.source)
        states += fresh
    # their loss history follows in the same transaction (domain.loss_store; nothing when the store is stale)
    loss_store.refresh(conn, ruleset, touched)
    return states


def _chunks(ids: list[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _timing(ruleset: n.RuleSet, records: CustomerRecords, result: CustomerResult, cutoffs: dict,
            as_of: date) -> tuple[dict[str, es.Effective], Optional[date]]:
    """When each value started and when the result next changes by itself (rules.effective)."""
    try:
        from rules import effective
    except ImportError:  # until rules/effective.py lands: the evaluation date, not exact (apply_states' default)
        return {}, None
    return effective.effective_for(ruleset, records, result, cutoffs), \
        effective.next_change_on(ruleset, records, as_of, cutoffs)


def cutoffs_in_force(conn: Connection, ruleset: n.RuleSet, as_of: date) -> dict[str, float | None]:
    """The rank cut-offs an evaluation on `as_of` is made with, live or explained: those of the last full run of
    the same rules on or before as_of (a live evaluation never re-ranks the base); computed on this connection
    only when no run holds them."""
    conditions = [r.condition for r in (*ruleset.tiers, *ruleset.statuses, *ruleset.tags) if r.condition is not None]
    keys = [rank_key(r) for r in rank_nodes(conditions)]
    if not keys:
        return {}
    run = conn.execute(sa.select(eval_runs_t).where(eval_runs_t.c.finished_at.is_not(None),
                                                    eval_runs_t.c.rules_checksum == rules_checksum(ruleset),
                                                    eval_runs_t.c.as_of <= as_of)
                       .order_by(eval_runs_t.c.as_of.desc(), eval_runs_t.c.id.desc()).limit(1)).first()
    if run is not None and all(k in (run.cutoffs or {}) for k in keys):
        return dict(run.cutoffs)
    query, ranks = compile_cutoffs(ruleset, as_of)
    row = conn.execute(query).one()
    return {key: (None if row[i] is None else float(row[i])) for i, (key, _node) in enumerate(ranks)}


# ---- the customer graph: who reads whose revenue ----


def _with_rollup_readers(conn: Connection, ids: set[int]) -> set[int]:
    """`ids`, their referrers (referred_* read their revenue) and every ancestor (group_* do), cycle-safe."""

    def links(of: set[int]) -> list[Any]:
        return [r for chunk in _chunks(sorted(of)) for r in conn.execute(
            sa.select(customers_t.c.parent_id, customers_t.c.referred_by_id).where(customers_t.c.id.in_(chunk)))]

    first = links(ids)
    referrers = {r.referred_by_id for r in first if r.referred_by_id is not None}
    walked = set(ids)  # the ancestor walk: each customer once, so a cycle in parent_id ends it
    parents = {r.parent_id for r in first if r.parent_id is not None} - walked
    while parents:
        walked |= parents
        parents = {r.parent_id for r in links(parents) if r.parent_id is not None} - walked
    return walked | referrers


def _descendants(conn: Connection, root: int) -> set[int]:
    found: set[int] = set()
    frontier = {root}
    while frontier:
        kids = {r[0] for r in conn.execute(sa.select(customers_t.c.id).where(
            customers_t.c.parent_id.in_(sorted(frontier))))} - found - {root}
        found |= kids
        frontier = kids
    return found


# ---- scores ----


def _score_rows(conn: Connection, records: Iterable[int]) -> dict[int, Any]:
    return {r.customer_id: r for r in conn.execute(
        sa.select(scores_t).where(scores_t.c.customer_id.in_(sorted(records))))}


def _rescore(conn: Connection, records: dict[int, CustomerRecords], as_of: date, run: Any,
             bounds: dict[str, list[tuple[int, float]]]) -> None:
    """Own scores and RFM against the last run's boundaries, written to customer_scores (roll-ups come after)."""
    fit = run.fit or {}
    monetary = fit.get("monetary", "revenue")
    stored = set(_score_rows(conn, records))
    for cid, rec in records.items():
        if not is_evaluated(rec.customer, as_of):
            continue
        v = value_as_of(rec, as_of, fit, monetary)
        row = {k: getattr(v, k) for k in OWN_SCORES}
        row.update(_rfm(v, as_of, bounds))
        row.update(run_id=run.id, as_of=as_of)
        if cid in stored:
            conn.execute(scores_t.update().where(scores_t.c.customer_id == cid).values(row))
        else:
            conn.execute(scores_t.insert().values(customer_id=cid, referred_revenue_12m=0.0, referred_profit_12m=0.0,
                                                  group_revenue_12m=v.revenue_12m, group_profit_12m=v.profit_12m,
                                                  **row))


def _rollups(conn: Connection, ids: list[int]) -> None:
    """The roll-ups of `ids`; past ROLLUP_ONE_BY_ONE customers (a large import) the batch's SQL does the whole
    base at once, from the stored revenue of every customer (the same values, in a few statements)."""
    if len(ids) > ROLLUP_ONE_BY_ONE:
        conn.execute(scores_t.update().values(group_revenue_12m=scores_t.c.revenue_12m,
                                              group_profit_12m=scores_t.c.profit_12m,
                                              referred_revenue_12m=0.0, referred_profit_12m=0.0))
        conn.execute(sa.text(ROLLUP_GROUP_SQL))
        conn.execute(sa.text(ROLLUP_REFERRED_SQL))
        return
    for cid in ids:
        _rollup(conn, cid)


def _rollup(conn: Connection, cid: int) -> None:
    """group_* = own + descendants, referred_* = referred customers (the batch's ROLLUP_*_SQL, for one customer).
    Profit sums add the known profits and stay NULL only when none is known, as in the batch."""
    own = conn.execute(sa.select(scores_t.c.revenue_12m, scores_t.c.profit_12m)
                       .where(scores_t.c.customer_id == cid)).first()
    if own is None:
        return
    below = _descendants(conn, cid)
    group = _sums(conn, below)
    referred_ids = {r[0] for r in conn.execute(sa.select(customers_t.c.id).where(
        customers_t.c.referred_by_id == cid, customers_t.c.id != cid))}
    values: dict[str, Any] = {"group_revenue_12m": own.revenue_12m, "group_profit_12m": own.profit_12m,
                              "referred_revenue_12m": 0.0, "referred_profit_12m": 0.0}
    if group is not None:
        values["group_revenue_12m"] = own.revenue_12m + group[0]
        values["group_profit_12m"] = None if own.profit_12m is None and group[1] is None else \
            (own.profit_12m or 0.0) + (group[1] or 0.0)
    referred = _sums(conn, referred_ids)
    if referred is not None:
        values["referred_revenue_12m"], values["referred_profit_12m"] = referred
    conn.execute(scores_t.update().where(scores_t.c.customer_id == cid).values(values))


def _sums(conn: Connection, ids: set[int]) -> tuple[float, Optional[float]] | None:
    """(revenue, profit) summed over the stored scores of `ids`; None when none of them has scores (SQL's NULL)."""
    if not ids:
        return None
    row = conn.execute(sa.select(sa.func.count(), sa.func.sum(scores_t.c.revenue_12m), sa.func.sum(scores_t.c.profit_12m))
                       .where(scores_t.c.customer_id.in_(sorted(ids)))).one()
    return None if not row[0] else (float(row[1] or 0.0), None if row[2] is None else float(row[2]))


def _rfm_bounds(conn: Connection, run: Any) -> dict[str, list[tuple[int, float]]]:
    """Per RFM letter, (score, smallest value that earned it) in the last value run, from the rows it wrote
    (rows rescored live since carry another as_of and are left out). Recency is compared by last order day."""
    of_run = sa.and_(scores_t.c.run_id == run.id, scores_t.c.as_of == run.as_of)
    out: dict[str, list[tuple[int, float]]] = {}
    for letter, column, agg in (("r", scores_t.c.recency_days, sa.func.max), ("f", scores_t.c.frequency, sa.func.min),
                                ("m", scores_t.c.monetary, sa.func.min)):
        score = scores_t.c[f"rfm_{letter}"]
        rows = conn.execute(sa.select(score, agg(column)).where(of_run, score.is_not(None), column.is_not(None))
                            .group_by(score)).all()
        if letter == "r":  # recency ranks the last order day: the most days ago is the smallest day
            rows = [(s, float(run.as_of.toordinal() - v)) for s, v in rows]
        out[letter] = sorted((int(s), float(v)) for s, v in rows)
    return out


def _quintile(bounds: list[tuple[int, float]], value: float) -> Optional[int]:
    if not bounds:
        return None
    score = bounds[0][0]
    for s, lowest in bounds:
        if value >= lowest - 1e-9 * max(1.0, abs(lowest)):
            score = max(score, s)
    return score


def _rfm(v: OneCustomerValue, as_of: date, bounds: dict[str, list[tuple[int, float]]]) -> dict[str, Any]:
    """RFM scores of a freshly scored customer: unknown without orders, as in the batch."""
    if v.recency_days is None:
        return {"rfm_r": None, "rfm_f": None, "rfm_m": None, "rfm_cell": None}
    last_day = (as_of - timedelta(days=v.recency_days)).toordinal()
    r = _quintile(bounds["r"], float(last_day))
    f = _quintile(bounds["f"], float(v.frequency))
    m = None if v.monetary is None else _quintile(bounds["m"], v.monetary)
    cell = None if None in (r, f, m) else f"{r}-{f}-{m}"
    return {"rfm_r": r, "rfm_f": f, "rfm_m": m, "rfm_cell": cell}

