"""Published rule sets: versions, the active one, a preview of who moves, publish and rollback.

The rules file (TIERGRAPH_RULES) is the starting policy; once a version is published through the API or the CLI,
the newest active version in the database is the policy. Every version is kept, so any can be restored.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from domain.data_date import data_today
from domain.evaluation import Progress, run_batch
from domain.evaluation_state import Cause, writer_transaction
from domain.movement import keyset_after, same_label
from domain.models import CustomerEvaluation, CustomerScore, EvaluationRun, RuleSet as RuleSetTable, utcnow
from rules import nodes
from rules.compiler import compile_rules

rule_sets_t = RuleSetTable.__table__
evals_t = CustomerEvaluation.__table__
scores_t = CustomerScore.__table__
MOVERS_SHOWN = 50
STORE_ATTEMPTS = 5


class RuleSetNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Version:
    id: int
    name: str
    version: int
    source: str
    checksum: str
    published_at: Any
    published_by: Optional[str]
    is_active: bool


def checksum(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _version(row: Any) -> Version:
    m = row._mapping
    return Version(m["id"], m["name"], m["version"], m["source"], m["checksum"], m["published_at"],
                   m["published_by"], m["is_active"])


def history(bind: Engine | Connection, name: str = "default") -> list[Version]:
    stmt = sa.select(rule_sets_t).where(rule_sets_t.c.name == name).order_by(rule_sets_t.c.version.desc())
    with _connect(bind) as conn:
        return [_version(r) for r in conn.execute(stmt)]


def active_version(bind: Engine | Connection, name: str = "default") -> Optional[Version]:
    stmt = sa.select(rule_sets_t).where(rule_sets_t.c.name == name, rule_sets_t.c.is_active.is_(True))
    with _connect(bind) as conn:
        row = conn.execute(stmt.order_by(rule_sets_t.c.version.desc()).limit(1)).first()
    return _version(row) if row else None


class EvaluationFailed(RuntimeError):
    """The rule set was stored but its evaluation failed, so it did not become active."""


def store(bind: Connection, source: str, *, by: str | None = None, name: str = "default",
          active: bool = False) -> Version:
    """Stores the text as the next version (inactive unless `active`: it becomes active with its evaluation)."""
    # Two publishers at once can read the same latest version; the unique (name, version) refuses the second,
    # which takes the next number (the first has committed by then: PostgreSQL waits on the index entry). A failed
    # statement aborts a PostgreSQL transaction, hence the savepoint there; SQLite undoes just the statement, and a
    # savepoint opened first would start (and its release commit) a transaction of its own under pysqlite.
    for attempt in range(STORE_ATTEMPTS):
        try:
            with bind.begin_nested() if bind.dialect.name == "postgresql" else contextlib.nullcontext():
                latest = bind.execute(sa.select(sa.func.max(rule_sets_t.c.version))
                                      .where(rule_sets_t.c.name == name)).scalar()
                if active:
                    bind.execute(rule_sets_t.update().where(rule_sets_t.c.name == name).values(is_active=False))
                new_id = bind.execute(rule_sets_t.insert().values(
                    name=name, version=(latest or 0) + 1, source=source, checksum=checksum(source),
                    published_at=utcnow(), published_by=by, is_active=active).returning(rule_sets_t.c.id)).scalar_one()
            break
        except IntegrityError:
            if attempt == STORE_ATTEMPTS - 1:
                raise
    return _version(bind.execute(sa.select(rule_sets_t).where(rule_sets_t.c.id == new_id)).one())


def find(bind: Engine | Connection, version: int, name: str = "default") -> Version:
    with _connect(bind) as conn:
        row = conn.execute(sa.select(rule_sets_t).where(rule_sets_t.c.name == name,
                                                        rule_sets_t.c.version == version)).first()
    if row is None:
        raise RuleSetNotFound(f"rule set '{name}' has no version {version}")
    return _version(row)


def _activate(conn: Connection, version: Version) -> None:
    conn.execute(rule_sets_t.update().where(rule_sets_t.c.name == version.name).values(is_active=False))
    conn.execute(rule_sets_t.update().where(rule_sets_t.c.id == version.id).values(is_active=True))


def apply(engine: Engine, version: Version, as_of: date, progress: Optional[Progress] = None,
          then: Optional[Callable[[Connection], None]] = None) -> EvaluationRun:
    """Evaluates the base with this version and makes it the active one, in ONE transaction (with `then`, e.g. a
    job's success): when the evaluation fails (EvaluationFailed), the version that was active stays active with
    its results."""

    def activate(conn: Connection) -> None:
        _activate(conn, version)
        if then is not None:
            then(conn)

    try:
        return run_batch(engine, compile_rules(version.source), as_of, rule_set_id=version.id, progress=progress,
                         then=activate, cause=Cause("RULES", rule_set_version=version.version))
    except Exception as exc:  # noqa: BLE001 - any failure of the run means "not applied"; the reason is kept
        raise EvaluationFailed(f"evaluating version {version.version} as of {as_of} failed, nothing changed: "
                               f"{type(exc).__name__}: {exc}"[:1900]) from exc


def publish(engine: Engine, source: str, *, by: str | None = None, name: str = "default",
            as_of: Optional[date] = None, progress: Optional[Progress] = None) -> tuple[Version, EvaluationRun]:
    """Checks the text (raises RuleErrors), stores it as the next version, evaluates the base with it and makes
    it active; a failed evaluation leaves the version stored but inactive (raises EvaluationFailed)."""
    compile_rules(source)
    with engine.begin() as conn:
        version = store(conn, source, by=by, name=name)
    run = apply(engine, version, data_today(engine, as_of), progress)
    return find(engine, version.version, name), run


def rollback(engine: Engine, version: int, *, name: str = "default", as_of: Optional[date] = None,
             progress: Optional[Progress] = None) -> tuple[Version, EvaluationRun]:
    """Makes an earlier version the active one again, with a new evaluation (the versions never change)."""
    earlier = find(engine, version, name)
    run = apply(engine, earlier, data_today(engine, as_of), progress)
    return find(engine, version, name), run


def ensure_active(engine: Engine, rules_file: Path, name: str = "default") -> Version:
    """The active version; on a database that has none yet, the rules file becomes version 1."""
    current = active_version(engine, name)
    if current is not None:
        return current
    source = Path(rules_file).read_text(encoding="utf-8-sig")
    compile_rules(source)
    with writer_transaction(engine) as conn:  # two first starts at once: the second finds the first's version
        return active_version(conn, name) or store(conn, source, by=f"file:{rules_file}", name=name, active=True)


class ActiveRules:
    """The active rule set, compiled once per version; asks the database which version is active when used,
    so every server process follows a publish or rollback made by any other."""

    def __init__(self, engine: Engine, rules_file: Path, name: str = "default"):
        self.engine = engine
        self.rules_file = rules_file
        self.name = name
        self._compiled: dict[str, nodes.RuleSet] = {}
        self._lock = threading.Lock()

    def current(self) -> tuple[Version, nodes.RuleSet]:
        version = active_version(self.engine, self.name) or ensure_active(self.engine, self.rules_file, self.name)
        with self._lock:
            compiled = self._compiled.get(version.checksum)
            if compiled is None:
                compiled = self._compiled[version.checksum] = compile_rules(version.source)
        return version, compiled


@dataclass
class Move:
    kind: str  # tier / status
    old: Optional[str]
    new: Optional[str]
    customers: int
    revenue: float = 0.0  # the movers' revenue_12m from customer_scores (a customer without scores adds 0)


@dataclass(frozen=True)
class PreviewMover:
    customer_id: int
    revenue: float  # revenue_12m from customer_scores, 0 without scores


@dataclass
class Preview:
    as_of: date
    customers: int
    moves: list[Move]  # counts per (old, new), unchanged pairs included
    movers: list[dict[str, Any]] = field(default_factory=list)  # a sample of customers whose tier or status changes

    @property
    def changed(self) -> int:
        return sum(m.customers for m in self.moves if m.old != m.new and m.kind == "tier")


def _proposed(ruleset: nodes.RuleSet, as_of: date) -> tuple[sa.Subquery, sa.Join, sa.ColumnElement]:
    """The candidate's results (compiled to SQL) joined on customer id to the stored results and the scores, and
    each customer's revenue_12m (0 without scores)."""
    from rules.to_sql import compile_ruleset

    new = compile_ruleset(ruleset, as_of).query.subquery("proposed")
    joined = (new.outerjoin(evals_t, evals_t.c.customer_id == new.c.customer_id)
              .outerjoin(scores_t, scores_t.c.customer_id == new.c.customer_id))
    revenue = sa.func.coalesce(scores_t.c.revenue_12m, sa.bindparam(None, 0.0, type_=sa.Float))
    return new, joined, revenue


def preview(engine: Engine, ruleset: nodes.RuleSet, as_of: date, *, limit: int = MOVERS_SHOWN) -> Preview:
    """Who would move, computed inside the database against the stored results; nothing is written."""
    from rules.to_sql import without_jit

    new, joined, revenue = _proposed(ruleset, as_of)
    moves: list[Move] = []
    with engine.connect() as conn:
        without_jit(conn)
        total = conn.execute(sa.select(sa.func.count()).select_from(new)).scalar_one()
        for kind in ("tier", "status"):
            stmt = (sa.select(evals_t.c[kind], new.c[kind], sa.func.count(), sa.func.sum(revenue))
                    .select_from(joined).group_by(evals_t.c[kind], new.c[kind]))
            moves += [Move(kind, old, new_value, count, float(money or 0.0))
                      for old, new_value, count, money in conn.execute(stmt)]
        changed = sa.or_(evals_t.c.tier.is_distinct_from(new.c.tier), evals_t.c.status.is_distinct_from(new.c.status))
        movers = conn.execute(
            sa.select(new.c.customer_id, evals_t.c.tier.label("old_tier"), new.c.tier.label("new_tier"),
                      evals_t.c.status.label("old_status"), new.c.status.label("new_status"))
            .select_from(joined).where(changed).order_by(new.c.customer_id).limit(limit)).all()
    moves.sort(key=lambda m: (m.kind, -m.customers))
    return Preview(as_of, total, moves, [dict(r._mapping) for r in movers])


def preview_movers(engine: Engine, ruleset: nodes.RuleSet, as_of: date, kind: str, old: Optional[str],
                   new_value: Optional[str], *, limit: int, after: Optional[tuple[float, int]] = None
                   ) -> list[PreviewMover]:
    """The customers the candidate would take from `old` to `new_value` (of `kind`; None matches none, as in
    preview's counts), the biggest revenue_12m first, ties by customer id, from a keyset `after` (revenue,
    customer id of the last row seen)."""
    from rules.to_sql import without_jit

    if kind not in ("tier", "status"):
        raise ValueError(f"kind must be tier or status, not {kind!r}")
    new, joined, revenue = _proposed(ruleset, as_of)
    rows = (sa.select(new.c.customer_id.label("customer_id"), revenue.label("revenue"))
            .select_from(joined).where(same_label(evals_t.c[kind], old), same_label(new.c[kind], new_value))
            .subquery("pair"))
    q = sa.select(rows.c.customer_id, rows.c.revenue)
    later = keyset_after(rows.c.revenue, rows.c.customer_id, after)
    if later is not None:
        q = q.where(later)
    q = q.order_by(rows.c.revenue.desc(), rows.c.customer_id).limit(limit)
    with engine.connect() as conn:
        without_jit(conn)
        return [PreviewMover(int(r.customer_id), float(r.revenue)) for r in conn.execute(q)]


class _connect:
    """Use a given connection as is, or open one from an engine for the block."""

    def __init__(self, bind: Engine | Connection):
        self.bind = bind
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        if isinstance(self.bind, Connection):
            return self.bind
        self.conn = self.bind.connect()
        return self.conn

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            self.conn.close()
