"""Signed webhooks: signatures, retry with backoff, in-order at-least-once delivery resuming from the last ack."""
import asyncio
import json
import socket
import threading
import time
from datetime import date, timedelta

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from domain import webhooks
from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.models import utcnow
from domain.settings import DEFAULT_RULES, Settings
from rules.compiler import compile_rules, load_rules_file
from server import create_app
from tests_support import GRAPH_FIXTURE

AS_OF = date(2024, 6, 30)
BIG_SMALL = "tier big if count(order) >= 3\ntier small otherwise\nstatus active if count(order, 12m) >= 1\nstatus gone otherwise\n"


def test_signature_round_trip_and_tampering():
    body = b'{"events":[]}'
    sig = webhooks.sign("k", 1000, body)
    assert webhooks.verify("k", 1000, body, sig, now=1000)
    assert not webhooks.verify("k", 1000, body + b" ", sig, now=1000)
    assert not webhooks.verify("other", 1000, body, sig, now=1000)
    assert not webhooks.verify("k", 1000, body, sig, now=1000 + 301)  # replayed too late


@pytest.fixture
def changes(engine):
    import_directory(engine, GRAPH_FIXTURE)
    run_batch(engine, load_rules_file(DEFAULT_RULES), AS_OF)
    run_batch(engine, compile_rules(BIG_SMALL), AS_OF)  # 45 tier changes + status changes
    return engine


def test_register_validates_input(changes):
    with pytest.raises(webhooks.WebhookError, match="http"):
        webhooks.register(changes, "ftp://example.test/hook")
    with pytest.raises(webhooks.WebhookError, match="unknown kind"):
        webhooks.register(changes, "https://example.test/hook", ["mood"])


def test_retry_backoff_then_in_order_delivery(changes):
    endpoint, secret = webhooks.register(changes, "https://receiver.test/hook", ["tier"], from_beginning=True)
    script = [500]
    received: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamp = int(request.headers["x-tiergraph-timestamp"])
        assert webhooks.verify(secret, stamp, request.content, request.headers["x-tiergraph-signature"])
        status = script.pop(0) if script else 200
        if status == 200:
            received.extend(json.loads(request.content)["events"])
        return httpx.Response(status)

    async def rounds():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            now = utcnow()
            assert await webhooks.deliver_due(changes, client, now=now) == 0  # receiver fails: nothing acked
            state = webhooks.list_endpoints(changes)[0]
            assert state.failures == 1 and state.last_error == "HTTP 500" and state.delivered_through == 0
            assert await webhooks.deliver_due(changes, client, now=now + timedelta(seconds=1)) == 0  # backing off
            later = now + timedelta(seconds=3)
            total = 0
            while (n := await webhooks.deliver_due(changes, client, now=later)) > 0:
                total += n
            return total

    total = asyncio.run(rounds())
    assert total == 45 == len(received)
    ids = [e["id"] for e in received]
    assert ids == sorted(ids) and len(set(ids)) == 45
    assert {e["kind"] for e in received} == {"tier"}
    state = webhooks.list_endpoints(changes)[0]
    assert state.failures == 0 and state.delivered_through == ids[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_pushes_to_a_real_receiver(changes, empty_db_url):
    got: list[tuple[dict, bytes]] = []

    async def hook(request):
        got.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    port = _free_port()
    receiver = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
                                             host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=receiver.run, daemon=True)
    thread.start()
    try:
        settings = Settings(database_url=empty_db_url, admin_token="t", event_poll_seconds=0.05)
        with TestClient(create_app(settings, engine=changes)) as http:
            body = http.post("/graphql", headers={"Authorization": "Bearer t"}, json={"query": f"""mutation {{
                registerWebhook(url: "http://127.0.0.1:{port}/hook", fromBeginning: true) {{ secret endpoint {{ id }} }} }}"""}).json()
            secret = body["data"]["registerWebhook"]["secret"]
            deadline = time.monotonic() + 20
            while sum(len(json.loads(b)["events"]) for _, b in got) < 92 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        receiver.should_exit = True
        thread.join(timeout=10)
    events = [e for _, b in got for e in json.loads(b)["events"]]
    assert len(events) == 92  # 45 tier + 45 status changes + 2 tags the new rules no longer give (tags are logged)
    assert [e["kind"] for e in events].count("tag") == 2
    for headers, raw in got:
        assert webhooks.verify(secret, int(headers["x-tiergraph-timestamp"]), raw, headers["x-tiergraph-signature"])
