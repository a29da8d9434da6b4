"""Section 5 with real processes: `tiergraph evaluate` killed with SIGKILL at several points leaves value scores and
rule results from the same run (both the old or both the new), and the API agrees with itself; two concurrent
`tiergraph evaluate` on PostgreSQL take turns (never UniqueViolation customer_evaluations_pkey).

Crash points: domain.faults (TIERGRAPH_CRASH_AT=<name> kills the process there with SIGKILL, as kill -9 would).
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.db import make_engine
from domain.evaluation import explain_stored
from domain.models import CustomerEvaluation, CustomerScore, EvaluationRun, ValueRun
from domain.rulesets import ActiveRules
from domain.settings import DEFAULT_RULES
from tests_support import demo_database, imported_demo

ROOT = Path(__file__).parents[2]
NEW_AS_OF = date.today() + timedelta(days=40)  # the demo was evaluated today: a later run is told apart by as_of
CRASH_POINTS = ["evaluate:after_scores", "batch:before_rules", "batch:after_rules", "evaluate:before_commit"]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("killed_demo")
    engine = make_engine(demo_database(work, "--customers", "300", "--seed", "3", "--history-months", "1"))
    with engine.connect() as conn:  # everything into the main file, so a copy of it is the whole database
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return work / "demo.db"


def _evaluate(url: str, as_of: date, crash_at: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("TIERGRAPH_CRASH_AT", None)
    if crash_at:
        env["TIERGRAPH_CRASH_AT"] = crash_at
    return subprocess.Popen([sys.executable, "-m", "cli", "evaluate", "--as-of", as_of.isoformat()], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _all_finish_cleanly(procs: list[subprocess.Popen]) -> None:
    """Concurrent callers took turns: each exited 0, with no traceback and no unique-key clash."""
    for p in procs:
        out = p.communicate(timeout=300)[0]
        assert "Traceback" not in out and "UniqueViolation" not in out, out
        assert p.returncode == 0, out


def _state(url: str) -> tuple[date, date, set, set]:
    """(as_of of the latest value run, of the latest rules run, run ids of the stored scores, their as_of)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            value_run = conn.execute(sa.select(ValueRun.__table__).where(ValueRun.__table__.c.finished_at.is_not(None))
                                     .order_by(ValueRun.__table__.c.id.desc()).limit(1)).one()
            rules_run = conn.execute(sa.select(EvaluationRun.__table__)
                                     .where(EvaluationRun.__table__.c.finished_at.is_not(None))
                                     .order_by(EvaluationRun.__table__.c.id.desc()).limit(1)).one()
            unfinished = conn.execute(sa.select(sa.func.count()).select_from(EvaluationRun.__table__)
                                      .where(EvaluationRun.__table__.c.finished_at.is_(None))).scalar_one()
            score_runs = {r[0] for r in conn.execute(sa.select(CustomerScore.__table__.c.run_id).distinct())}
            score_dates = {r[0] for r in conn.execute(sa.select(CustomerScore.__table__.c.as_of).distinct())}
        assert unfinished == 0  # a killed run leaves no half-written run row
        assert score_runs == {value_run.id}
        _api_agrees(engine)
        return value_run.as_of, rules_run.as_of, score_runs, score_dates
    finally:
        engine.dispose()


def _api_agrees(engine) -> None:
    """The stored tier and status of the first customers equal their explanation's (what the API shows side by
    side)."""
    _, ruleset = ActiveRules(engine, DEFAULT_RULES).current()
    evals = CustomerEvaluation.__table__
    with engine.connect() as conn:
        rows = conn.execute(sa.select(evals).order_by(evals.c.customer_id).limit(60)).all()
    for row, explanation in zip(rows, explain_stored(engine, ruleset, [r.customer_id for r in rows])):
        assert explanation is not None
        said = (explanation.tier and explanation.tier.label, explanation.status and explanation.status.label)
        assert said == (row.tier, row.status), row.customer_id


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_evaluate_killed_leaves_scores_and_tiers_of_one_run(demo_db, tmp_path, crash_at):
    db = tmp_path / "demo.db"
    shutil.copy(demo_db, db)
    url = f"sqlite:///{db}"
    old_value, old_rules, _, _ = _state(url)
    assert old_value == old_rules != NEW_AS_OF
    proc = _evaluate(url, NEW_AS_OF, crash_at)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, out
    value_as_of, rules_as_of, _, score_dates = _state(url)
    assert value_as_of == rules_as_of == old_value and score_dates == {old_value}  # both old
    proc = _evaluate(url, NEW_AS_OF)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    value_as_of, rules_as_of, _, score_dates = _state(url)
    assert value_as_of == rules_as_of == NEW_AS_OF and score_dates == {NEW_AS_OF}  # both new


def test_evaluate_killed_at_random_moments(demo_db, tmp_path):
    db = tmp_path / "demo.db"
    shutil.copy(demo_db, db)
    url = f"sqlite:///{db}"
    rng = random.Random(8)
    outcomes = set()
    for attempt in range(4):
        as_of = NEW_AS_OF + timedelta(days=attempt)
        before = _state(url)[:2]
        proc = _evaluate(url, as_of)
        time.sleep(rng.uniform(0.5, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        value_as_of, rules_as_of, _, score_dates = _state(url)
        assert value_as_of == rules_as_of and score_dates == {value_as_of}
        assert value_as_of in (before[0], as_of)
        outcomes.add("new" if value_as_of == as_of else "old")
    assert "old" in outcomes  # at least one kill landed before the commit


@pytest.mark.postgres
def test_two_concurrent_evaluates_on_postgresql_take_turns(pg_server, tmp_path):

    url = imported_demo(pg_server.new_database(), tmp_path, seed=4, customers=300)
    for round_ in range(2):
        days = [date.today() - timedelta(days=10 * round_ + 1), date.today() - timedelta(days=10 * round_ + 2)]
        procs = [_evaluate(url, d) for d in days]
        _all_finish_cleanly(procs)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            runs = conn.execute(sa.select(sa.func.count()).select_from(EvaluationRun.__table__)
                                .where(EvaluationRun.__table__.c.finished_at.is_not(None))).scalar_one()
        assert runs == 4
        value_as_of, rules_as_of, _, score_dates = _state(url)
        assert value_as_of == rules_as_of and score_dates == {value_as_of}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_evaluate_killed_on_postgresql_leaves_scores_and_tiers_of_one_run(pg_server, tmp_path):
    """The same kills on PostgreSQL: every crash point leaves the previous run whole, then a run completes."""

    url = imported_demo(pg_server.new_database(), tmp_path, seed=5, customers=200)
    first = date.today() - timedelta(days=1)
    proc = _evaluate(url, first)
    assert proc.communicate(timeout=300)[0] is not None and proc.returncode == 0
    for crash_at in CRASH_POINTS:
        proc = _evaluate(url, NEW_AS_OF, crash_at)
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, out
        value_as_of, rules_as_of, _, score_dates = _state(url)
        assert value_as_of == rules_as_of == first and score_dates == {first}, crash_at  # both old
    proc = _evaluate(url, NEW_AS_OF)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    value_as_of, rules_as_of, _, score_dates = _state(url)
    assert value_as_of == rules_as_of == NEW_AS_OF and score_dates == {NEW_AS_OF}  # both new


@pytest.mark.parametrize("db_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_publish_killed_mid_evaluation_leaves_the_previous_version_active(db_kind, demo_db, tmp_path, request):
    """`tiergraph rules publish` killed inside its evaluation: the new version is stored but not active, and the
    stored results are the previous version's (the API never shows new rules beside old results)."""
    if db_kind == "sqlite":
        shutil.copy(demo_db, tmp_path / "demo.db")
        url = f"sqlite:///{tmp_path / 'demo.db'}"
    else:
        url = imported_demo(request.getfixturevalue("pg_server").new_database(), tmp_path, seed=6, customers=150)
        proc = _evaluate(url, date.today())
        assert proc.communicate(timeout=300) and proc.returncode == 0
    rules_file = tmp_path / "other.rules"
    rules_file.write_text("tier all otherwise\nstatus lost if no order 30d\nstatus active otherwise\n")
    engine = make_engine(url)
    try:
        before_version = ActiveRules(engine, DEFAULT_RULES).current()[0]
        with engine.connect() as conn:
            before = conn.execute(sa.select(CustomerEvaluation.__table__.c.customer_id,
                                            CustomerEvaluation.__table__.c.tier)).all()
        env = {**os.environ, "DATABASE_URL": url, "TIERGRAPH_CRASH_AT": "batch:after_rules"}
        proc = subprocess.run([sys.executable, "-m", "cli", "rules", "publish", str(rules_file)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
        after_version = ActiveRules(engine, DEFAULT_RULES).current()[0]
        with engine.connect() as conn:
            after = conn.execute(sa.select(CustomerEvaluation.__table__.c.customer_id,
                                           CustomerEvaluation.__table__.c.tier)).all()
        assert after_version.version == before_version.version  # the killed version never became active
        assert sorted(after) == sorted(before) and {t for _, t in after} != {"all"}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_two_concurrent_publishes_on_postgresql_leave_the_active_version_the_evaluated_one(pg_server, tmp_path):
    """Two `tiergraph rules publish` processes at once: they take turns, and the version that ends up active is the
    one whose evaluation is stored (before: the active version differed from the evaluated one in 8 of 20)."""
    from domain.models import RuleSet

    url = imported_demo(pg_server.new_database(), tmp_path, seed=7, customers=150)
    files = []
    for i, days in enumerate((30, 60)):
        f = tmp_path / f"p{i}.rules"
        f.write_text(f"tier t{i} otherwise\nstatus lost if no order {days}d\nstatus active otherwise\n")
        files.append(f)
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("TIERGRAPH_CRASH_AT", None)
    for _ in range(3):
        procs = [subprocess.Popen([sys.executable, "-m", "cli", "rules", "publish", str(f)], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for f in files]
        _all_finish_cleanly(procs)
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                active = conn.execute(sa.select(RuleSet.__table__).where(RuleSet.__table__.c.is_active)).one()
                tiers = {r[0] for r in conn.execute(sa.select(CustomerEvaluation.__table__.c.tier).distinct())}
            assert tiers == {active.source.split()[1]}  # the stored results are the active version's
        finally:
            engine.dispose()
