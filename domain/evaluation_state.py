"""Storing evaluation results: the one way to write customer_evaluations and append to the change log.

Every writer of evaluation state (a batch, a publish, a tick, a write through the API) runs inside
`writer_transaction`: one transaction, and writers take turns (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory
lock taken first). Because no two writers are ever inside at once, change-log ids are handed out in commit order:
a reader paging by "id > last seen" can never see a later id before an earlier one is visible, so it never skips
an event. `apply_states` writes only the customers whose result changed and logs only real changes (tier, status,
tags added / removed), each with its effective date and its cause.
"""
from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Iterable, Iterator, Mapping, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from domain.models import CustomerEvaluation, TierChange, utcnow

try:  # H2's module defines Effective (rules/ must not import domain/)
    from rules.effective import Effective
except ImportError:  # until rules/effective.py lands: the same fields
    @dataclass(frozen=True)
    class Effective:  # type: ignore[no-redef]
        on: date  # the day the customer's data first satisfied the deciding rule
        exact: bool  # False where it cannot be derived (a moved rank cut-off, a built-in score): the evaluation date

__all__ = ["Cause", "Effective", "NewState", "WriterBusy", "writer_transaction", "apply_states", "CAUSES",
           "WRITER_WAIT_SECONDS"]

evals_t = CustomerEvaluation.__table__
changes_t = TierChange.__table__
CAUSES = ("NEW_DATA", "TIME", "RULES", "CUTOFFS", "MANUAL")
WRITER_WAIT_SECONDS = 300.0  # how long a writer waits for the one before it (a full batch can take minutes)
WRITER_LOCK_KEY = 0x7469657267  # pg_advisory_xact_lock key of "the evaluation state" ("tierg")
_IN_WRITER = "tiergraph.writer"  # Connection.info marker: apply_states refuses to run outside writer_transaction
CHUNK = 1000


@dataclass(frozen=True)
class Cause:
    kind: str                       # "NEW_DATA" | "TIME" | "RULES" | "CUTOFFS" | "MANUAL"
    record_kind: str | None = None  # NEW_DATA: "order" | "complaint" | "delivery" | "interaction" | "customer"
    record_external_id: str | None = None
    rule_set_version: int | None = None   # RULES: the version published or rolled back to

    def __post_init__(self) -> None:
        if self.kind not in CAUSES:
            raise ValueError(f"cause must be one of {CAUSES}, not {self.kind!r}")


@dataclass
class NewState:
    """One customer's freshly computed evaluation."""

    customer_id: int
    as_of: date
    tier: str | None
    tier_line: int | None
    status: str | None
    status_line: int | None
    tags: list[str]
    metrics: dict[str, float | None]          # the rule set's metric values
    next_change_on: date | None               # earliest date the result changes with no new data (None: never)
    effective: Mapping[str, Effective]        # "tier", "status", "tag:<label>" (added or removed) -> since when
    run_id: int | None = None                 # the batch run, None for a live (per-customer) evaluation
    # the customer's data changed since its stored evaluation: its since is derived again even where its values
    # did not change (an order between two evaluations can end one lost episode and a later gap start another)
    redate: bool = False


class WriterBusy(RuntimeError):
    """Another writer held the evaluation state longer than this one would wait; nothing was written."""


@contextmanager
def writer_transaction(engine: Engine, *, wait_seconds: float = WRITER_WAIT_SECONDS) -> Iterator[Connection]:
    """THE way to write evaluation state: one transaction; writers take turns (SQLite: BEGIN IMMEDIATE;
    PostgreSQL: pg_advisory_xact_lock on one constant key taken first), so change-log ids are assigned in commit
    order and a reader paging by 'id > last seen' can never skip an event. Raises WriterBusy after waiting
    `wait_seconds` for another writer. After a commit, subscribers are told (domain.notify)."""
    postgres = engine.dialect.name == "postgresql"
    opts = {"isolation_level": "READ COMMITTED"} if postgres else {}  # each statement sees what committed before
    with engine.connect().execution_options(**opts) as conn:
        with conn.begin():
            _take_turn(conn, postgres, wait_seconds)
            conn.info[_IN_WRITER] = True
            try:
                yield conn
            finally:
                conn.info.pop(_IN_WRITER, None)
    _changes_committed(engine)


def _take_turn(conn: Connection, postgres: bool, wait_seconds: float) -> None:
    busy = (f"another writer (an evaluation, a publish, a tick or a write) has held the customers' evaluations "
            f"for more than {wait_seconds:g} s; nothing was written, try again when it ends")
    try:
        if postgres:  # the lock is the transaction's first statement: every later statement sees the writer before
            conn.execute(sa.text(f"SET LOCAL lock_timeout = '{int(wait_seconds * 1000)}ms'"))
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.literal(WRITER_LOCK_KEY, sa.BigInteger))))
            conn.execute(sa.text("SET LOCAL lock_timeout = 0"))
        else:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait_seconds * 1000)}")
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now, not at the first write
    except OperationalError as exc:
        code = getattr(exc.orig, "sqlstate", None)
        if code == "55P03" or "database is locked" in str(exc.orig):  # lock_timeout / SQLite busy
            raise WriterBusy(busy) from None
        raise


def in_writer_transaction(conn: Connection) -> bool:
    return bool(conn.info.get(_IN_WRITER))


def _changes_committed(engine: Engine) -> None:
    if importlib.util.find_spec("domain.notify") is None:  # the push module (H4) is optional until it lands
        return
    from domain import notify

    notify.changes_committed(engine)


# ---------- applying new states ----------

_COMPARED = ("tier", "tier_line", "status", "status_line", "tags", "metrics", "next_change_on")


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and v != v or v in (float("inf"), float("-inf")) else v


def apply_states(conn: Connection, states: Iterable[NewState], cause: Cause, *, rule_set_version: int | None,
                 rules_source: str | None, rank_cause: Cause | None = None) -> int:
    """Inside writer_transaction: upsert customer_evaluations only where something changed (tier, status, tags,
    lines, metrics, next_change_on), keep tier_since / status_since (the effective date of the change that set
    them), and append one tier_changes row per tier, status and tag change (tags: kind "tag", old_value /
    new_value = the tag for removed / added) with effective_on, exact, cause fields, recorded_at, rule line and
    rule text, rule set version and the metric values the rule read. A customer's first evaluation is its
    starting state, not a change. `rank_cause` (a batch that refreshed rank cut-offs: CUTOFFS) replaces `cause`
    for changes whose deciding rule reads a rank. Returns how many change rows were appended."""
    if not in_writer_transaction(conn):
        raise RuntimeError("apply_states must run inside evaluation_state.writer_transaction")
    rules = _Rules.of(rules_source)
    now = utcnow()
    appended = 0
    batch: list[NewState] = []
    for state in states:
        batch.append(state)
        if len(batch) >= CHUNK:
            appended += _apply_chunk(conn, batch, cause, rank_cause, rule_set_version, rules, now)
            batch = []
    if batch:
        appended += _apply_chunk(conn, batch, cause, rank_cause, rule_set_version, rules, now)
    return appended


def _apply_chunk(conn: Connection, states: list[NewState], cause: Cause, rank_cause: Cause | None,
                 version: int | None, rules: "_Rules", now) -> int:
    ids = [s.customer_id for s in states]
    stored = {r.customer_id: r for r in conn.execute(sa.select(evals_t).where(evals_t.c.customer_id.in_(ids)))}
    rows: list[dict] = []
    changes: list[dict] = []
    for s in states:
        metrics = {k: _clean(v) for k, v in s.metrics.items()}
        old = stored.get(s.customer_id)
        new = {"tier": s.tier, "tier_line": s.tier_line, "status": s.status, "status_line": s.status_line,
               "tags": list(s.tags), "metrics": metrics, "next_change_on": s.next_change_on}
        if old is not None and not s.redate and all(getattr(old, k) == new[k] for k in _COMPARED):
            continue  # nothing changed: the row, its as_of and its since stay as they are
        since = {}
        for kind in ("tier", "status"):  # effective dates are read only for values that changed (they cost)
            kept = getattr(old, f"{kind}_since") if old is not None and getattr(old, kind) == new[kind] else None
            if kept is not None and not s.redate:
                since[kind] = kept
                continue
            eff = _effective(s, kind)
            # an unchanged value whose start cannot be derived (a rank) keeps the date it had
            since[kind] = eff.on if eff.exact or kept is None else kept
        if old is not None:
            changes += _changes(s, old, cause, rank_cause, version, rules, now)
        run_id = s.run_id if s.run_id is not None else (old.run_id if old is not None else _latest_run_id(conn))
        rows.append({"customer_id": s.customer_id, "run_id": run_id, "as_of": s.as_of, **new,
                     "tier_since": since["tier"], "status_since": since["status"]})
    if rows:
        conn.execute(evals_t.delete().where(evals_t.c.customer_id.in_([r["customer_id"] for r in rows])))
        conn.execute(evals_t.insert(), rows)
    if changes:
        conn.execute(changes_t.insert(), changes)
    return len(changes)


def _effective(s: NewState, key: str) -> Effective:
    """When the value under `key` began; the evaluation date, inexact, where nothing derived it."""
    try:
        return s.effective[key]
    except KeyError:
        return Effective(s.as_of, False)


def _latest_run_id(conn: Connection) -> int | None:
    from domain.models import EvaluationRun

    runs = EvaluationRun.__table__
    return conn.execute(sa.select(sa.func.max(runs.c.id)).where(runs.c.finished_at.is_not(None))).scalar()


def _changes(s: NewState, old: Any, cause: Cause, rank_cause: Cause | None, version: int | None,
             rules: "_Rules", now) -> list[dict]:
    moves: list[tuple[str, str | None, str | None, str, int | None, int | None]] = []
    for kind in ("tier", "status"):
        if getattr(old, kind) != getattr(s, kind):
            moves.append((kind, getattr(old, kind), getattr(s, kind), kind, getattr(old, f"{kind}_line"),
                          getattr(s, f"{kind}_line")))
    old_tags, new_tags = list(old.tags or []), list(s.tags)
    moves += [("tag", t, None, f"tag:{t}", None, None) for t in old_tags if t not in new_tags]
    moves += [("tag", None, t, f"tag:{t}", None, None) for t in new_tags if t not in old_tags]
    out = []
    for kind, old_value, new_value, key, old_line, new_line in moves:
        label = new_value if new_value is not None else old_value
        line = new_line if kind != "tag" else rules.tag_line(label)
        deciding = rules.deciding(kind, line, label)
        by = rank_cause if rank_cause is not None and (
            rules.reads_rank(deciding) or rules.reads_rank(rules.deciding(kind, old_line, label))) else cause
        eff = _effective(s, key)
        out.append({"customer_id": s.customer_id, "run_id": s.run_id, "as_of": s.as_of, "kind": kind,
                    "old_value": old_value, "new_value": new_value, "changed_at": now,
                    "effective_on": eff.on, "exact": bool(eff.exact), "cause": by.kind,
                    "cause_record_kind": by.record_kind, "cause_record_external_id": by.record_external_id,
                    "cause_rule_set_version": by.rule_set_version, "rule_line": line,
                    "rule_text": rules.text(line), "rule_set_version": version,
                    "metrics": rules.metrics_read(deciding, kind, s.metrics)})
    return out


class _Rules:
    """What the change log says about the rules: a line's text, the rules that decided, the metrics they read."""

    def __init__(self, source: str | None):
        self.lines = source.splitlines() if source else []
        self.ruleset = None
        if source:
            from rules.compiler import compile_rules

            self.ruleset = compile_rules(source)

    @staticmethod
    @lru_cache(maxsize=8)
    def of(source: str | None) -> "_Rules":
        return _Rules(source)

    def text(self, line: int | None) -> str | None:
        if line is None or not 1 <= line <= len(self.lines):
            return None
        return self.lines[line - 1].strip()[:2000]

    def _kind_rules(self, kind: str) -> tuple:
        if self.ruleset is None:
            return ()
        return {"tier": self.ruleset.tiers, "status": self.ruleset.statuses, "tag": self.ruleset.tags}[kind]

    def tag_line(self, label: str | None) -> int | None:
        return next((r.pos.line for r in self._kind_rules("tag") if r.label == label), None)

    def deciding(self, kind: str, line: int | None, label: str | None) -> tuple:
        """The rules whose outcome decided the value: for tiers / statuses (first match wins) every rule of the kind
        up to the matching line; for a tag, its rules."""
        return self._deciding(kind, None if kind == "tag" else line, label if kind == "tag" else None)

    @lru_cache(maxsize=1024)  # noqa: B019 - one _Rules per rule text, kept by _Rules.of's cache anyway
    def _deciding(self, kind: str, line: int | None, label: str | None) -> tuple:
        if kind == "tag":
            return tuple(r for r in self._kind_rules(kind) if r.label == label)
        if line is None:
            return tuple(self._kind_rules(kind))  # no rule matched: all of them were false
        return tuple(r for r in self._kind_rules(kind) if r.pos.line <= line)

    @staticmethod
    @lru_cache(maxsize=1024)
    def reads_rank(rules: tuple) -> bool:
        from rules import nodes as n
        from rules.tree import walk

        return any(type(node) is n.Rank for r in rules for node in walk(r.condition))

    @lru_cache(maxsize=1024)  # noqa: B019
    def _metric_names(self, rules: tuple) -> tuple:
        from rules.tree import metric_deps

        return tuple(metric_deps(self.ruleset, [r.condition for r in rules if r.condition is not None]))

    def metrics_read(self, rules: tuple, kind: str, metrics: dict) -> Optional[dict]:
        if self.ruleset is None:
            return {k: _clean(v) for k, v in metrics.items()}
        return {k: _clean(metrics.get(k)) for k in self._metric_names(rules)}
