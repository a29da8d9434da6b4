"""The status in force on a day (domain.tiers_in_force.labels_in_force(day, "status")) rebuilt from the stored runs
and the logged status moves equals what each batch run actually assigned, on SQLite and PostgreSQL; tiers_in_force
is its tier case."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.demo import generate_demo
from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.models import Customer, CustomerEvaluation
from domain.settings import DEFAULT_RULES
from domain.tiers_in_force import labels_in_force, labels_on, tiers_on
from rules.compiler import load_rules_file

UNTIL = date(2026, 6, 30)
RUNS = [date(2025, 9, 30), date(2025, 12, 31), date(2026, 6, 30)]


def _current(engine, kind: str) -> dict[int, str | None]:
    t = CustomerEvaluation.__table__
    with engine.connect() as conn:
        return {r.customer_id: r[1] for r in conn.execute(sa.select(t.c.customer_id, t.c[kind]))}


def test_statuses_in_force_replay_every_run(engine, tmp_path):
    generate_demo(tmp_path, seed=3, customers=300, until=UNTIL)
    import_directory(engine, tmp_path)
    rules = load_rules_file(DEFAULT_RULES)
    assigned, tiers = {}, {}
    for day in RUNS:
        run_batch(engine, rules, day)
        assigned[day], tiers[day] = _current(engine, "status"), _current(engine, "tier")
    moved = sum(assigned[RUNS[0]].get(c) != s for c, s in assigned[RUNS[-1]].items() if c in assigned[RUNS[0]])
    assert moved > 0  # the test means something only if customers changed status between runs
    with engine.connect() as conn:
        created = {r.id: r.created_at for r in conn.execute(sa.select(Customer.__table__))}
    for day in RUNS:
        for d in (day, day + timedelta(days=20)):
            got = labels_on(engine, d, "status")
            assert set(got) == {c for c, at in created.items() if at <= d}
            assert got == {c: assigned[day].get(c) for c in got}, d
            assert tiers_on(engine, d) == {c: tiers[day].get(c) for c in got}, d
    before = labels_on(engine, RUNS[0] - timedelta(days=1), "status")
    assert before and set(before.values()) == {None}


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        labels_in_force(UNTIL, "tag")
