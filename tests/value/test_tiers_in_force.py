"""The tier in force on a day (domain.tiers_in_force) rebuilt from the stored runs and tier moves equals what each
batch run actually assigned, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.demo import generate_demo
from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.models import Customer, CustomerEvaluation
from domain.settings import DEFAULT_RULES
from domain.tiers_in_force import tiers_on
from rules.compiler import load_rules_file

UNTIL = date(2026, 6, 30)
RUNS = [date(2025, 9, 30), date(2025, 12, 31), date(2026, 6, 30)]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiers_demo")
    generate_demo(out, seed=3, customers=300, until=UNTIL)
    return out


def _current(engine) -> dict[int, str | None]:
    t = CustomerEvaluation.__table__
    with engine.connect() as conn:
        return {r.customer_id: r.tier for r in conn.execute(sa.select(t.c.customer_id, t.c.tier))}


def test_tiers_in_force_replay_every_run(engine, demo_dir):
    import_directory(engine, demo_dir)
    rules = load_rules_file(DEFAULT_RULES)
    assigned = {}
    for day in RUNS:
        run_batch(engine, rules, day)
        assigned[day] = _current(engine)
    moved = sum(assigned[RUNS[0]].get(c) != t for c, t in assigned[RUNS[-1]].items() if c in assigned[RUNS[0]])
    assert moved > 0  # the test means something only if customers changed tiers between runs
    with engine.connect() as conn:
        created = {r.id: r.created_at for r in conn.execute(sa.select(Customer.__table__))}
    for day in RUNS:
        for d in (day, day + timedelta(days=20)):  # on the run's day and while it is still in force
            got = tiers_on(engine, d)
            assert set(got) == {c for c, at in created.items() if at <= d}
            # customers created after the run in force had no tier from it
            expected = {c: assigned[day].get(c) for c in got}
            assert got == expected, d
    before = tiers_on(engine, RUNS[0] - timedelta(days=1))
    assert before and set(before.values()) == {None}  # no evaluation in force yet: nobody had a tier
