"""The loss history kept ready: loss_episodes holds what domain.loss_history derives, so a report reads it.

Deriving the history evaluates the status rules on every day a status can change, for every customer: about a
second per report at 5,000 customers, a quarter of a minute at 100,000. The episodes change only when a customer's
records change, when the rules or the runs behind their built-ins change, never by time passing alone: the history
is derived up to a far horizon, so the loss dates the data already implies (a `no order 90d` loss that comes in a
month unless an order arrives) are in it, and a report keeps those on or before its period's end.

- `rebuild(conn, rules)`: derive the whole history into the table and record what it was built from
  (loss_history_state: the rules' checksum, the latest evaluation and value runs); inside a writer transaction.
- `refresh(conn, ruleset, customer_ids)`: the writers (domain.live.reevaluate: every write, import and tick; the
  loss marks) derive again the rows of the customers they touched, in their own transaction, when the store is
  current for the rules they evaluated.
- `prepared(engine, ruleset)`: the LossRules a report should use: reading the store when it is current, after
  rebuilding it when it is stale (a new batch run, other rules). When another writer holds the turn, the report
  derives the history itself rather than wait.

Writes that bypass the writers (raw SQL) are not seen: the store answers as of its last rebuild or refresh.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from typing import Iterable, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.data_date import FIRST_DAY
from domain.evaluation_state import WriterBusy, writer_transaction
from domain.faults import crash_point
from domain.loss_history import EPISODE_COLUMNS, LossRules, _all_episodes
from domain.models import EvaluationRun, LossHistoryState, StoredLossEpisode, ValueRun
from domain.rulesets import checksum
from rules import nodes as n
from rules.to_sql_dated import DailyCondition

__all__ = ["HORIZON", "rebuild", "refresh", "is_current", "prepared", "prepare_after_batch"]

HORIZON = date(9000, 1, 1)  # derive every loss date the data implies; reports keep those up to their period's end
REBUILD_WAIT_SECONDS = 2.0  # a report waits this long for the writers' turn, then derives the history itself

log = logging.getLogger("tiergraph")

episodes_t = StoredLossEpisode.__table__
state_t = LossHistoryState.__table__
runs_t = EvaluationRun.__table__
value_runs_t = ValueRun.__table__


def _insert_derived(conn: Connection, rules: LossRules, customer_ids: Optional[list[int]]) -> None:
    derived = _all_episodes(rules, FIRST_DAY, HORIZON, customer_ids)
    conn.execute(episodes_t.insert().from_select(list(EPISODE_COLUMNS),
                                                 sa.select(*(derived.c[c] for c in EPISODE_COLUMNS))))


def _built_from(conn: Connection, rules_source: str) -> dict:
    latest_run = conn.execute(sa.select(sa.func.max(runs_t.c.id))).scalar()
    latest_value = conn.execute(sa.select(sa.func.max(value_runs_t.c.id))
                                .where(value_runs_t.c.finished_at.is_not(None))).scalar()
    return {"rules_checksum": checksum(rules_source), "evaluation_run_id": latest_run, "value_run_id": latest_value}


def rebuild(conn: Connection, rules: LossRules) -> None:
    """The whole history again, and what it is built from (inside a writer transaction)."""
    conn.execute(episodes_t.delete())
    _insert_derived(conn, rules, None)
    crash_point("loss_store:rebuilt")  # tests kill the process here: the transaction leaves the store as it was
    conn.execute(state_t.delete())
    conn.execute(state_t.insert().values(id=1, **_built_from(conn, rules.ruleset.source)))


def is_current(conn: Connection, rules_source: str) -> bool:
    state = conn.execute(sa.select(state_t).where(state_t.c.id == 1)).first()
    if state is None:
        return False
    built = _built_from(conn, rules_source)
    return all(getattr(state, k) == v for k, v in built.items())


def refresh(conn: Connection, ruleset: n.RuleSet, customer_ids: Iterable[int]) -> None:
    """Derive again the rows of these customers (inside the writer transaction that changed them), when the store
    is current for `ruleset`; a stale store is rebuilt whole by the next report."""
    ids = sorted(set(customer_ids))
    if not ids or not is_current(conn, ruleset.source):
        return
    conn.execute(episodes_t.delete().where(episodes_t.c.customer_id.in_(ids)))
    _insert_derived(conn, LossRules.of(ruleset), ids)


def prepared(engine: Engine, ruleset: n.RuleSet) -> LossRules:
    """LossRules for a report: reading the stored history, rebuilt first when stale; deriving it when the
    writers' turn is not free within REBUILD_WAIT_SECONDS (a batch is running)."""
    rules = LossRules.of(ruleset)
    with engine.connect() as conn:
        if is_current(conn, ruleset.source):
            return replace(rules, stored=True)
    try:
        with writer_transaction(engine, wait_seconds=REBUILD_WAIT_SECONDS) as conn:
            if not is_current(conn, ruleset.source):  # another report may have rebuilt it meanwhile
                rebuild(conn, rules)
    except (WriterBusy, DailyCondition):  # busy: derive this once; `days since`: the report says it cannot
        return rules
    return replace(rules, stored=True)


def prepare_after_batch(engine: Engine, ruleset: n.RuleSet) -> None:
    """Rebuild right after a batch (a publish job, the server's full batch, `tiergraph evaluate`), so the first
    report after it does not wait for it. A failure here only leaves the rebuild to that report."""
    try:
        prepared(engine, ruleset)
    except Exception:  # noqa: BLE001 - the batch succeeded; the next report rebuilds or derives
        log.exception("the loss history could not be rebuilt after the batch; the next report will")
