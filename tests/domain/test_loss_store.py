"""The stored loss history answers exactly as the derivation does, for any period, and stays so through every
writer (orders, complaints, customers, loss marks), on a demo base evaluated as `tiergraph demo` does."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain import loss_marks, loss_store, writes
from domain.data_date import data_today
from domain.db import make_engine
from domain.evaluation import run_batch
from domain.loss_history import EPISODE_COLUMNS, LossRules, episodes, lost_customers_on
from domain.rulesets import ActiveRules
from domain.settings import Settings
from tests_support import demo_database


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    url = demo_database(tmp_path_factory.mktemp("store"), "--customers", "300", "--seed", "5",
                        "--history-months", "2")
    engine = make_engine(url)
    _, ruleset = ActiveRules(engine, Settings().rules_path).current()
    return engine, ruleset


def _rows(engine, rules: LossRules, start: date, end: date) -> list[tuple]:
    e = episodes(rules, start, end)
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(*(e.c[c] for c in EPISODE_COLUMNS))))


def _lost_on(engine, rules: LossRules, day: date) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(lost_customers_on(rules, day)).scalars())


def _periods(today: date) -> list[tuple[date, date]]:
    months = []
    first = today.replace(day=1)
    for _ in range(14):
        end = first - timedelta(days=1)
        first = end.replace(day=1)
        months.append((first, end))
    return months + [(today - timedelta(days=90), today), (date(1900, 1, 1), today)]


def assert_same(engine, ruleset) -> int:
    derived = LossRules.of(ruleset)
    stored = loss_store.prepared(engine, ruleset)
    assert stored.stored, "a report after a rebuild reads the store"
    today = data_today(engine)
    compared = 0
    for start, end in _periods(today):
        want = _rows(engine, derived, start, end)
        assert _rows(engine, stored, start, end) == want, (start, end)
        assert _lost_on(engine, stored, end) == _lost_on(engine, derived, end), end
        compared += len(want)
    return compared


def test_the_store_is_the_derivation_for_every_period(demo):
    engine, ruleset = demo
    with engine.connect() as conn:
        assert loss_store.is_current(conn, ruleset.source)  # `tiergraph demo` rebuilt it after its last batch
    assert assert_same(engine, ruleset) > 100  # episodes of all three kinds over many periods
    with engine.connect() as conn:
        kinds = set(conn.execute(sa.text("select distinct how from loss_episodes")).scalars())
    assert {"RULE", "BLOCKED"} <= kinds


def test_writers_keep_the_store_the_derivation(demo):
    engine, ruleset = demo
    loss_store.prepared(engine, ruleset)
    with engine.connect() as conn:
        lost = conn.execute(sa.text(
            "select c.external_id from customers c join loss_episodes e on e.customer_id = c.id "
            "where e.how = 'RULE' and e.reactivated_on is null order by c.id limit 3")).scalars().all()
        today = data_today(conn)
    assert len(lost) == 3
    # a late order backdated into a loss gap reactivates one; a complaint, a block and a manual mark change others
    writes.record_order(engine, {"external_id": "store-o1", "customer_external_id": lost[0],
                                 "ordered_at": today - timedelta(days=20),
                                 "lines": [{"sku": "STORE-SKU", "quantity": 1, "unit_price": 50.0}]})
    writes.record_complaint(engine, {"external_id": "store-k1", "customer_external_id": lost[1],
                                     "opened_at": today - timedelta(days=3), "category": "quality"})
    writes.upsert_customer(engine, {"external_id": lost[1], "blocked_from": today - timedelta(days=2)})
    loss_marks.mark_lost(engine, lost[2], today - timedelta(days=1), "moved to a competitor")
    with engine.connect() as conn:
        assert loss_store.is_current(conn, ruleset.source)  # the writers refreshed their customers' rows
    assert_same(engine, ruleset)
    loss_marks.reactivate(engine, lost[2], today, "won back")
    assert_same(engine, ruleset)


def test_a_new_batch_makes_it_stale_and_the_next_report_rebuilds_it(demo):
    engine, ruleset = demo
    loss_store.prepared(engine, ruleset)
    run_batch(engine, ruleset, data_today(engine))
    with engine.connect() as conn:
        assert not loss_store.is_current(conn, ruleset.source)
        assert not loss_store.is_current(conn, ruleset.source + "\n# other rules")
    # a write while stale leaves the store alone; the next report rebuilds it, the write included
    writes.upsert_customer(engine, {"external_id": "STORE-NEW", "name": "New customer"})
    assert assert_same(engine, ruleset) > 0


def test_concurrent_reports_rebuild_it_once(engine):
    """Two reports finding the store stale at once take turns (the writers' lock): one rebuilds, the other finds
    it current; no episode is stored twice. On SQLite and PostgreSQL."""
    import threading

    from domain.models import Customer, Order
    from rules.compiler import compile_rules

    ruleset = compile_rules("tier all otherwise\nstatus lost if no order 90d\nstatus active otherwise\n")
    with engine.begin() as conn:
        conn.execute(Customer.__table__.insert(), [
            dict(id=i, external_id=f"C{i}", name=f"C{i}", seasonal=False, created_at=date(2024, 1, 1), attributes={})
            for i in range(1, 41)])
        conn.execute(Order.__table__.insert(), [
            dict(external_id=f"o{i}-{k}", customer_id=i, ordered_at=date(2024, 1, 1) + timedelta(days=40 * k + i),
                 amount=10.0, margin=2.0, line_count=1) for i in range(1, 41) for k in range(i % 5 + 1)])
    answers: list[LossRules] = []
    threads = [threading.Thread(target=lambda: answers.append(loss_store.prepared(engine, ruleset)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 4 and all(a.stored for a in answers)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select count(*), count(distinct customer_id || '-' || lost_on) "
                                      "from loss_episodes")).one()
    derived = _rows(engine, LossRules.of(ruleset), date(1900, 1, 1), date(2030, 1, 1))
    assert stored[0] == stored[1] == len(derived) >= 40  # every customer lost once at least, none twice


def test_a_rebuild_killed_midway_leaves_the_store_as_it_was(demo):
    """kill -9 in the middle of a rebuild (the `tiergraph loss` command starting it): one transaction, so the rows
    and the state are as before; the next report rebuilds it whole."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    engine, ruleset = demo
    loss_store.prepared(engine, ruleset)
    run_batch(engine, ruleset, data_today(engine))  # stale: the next report rebuilds

    def snapshot():
        with engine.connect() as conn:
            return (conn.execute(sa.text("select count(*), min(id), max(id) from loss_episodes")).one(),
                    conn.execute(sa.text("select evaluation_run_id from loss_history_state")).scalar())

    before = snapshot()
    env = {**os.environ, "DATABASE_URL": str(engine.url), "TIERGRAPH_CRASH_AT": "loss_store:rebuilt"}
    proc = subprocess.run([sys.executable, "-m", "cli", "loss"], cwd=Path(__file__).resolve().parents[2], env=env,
                          capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert snapshot() == before
    with engine.connect() as conn:
        assert not loss_store.is_current(conn, ruleset.source)
    assert assert_same(engine, ruleset) > 0


def test_rules_without_a_lost_status_store_only_blocked_and_manual_losses(engine):
    """No status rule says lost: the rule episodes' line is a typed NULL, so the union with the blocked and manual
    episodes runs on PostgreSQL too (it once failed there: UNION types text and integer)."""
    from domain.models import Customer, Order
    from rules.compiler import compile_rules

    ruleset = compile_rules("tier all otherwise\nstatus quiet if no order 90d\nstatus active otherwise\n")
    with engine.begin() as conn:
        conn.execute(Customer.__table__.insert(), [
            dict(id=i, external_id=f"C{i}", name=f"C{i}", seasonal=False, created_at=date(2024, 1, 1), attributes={},
                 blocked_from=date(2024, 6, 1) if i == 1 else None) for i in range(1, 4)])
        conn.execute(Order.__table__.insert(), [
            dict(external_id=f"o{i}", customer_id=i, ordered_at=date(2024, 2, i), amount=10.0, margin=2.0,
                 line_count=1) for i in range(1, 4)])
    stored = loss_store.prepared(engine, ruleset)
    assert stored.stored
    rows = _rows(engine, stored, date(1900, 1, 1), date(2030, 1, 1))
    assert [(r[0], r[2]) for r in rows] == [(1, "BLOCKED")]
    assert rows == _rows(engine, LossRules.of(ruleset), date(1900, 1, 1), date(2030, 1, 1))
