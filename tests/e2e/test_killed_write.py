"""A write killed with SIGKILL inside its transaction (a real uvicorn process, domain.faults) stores nothing: not the
order, not the re-evaluation, not a change event; after a restart the same retry stores it all, once."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from strawberry import relay

from domain.db import make_engine
from domain.models import CustomerEvaluation, Order, TierChange
from tests_support import demo_database, imported_demo

ROOT = Path(__file__).parents[2]
TOKEN = "kill-admin"
RECORD = """mutation($input: OrderInput!) { recordOrder(input: $input) { changed customer { status { name } } } }"""


def _serve(url: str, crash_at: str | None) -> tuple[subprocess.Popen, httpx.Client]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url, "TIERGRAPH_ADMIN_TOKEN": TOKEN, "TIERGRAPH_WEBHOOKS": "off",
           "TIERGRAPH_TICK": "off"}
    env.pop("TIERGRAPH_CRASH_AT", None)
    if crash_at:
        env["TIERGRAPH_CRASH_AT"] = crash_at
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})
    deadline = time.monotonic() + 30
    while True:
        try:
            http.get("/healthz", timeout=1)
            return proc, http
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("server did not start")
            time.sleep(0.2)


def _snapshot(url: str) -> tuple:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return (conn.execute(sa.select(sa.func.count()).select_from(Order.__table__)).scalar_one(),
                    conn.execute(sa.select(sa.func.count()).select_from(TierChange.__table__)).scalar_one(),
                    sorted(conn.execute(sa.select(CustomerEvaluation.__table__.c.customer_id,
                                                  CustomerEvaluation.__table__.c.status,
                                                  CustomerEvaluation.__table__.c.as_of)).all()))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def base_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return demo_database(tmp_path, "--customers", "120", "--seed", "9", "--history-months", "0")
    from cli import main

    url = imported_demo(request.getfixturevalue("pg_server").new_database(), tmp_path, seed=9, customers=120)
    os.environ["DATABASE_URL"] = url
    try:
        assert main(["evaluate"]) == 0
    finally:
        del os.environ["DATABASE_URL"]
    return url


def test_a_write_killed_before_its_commit_stores_nothing(base_url):
    engine = make_engine(base_url)
    with engine.connect() as conn:
        customer = conn.execute(sa.text("select external_id from customers order by id limit 1")).scalar_one()
    engine.dispose()
    order = {"externalId": "KILL-O1", "customerExternalId": customer, "orderedAt": date.today().isoformat(),
             "lines": [{"sku": "KILL-SKU", "quantity": 1, "unitPrice": 99}]}
    before = _snapshot(base_url)

    proc, http = _serve(base_url, "write:before_commit")
    with pytest.raises(httpx.TransportError):  # the process dies inside the write's transaction
        http.post("/graphql", json={"query": RECORD, "variables": {"input": order}})
    http.close()
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert _snapshot(base_url) == before  # no order, no new evaluation, no change event

    proc, http = _serve(base_url, None)
    try:
        body = http.post("/graphql", json={"query": RECORD, "variables": {"input": order}}).json()
        assert "errors" not in body, body
        assert body["data"]["recordOrder"]["changed"] is True
        again = http.post("/graphql", json={"query": RECORD, "variables": {"input": order}}).json()
        assert again["data"]["recordOrder"]["changed"] is False
    finally:
        http.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    orders, _changes, _rows = _snapshot(base_url)
    assert orders == before[0] + 1


INVOICE = """mutation($input: InvoiceInput!) { recordInvoice(input: $input) { changed } }"""
ERASE = """mutation($id: ID!) { eraseCustomer(id: $id) { changed customer { name } } }"""


def _whole_customer(url: str, external_id: str) -> tuple:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return (conn.execute(sa.text("select count(*) from invoices")).scalar_one(),
                    conn.execute(sa.text("select count(*) from privacy_audit")).scalar_one(),
                    conn.execute(sa.text("select name, external_id, erased_at from customers where external_id = :e"),
                                 {"e": external_id}).one())
    finally:
        engine.dispose()


def test_an_invoice_and_an_erasure_killed_before_their_commit_change_nothing(base_url):
    """The new write paths take the same writer transaction: a SIGKILL at its last step leaves no invoice, no
    erased name and no audit row; after a restart the retries do it all once."""
    engine = make_engine(base_url)
    with engine.connect() as conn:
        cid, customer = conn.execute(sa.text("select id, external_id from customers order by id limit 1 offset 1")
                                     ).one()
    engine.dispose()
    invoice = {"externalId": "KILL-V1", "customerExternalId": customer, "issuedAt": date.today().isoformat(),
               "amount": 120}
    global_id = relay.to_base64("Customer", customer)
    calls = [(INVOICE, {"input": invoice}), (ERASE, {"id": global_id})]
    before, whole_before = _snapshot(base_url), _whole_customer(base_url, customer)
    for query, variables in calls:
        proc, http = _serve(base_url, "write:before_commit")
        with pytest.raises(httpx.TransportError):
            http.post("/graphql", json={"query": query, "variables": variables})
        http.close()
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert _snapshot(base_url) == before and _whole_customer(base_url, customer) == whole_before

    proc, http = _serve(base_url, None)
    try:
        for query, variables in calls:
            body = http.post("/graphql", json={"query": query, "variables": variables}).json()
            assert "errors" not in body, body
            assert next(iter(body["data"].values()))["changed"] is True
    finally:
        http.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    invoices, audits, (name, external_id, erased_at) = _whole_customer(base_url, f"erased-{cid}")
    assert (invoices, audits) == (whole_before[0] + 1, whole_before[1] + 1)
    assert name.startswith("Erased customer") and erased_at is not None

