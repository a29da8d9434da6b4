"""End to end: `tiergraph demo` builds a base that `tiergraph serve` answers over HTTP."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from cli import main
from domain.db import make_engine
from tests_support import demo_database
from domain.settings import Settings
from server import create_app

QUERY = """{ customers(first: 20) { totalCount edges { node { externalId tier { name } status { name }
    orders(first: 10) { totalCount edges { node { orderedAt amount lines { quantity } } } } } } } }"""


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> tuple[str, Path]:
    work = tmp_path_factory.mktemp("demo")
    url = demo_database(work, "--customers", "400", "--seed", "3", "--history-months", "2")
    return url, work


def test_demo_imports_and_evaluates_every_customer(demo_db):
    url, work = demo_db
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from customers")).scalar_one() == 400
        assert conn.execute(sa.text("select count(*) from customer_evaluations")).scalar_one() == 400
        statuses = {r[0] for r in conn.execute(sa.text("select distinct status from customer_evaluations"))}
    assert {"active", "lost", "prospect"} <= statuses
    assert (work / "demo-data" / "orders.csv").exists()


def test_demo_page_with_orders_in_bounded_statements(demo_db):
    url, _ = demo_db
    engine = make_engine(url)
    statements: list[str] = []
    with TestClient(create_app(Settings(database_url=url, webhooks=False), engine=engine)) as http:
        sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        body = http.post("/graphql", json={"query": QUERY}).json()
    assert "errors" not in body
    edges = body["data"]["customers"]["edges"]
    assert len(edges) == 20
    assert sum(e["node"]["orders"]["totalCount"] for e in edges) > 20
    # page + count, evaluations, order pages + order counts, lines: a handful, never one per customer or order
    assert len(statements) <= 8, statements


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_over_http(demo_db):
    url, work = demo_db
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=Path(__file__).parents[2],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"server did not start: {proc.stdout.read().decode() if proc.poll() is not None else ''}")
                time.sleep(0.2)
        assert health.json() == {"status": "ok", "database": "sqlite"}
        body = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=10).json()
        assert len(body["data"]["customers"]["edges"]) == 20
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_demo_has_a_history_of_moves(demo_db):
    url, _ = demo_db
    with make_engine(url).connect() as conn:
        runs = conn.execute(sa.text("select count(distinct as_of) from evaluation_runs")).scalar_one()
        moves = conn.execute(sa.text("select count(*) from tier_changes where kind = 'status'")).scalar_one()
    assert runs == 3 and moves > 0


def test_cli_explain_and_loss(demo_db, monkeypatch, capsys):
    url, _ = demo_db
    monkeypatch.setenv("DATABASE_URL", url)
    with make_engine(url).connect() as conn:
        lost = conn.execute(sa.text("select c.external_id from customers c join customer_evaluations e "
                                    "on e.customer_id = c.id where e.status = 'lost' order by c.id limit 1")).scalar_one()
    assert main(["explain", lost]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{lost} ") and "status lost (line" in out
    assert main(["explain", "no-such-customer"]) == 1
    assert main(["loss", "--from", "2000-01-01", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "per tier at loss" in out and "the 2 biggest losses" in out
    # the biggest-losses table: a row per loss, each naming how the customer was lost
    assert len([line for line in out.splitlines() if " RULE " in line or " BLOCKED " in line or " MANUAL " in line]) == 2


def test_demo_serves_with_an_admin_token_for_the_rule_editor(capsys):
    from cli import _with_demo_admin_token

    made = _with_demo_admin_token(Settings(), "127.0.0.1", 8000)
    shown = capsys.readouterr().err  # the CLI talks on stderr
    assert made.admin_token and len(made.admin_token) >= 16
    assert made.admin_token in shown and "http://127.0.0.1:8000/" in shown
    assert _with_demo_admin_token(made, "127.0.0.1", 8000) is made  # a configured token is kept
    assert _with_demo_admin_token(Settings(), "127.0.0.1", 8000).admin_token != made.admin_token
