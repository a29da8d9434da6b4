"""The tick: only the customers whose next_change_on has come are re-evaluated, on the day they are due."""
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

import cli
from domain import evaluation_state, tick as tick_module
from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.models import Customer, CustomerEvaluation, TierChange
from domain.rulesets import ensure_active
from domain.tick import tick
from rules.compiler import compile_rules, load_rules_file
from tests_support import GRAPH_FIXTURE

AS_OF = date(2024, 6, 30)
RULES = """tier all otherwise
status lost   if no order 90d
status active otherwise
"""
# customer -> last order day: due (lost) on last order + 90 days
LAST = {"A": AS_OF - timedelta(days=85), "B": AS_OF - timedelta(days=70), "C": AS_OF - timedelta(days=10)}
DUE = {k: v + timedelta(days=90) for k, v in LAST.items()}  # A: AS_OF + 5, B: + 20, C: + 80


@pytest.fixture
def base(engine, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "customers.csv").write_text("external_id,name,created_at\n" + "".join(
        f"{c},Customer {c},2024-01-01\n" for c in LAST))
    (data / "orders.csv").write_text("order_external_id,customer_external_id,ordered_at,sku,quantity,unit_price\n"
                                     + "".join(f"O-{c},{c},{d},X,1,10\n" for c, d in LAST.items()))
    import_directory(engine, data)
    rules = tmp_path / "tick.rules"
    rules.write_text(RULES)
    ensure_active(engine, rules)
    run_batch(engine, load_rules_file(rules), AS_OF)  # stores as_of + 1 for everyone: a bound, not the day
    first = tick(engine, AS_OF + timedelta(days=1))  # the first tick derives each customer's exact day
    assert (first.customers, first.changes, first.days) == (3, 0, 1)
    return engine


def _rows(engine) -> dict:
    e, c = CustomerEvaluation.__table__, Customer.__table__
    with engine.connect() as conn:
        return {r.external_id: r for r in conn.execute(
            sa.select(c.c.external_id, *e.c).join(c, c.c.id == e.c.customer_id))}


def _changes(engine) -> list:
    t, c = TierChange.__table__, Customer.__table__
    with engine.connect() as conn:
        return conn.execute(sa.select(c.c.external_id, t).join(c, c.c.id == t.c.customer_id)
                            .where(t.c.kind == "status").order_by(t.c.id)).all()


def test_each_customer_is_due_on_its_last_order_plus_90_days(base):
    assert {k: r.next_change_on for k, r in _rows(base).items()} == DUE


def test_a_tick_before_anyone_is_due_touches_no_one(base):
    before = _rows(base)
    report = tick(base, DUE["A"] - timedelta(days=1))
    assert (report.customers, report.changes, report.days) == (0, 0, 0)
    assert _rows(base) == before


def test_a_tick_on_the_day_makes_the_customer_lost_with_cause_time_and_its_true_date(base):
    before = _rows(base)
    report = tick(base, DUE["A"])
    assert (report.customers, report.changes, report.days) == (1, 1, 1)
    after = _rows(base)
    assert after["A"].status == "lost" and after["A"].status_since == DUE["A"]
    assert after["B"] == before["B"] and after["C"] == before["C"]  # not due: not touched
    (change,) = [c for c in _changes(base) if c.new_value == "lost"]
    assert (change.external_id, change.cause, change.effective_on, change.exact) == ("A", "TIME", DUE["A"], True)


def test_a_tick_after_a_gap_catches_up_day_by_day_with_exact_dates(base):
    before = _rows(base)
    report = tick(base, AS_OF + timedelta(days=30))  # A due on +5 and B on +20; C (+80) is not
    assert (report.customers, report.changes, report.days) == (2, 2, 2)
    lost = {c.external_id: c for c in _changes(base) if c.new_value == "lost"}
    assert {k: (c.effective_on, c.as_of, c.cause) for k, c in lost.items()} == \
        {k: (DUE[k], DUE[k], "TIME") for k in ("A", "B")}
    after = _rows(base)
    assert after["C"] == before["C"]
    assert after["A"].next_change_on is None or after["A"].next_change_on > AS_OF + timedelta(days=30)


def test_the_same_tick_twice_changes_nothing_the_second_time(base):
    until = AS_OF + timedelta(days=100)
    first = tick(base, until)
    assert first.changes == 3
    rows, changes = _rows(base), _changes(base)
    again = tick(base, until)
    assert (again.customers, again.changes) == (0, 0)
    assert _rows(base) == rows and _changes(base) == changes


def test_a_tick_never_runs_before_the_stored_evaluation(base):
    before = _rows(base)
    report = tick(base, AS_OF - timedelta(days=30))
    assert report.as_of == AS_OF + timedelta(days=1)  # the first tick's evaluations are the latest stored
    assert (report.customers, report.changes) == (0, 0) and _rows(base) == before


def test_cli_tick_prints_the_report_and_a_busy_writer_exits_1(base, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", str(base.url.render_as_string(hide_password=False)))
    monkeypatch.setattr(cli, "_engine", lambda settings: base)
    assert cli.main(["tick", "--until", DUE["A"].isoformat()]) == 0
    assert "1 customer evaluation(s) over 1 day(s), 1 change(s)" in capsys.readouterr().err

    def busy(*args, **kwargs):
        raise evaluation_state.WriterBusy("another writer has held the customers' evaluations")

    monkeypatch.setattr(tick_module, "writer_transaction", busy)
    assert cli.main(["tick", "--until", DUE["B"].isoformat()]) == 1
    assert "tick stopped: another writer" in capsys.readouterr().err


def test_settings_tick_on_by_default_from_the_environment_and_hour_checked():
    from domain.settings import Settings, SettingsError

    assert (Settings.from_env({}).tick, Settings.from_env({}).tick_hour) == (True, 2)
    assert Settings.from_env({"TIERGRAPH_TICK": "off", "TIERGRAPH_TICK_HOUR": "23"}).tick is False
    with pytest.raises(SettingsError, match="TIERGRAPH_TICK_HOUR must be an hour"):
        Settings.from_env({"TIERGRAPH_TICK_HOUR": "24"})


def test_seconds_until_the_tick_hour():
    from datetime import datetime

    import server

    assert server._seconds_until_hour(2, datetime(2026, 1, 1, 1, 30)) == 1800
    assert server._seconds_until_hour(2, datetime(2026, 1, 1, 2, 0)) == 24 * 3600  # just ran: tomorrow


def test_the_server_ticks_at_start_up_and_a_failed_tick_is_retried(base, monkeypatch):
    """The start-up tick catches up to today (every customer here is lost by then); a tick that fails is logged
    and the task lives on to run the next one."""
    import time

    from starlette.testclient import TestClient

    import server
    from domain.settings import Settings

    calls = []
    real = tick_module.tick

    def flaky(engine, until=None, **kwargs):
        calls.append(until)
        if len(calls) == 1:
            raise RuntimeError("injected tick failure")
        return real(engine, until, **kwargs)

    monkeypatch.setattr(tick_module, "tick", flaky)
    monkeypatch.setattr(tick_module, "is_live", lambda engine, today=None: True)  # a 2024 base, taken as live here
    monkeypatch.setattr(server, "_seconds_until_hour", lambda hour: 0.05)
    app = server.create_app(Settings(database_url="sqlite://", webhooks=False, tick=True), engine=base)
    with TestClient(app) as http:
        assert http.get("/healthz").status_code == 200  # the loop answers while the tick works in a thread
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and {r.status for r in _rows(base).values()} != {"lost"}:
            time.sleep(0.1)
    assert len(calls) >= 2
    assert {k: (r.status, r.status_since) for k, r in _rows(base).items()} == {k: ("lost", d) for k, d in DUE.items()}


def test_the_servers_tick_leaves_an_archive_alone(engine):
    """An old export (its latest evaluation long before today) is not aged to today by the server's own tick."""
    from domain.tick import ARCHIVE_AFTER_DAYS, is_live

    assert is_live(engine) is False  # never evaluated
    import_directory(engine, GRAPH_FIXTURE)
    run_batch(engine, compile_rules("tier all otherwise\nstatus lost if no order 90d\nstatus active otherwise\n"),
              date(2024, 6, 30))
    assert is_live(engine, date(2024, 6, 30) + timedelta(days=ARCHIVE_AFTER_DAYS)) is True
    assert is_live(engine, date(2024, 6, 30) + timedelta(days=ARCHIVE_AFTER_DAYS + 1)) is False


def test_a_full_batch_is_due_every_n_days_after_the_last(engine):
    """The server's daily task refreshes cut-offs and quintiles with a full batch when the last is N days old."""
    from domain.full_batch import full_batch_due

    import_directory(engine, GRAPH_FIXTURE)
    assert full_batch_due(engine, 7, date(2024, 7, 30)) is False  # never evaluated: nothing to refresh
    run_batch(engine, compile_rules("tier all otherwise\nstatus active otherwise\n"), date(2024, 6, 30))
    assert full_batch_due(engine, 7, date(2024, 7, 6)) is False
    assert full_batch_due(engine, 7, date(2024, 7, 7)) is True
    assert full_batch_due(engine, 0, date(2030, 1, 1)) is False  # 0: never


def test_full_batch_days_setting():
    from domain.settings import Settings, SettingsError

    assert Settings.from_env({}).full_batch_days == 7
    assert Settings.from_env({"TIERGRAPH_FULL_BATCH_DAYS": "0"}).full_batch_days == 0
    with pytest.raises(SettingsError, match="TIERGRAPH_FULL_BATCH_DAYS"):
        Settings.from_env({"TIERGRAPH_FULL_BATCH_DAYS": "-1"})


def test_a_tick_killed_before_its_commit_changes_nothing_then_completes(base):
    """kill -9 (domain.faults) inside a tick's writer transaction: nothing of the chunk is stored; the next tick
    does it all, with the same exact dates."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    url = base.url.render_as_string(hide_password=False)
    before, logged = _rows(base), len(_changes(base))
    env = {**os.environ, "DATABASE_URL": url, "TIERGRAPH_CRASH_AT": "tick:before_commit"}
    cmd = [sys.executable, "-m", "cli", "tick", "--until", DUE["B"].isoformat()]
    root = Path(__file__).parents[2]
    killed = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert _rows(base) == before and len(_changes(base)) == logged
    env.pop("TIERGRAPH_CRASH_AT")
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    after = _rows(base)
    assert {k: (r.status, r.status_since) for k, r in after.items() if k in ("A", "B")} == \
        {k: ("lost", DUE[k]) for k in ("A", "B")}
