"""Jobs: whole-base work (publish, rollback) started by a request and run in a background thread.

A job is a row in `jobs` with its state (queued, running, succeeded, failed), its progress (customers stored so
far / total) and its result (rule set version, evaluated customers, as_of) or error. One evaluation job runs at a
time: a second one is refused (JobConflict) while the first is queued or running, across every process sharing
the database (unique `slot`). The job's success is written in the evaluation's own transaction, so "succeeded"
and "the version is active with its results" are one fact. Progress of a running job lives in memory (the
evaluation's transaction holds SQLite's write lock, so it cannot be written to the table as it goes) and is
stored when the job ends. A job still queued or running when a server starts was interrupted: it is marked failed.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from domain import loss_store, rulesets
from domain.data_date import data_today
from domain.models import Job as JobTable, utcnow
from rules.compiler import compile_rules

log = logging.getLogger("tiergraph.jobs")
jobs_t = JobTable.__table__
EVALUATION_SLOT = "evaluation"
INTERRUPTED = "interrupted: the server stopped before the job finished"
ACTIVE_STATES = ("queued", "running")


class JobConflict(RuntimeError):
    """Another evaluation job is queued or running."""


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    state: str
    rule_set_version: Optional[int]
    as_of: date
    requested_by: Optional[str]
    created_at: datetime
    started_at: Optional[datetime]
    finished_at: Optional[datetime]
    done: int
    total: Optional[int]
    evaluated_customers: Optional[int]
    error: Optional[str]


_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiergraph-job")
_progress: dict[int, tuple[int, int]] = {}  # job id -> (done, total) while it runs in this process
_progress_lock = threading.Lock()


def _select() -> sa.Select:
    from domain.models import RuleSet

    sets = RuleSet.__table__
    return (sa.select(jobs_t, sets.c.version.label("rule_set_version"))
            .select_from(jobs_t.outerjoin(sets, sets.c.id == jobs_t.c.rule_set_id)))


def _job(row: Any) -> Job:
    m = row._mapping
    job = Job(m["id"], m["kind"], m["state"], m["rule_set_version"], m["as_of"], m["requested_by"], m["created_at"],
              m["started_at"], m["finished_at"], m["done"], m["total"], m["evaluated_customers"], m["error"])
    with _progress_lock:
        live = _progress.get(job.id)
    if live is not None and job.state == "running":
        job = replace(job, done=live[0], total=live[1])
    return job


def get(engine: Engine, job_id: int) -> Optional[Job]:
    with engine.connect() as conn:
        row = conn.execute(_select().where(jobs_t.c.id == job_id)).first()
    return _job(row) if row else None


def page(engine: Engine, first: int, before_id: Optional[int] = None) -> tuple[list[Job], int]:
    """Up to `first` jobs, newest first, older than `before_id`; and how many jobs there are."""
    stmt = _select()
    if before_id is not None:
        stmt = stmt.where(jobs_t.c.id < before_id)
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(jobs_t.c.id.desc()).limit(first)).all()
        total = conn.execute(sa.select(sa.func.count()).select_from(jobs_t)).scalar_one()
    return [_job(r) for r in rows], total


def _refuse_if_busy(conn: Connection) -> None:
    running = conn.execute(sa.select(jobs_t.c.id, jobs_t.c.kind).where(jobs_t.c.slot == EVALUATION_SLOT)).first()
    if running is not None:
        raise JobConflict(f"job {running.id} ({running.kind}) is evaluating the base; wait until it ends "
                          f"(query job(id: {running.id})), then try again")


def _claim(conn: Connection, kind: str, rule_set_id: int, as_of: date, by: Optional[str]) -> int:
    try:
        return conn.execute(jobs_t.insert().values(
            kind=kind, state="queued", slot=EVALUATION_SLOT, rule_set_id=rule_set_id, as_of=as_of,
            requested_by=by, created_at=utcnow(), done=0).returning(jobs_t.c.id)).scalar_one()
    except IntegrityError:  # another request claimed the slot since _check_free; the transaction is undone
        raise JobConflict("another job is evaluating the base; wait until it ends, then try again") from None


def _check_free(engine: Engine) -> None:
    """Refuses before writing: on SQLite a write would wait for the running evaluation's lock."""
    with engine.connect() as conn:
        _refuse_if_busy(conn)


def start_publish(engine: Engine, source: str, *, by: Optional[str], as_of: Optional[date] = None,
                  name: str = "default") -> tuple[rulesets.Version, Job]:
    """Checks the text (raises RuleErrors), stores it as the next (inactive) version and starts the job that
    evaluates the base with it and makes it active. Refused with JobConflict while another job runs."""
    compile_rules(source)
    _check_free(engine)
    day = data_today(engine, as_of)
    with engine.begin() as conn:
        version = rulesets.store(conn, source, by=by, name=name)
        job_id = _claim(conn, "publish", version.id, day, by)
    return version, _submit(engine, job_id, version)


def start_rollback(engine: Engine, version: int, *, by: Optional[str], as_of: Optional[date] = None,
                   name: str = "default") -> tuple[rulesets.Version, Job]:
    """Starts the job that evaluates the base with an earlier version and makes it active again."""
    earlier = rulesets.find(engine, version, name)
    _check_free(engine)
    day = data_today(engine, as_of)
    with engine.begin() as conn:
        job_id = _claim(conn, "rollback", earlier.id, day, by)
    return earlier, _submit(engine, job_id, earlier)


def _submit(engine: Engine, job_id: int, version: rulesets.Version) -> Job:
    _executor.submit(_run, engine, job_id, version)
    job = get(engine, job_id)
    assert job is not None
    return job


def _run(engine: Engine, job_id: int, version: rulesets.Version) -> None:
    def progress(done: int, total: int) -> None:
        with _progress_lock:
            _progress[job_id] = (done, total)

    def succeeded(conn: Connection) -> None:  # runs inside the evaluation's transaction
        evaluated = conn.execute(sa.select(sa.func.count()).select_from(rulesets.evals_t)).scalar_one()
        conn.execute(jobs_t.update().where(jobs_t.c.id == job_id).values(
            state="succeeded", slot=None, finished_at=utcnow(), done=evaluated, total=evaluated,
            evaluated_customers=evaluated))

    try:
        with engine.begin() as conn:
            as_of = conn.execute(sa.select(jobs_t.c.as_of).where(jobs_t.c.id == job_id)).scalar_one()
            conn.execute(jobs_t.update().where(jobs_t.c.id == job_id).values(state="running", started_at=utcnow()))
        rulesets.apply(engine, version, as_of, progress, then=succeeded)
        loss_store.prepare_after_batch(engine, compile_rules(version.source))
    except Exception as exc:  # noqa: BLE001 - a job records why it failed instead of losing the error in a thread
        log.warning("job %s failed: %s", job_id, exc)
        with engine.begin() as conn:
            conn.execute(jobs_t.update().where(jobs_t.c.id == job_id).values(
                state="failed", slot=None, finished_at=utcnow(), error=str(exc)[:2000]))
    finally:
        with _progress_lock:
            _progress.pop(job_id, None)


def mark_interrupted(engine: Engine) -> int:
    """At start-up: jobs left queued or running by a stopped server failed; frees the evaluation slot."""
    with engine.begin() as conn:
        return conn.execute(jobs_t.update().where(jobs_t.c.state.in_(ACTIVE_STATES)).values(
            state="failed", slot=None, finished_at=utcnow(), error=INTERRUPTED)).rowcount
